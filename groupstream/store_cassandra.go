package groupstream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/fanline/fanline/internal/cql"
	"github.com/fanline/fanline/internal/ids"
	"github.com/fanline/fanline/internal/keylock"
	"github.com/fanline/fanline/internal/wire"
	"github.com/gocql/gocql"
)

// Bucketing keeps every partition far below ~100 MB:
//
//   - stream: (conv, seq >> 16), 65,536 entries of ~100 bytes (~7 MB).
//   - history: (conv, msg_id >> 53), ~25 days of one conversation's message ids at
//     ~30 bytes a row.
//   - conversations: (id), a group's record (static), one row per member (a
//     20,000-member group is ~3 MB) and one per pending announcement, under
//     clustering keys no user id can be (announce_cassandra.go).
//   - pending_announcements: (bucket), the groups with pending announcements in
//     pendingBuckets partitions, each row deleted within seconds.
//   - read_positions: (conv), one row per member that read.
//   - messages: (id), one message each.
const (
	streamBucketBits  = 16
	historyBucketBits = 53
)

func streamBucket(seq uint64) int64 { return int64(seq >> streamBucketBits) }
func historyBucket(id uint64) int64 { return int64(id >> historyBucketBits) }

// idBucketAt is the history bucket of ids minted at t.
func idBucketAt(t time.Time) int64 {
	ms := max(0, t.Sub(ids.Epoch).Milliseconds())
	return historyBucket(uint64(ms) << 22)
}

// CassandraSchema is the conversation and stream tables; `fanline migrate` applies
// it.
var CassandraSchema = cql.Schema{Name: "groupstream", Statements: []string{
	// A conversation's record is static beside one row per group member, so a
	// membership change and the record's new version are one conditional batch.
	`CREATE TABLE IF NOT EXISTS conversations (
		id bigint, user text, doc blob STATIC, rev bigint STATIC, member blob,
		PRIMARY KEY ((id), user))`,
	`CREATE TABLE IF NOT EXISTS conversation_pairs (pair text, id bigint, PRIMARY KEY ((pair)))`,
	`CREATE TABLE IF NOT EXISTS user_groups (user text, id bigint, PRIMARY KEY ((user), id))`,
	`CREATE TABLE IF NOT EXISTS left_groups (user text, id bigint, doc blob, PRIMARY KEY ((user), id))`,
	`CREATE TABLE IF NOT EXISTS messages (id bigint, doc blob, PRIMARY KEY ((id)))`,
	`CREATE TABLE IF NOT EXISTS history (conv bigint, bucket bigint, msg bigint,
		PRIMARY KEY ((conv, bucket), msg)) WITH CLUSTERING ORDER BY (msg DESC)`,
	`CREATE TABLE IF NOT EXISTS stream (conv bigint, bucket bigint, seq bigint, kind text, msg bigint, rank bigint,
		at timestamp, sender text, PRIMARY KEY ((conv, bucket), seq))`,
	`CREATE TABLE IF NOT EXISTS read_positions (conv bigint, user text, seq bigint, PRIMARY KEY ((conv), user))`,
	// The index of pending announcements (the announcements are rows of their
	// groups' partitions). A deleted row that comes back (a replica that missed the
	// deletion for longer than gc_grace_seconds) is discarded again, so its
	// tombstones need not be kept long.
	`CREATE TABLE IF NOT EXISTS pending_announcements (bucket int, id bigint, version bigint, at timestamp,
		PRIMARY KEY ((bucket), id, version)) WITH gc_grace_seconds = 3600`,
	// Archived history (archive_cassandra.go): each conversation's segment
	// manifest, the conversation of each archived message, the recall markers of
	// archived messages.
	`CREATE TABLE IF NOT EXISTS manifests (conv bigint, first_msg bigint, doc blob, PRIMARY KEY ((conv), first_msg))`,
	`CREATE TABLE IF NOT EXISTS archived_messages (id bigint, conv bigint, PRIMARY KEY ((id)))`,
	`CREATE TABLE IF NOT EXISTS recall_marks (id bigint, doc blob, PRIMARY KEY ((id)))`,
	// Legal holds (holds_cassandra.go).
	`CREATE TABLE IF NOT EXISTS holds (bucket int, conv bigint, scope text, doc blob, PRIMARY KEY ((bucket), conv, scope))`,
}}

// The statements, bound with values (gocql prepares each once per connection).
const (
	cqlConv         = `SELECT doc, rev FROM conversations WHERE id = ? LIMIT 1`
	cqlNewConv      = `INSERT INTO conversations (id, doc, rev) VALUES (?, ?, 1) IF NOT EXISTS`
	cqlClaimConv    = `UPDATE conversations SET doc = ?, rev = ? WHERE id = ? IF rev = ?`
	cqlPutMember    = `UPDATE conversations SET member = ? WHERE id = ? AND user = ?`
	cqlDelMember    = `DELETE FROM conversations WHERE id = ? AND user = ?`
	cqlMember       = `SELECT member FROM conversations WHERE id = ? AND user = ?`
	cqlMembers      = `SELECT user, member FROM conversations WHERE id = ? AND user < ?`
	cqlPair         = `SELECT id FROM conversation_pairs WHERE pair = ?`
	cqlPutPair      = `INSERT INTO conversation_pairs (pair, id) VALUES (?, ?) IF NOT EXISTS`
	cqlPutUserGroup = `INSERT INTO user_groups (user, id) VALUES (?, ?)`
	cqlDelUserGroup = `DELETE FROM user_groups WHERE user = ? AND id = ?`
	cqlUserGroups   = `SELECT id FROM user_groups WHERE user = ?`
	cqlPutLeft      = `INSERT INTO left_groups (user, id, doc) VALUES (?, ?, ?) USING TTL 2592000`
	cqlDelLeft      = `DELETE FROM left_groups WHERE user = ? AND id = ?`
	cqlLeft         = `SELECT doc FROM left_groups WHERE user = ?`
	cqlMessage      = `SELECT doc FROM messages WHERE id = ?`
	cqlPutMessage   = `INSERT INTO messages (id, doc) VALUES (?, ?)`
	cqlRecall       = `UPDATE messages SET doc = ? WHERE id = ? IF doc = ?`
	cqlPutHistory   = `INSERT INTO history (conv, bucket, msg) VALUES (?, ?, ?)`
	cqlHistory      = `SELECT msg FROM history WHERE conv = ? AND bucket = ? AND msg < ? LIMIT ?`
	cqlPutStream    = `INSERT INTO stream (conv, bucket, seq, kind, msg, rank, at, sender) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`
	cqlStream       = `SELECT seq, kind, msg, rank, at, sender FROM stream WHERE conv = ? AND bucket = ? AND seq > ? AND seq <= ? LIMIT ?`
	cqlRankAt       = `SELECT rank FROM stream WHERE conv = ? AND bucket = ? AND seq <= ? ORDER BY seq DESC LIMIT 1`
	cqlSetRead      = `INSERT INTO read_positions (conv, user, seq) VALUES (?, ?, ?)`
	cqlRead         = `SELECT seq FROM read_positions WHERE conv = ? AND user = ?`
	cqlReads        = `SELECT user, seq FROM read_positions WHERE conv = ?`
	cqlDelRead      = `DELETE FROM read_positions WHERE conv = ? AND user = ?`
)

// ErrConflict is returned when another process changed a group's record during a
// write; the caller retries (the pipeline's stages do, with backoff).
var ErrConflict = errors.New("groupstream: the group changed meanwhile")

// CassandraStoreConfig configures a CassandraStore.
type CassandraStoreConfig struct {
	Config
	// ReadIndexTTL is how long a group's read positions loaded for "read by N of M"
	// are used before they are loaded again (other nodes move them too). Zero means
	// 5 s.
	ReadIndexTTL time.Duration
	// Batch bounds the batches that write many partitions (a group's members'
	// user_groups rows); zero fields take cql's defaults (32 KiB, 500 statements).
	Batch cql.BatchLimits
}

// CassandraStore is the distributed Store, on tables created by `fanline migrate`
// (CassandraSchema).
//
// A group's record carries a revision; every change to it (a message's stream seq,
// a membership change, a recall in read-fanout) is a conditional write on the
// revision read, retried by the caller on ErrConflict. A message's stream seq is
// claimed before the message is written: a writer that dies between the two leaves
// an unused seq, never a seq used twice (devices already see gaps in stream seqs:
// write-fanout messages use seqs the stream does not hold). Rows of other partitions
// are written around the conditional writes so that a retry repairs whatever a
// crash left out (store_cassandra_write.go says how, write by write). Direct and shop
// conversations never change and are cached; groups and members are read from
// Cassandra, as other nodes change them.
type CassandraStore struct {
	s   *gocql.Session
	w   cql.Writer // the writes, on s
	cfg CassandraStoreConfig

	locks *keylock.Set // serialise this process's writes per conversation

	// cache holds direct and shop conversations (they never change) and groups'
	// read indexes as loaded (for ReadIndexTTL), bounded in bytes
	// (Config.CacheBytes).
	cache *byteCache

	reads      announceReads // of announcements, on s
	rows       storeReads    // every other read, on s
	staleAfter time.Duration // pendingStaleAfter

	// tiers reads archived history (SetArchive).
	tiers tiers
}

// loadedIndex is a read index and when it was loaded.
type loadedIndex struct {
	x  *readIndex
	at time.Time
}

var _ Store = (*CassandraStore)(nil)

// NewCassandraStore returns a Store on session s (cql.Open).
func NewCassandraStore(s *gocql.Session, cfg CassandraStoreConfig) *CassandraStore {
	return newCassandraStore(s, cql.SessionWriter(s), cfg)
}

// newCassandraStore returns a store reading s and writing through w.
func newCassandraStore(s *gocql.Session, w cql.Writer, cfg CassandraStoreConfig) *CassandraStore {
	cfg.fill()
	if cfg.ReadIndexTTL <= 0 {
		cfg.ReadIndexTTL = 5 * time.Second
	}
	cs := &CassandraStore{s: s, w: w, cfg: cfg, locks: keylock.New(convStripes), cache: newByteCache(cfg.CacheBytes),
		reads: sessionReads{s}, rows: sessionReads{s}, staleAfter: pendingStaleAfter}
	cs.tiers = tiers{idx: cs}
	return cs
}

// CachedBytes returns the bytes of conversations and read positions held in
// memory, as accounted against Config.CacheBytes.
func (s *CassandraStore) CachedBytes() int64 { return s.cache.bytes() }

func cassErr(err error) error { return fmt.Errorf("groupstream: cassandra: %w", err) }

// load returns conversation id and its revision.
func (s *CassandraStore) load(ctx context.Context, id uint64) (Conversation, int64, error) {
	return s.rows.conversation(ctx, id)
}

func (s *CassandraStore) cached(c Conversation) {
	if c.Kind == KindGroup {
		return // groups change; other nodes change them
	}
	s.cache.set(convCacheKey(c.ID), c, convSize(c))
}

// Conversation implements Store.
func (s *CassandraStore) Conversation(ctx context.Context, id uint64) (Conversation, error) {
	if c, ok := s.cache.get(convCacheKey(id)); ok {
		return c.(Conversation), nil
	}
	c, _, err := s.load(ctx, id)
	if err == nil {
		s.cached(c)
	}
	return c, err
}

// DirectConversation implements Store.
func (s *CassandraStore) DirectConversation(ctx context.Context, a, b string, newID func() uint64) (Conversation, error) {
	members := []string{a, b}
	if b < a {
		members = []string{b, a}
	}
	return s.pairConversation(ctx, "d:"+members[0]+":"+members[1], func() Conversation {
		return Conversation{ID: newID(), Kind: KindDirect, Members: members, CreatedAt: time.Now().UTC()}
	})
}

// ShopConversation implements Store.
func (s *CassandraStore) ShopConversation(ctx context.Context, buyer, shop string, newID func() uint64) (Conversation, error) {
	return s.pairConversation(ctx, "s:"+shop+":"+buyer, func() Conversation {
		return Conversation{ID: newID(), Kind: KindShop, Members: []string{buyer}, Shop: shop, CreatedAt: time.Now().UTC()}
	})
}

// pairConversation returns the conversation mapped at pair, allocating it with
// build the first time: the record first, then the mapping IF NOT EXISTS, so every
// node gets the first mapping's conversation (a losing record is never referenced).
func (s *CassandraStore) pairConversation(ctx context.Context, pair string, build func() Conversation) (Conversation, error) {
	var id int64
	err := s.s.Query(cqlPair, pair).WithContext(ctx).Scan(&id)
	if err == nil {
		return s.Conversation(ctx, uint64(id))
	}
	if !errors.Is(err, gocql.ErrNotFound) {
		return Conversation{}, cassErr(err)
	}
	c := build()
	doc, _ := json.Marshal(c)
	if _, err := s.s.Query(cqlNewConv, int64(c.ID), doc).WithContext(ctx).MapScanCAS(map[string]any{}); err != nil {
		return Conversation{}, cassErr(err)
	}
	existing := map[string]any{}
	applied, err := s.s.Query(cqlPutPair, pair, int64(c.ID)).WithContext(ctx).MapScanCAS(existing)
	if err != nil {
		return Conversation{}, cassErr(err)
	}
	if !applied {
		other, _ := existing["id"].(int64)
		return s.Conversation(ctx, uint64(other))
	}
	s.cached(c)
	return c, nil
}

// Member implements Store.
func (s *CassandraStore) Member(ctx context.Context, conv uint64, user string) (Member, error) {
	c, err := s.Conversation(ctx, conv)
	if err != nil {
		return Member{}, err
	}
	if c.Kind != KindGroup {
		return pairMember(c, user)
	}
	if !memberKey(user) {
		return Member{}, ErrNotFound // a row of the group's partition that is no member
	}
	var blob []byte
	err = s.s.Query(cqlMember, int64(conv), user).WithContext(ctx).Scan(&blob)
	if errors.Is(err, gocql.ErrNotFound) || (err == nil && len(blob) == 0) {
		return Member{}, ErrNotFound
	}
	if err != nil {
		return Member{}, cassErr(err)
	}
	return decodeMember(conv, user, blob)
}

// Members implements Store; rows come in user order (the clustering key), and the
// group's other rows (reservedPrefix) after them.
func (s *CassandraStore) Members(ctx context.Context, conv uint64) ([]Member, error) {
	c, err := s.Conversation(ctx, conv)
	if err != nil {
		return nil, err
	}
	if c.Kind != KindGroup {
		return pairMembers(c), nil
	}
	it := s.s.Query(cqlMembers, int64(conv), reservedPrefix).WithContext(ctx).Iter()
	var out []Member
	var user *string
	var blob []byte
	for it.Scan(&user, &blob) {
		if user == nil || len(blob) == 0 || !memberKey(*user) {
			continue // the record's static row, or not a member's
		}
		m, err := decodeMember(conv, *user, blob)
		if err != nil {
			it.Close()
			return nil, err
		}
		out = append(out, m)
	}
	if err := it.Close(); err != nil {
		return nil, cassErr(err)
	}
	return out, nil
}

// Message implements Store: the warm row, else the archived copy.
func (s *CassandraStore) Message(ctx context.Context, id uint64) (Message, error) {
	sm, _, err := s.message(ctx, id)
	if !errors.Is(err, ErrNotFound) {
		return sm.Message, err
	}
	found, err := s.tiers.messages(ctx, []uint64{id})
	if err != nil {
		return Message{}, err
	}
	if m, ok := found[id]; ok {
		return m, nil
	}
	return Message{}, ErrNotFound
}

// LookupMessages implements Store.
func (s *CassandraStore) LookupMessages(ctx context.Context, ids []uint64) (map[uint64]wire.Entry, error) {
	out := make(map[uint64]wire.Entry, len(ids))
	var missing []uint64
	for _, id := range ids {
		if _, ok := out[id]; ok {
			continue
		}
		sm, _, err := s.message(ctx, id)
		if errors.Is(err, ErrNotFound) {
			missing = append(missing, id)
			continue
		}
		if err != nil {
			return nil, err
		}
		out[id] = sm.Entry()
	}
	cold, err := s.tiers.messages(ctx, missing)
	if err != nil {
		return nil, err
	}
	for id, m := range cold {
		out[id] = m.Entry()
	}
	return out, nil
}

// History implements Store: the warm rows, merged with the archived ones where the
// page reaches the conversation's Archived. The record is read from Cassandra, not
// the cache: a cached direct or shop record may predate a move on another node.
func (s *CassandraStore) History(ctx context.Context, conv, before uint64, limit int) ([]Message, bool, error) {
	c, _, err := s.load(ctx, conv)
	if err != nil {
		return nil, false, err
	}
	s.cached(c)
	warm, more, err := s.warmHistory(ctx, c, before, limit)
	if err != nil {
		return warm, more, err
	}
	return s.tiers.withCold(ctx, c, warm, more, before, limit)
}

// warmHistory is History of the warm rows only, walking the history buckets from
// before's (or now's) back to the conversation's creation. A history row whose
// message row is gone (moved meanwhile, or a move cut short) is left out: the
// archived page has the message.
func (s *CassandraStore) warmHistory(ctx context.Context, c Conversation, before uint64, limit int) ([]Message, bool, error) {
	from := nowHistoryBucket()
	if before != 0 {
		from = historyBucket(before)
	}
	var ids []uint64
	for b := from; b >= idBucketAt(c.CreatedAt)-1 && b >= 0 && len(ids) <= limit; b-- {
		page, err := s.rows.history(ctx, c.ID, b, 0, before, limit+1-len(ids), false)
		if err != nil {
			return nil, false, err
		}
		ids = append(ids, page...)
	}
	more := len(ids) > limit
	if more {
		ids = ids[:limit]
	}
	out := make([]Message, 0, len(ids))
	for _, id := range ids {
		sm, _, err := s.message(ctx, id)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, false, err
		}
		out = append(out, sm.Message)
	}
	return out, more, nil
}

// nowHistoryBucket is the history bucket of an id minted now, plus one for clock
// skew between nodes.
func nowHistoryBucket() int64 { return idBucketAt(time.Now()) + 1 }

// Recall implements Store. A message moved to a cold segment is recalled by a recall
// marker, written IF NOT EXISTS (the first recall stands). The conversation's lock
// serialises this process's recalls with its DeleteRun; another node's DeleteRun
// races only through conditional writes on the message row (archive_cassandra.go).
func (s *CassandraStore) Recall(ctx context.Context, id uint64, by string, at time.Time) (Message, error) {
	m, err := s.Message(ctx, id)
	if err != nil || m.Recalled() {
		return m, err
	}
	defer lockConvs(s.locks, []uint64{m.ConversationID})()
	sm, old, err := s.message(ctx, id)
	archived := errors.Is(err, ErrNotFound)
	if archived {
		found, err := s.tiers.messages(ctx, []uint64{id})
		if err != nil {
			return Message{}, err
		}
		var ok bool
		if sm.Message, ok = found[id]; !ok {
			return Message{}, ErrNotFound
		}
	} else if err != nil {
		return Message{}, err
	}
	m = sm.Message
	if m.Recalled() {
		return m, nil
	}
	m.RecalledAt, m.RecalledBy = at.UTC(), by
	c, rev, err := s.load(ctx, m.ConversationID)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return Message{}, err
	}
	if err == nil && c.Kind == KindGroup && c.FanoutMode() == FanoutRead {
		e := recallEntry(&c, &m, by)
		if err := s.claim(ctx, c, rev, nil); err != nil {
			return Message{}, err
		}
		err := s.w.Exec(ctx, streamRow(c.ID, e, c.Rank))
		if err != nil {
			return Message{}, cassErr(err)
		}
	}
	if !archived {
		doc, _ := json.Marshal(storedMessage{Message: m, Rank: sm.Rank})
		applied, err := s.w.CAS(ctx, []cql.Stmt{cql.Q(cqlRecall, doc, int64(id), old)})
		if err != nil {
			return Message{}, cassErr(err)
		}
		if applied {
			return m, nil
		}
		// Recalled meanwhile by another node (the first recall stands), or moved to
		// a segment by another node's DeleteRun (recalled below, by a marker).
		if _, _, err := s.message(ctx, id); !errors.Is(err, ErrNotFound) {
			if err != nil {
				return Message{}, err
			}
			return s.Message(ctx, id)
		}
	}
	applied, err := s.w.CAS(ctx, []cql.Stmt{markRow(cqlNewMark, m)})
	if err != nil {
		return Message{}, cassErr(err)
	}
	if !applied {
		return s.Message(ctx, id)
	}
	return m, nil
}

// UserGroups implements Store.
func (s *CassandraStore) UserGroups(ctx context.Context, user string) ([]uint64, error) {
	it := s.s.Query(cqlUserGroups, user).WithContext(ctx).Iter()
	var out []uint64
	var id int64
	for it.Scan(&id) {
		out = append(out, uint64(id))
	}
	if err := it.Close(); err != nil {
		return nil, cassErr(err)
	}
	return out, nil
}

// LeftGroups implements Store; Cassandra drops the rows after 30 days (TTL).
func (s *CassandraStore) LeftGroups(ctx context.Context, user string) ([]Left, error) {
	it := s.s.Query(cqlLeft, user).WithContext(ctx).Iter()
	var out []Left
	var blob []byte
	for it.Scan(&blob) {
		var l Left
		if err := json.Unmarshal(blob, &l); err != nil {
			it.Close()
			return nil, fmt.Errorf("groupstream: past membership of %s: %w", user, err)
		}
		if time.Since(l.At) <= keepLeftFor {
			out = append(out, l)
		}
	}
	if err := it.Close(); err != nil {
		return nil, cassErr(err)
	}
	return out, nil
}

// Stream implements Store: the archived entries (up to the group's ArchivedSeq),
// then the warm ones.
func (s *CassandraStore) Stream(ctx context.Context, conv, after uint64, limit int) ([]StreamEntry, error) {
	c, err := s.Conversation(ctx, conv)
	if err != nil {
		return nil, err
	}
	cold, err := s.tiers.stream(ctx, c, after, limit)
	if err != nil || len(cold) == limit {
		return cold, err
	}
	if n := len(cold); n > 0 {
		after = cold[n-1].Seq
	}
	if s.tiers.archive != nil {
		after = max(after, c.ArchivedSeq)
	}
	out := cold
	for b := streamBucket(after + 1); c.ReadHead > after && b <= streamBucket(c.ReadHead) && len(out) < limit; b++ {
		es, _, err := s.rows.stream(ctx, conv, b, after, c.ReadHead, limit-len(out))
		if err != nil {
			return nil, err
		}
		out = append(out, es...)
	}
	return out, nil
}

// rankAt returns the group's rank after its last stream entry at or before seq,
// from the manifest when no warm entry is left at or before it.
func (s *CassandraStore) rankAt(ctx context.Context, conv, seq uint64) (uint64, error) {
	for b := streamBucket(seq); b >= 0; b-- {
		rank, ok, err := s.rows.rankAt(ctx, conv, b, seq)
		if err != nil || ok {
			return rank, err
		}
	}
	c, err := s.Conversation(ctx, conv)
	if err != nil {
		return 0, err
	}
	return s.tiers.rankBelow(ctx, c, seq)
}

// Unread implements Store.
func (s *CassandraStore) Unread(ctx context.Context, conv uint64, user string) (int64, error) {
	return unread(ctx, s, conv, user)
}

// SetReadSeq implements Store.
func (s *CassandraStore) SetReadSeq(ctx context.Context, conv uint64, user string, seq uint64) error {
	defer lockConvs(s.locks, []uint64{conv})()
	if _, err := s.Member(ctx, conv, user); err != nil {
		return err
	}
	old, err := s.ReadSeq(ctx, conv, user)
	if err != nil || seq <= old {
		return err
	}
	if err := s.w.Exec(ctx, cql.Q(cqlSetRead, int64(conv), user, int64(seq))); err != nil {
		return cassErr(err)
	}
	s.movedRead(conv, user, seq)
	return nil
}

// ReadSeq implements Store.
func (s *CassandraStore) ReadSeq(ctx context.Context, conv uint64, user string) (uint64, error) {
	var seq int64
	err := s.s.Query(cqlRead, int64(conv), user).WithContext(ctx).Scan(&seq)
	if errors.Is(err, gocql.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, cassErr(err)
	}
	return uint64(seq), nil
}

// readIndex returns conv's read positions, loaded at most ReadIndexTTL ago.
func (s *CassandraStore) readIndex(ctx context.Context, conv uint64) (*readIndex, error) {
	if l := s.loadedIndex(conv); l != nil && time.Since(l.at) < s.cfg.ReadIndexTTL {
		return l.x, nil
	}
	x := &readIndex{byUser: map[string]uint64{}}
	it := s.s.Query(cqlReads, int64(conv)).WithContext(ctx).Iter()
	var user string
	var seq int64
	for it.Scan(&user, &seq) {
		x.set(user, uint64(seq))
	}
	if err := it.Close(); err != nil {
		return nil, cassErr(err)
	}
	s.cache.set(readsCacheKey(conv), &loadedIndex{x: x, at: time.Now()}, readIndexSize(x))
	return x, nil
}

// loadedIndex returns conv's cached read index, or nil.
func (s *CassandraStore) loadedIndex(conv uint64) *loadedIndex {
	if l, ok := s.cache.get(readsCacheKey(conv)); ok {
		return l.(*loadedIndex)
	}
	return nil
}

// movedRead updates a loaded read index after this process moved a position.
func (s *CassandraStore) movedRead(conv uint64, user string, seq uint64) {
	if l := s.loadedIndex(conv); l != nil && l.x.put(user, seq) {
		s.cache.resize(readsCacheKey(conv), l, readPositionSize(user))
	}
}

// forgetReads drops removed members from a loaded read index.
func (s *CassandraStore) forgetReads(conv uint64, users []string) {
	l := s.loadedIndex(conv)
	if l == nil {
		return
	}
	var freed int64
	for _, u := range users {
		if l.x.remove(u) {
			freed += readPositionSize(u)
		}
	}
	if freed > 0 {
		s.cache.resize(readsCacheKey(conv), l, -freed)
	}
}

// ReadCount implements Store.
func (s *CassandraStore) ReadCount(ctx context.Context, conv, seq uint64) (int, error) {
	x, err := s.readIndex(ctx, conv)
	if err != nil {
		return 0, err
	}
	return x.count(seq), nil
}

// Readers implements Store.
func (s *CassandraStore) Readers(ctx context.Context, conv, seq uint64, after string, limit int) ([]string, error) {
	members, err := s.Members(ctx, conv)
	if err != nil {
		return nil, err
	}
	x, err := s.readIndex(ctx, conv)
	if err != nil {
		return nil, err
	}
	return x.readers(members, seq, after, limit), nil
}
