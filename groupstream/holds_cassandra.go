package groupstream

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"

	"github.com/fanline/fanline/internal/cql"
)

// The Cassandra store's legal holds (Holds): table holds, a row per (conversation,
// scope) whose doc is the Hold's JSON, spread over holdBuckets partitions by
// conversation id so that every hold of one conversation is in one partition and
// listing them all reads holdBuckets partitions. Holds are few (legal matters, not
// traffic): a partition stays small.

var _ Holds = (*CassandraStore)(nil)

// holdBuckets is how many partitions the holds table spreads over.
const holdBuckets = 16

const (
	cqlPutHold   = `INSERT INTO holds (bucket, conv, scope, doc) VALUES (?, ?, ?, ?)`
	cqlDelHold   = `DELETE FROM holds WHERE bucket = ? AND conv = ? AND scope = ?`
	cqlHolds     = `SELECT doc FROM holds WHERE bucket = ? AND conv = ?`
	cqlListHolds = `SELECT doc FROM holds WHERE bucket = ? AND conv > ? LIMIT ?`
)

func holdBucket(conv uint64) int { return int(conv % holdBuckets) }

// holdReads are the reads of holds: Cassandra's (sessionReads); the
// statement-level tests read a recorder's rows.
type holdReads interface {
	// holds returns up to limit holds (0: all) of bucket whose conversation is
	// after after, by conversation and scope (cqlListHolds); with one set,
	// only conv's (cqlHolds).
	holds(ctx context.Context, bucket int, conv, after uint64, limit int) ([]Hold, error)
}

// PutHold implements Holds.
func (s *CassandraStore) PutHold(ctx context.Context, h Hold) error {
	if !ValidHoldScope(h.Scope) {
		return fmt.Errorf("groupstream: hold scope %q is neither ops nor shop:<id>", h.Scope)
	}
	v, err := json.Marshal(h)
	if err != nil {
		return fmt.Errorf("groupstream: hold: %w", err)
	}
	if err := s.w.Exec(ctx, cql.Q(cqlPutHold, holdBucket(h.Conv), int64(h.Conv), h.Scope, v)); err != nil {
		return cassErr(err)
	}
	return nil
}

// DeleteHold implements Holds.
func (s *CassandraStore) DeleteHold(ctx context.Context, conv uint64, scope string) error {
	if err := s.w.Exec(ctx, cql.Q(cqlDelHold, holdBucket(conv), int64(conv), scope)); err != nil {
		return cassErr(err)
	}
	return nil
}

// Holds implements Holds.
func (s *CassandraStore) Holds(ctx context.Context, conv uint64) ([]Hold, error) {
	return s.reads.holds(ctx, holdBucket(conv), conv, 0, 0)
}

// ListHolds implements Holds. It reads up to limit rows of every bucket after
// after. A bucket that filled its limit may hold more rows of its last
// conversation, which is read whole, and further conversations, unseen: the
// answer stops at the least such last conversation, before which every bucket's
// holds are known.
func (s *CassandraStore) ListHolds(ctx context.Context, after uint64, limit int) ([]Hold, error) {
	if limit <= 0 {
		return nil, nil
	}
	var all []Hold
	frontier := uint64(0) // 0: no bucket was cut
	for b := range holdBuckets {
		rows, err := s.reads.holds(ctx, b, 0, after, limit)
		if err != nil {
			return nil, err
		}
		if len(rows) == limit {
			last := rows[len(rows)-1].Conv
			whole, err := s.Holds(ctx, last)
			if err != nil {
				return nil, err
			}
			for len(rows) > 0 && rows[len(rows)-1].Conv == last {
				rows = rows[:len(rows)-1]
			}
			rows = append(rows, whole...)
			if frontier == 0 || last < frontier {
				frontier = last
			}
		}
		all = append(all, rows...)
	}
	sort.Slice(all, func(i, j int) bool {
		return all[i].Conv < all[j].Conv || (all[i].Conv == all[j].Conv && all[i].Scope < all[j].Scope)
	})
	convs := 0
	for i, h := range all {
		if i == 0 || all[i-1].Conv != h.Conv {
			if convs == limit || (frontier != 0 && h.Conv > frontier) {
				return all[:i], nil
			}
			convs++
		}
	}
	return all, nil
}

func (r sessionReads) holds(ctx context.Context, bucket int, conv, after uint64, limit int) ([]Hold, error) {
	q := r.s.Query(cqlHolds, bucket, int64(conv))
	if conv == 0 {
		q = r.s.Query(cqlListHolds, bucket, int64(after), limit)
	}
	it := q.WithContext(ctx).Iter()
	var out []Hold
	var blob []byte
	for it.Scan(&blob) {
		var h Hold
		if err := json.Unmarshal(blob, &h); err != nil {
			it.Close()
			return nil, fmt.Errorf("groupstream: hold: %w", err)
		}
		out = append(out, h)
	}
	if err := it.Close(); err != nil {
		return nil, cassErr(err)
	}
	return out, nil
}
