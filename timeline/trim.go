package timeline

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Timelines keep their entries for a while (coldstore.timeline_keep) and then drop
// them from the front: the messages live on in conversation history, and a device
// whose cursor points into the dropped part resyncs from the conversation list. What
// is dropped is always a prefix of a timeline, so seqs never change and a read can
// tell a dropped part from a timeline that is simply at its end: its first entry is
// past the one asked for.

// Trimmer drops old timeline entries. The retention scheduler calls it every
// coldstore.interval with before = now - coldstore.timeline_keep.
type Trimmer interface {
	// Trim drops, per user, the entries from the first one up to (not including)
	// the first with At >= before, keeping each user's newest entry, and returns
	// how many it dropped. Heads, conversation states and unread counts are not
	// touched. It is safe to run beside writes and reads, and again after a
	// failure.
	Trim(ctx context.Context, before time.Time) (dropped int, err error)
}

var (
	_ Trimmer = (*PebbleStore)(nil)
	_ Trimmer = (*CassandraStore)(nil)
)

// ErrCursorExpired is what a read after a seq whose successors were dropped
// returns (as a *CursorExpiredError).
var ErrCursorExpired = errors.New("timeline: cursor expired")

// CursorExpiredError is a read of user's timeline after seq After that found entries
// dropped before the first it could return. Resume is the seq to read after
// instead: the first kept entry's seq minus one (the head when none is kept).
type CursorExpiredError struct {
	User   string
	After  uint64
	Resume uint64
}

func (e *CursorExpiredError) Error() string {
	return fmt.Sprintf("timeline: entries of %s after %d were dropped; the timeline continues after %d", e.User, e.After, e.Resume)
}

// Unwrap makes errors.Is(err, ErrCursorExpired) true.
func (e *CursorExpiredError) Unwrap() error { return ErrCursorExpired }

// checkKept checks a read of user's timeline after seq after: first is the seq of
// the first entry the read found (0 for none), head the user's head seq, needed only
// when first is 0. The read lost nothing when it starts at after+1, or found nothing
// because after is at or past the head.
func checkKept(user string, after, first, head uint64) error {
	switch {
	case first == after+1, first == 0 && head <= after:
		return nil
	case first == 0:
		return &CursorExpiredError{User: user, After: after, Resume: head}
	}
	return &CursorExpiredError{User: user, After: after, Resume: first - 1}
}
