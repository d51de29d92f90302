package groupstream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/fanline/fanline/internal/cql"
	"github.com/gocql/gocql"
)

// The Cassandra store's announcements (Announcer).
//
// A change's announcement is a row of its group's partition, written in the
// conditional batch that makes the change, so it commits if and only if the change
// does (its document is in the row's member column). Its clustering key starts with
// reservedPrefix, which no user id has (wire.ValidUserID: [A-Za-z0-9_.:@-]) and which
// sorts after every character a user id has: member reads take the keys below it
// only.
//
// Listing every group's announcements needs an index across partitions: a row of
// pending_announcements (group, version), written BEFORE the conditional batch, so an
// announcement that commits always has one. An index row whose announcement is
// missing is a change that did not apply (a crash or a lost condition before the
// batch, or one already announced whose index row was left): once older than
// staleAfter, Announcements(0) fences its group (a conditional write that moves the
// revision, or creates an empty record for a group never created) so that the
// change's batch, if still in flight, can no longer apply, looks again, and deletes
// the index row if the announcement is still missing. The fence is what makes the
// discard exact: a change's batch holds only if the record is still at the revision
// it read (IF rev = ?, or IF NOT EXISTS for a creation), and a committed fence has
// moved it, so no batch planned before the fence applies after it (waiting alone
// would not do: a Paxos round accepted by a minority of replicas can be completed by
// a later one). Announced deletes the announcement (conditionally, like every write
// of the partition) and then its index row.

var _ Announcer = (*CassandraStore)(nil)

const (
	// reservedPrefix starts the clustering keys of a group's partition that are not
	// members'.
	reservedPrefix = "~"
	// announcementPrefix starts announcement rows: the version follows, 20 digits,
	// so that key order is version order.
	announcementPrefix = reservedPrefix + "announcement:"
	// pendingBuckets is how many partitions pending_announcements spreads over.
	pendingBuckets = 16
	// pendingStaleAfter is the age past which an index row whose announcement is
	// missing is taken for a change that did not apply (fencing its group makes
	// that certain; a younger one's change may still be in flight, and fencing it
	// would only make it conflict).
	pendingStaleAfter = time.Minute
)

const (
	cqlPutAnnouncement = `INSERT INTO conversations (id, user, member) VALUES (?, ?, ?)`
	cqlAnnouncements   = `SELECT user, member FROM conversations WHERE id = ? AND user > ?`
	cqlDelAnnouncement = `DELETE FROM conversations WHERE id = ? AND user = ? IF EXISTS`
	cqlPutPending      = `INSERT INTO pending_announcements (bucket, id, version, at) VALUES (?, ?, ?, ?)`
	cqlPending         = `SELECT id, version, at FROM pending_announcements WHERE bucket = ?`
	cqlDelPending      = `DELETE FROM pending_announcements WHERE bucket = ? AND id = ? AND version = ?`
	cqlRev             = `SELECT rev FROM conversations WHERE id = ? LIMIT 1`
	cqlFenceRev        = `UPDATE conversations SET rev = ? WHERE id = ? IF rev = ?`
	cqlFenceNew        = `INSERT INTO conversations (id, rev) VALUES (?, 0) IF NOT EXISTS`
)

// memberKey reports whether user, a clustering key of a group's partition, is a
// member's.
func memberKey(user string) bool { return user < reservedPrefix }

// announcementRowKey is the clustering key of a group's announcement of version.
func announcementRowKey(version uint64) string {
	return fmt.Sprintf("%s%020d", announcementPrefix, version)
}

func pendingBucket(group uint64) int { return int(group % pendingBuckets) }

// announcementRows are the writes of announcement a: its index row, written before
// the change's conditional batch, and its row, written in it.
func announcementRows(a Announcement, now time.Time) (index, row cql.Stmt) {
	v, _ := json.Marshal(a)
	index = cql.Q(cqlPutPending, pendingBucket(a.Group), int64(a.Group), int64(a.Version), now.UTC())
	row = cql.Q(cqlPutAnnouncement, int64(a.Group), announcementRowKey(a.Version), v)
	return index, row
}

// decodeAnnouncement decodes the row of group at clustering key key, or reports
// that key is no announcement's.
func decodeAnnouncement(group uint64, key string, v []byte) (Announcement, bool, error) {
	if !strings.HasPrefix(key, announcementPrefix) {
		return Announcement{}, false, nil
	}
	var a Announcement
	if err := json.Unmarshal(v, &a); err != nil {
		return a, false, fmt.Errorf("groupstream: announcement %s of %d: %w", key, group, err)
	}
	return a, true, nil
}

// pendingRow is a row of pending_announcements.
type pendingRow struct {
	group, version uint64
	at             time.Time
}

// announceReads are the reads of announcements: Cassandra's (sessionReads); the
// statement-level tests read a recorder's rows.
type announceReads interface {
	holdReads // and those of legal holds (holds_cassandra.go)

	// pending returns the index rows of bucket, by group and version.
	pending(ctx context.Context, bucket int) ([]pendingRow, error)
	// announcements returns the announcements of group, oldest version first.
	announcements(ctx context.Context, group uint64) ([]Announcement, error)
	// rev returns group's revision, and whether its record exists.
	rev(ctx context.Context, group uint64) (int64, bool, error)
}

// Announcements implements Announcer. Listing every group's (group 0) also discards
// the index rows of changes that did not apply (see above).
func (s *CassandraStore) Announcements(ctx context.Context, group uint64, limit int) ([]Announcement, error) {
	if group != 0 {
		out, err := s.reads.announcements(ctx, group)
		if limit > 0 && len(out) > limit {
			out = out[:limit]
		}
		return out, err
	}
	var out []Announcement
	for b := 0; b < pendingBuckets && (limit == 0 || len(out) < limit); b++ {
		rows, err := s.reads.pending(ctx, b)
		if err != nil {
			return nil, err
		}
		for len(rows) > 0 && (limit == 0 || len(out) < limit) {
			n := 1
			for n < len(rows) && rows[n].group == rows[0].group {
				n++
			}
			found, err := s.groupPending(ctx, rows[:n])
			if err != nil {
				return nil, err
			}
			out = append(out, found...)
			rows = rows[n:]
		}
	}
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// groupPending returns the announcements of the group of index rows, discarding
// those of the rows whose announcement is missing and which are stale.
func (s *CassandraStore) groupPending(ctx context.Context, rows []pendingRow) ([]Announcement, error) {
	g := rows[0].group
	out, err := s.reads.announcements(ctx, g)
	if err != nil {
		return nil, err
	}
	have := make(map[uint64]bool, len(out))
	for _, a := range out {
		have[a.Version] = true
	}
	for _, r := range rows {
		if have[r.version] || time.Since(r.at) < s.staleAfter {
			continue
		}
		a, err := s.discard(ctx, g, r.version)
		if err != nil {
			return nil, err
		}
		if a != nil {
			out = append(out, *a)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	return out, nil
}

// discard deletes the index row of group's version, whose announcement was missing:
// it fences the group, so that the change that wrote the row can no longer apply,
// and looks for the announcement again. It returns the announcement if the change
// applied after all; when the fence loses its condition (the group changed
// meanwhile) it leaves the row for the next listing.
func (s *CassandraStore) discard(ctx context.Context, group, version uint64) (*Announcement, error) {
	rev, exists, err := s.reads.rev(ctx, group)
	if err != nil {
		return nil, err
	}
	fence := cql.Q(cqlFenceNew, int64(group))
	if exists {
		fence = cql.Q(cqlFenceRev, rev+1, int64(group), rev)
	}
	applied, err := s.w.CAS(ctx, []cql.Stmt{fence})
	if err != nil {
		return nil, cassErr(err)
	}
	if !applied {
		return nil, nil
	}
	list, err := s.reads.announcements(ctx, group)
	if err != nil {
		return nil, err
	}
	for _, a := range list {
		if a.Version == version {
			return &a, nil
		}
	}
	if err := s.w.Exec(ctx, cql.Q(cqlDelPending, pendingBucket(group), int64(group), int64(version))); err != nil {
		return nil, cassErr(err)
	}
	return nil, nil
}

// Announced implements Announcer: the announcement, then its index row (a crash
// between leaves an index row that Announcements discards).
func (s *CassandraStore) Announced(ctx context.Context, group, version uint64) error {
	if _, err := s.w.CAS(ctx, []cql.Stmt{cql.Q(cqlDelAnnouncement, int64(group), announcementRowKey(version))}); err != nil {
		return cassErr(err)
	}
	if err := s.w.Exec(ctx, cql.Q(cqlDelPending, pendingBucket(group), int64(group), int64(version))); err != nil {
		return cassErr(err)
	}
	return nil
}

// sessionReads reads announcements on a Cassandra session.
type sessionReads struct{ s *gocql.Session }

func (r sessionReads) pending(ctx context.Context, bucket int) ([]pendingRow, error) {
	it := r.s.Query(cqlPending, bucket).WithContext(ctx).Iter()
	var out []pendingRow
	var id, version int64
	var at time.Time
	for it.Scan(&id, &version, &at) {
		out = append(out, pendingRow{group: uint64(id), version: uint64(version), at: at})
	}
	if err := it.Close(); err != nil {
		return nil, cassErr(err)
	}
	return out, nil
}

func (r sessionReads) announcements(ctx context.Context, group uint64) ([]Announcement, error) {
	it := r.s.Query(cqlAnnouncements, int64(group), reservedPrefix).WithContext(ctx).Iter()
	var out []Announcement
	var key string
	var blob []byte
	for it.Scan(&key, &blob) {
		a, ok, err := decodeAnnouncement(group, key, blob)
		if err != nil {
			it.Close()
			return nil, err
		}
		if ok {
			out = append(out, a)
		}
	}
	if err := it.Close(); err != nil {
		return nil, cassErr(err)
	}
	return out, nil
}

func (r sessionReads) rev(ctx context.Context, group uint64) (int64, bool, error) {
	var rev int64
	err := r.s.Query(cqlRev, int64(group)).WithContext(ctx).Scan(&rev)
	if errors.Is(err, gocql.ErrNotFound) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, cassErr(err)
	}
	return rev, true, nil
}
