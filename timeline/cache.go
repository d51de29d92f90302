package timeline

import "context"

// EntryCache holds the newest entries of users' timelines in front of a store whose
// reads cost a network round trip (CassandraStore). It holds only committed entries:
// the store adds them after its commit and after reading them back.
type EntryCache interface {
	// Add caches entries of user's timeline (any order, repeats harmless).
	Add(ctx context.Context, user string, entries []Entry) error
	// Range returns user's entries after..upto (after < seq <= upto) when the cache
	// holds every one of them; ok is false otherwise.
	Range(ctx context.Context, user string, after, upto uint64) (es []Entry, ok bool, err error)
}
