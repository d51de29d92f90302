package groupstream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/fanline/fanline/internal/keylock"
	"github.com/fanline/fanline/internal/kv"
	"github.com/fanline/fanline/internal/wire"
)

// PebbleStore is the embedded Store.
//
// Keys: c p <a> <b> -> conversation id (a < b); c b <shop> <buyer> -> conversation id; c c <id> -> conversation; c m <id>
// <user> -> group member; c u <user> <id> -> "" (the user's groups); s m <msg id> ->
// message; s h <conv> <msg id> -> "" (history index); s q <conv> <seq> -> read-fanout
// stream entry; s r <conv> <user> -> read position.
type PebbleStore struct {
	db  *pebble.DB
	cfg Config

	// locks serialise read-modify-write of one key (pair allocation, a group's
	// record, membership, stream and read positions, a message's recall).
	locks *keylock.Set

	// cache holds conversations, pair mappings, group member lists and groups' read
	// indexes, bounded in bytes (Config.CacheBytes).
	//
	// INVARIANT: a cached value equals what Pebble holds. Groups, their members and
	// their read positions change only under the group's lock, and the cache is set
	// after the commit; a value read from Pebble without the lock is put with
	// byteCache.fill, which refuses it if a write raced the read. Evicting is always
	// safe: a miss reads Pebble.
	cache *byteCache

	// tiers reads archived history (SetArchive).
	tiers tiers
}

var _ Store = (*PebbleStore)(nil)

// NewPebbleStore returns a Store on db.
func NewPebbleStore(db *pebble.DB, cfg Config) *PebbleStore {
	cfg.fill()
	s := &PebbleStore{db: db, cfg: cfg, locks: keylock.New(convStripes), cache: newByteCache(cfg.CacheBytes)}
	s.tiers = tiers{idx: s}
	return s
}

// CachedBytes returns the bytes of conversations, member lists and read positions
// held in memory, as accounted against Config.CacheBytes.
func (s *PebbleStore) CachedBytes() int64 { return s.cache.bytes() }

func pairKey(a, b string) kv.Key {
	if b < a {
		a, b = b, a
	}
	return kv.NewKey(kv.PrefixConversation, 'p').Str(a).Str(b)
}

// shopPairKey maps a buyer and a shop to their conversation: c b <shop> <buyer>.
func shopPairKey(buyer, shop string) kv.Key {
	return kv.NewKey(kv.PrefixConversation, 'b').Str(shop).Str(buyer)
}

func convKey(id uint64) kv.Key      { return kv.NewKey(kv.PrefixConversation, 'c').U64(id) }
func memberPrefix(id uint64) kv.Key { return kv.NewKey(kv.PrefixConversation, 'm').U64(id) }

// leftKey records a user's past membership of a group: c x <user> <group> -> Left.
func leftKey(user string, id uint64) kv.Key {
	return kv.NewKey(kv.PrefixConversation, 'x').Str(user).U64(id)
}

func userGroupKey(user string, id uint64) kv.Key {
	return kv.NewKey(kv.PrefixConversation, 'u').Str(user).U64(id)
}

// announcementKey holds a pending membership announcement: c a <group> <version>.
func announcementKey(group, version uint64) kv.Key {
	return kv.NewKey(kv.PrefixConversation, 'a').U64(group).U64(version)
}
func msgKey(id uint64) kv.Key       { return kv.NewKey(kv.PrefixStream, 'm').U64(id) }
func histPrefix(conv uint64) kv.Key { return kv.NewKey(kv.PrefixStream, 'h').U64(conv) }

// DirectConversation implements Store.
func (s *PebbleStore) DirectConversation(ctx context.Context, a, b string, newID func() uint64) (Conversation, error) {
	members := []string{a, b}
	if b < a {
		members = []string{b, a}
	}
	return s.pairConversation(ctx, pairKey(a, b), func() Conversation {
		return Conversation{ID: newID(), Kind: KindDirect, Members: members, CreatedAt: time.Now().UTC()}
	})
}

// ShopConversation implements Store.
func (s *PebbleStore) ShopConversation(ctx context.Context, buyer, shop string, newID func() uint64) (Conversation, error) {
	return s.pairConversation(ctx, shopPairKey(buyer, shop), func() Conversation {
		return Conversation{ID: newID(), Kind: KindShop, Members: []string{buyer}, Shop: shop, CreatedAt: time.Now().UTC()}
	})
}

// pairConversation returns the conversation mapped at pk, allocating it with build
// the first time.
func (s *PebbleStore) pairConversation(ctx context.Context, pk kv.Key, build func() Conversation) (Conversation, error) {
	if id, ok := s.cache.get(pairCacheKey(string(pk))); ok {
		return s.Conversation(ctx, id.(uint64))
	}
	if id, err := kv.GetU64(s.db, pk); err != nil || id != 0 {
		if err != nil {
			return Conversation{}, fmt.Errorf("groupstream: %w", err)
		}
		return s.Conversation(ctx, id)
	}
	defer s.locks.Lock(string(pk))()
	if id, err := kv.GetU64(s.db, pk); err != nil || id != 0 {
		if err != nil {
			return Conversation{}, fmt.Errorf("groupstream: %w", err)
		}
		return s.Conversation(ctx, id)
	}
	c := build()
	v, _ := json.Marshal(c)
	batch := s.db.NewBatch()
	defer batch.Close()
	_ = batch.Set(convKey(c.ID), v, nil)
	_ = batch.Set(pk, kv.U64Value(c.ID), nil)
	if err := batch.Commit(pebble.Sync); err != nil {
		return Conversation{}, fmt.Errorf("groupstream: allocate conversation: %w", err)
	}
	s.cached(c)
	return c, nil
}

// cached puts c, as committed, in the cache with its pair mapping (which never
// changes).
func (s *PebbleStore) cached(c Conversation) {
	s.cache.set(convCacheKey(c.ID), c, convSize(c))
	s.cachePair(c)
}

func (s *PebbleStore) cachePair(c Conversation) {
	var pk kv.Key
	switch {
	case c.Kind == KindDirect && len(c.Members) == 2:
		pk = pairKey(c.Members[0], c.Members[1])
	case c.Kind == KindShop && len(c.Members) == 1:
		pk = shopPairKey(c.Members[0], c.Shop)
	default:
		return
	}
	s.cache.set(pairCacheKey(string(pk)), c.ID, pairSize(string(pk)))
}

// Conversation implements Store.
func (s *PebbleStore) Conversation(ctx context.Context, id uint64) (Conversation, error) {
	k := convCacheKey(id)
	if c, ok := s.cache.get(k); ok {
		return c.(Conversation), nil
	}
	g := s.cache.gen(k)
	var c Conversation
	v, ok, err := kv.Get(s.db, convKey(id))
	if err != nil {
		return Conversation{}, fmt.Errorf("groupstream: %w", err)
	}
	if !ok {
		return Conversation{}, ErrNotFound
	}
	if err := json.Unmarshal(v, &c); err != nil {
		return Conversation{}, fmt.Errorf("groupstream: conversation %d: %w", id, err)
	}
	s.cache.fill(k, c, convSize(c), g)
	s.cachePair(c)
	return c, nil
}

// CreateGroup implements Store.
func (s *PebbleStore) CreateGroup(ctx context.Context, id uint64, name, owner string, members []string, at time.Time) (Conversation, error) {
	c, list := s.cfg.newGroup(id, name, owner, members, at)
	batch := s.db.NewBatch()
	defer batch.Close()
	for _, m := range list {
		putMember(batch, id, m)
	}
	v, _ := json.Marshal(c)
	_ = batch.Set(convKey(id), v, nil)
	putAnnouncement(batch, creation(c, list))
	if err := batch.Commit(pebble.Sync); err != nil {
		return Conversation{}, fmt.Errorf("groupstream: create group: %w", err)
	}
	s.cacheGroup(c, list)
	return c, nil
}

func putMember(b *pebble.Batch, id uint64, m Member) {
	v, _ := json.Marshal(m)
	_ = b.Set(memberPrefix(id).Str(m.User), v, nil)
	_ = b.Set(userGroupKey(m.User, id), nil, nil)
}

// cachedMembers is a group's member list in the cache, with the group version it
// is at least as new as.
//
// INVARIANT: Member and Members answer from a list at the version of the
// conversation they read first or a newer one, never an older list (one left in
// the cache between a change's commit and its cache update, while the conversation
// was read from disk): dispatch.CheckMembers relies on it.
type cachedMembers struct {
	version uint64
	list    []Member
}

// cachedList returns c's cached member list if it is at c's version or newer.
func (s *PebbleStore) cachedList(c Conversation) ([]Member, bool) {
	v, ok := s.cache.get(membersCacheKey(c.ID))
	if !ok || v.(cachedMembers).version < c.Version {
		return nil, false
	}
	return v.(cachedMembers).list, true
}

// cacheGroup puts group c and its members, as committed, in the cache.
func (s *PebbleStore) cacheGroup(c Conversation, members []Member) {
	s.cached(c)
	s.cache.set(membersCacheKey(c.ID), cachedMembers{version: c.Version, list: members}, membersSize(members))
}

// ChangeMembers implements Store.
func (s *PebbleStore) ChangeMembers(ctx context.Context, id uint64, ch MemberChange, at time.Time) (Conversation, error) {
	defer s.locks.Lock(convLockKey(id))()
	c, err := s.Conversation(ctx, id)
	if err != nil {
		return c, err
	}
	next, plan, changed, err := s.cfg.groupChange(ctx, s.Members, c, ch, at)
	if err != nil || !changed {
		return c, err
	}
	batch := s.db.NewBatch()
	defer batch.Close()
	for i, u := range plan.removed {
		_ = batch.Delete(memberPrefix(id).Str(u), nil)
		_ = batch.Delete(userGroupKey(u, id), nil)
		_ = batch.Delete(readKey(id, u), nil)
		if l := plan.left[i]; l.Conv != 0 {
			v, _ := json.Marshal(l)
			_ = batch.Set(leftKey(u, id), v, nil)
		}
	}
	for _, m := range plan.put {
		putMember(batch, id, m)
		_ = batch.Delete(leftKey(m.User, id), nil)
	}
	v, _ := json.Marshal(next)
	_ = batch.Set(convKey(id), v, nil)
	if a := plan.announcement(next, ch, at); a != nil {
		putAnnouncement(batch, *a)
	}
	if err := batch.Commit(pebble.Sync); err != nil {
		return c, fmt.Errorf("groupstream: change members: %w", err)
	}
	s.forgetReads(id, plan.removed)
	s.cacheGroup(next, plan.members)
	return next, nil
}

// Member implements Store.
func (s *PebbleStore) Member(ctx context.Context, conv uint64, user string) (Member, error) {
	c, err := s.Conversation(ctx, conv)
	if err != nil {
		return Member{}, err
	}
	if c.Kind != KindGroup {
		return pairMember(c, user)
	}
	if list, ok := s.cachedList(c); ok {
		i := sort.Search(len(list), func(i int) bool { return list[i].User >= user })
		if i < len(list) && list[i].User == user {
			return list[i], nil
		}
		return Member{}, ErrNotFound
	}
	v, ok, err := kv.Get(s.db, memberPrefix(conv).Str(user))
	if err != nil || !ok {
		if err == nil {
			err = ErrNotFound
		}
		return Member{}, err
	}
	return decodeMember(conv, user, v)
}

// Members implements Store.
func (s *PebbleStore) Members(ctx context.Context, conv uint64) ([]Member, error) {
	c, err := s.Conversation(ctx, conv)
	if err != nil {
		return nil, err
	}
	if c.Kind != KindGroup {
		return pairMembers(c), nil
	}
	if list, ok := s.cachedList(c); ok {
		return list, nil
	}
	k := membersCacheKey(conv)
	g := s.cache.gen(k)
	var list []Member
	err = s.scan(memberPrefix(conv), func(k, v []byte) error {
		m, err := decodeMember(conv, string(k[1:1+k[0]]), v)
		list = append(list, m)
		return err
	})
	if err != nil {
		return nil, err
	}
	// The keys order users by length first (kv.Key.Str): Members answers, and the
	// cache keeps, the list ordered by user id.
	slices.SortFunc(list, func(a, b Member) int { return strings.Compare(a.User, b.User) })
	// Read after c: at c's version or newer.
	s.cache.fill(k, cachedMembers{version: c.Version, list: list}, membersSize(list), g)
	return list, nil
}

// PutMessages implements Store.
func (s *PebbleStore) PutMessages(ctx context.Context, msgs []Message) ([]Message, error) {
	return putOnce(msgs, func(msgs []Message) ([]Message, error) { return s.putMessages(ctx, msgs) })
}

// putMessages stores msgs, each message once.
func (s *PebbleStore) putMessages(ctx context.Context, msgs []Message) ([]Message, error) {
	convs := make([]uint64, 0, 1)
	for _, m := range msgs {
		if m.IsMessage() {
			convs = append(convs, m.ConversationID)
		}
	}
	defer lockConvs(s.locks, convs)()
	batch := s.db.NewBatch()
	defer batch.Close()
	out := make([]Message, len(msgs))
	groups := map[uint64]*Conversation{}
	type readMove struct {
		conv uint64
		user string
		seq  uint64
	}
	var moves []readMove
	for i, m := range msgs {
		stored, err := s.message(s.db, m.ID)
		if err == nil {
			if err := sameSend(stored, m); err != nil {
				return nil, err
			}
			out[i] = stored
			continue
		}
		if err != ErrNotFound {
			return nil, err
		}
		if stored, ok, err := s.archived(ctx, m); err != nil || ok {
			if err == nil {
				err = sameSend(stored, m)
			}
			if err != nil {
				return nil, err
			}
			out[i] = stored
			continue
		}
		if m.IsMessage() {
			g, err := s.group(ctx, groups, m.ConversationID)
			if err != nil {
				return nil, err
			}
			if g != nil {
				s.sequence(batch, g, &m)
				// Sending reads up to the message, for a sender still in the group
				// (one removed since the ack has no read position to move).
				if _, err := s.Member(ctx, g.ID, m.From); err == nil {
					moves = append(moves, readMove{g.ID, m.From, m.Seq})
				} else if !errors.Is(err, ErrNotFound) {
					return nil, err
				}
			}
		}
		v, err := json.Marshal(m)
		if err != nil {
			return nil, fmt.Errorf("groupstream: encode message %d: %w", m.ID, err)
		}
		_ = batch.Set(msgKey(m.ID), v, nil)
		_ = batch.Set(histPrefix(m.ConversationID).U64(m.ID), nil, nil)
		out[i] = m
	}
	if batch.Empty() {
		return out, nil
	}
	for _, g := range groups {
		v, _ := json.Marshal(g)
		_ = batch.Set(convKey(g.ID), v, nil)
	}
	for _, mv := range moves {
		_ = batch.Set(readKey(mv.conv, mv.user), kv.U64Value(mv.seq), nil)
	}
	if err := batch.Commit(pebble.Sync); err != nil {
		return nil, fmt.Errorf("groupstream: put messages: %w", err)
	}
	for _, g := range groups {
		s.cached(*g)
	}
	for _, mv := range moves {
		s.movedRead(mv.conv, mv.user, mv.seq)
	}
	return out, nil
}

// group returns the group conv as modified so far in one write (nil if conv is not a
// group); the caller holds its lock.
func (s *PebbleStore) group(ctx context.Context, groups map[uint64]*Conversation, conv uint64) (*Conversation, error) {
	if g, ok := groups[conv]; ok {
		return g, nil
	}
	c, err := s.Conversation(ctx, conv)
	if err == ErrNotFound || (err == nil && c.Kind != KindGroup) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	groups[conv] = &c
	return &c, nil
}

// sequence gives m the group's next stream seq and fanout mode (Config.sequence) and
// indexes a read-fanout message in the stream. The caller holds the group's lock.
func (s *PebbleStore) sequence(b *pebble.Batch, g *Conversation, m *Message) {
	if e, rank, read := s.cfg.sequence(g, m); read {
		putStreamEntry(b, g.ID, e, rank)
	}
}

// archived returns m as stored in a cold segment, if it was stored and moved
// there: a redelivered send must not store it warm again.
func (s *PebbleStore) archived(ctx context.Context, m Message) (Message, bool, error) {
	c, err := s.Conversation(ctx, m.ConversationID)
	if err != nil || c.Archived < m.ID {
		return Message{}, false, nil
	}
	found, err := s.tiers.messages(ctx, []uint64{m.ID})
	stored, ok := found[m.ID]
	return stored, ok, err
}

// Message implements Store.
func (s *PebbleStore) Message(ctx context.Context, id uint64) (Message, error) {
	m, err := s.message(s.db, id)
	if err != ErrNotFound {
		return m, err
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

func (s *PebbleStore) message(r pebble.Reader, id uint64) (Message, error) {
	v, ok, err := kv.Get(r, msgKey(id))
	if err != nil {
		return Message{}, fmt.Errorf("groupstream: %w", err)
	}
	if !ok {
		return Message{}, ErrNotFound
	}
	var m Message
	if err := json.Unmarshal(v, &m); err != nil {
		return Message{}, fmt.Errorf("groupstream: message %d: %w", id, err)
	}
	return m, nil
}

// LookupMessages implements Store.
func (s *PebbleStore) LookupMessages(ctx context.Context, ids []uint64) (map[uint64]wire.Entry, error) {
	out := make(map[uint64]wire.Entry, len(ids))
	snap := s.db.NewSnapshot()
	defer snap.Close()
	var missing []uint64
	for _, id := range ids {
		if _, ok := out[id]; ok {
			continue
		}
		m, err := s.message(snap, id)
		if err == ErrNotFound {
			missing = append(missing, id)
			continue
		}
		if err != nil {
			return nil, err
		}
		out[id] = m.Entry()
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

// History implements Store.
func (s *PebbleStore) History(ctx context.Context, conv, before uint64, limit int) ([]Message, bool, error) {
	warm, more, err := s.warmHistory(conv, before, limit)
	if err != nil {
		return nil, false, err
	}
	c, err := s.Conversation(ctx, conv)
	if err == ErrNotFound {
		return warm, more, nil
	}
	if err != nil {
		return warm, more, err
	}
	return s.tiers.withCold(ctx, c, warm, more, before, limit)
}

// warmHistory is History of the warm rows only.
func (s *PebbleStore) warmHistory(conv, before uint64, limit int) ([]Message, bool, error) {
	prefix := histPrefix(conv)
	upper := kv.PrefixEnd(prefix)
	if before != 0 {
		upper = append(kv.Key(nil), prefix...).U64(before)
	}
	snap := s.db.NewSnapshot()
	defer snap.Close()
	it, err := snap.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: upper})
	if err != nil {
		return nil, false, fmt.Errorf("groupstream: %w", err)
	}
	defer it.Close()
	var out []Message
	for it.Last(); it.Valid(); it.Prev() {
		if len(out) == limit {
			return out, true, nil
		}
		id := kvU64(it.Key()[len(prefix):])
		m, err := s.message(snap, id)
		if err != nil {
			return nil, false, err
		}
		out = append(out, m)
	}
	return out, false, it.Error()
}

// Recall implements Store.
func (s *PebbleStore) Recall(ctx context.Context, id uint64, by string, at time.Time) (Message, error) {
	m, err := s.Message(ctx, id)
	if err != nil || m.Recalled() {
		return m, err
	}
	// The group's lock covers its stream; recalls of one message also serialise on it.
	defer lockConvs(s.locks, []uint64{m.ConversationID})()
	key := msgKey(id)
	if m, err = s.message(s.db, id); err == ErrNotFound {
		// Archived: the recall is a warm marker that wins over the segment's copy.
		var found map[uint64]Message
		if found, err = s.tiers.messages(ctx, []uint64{id}); err != nil {
			return Message{}, err
		}
		var ok bool
		if m, ok = found[id]; !ok {
			return Message{}, ErrNotFound
		}
		key = markKey(id)
	} else if err != nil {
		return Message{}, err
	}
	if m.Recalled() {
		return m, nil
	}
	m.RecalledAt, m.RecalledBy = at.UTC(), by
	batch := s.db.NewBatch()
	defer batch.Close()
	groups := map[uint64]*Conversation{}
	g, err := s.group(ctx, groups, m.ConversationID)
	if err != nil {
		return Message{}, err
	}
	if g != nil && g.FanoutMode() == FanoutRead {
		putStreamEntry(batch, g.ID, recallEntry(g, &m, by), g.Rank)
		v, _ := json.Marshal(g)
		_ = batch.Set(convKey(g.ID), v, nil)
	}
	v, _ := json.Marshal(m)
	if string(key) == string(markKey(id)) {
		v, _ = json.Marshal(recallMark{At: m.RecalledAt, By: m.RecalledBy, RecallSeq: m.RecallSeq})
	}
	_ = batch.Set(key, v, nil)
	if err := batch.Commit(pebble.Sync); err != nil {
		return Message{}, fmt.Errorf("groupstream: recall %d: %w", id, err)
	}
	if m.RecallSeq != 0 {
		s.cached(*g)
	}
	return m, nil
}

// scan calls f with the rest of each key under prefix and its value, in key order.
func (s *PebbleStore) scan(prefix kv.Key, f func(rest, value []byte) error) error {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: kv.PrefixEnd(prefix)})
	if err != nil {
		return fmt.Errorf("groupstream: %w", err)
	}
	defer it.Close()
	for it.First(); it.Valid(); it.Next() {
		if err := f(it.Key()[len(prefix):], it.Value()); err != nil {
			return err
		}
	}
	return it.Error()
}

func kvU64(b []byte) uint64 {
	var v uint64
	for _, c := range b[:8] {
		v = v<<8 | uint64(c)
	}
	return v
}
