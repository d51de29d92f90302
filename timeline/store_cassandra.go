package timeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/fanline/fanline/internal/cql"
	"github.com/fanline/fanline/internal/ids"
	"github.com/fanline/fanline/internal/keylock"
	"github.com/gocql/gocql"
)

// Bucketing keeps every Cassandra partition far below ~100 MB:
//
//   - timeline_entries: (user, seq >> entryBucketBits). An entry row is a reference
//     (kind, conversation, msg id, sender, time; at most ~300 bytes with a 64-byte
//     sender id), so a bucket of 65,536 entries stays under ~20 MB.
//   - timeline_index: (user, conv, msg_id >> indexBucketBits). msg ids carry their
//     millisecond in the high bits, so a bucket spans 2^31 ms (~24.9 days) of one
//     conversation; at ~150 bytes per row that is 100 MB only past ~700,000 entries
//     in one conversation and one user's timeline within 25 days.
//   - timeline_users: (user), one row per conversation (~200 bytes of state): 100 MB
//     would take ~500,000 conversations of one user.
const (
	entryBucketBits = 16
	indexBucketBits = 53
)

func entryBucket(seq uint64) int64 { return int64(seq >> entryBucketBits) }
func indexBucket(msg uint64) int64 { return int64(msg >> indexBucketBits) }

// CassandraSchema is the timeline's tables; `fanline migrate` applies it.
var CassandraSchema = cql.Schema{Name: "timeline", Statements: []string{
	// The user's head seq and total unread are static columns beside one row per
	// conversation, so one conditional batch on the partition moves head, total and
	// states together: the single-writer guard and the unread invariant in one.
	`CREATE TABLE IF NOT EXISTS timeline_users (
		user text, conv bigint, head bigint STATIC, total bigint STATIC, state blob,
		PRIMARY KEY ((user), conv))`,
	`CREATE TABLE IF NOT EXISTS timeline_entries (
		user text, bucket bigint, seq bigint, entry blob,
		PRIMARY KEY ((user, bucket), seq))`,
	`CREATE TABLE IF NOT EXISTS timeline_index (
		user text, conv bigint, bucket bigint, msg bigint, kind text, sender text, seq bigint,
		PRIMARY KEY ((user, conv, bucket), msg, kind, sender))`,
}}

// The statements, bound with values (gocql prepares each once per connection).
const (
	cqlHead        = `SELECT head, total FROM timeline_users WHERE user = ? LIMIT 1`
	cqlState       = `SELECT state FROM timeline_users WHERE user = ? AND conv = ?`
	cqlStates      = `SELECT conv, state, total FROM timeline_users WHERE user = ?`
	cqlUserRow     = `INSERT INTO timeline_users (user, head, total) VALUES (?, 0, 0) IF NOT EXISTS`
	cqlClaim       = `UPDATE timeline_users SET head = ? WHERE user = ? IF head = ?`
	cqlClaimTotal  = `UPDATE timeline_users SET head = ?, total = ? WHERE user = ? IF head = ?`
	cqlSetState    = `UPDATE timeline_users SET state = ? WHERE user = ? AND conv = ?`
	cqlPutEntry    = `INSERT INTO timeline_entries (user, bucket, seq, entry) VALUES (?, ?, ?, ?)`
	cqlEntry       = `SELECT entry FROM timeline_entries WHERE user = ? AND bucket = ? AND seq = ?`
	cqlEntries     = `SELECT seq, entry FROM timeline_entries WHERE user = ? AND bucket = ? AND seq > ? AND seq <= ? LIMIT ?`
	cqlFirstEntry  = `SELECT seq FROM timeline_entries WHERE user = ? AND bucket = ? AND seq > ? LIMIT 1`
	cqlPutIndex    = `INSERT INTO timeline_index (user, conv, bucket, msg, kind, sender, seq) VALUES (?, ?, ?, ?, ?, ?, ?)`
	cqlIndexed     = `SELECT seq FROM timeline_index WHERE user = ? AND conv = ? AND bucket = ? AND msg = ? AND kind = ? AND sender = ?`
	cqlIndexAfter  = `SELECT kind, sender, seq FROM timeline_index WHERE user = ? AND conv = ? AND bucket = ? AND msg > ?`
	cqlIndexBucket = `SELECT kind, sender, seq FROM timeline_index WHERE user = ? AND conv = ? AND bucket = ?`
)

// ErrConflict is returned when another writer moved a user's head during a write:
// two processes wrote one user's timeline, which the queue's partitioning prevents
// but for a consumer that outlived its session. The write is retried on fresh state.
var ErrConflict = errors.New("timeline: another writer moved the head")

// CassandraStoreConfig configures a CassandraStore.
type CassandraStoreConfig struct {
	// Cache holds the newest entries of each timeline, read before Cassandra. Nil:
	// every read goes to Cassandra.
	Cache EntryCache
	// Counters keeps a copy of the unread counts for Unread, which then reads one
	// row of the user's partition instead of all. Nil: Unread reads the partition.
	Counters UnreadCounters
	// Batch bounds the batches of a user's entry and index rows; zero fields take
	// cql's defaults (32 KiB, 500 statements).
	Batch cql.BatchLimits
	// EntryTTL is how long Cassandra keeps an entry row (USING TTL, counted from its
	// write), the server's coldstore.timeline_keep; past it Cassandra drops the row
	// itself. Rounded down to whole seconds, at least 1 and at most Cassandra's 20
	// years. Zero: entries are kept for ever.
	EntryTTL time.Duration
}

// maxTTL is the longest TTL Cassandra takes, in seconds (20 years).
const maxTTL = 630720000

// putEntryCQL is cqlPutEntry with ttl, if any.
func putEntryCQL(ttl time.Duration) string {
	if ttl <= 0 {
		return cqlPutEntry
	}
	return cqlPutEntry + " USING TTL " + strconv.FormatInt(min(max(int64(ttl/time.Second), 1), maxTTL), 10)
}

// CassandraStore is the distributed Store, on tables created by `fanline migrate`
// (CassandraSchema).
//
// A write stores its entries and their index rows, then moves the user's head,
// total and conversation states in one conditional batch on the user's partition
// (IF head = <head it read>): the claim is the write's commit. Entries written beyond
// the head by a writer that died before its claim are invisible: reads stop at the
// head, an index row counts only if its entry at a seq <= head is the same item, and
// the next writer overwrites them. Writes of one user are serialised in the process;
// the pipeline gives each user one writing process.
//
// Entries expire on their own after cfg.EntryTTL, oldest first (they are written in
// seq order), so Trim has nothing to do; index rows have no TTL: they stay the truth
// for dedup and unread counts.
type CassandraStore struct {
	s        *gocql.Session
	w        cql.Writer // the writes, on s
	cfg      CassandraStoreConfig
	putEntry string       // cqlPutEntry with the TTL
	locks    *keylock.Set // serialise this process's writes per user
}

var (
	_ Store  = (*CassandraStore)(nil)
	_ engine = (*CassandraStore)(nil)
)

// NewCassandraStore returns a Store on session s (cql.Open).
func NewCassandraStore(s *gocql.Session, cfg CassandraStoreConfig) *CassandraStore {
	return newCassandraStore(s, cql.SessionWriter(s), cfg)
}

// newCassandraStore returns a store reading s and writing through w.
func newCassandraStore(s *gocql.Session, w cql.Writer, cfg CassandraStoreConfig) *CassandraStore {
	return &CassandraStore{s: s, w: w, cfg: cfg, putEntry: putEntryCQL(cfg.EntryTTL), locks: keylock.New(userStripes)}
}

func (s *CassandraStore) loadHead(ctx context.Context, user string) (uint64, error) {
	h, _, err := s.headTotal(ctx, user)
	return h, err
}

func (s *CassandraStore) loadTotal(ctx context.Context, user string) (int64, error) {
	_, t, err := s.headTotal(ctx, user)
	return t, err
}

func (s *CassandraStore) headTotal(ctx context.Context, user string) (uint64, int64, error) {
	var head, total int64
	err := s.s.Query(cqlHead, user).WithContext(ctx).Scan(&head, &total)
	if errors.Is(err, gocql.ErrNotFound) {
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, fmt.Errorf("timeline: cassandra: %w", err)
	}
	return uint64(head), total, nil
}

func (s *CassandraStore) loadState(ctx context.Context, user string, conv uint64) (ConvState, bool, error) {
	var st ConvState
	var blob []byte
	err := s.s.Query(cqlState, user, int64(conv)).WithContext(ctx).Scan(&blob)
	if errors.Is(err, gocql.ErrNotFound) || (err == nil && len(blob) == 0) {
		return st, false, nil
	}
	if err != nil {
		return st, false, fmt.Errorf("timeline: cassandra: %w", err)
	}
	if err := json.Unmarshal(blob, &st); err != nil {
		return st, false, fmt.Errorf("timeline: state of %s in %d: %w", user, conv, err)
	}
	return st, true, nil
}

// indexed implements engine: the index row must point at or below the head, to the
// same item.
func (s *CassandraStore) indexed(ctx context.Context, it Item, head uint64) (bool, error) {
	var seq int64
	err := s.s.Query(cqlIndexed, it.User, int64(it.ConversationID), indexBucket(it.MsgID), int64(it.MsgID), it.Kind, it.From).
		WithContext(ctx).Scan(&seq)
	if errors.Is(err, gocql.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("timeline: cassandra: %w", err)
	}
	if uint64(seq) > head {
		return false, nil
	}
	var blob []byte
	err = s.s.Query(cqlEntry, it.User, entryBucket(uint64(seq)), seq).WithContext(ctx).Scan(&blob)
	if errors.Is(err, gocql.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("timeline: cassandra: %w", err)
	}
	var e Entry
	if err := json.Unmarshal(blob, &e); err != nil {
		return false, fmt.Errorf("timeline: entry %d of %s: %w", seq, it.User, err)
	}
	return e.Kind == it.Kind && e.ConversationID == it.ConversationID && e.MsgID == it.MsgID && e.From == it.From, nil
}

// othersAfter implements engine, scanning the index buckets from msgID's to now's.
func (s *CassandraStore) othersAfter(ctx context.Context, user string, conv, msgID, head uint64) (int64, error) {
	var n int64
	last := max(indexBucket(msgID), nowBucket())
	for b := indexBucket(msgID); b <= last; b++ {
		q := s.s.Query(cqlIndexBucket, user, int64(conv), b)
		if b == indexBucket(msgID) {
			q = s.s.Query(cqlIndexAfter, user, int64(conv), b, int64(msgID))
		}
		it := q.WithContext(ctx).Iter()
		var kind, sender string
		var seq int64
		for it.Scan(&kind, &sender, &seq) {
			if kind == KindMessage && sender != user && uint64(seq) <= head {
				n++
			}
		}
		if err := it.Close(); err != nil {
			return 0, fmt.Errorf("timeline: cassandra: %w", err)
		}
	}
	return n, nil
}

// nowBucket is the index bucket of an id minted now (one bucket of slack for
// clock skew between nodes).
func nowBucket() int64 {
	ms := uint64(time.Since(ids.Epoch).Milliseconds())
	return indexBucket(ms<<22) + 1
}

// commit implements engine: per user, entries and index first, then the claim.
//
// A user's entry and index rows span several partitions (an entry bucket, an index
// partition per conversation), so they go in batches within cfg.Batch: 512 entries
// of one user in one batch are ~145 KB, which Cassandra refuses every time
// (batch_size_fail_threshold). The batches need not be atomic together: nothing
// reads a row past the head until the claim moves the head over it, the claim comes
// only after every batch succeeded, and a write cut short before its claim is
// retried from the same head, so it writes the same seqs again. The claim itself
// (head, total and states, which must move together for unread to be right) is one
// batch on the user's partition, never split, and Cassandra does not check the
// size of a batch of one partition.
func (s *CassandraStore) commit(ctx context.Context, w *write) error {
	byUser := map[string][]int{}
	for i, e := range w.entries {
		byUser[e.User] = append(byUser[e.User], i)
	}
	for user, idx := range byUser {
		rows := make([]cql.Stmt, 0, 2*len(idx))
		for _, i := range idx {
			e, it := w.entries[i], w.items[i]
			blob, _ := json.Marshal(e)
			rows = append(rows, cql.Q(s.putEntry, user, entryBucket(e.Seq), int64(e.Seq), blob),
				cql.Q(cqlPutIndex, user, int64(it.ConversationID), indexBucket(it.MsgID), int64(it.MsgID), it.Kind, it.From, int64(e.Seq)))
		}
		if err := cql.WriteBatches(ctx, s.w, s.cfg.Batch, rows); err != nil {
			return fmt.Errorf("cassandra: entries of %s: %w", user, err)
		}
		if err := s.claim(ctx, w, user); err != nil {
			return err
		}
		if s.cfg.Cache != nil {
			entries := make([]Entry, len(idx))
			for j, i := range idx {
				entries[j] = w.entries[i]
			}
			// Best effort: a cache that missed entries is bypassed by Read.
			_ = s.cfg.Cache.Add(ctx, user, entries)
		}
	}
	return nil
}

// claim moves user's head from what the write read to its new value, with the
// total and states, if no other writer moved it meanwhile.
func (s *CassandraStore) claim(ctx context.Context, w *write, user string) error {
	base := w.base[user]
	if base == 0 {
		// The conditional update needs the partition's static row to exist.
		if _, err := s.w.CAS(ctx, []cql.Stmt{cql.Q(cqlUserRow, user)}); err != nil {
			return fmt.Errorf("cassandra: user row of %s: %w", user, err)
		}
	}
	sts := make([]cql.Stmt, 0, 1+len(w.states[user]))
	if total, ok := w.totals[user]; ok {
		sts = append(sts, cql.Q(cqlClaimTotal, int64(w.heads[user]), total, user, int64(base)))
	} else {
		sts = append(sts, cql.Q(cqlClaim, int64(w.heads[user]), user, int64(base)))
	}
	for conv, st := range w.states[user] {
		blob, _ := json.Marshal(st)
		sts = append(sts, cql.Q(cqlSetState, blob, user, int64(conv)))
	}
	applied, err := s.w.CAS(ctx, sts)
	if err != nil {
		return fmt.Errorf("cassandra: claim head of %s: %w", user, err)
	}
	if !applied {
		return fmt.Errorf("%w of %s (at %d)", ErrConflict, user, base)
	}
	return nil
}

func (s *CassandraStore) counters() UnreadCounters { return s.cfg.Counters }

// Unread implements Store.
func (s *CassandraStore) Unread(ctx context.Context, user string) (Counts, error) {
	return unreadCounts(ctx, s, s.cfg.Counters, user)
}

// Append implements Store.
func (s *CassandraStore) Append(ctx context.Context, items []Item) ([]Entry, error) {
	defer s.locks.Lock(usersOf(items)...)()
	return appendItems(ctx, s, items)
}

// MarkRead implements Store.
func (s *CassandraStore) MarkRead(ctx context.Context, user string, conv, msgID uint64, convKind string, at time.Time) (*Entry, ConvState, error) {
	defer s.locks.Lock(user)()
	return markRead(ctx, s, user, conv, msgID, convKind, at)
}

// Read implements Store: from the cache when it holds the whole range, else from
// the entry buckets (and then into the cache).
func (s *CassandraStore) Read(ctx context.Context, user string, after uint64, limit int) ([]Entry, error) {
	head, err := s.loadHead(ctx, user)
	if err != nil || head <= after || limit <= 0 {
		return nil, err
	}
	upto := min(head, after+uint64(limit))
	if s.cfg.Cache != nil {
		if es, ok, err := s.cfg.Cache.Range(ctx, user, after, upto); err == nil && ok {
			return es, nil
		}
	}
	var out []Entry
	for b := entryBucket(after + 1); b <= entryBucket(upto); b++ {
		it := s.s.Query(cqlEntries, user, b, int64(after), int64(upto), limit-len(out)).WithContext(ctx).Iter()
		var seq int64
		var blob []byte
		for it.Scan(&seq, &blob) {
			var e Entry
			if err := json.Unmarshal(blob, &e); err != nil {
				it.Close()
				return nil, fmt.Errorf("timeline: entry %d of %s: %w", seq, user, err)
			}
			e.User, e.Seq = user, uint64(seq)
			out = append(out, e)
		}
		if err := it.Close(); err != nil {
			return nil, fmt.Errorf("timeline: cassandra: %w", err)
		}
	}
	if len(out) == 0 {
		// Expired up to at least upto: the kept part starts further on.
		first, err := s.firstEntry(ctx, user, upto, head)
		if err != nil {
			return nil, err
		}
		return nil, checkKept(user, after, first, head)
	}
	if err := checkKept(user, after, out[0].Seq, head); err != nil {
		return nil, err
	}
	if uint64(len(out)) != upto-after {
		return nil, fmt.Errorf("timeline: %s's entries %d..%d: found %d", user, after+1, upto, len(out))
	}
	if s.cfg.Cache != nil {
		_ = s.cfg.Cache.Add(ctx, user, out)
	}
	return out, nil
}

// firstEntry returns the seq of user's first entry after seq after and at most head,
// or 0 for none.
func (s *CassandraStore) firstEntry(ctx context.Context, user string, after, head uint64) (uint64, error) {
	for b := entryBucket(after + 1); b <= entryBucket(head); b++ {
		var seq int64
		err := s.s.Query(cqlFirstEntry, user, b, int64(after)).WithContext(ctx).Scan(&seq)
		if errors.Is(err, gocql.ErrNotFound) {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("timeline: cassandra: %w", err)
		}
		if uint64(seq) > head {
			return 0, nil // an uncommitted write's row
		}
		return uint64(seq), nil
	}
	return 0, nil
}

// Trim implements Trimmer: it does nothing, since Cassandra drops entry rows itself
// once their TTL (CassandraStoreConfig.EntryTTL) passes. A store without one keeps
// every entry.
func (s *CassandraStore) Trim(context.Context, time.Time) (int, error) { return 0, nil }

// Head implements Store.
func (s *CassandraStore) Head(ctx context.Context, user string) (uint64, error) {
	return s.loadHead(ctx, user)
}

// Conversations implements Store.
func (s *CassandraStore) Conversations(ctx context.Context, user string) ([]ConvState, int64, error) {
	it := s.s.Query(cqlStates, user).WithContext(ctx).Iter()
	var out []ConvState
	var total int64
	var conv *int64
	var blob []byte
	for it.Scan(&conv, &blob, &total) {
		if conv == nil || len(blob) == 0 {
			continue // the partition's static row alone
		}
		var st ConvState
		if err := json.Unmarshal(blob, &st); err != nil {
			it.Close()
			return nil, 0, fmt.Errorf("timeline: state of %s: %w", user, err)
		}
		st.ConversationID = uint64(*conv)
		out = append(out, st)
	}
	if err := it.Close(); err != nil {
		return nil, 0, fmt.Errorf("timeline: cassandra: %w", err)
	}
	return out, total, nil
}

// ConvState implements Store.
func (s *CassandraStore) ConvState(ctx context.Context, user string, conv uint64) (ConvState, error) {
	st, ok, err := s.loadState(ctx, user, conv)
	if err != nil {
		return ConvState{}, err
	}
	if !ok {
		return ConvState{}, ErrNotFound
	}
	st.ConversationID = conv
	return st, nil
}
