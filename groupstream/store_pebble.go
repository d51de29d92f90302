package groupstream

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"sort"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/fanline/fanline/internal/kv"
	"github.com/fanline/fanline/internal/wire"
)

// PebbleStore is the embedded Store.
//
// Keys: c p <a> <b> -> conversation id (a < b); c c <id> -> conversation; c m <id>
// <user> -> group member; c u <user> <id> -> "" (the user's groups); s m <msg id> ->
// message; s h <conv> <msg id> -> "" (history index).
type PebbleStore struct {
	db *pebble.DB

	// locks serialise read-modify-write of one key (pair allocation, a group's
	// membership, recall), striped by key hash.
	locks [64]sync.Mutex

	// INVARIANT: a cached conversation or member list equals what Pebble holds: groups
	// change only under their lock, and the cache is updated after the commit.
	cacheMu sync.RWMutex // guards convs, pairs and members
	convs   map[uint64]Conversation
	pairs   map[string]uint64   // pair key -> conversation id
	members map[uint64][]Member // group -> members, by user id
}

var _ Store = (*PebbleStore)(nil)

// maxCachedConversations bounds the directory cache; conversations never change, so
// the cache is only ever cleared, never invalidated.
const maxCachedConversations = 1 << 18

// NewPebbleStore returns a Store on db.
func NewPebbleStore(db *pebble.DB) *PebbleStore {
	return &PebbleStore{db: db, convs: map[uint64]Conversation{}, pairs: map[string]uint64{}, members: map[uint64][]Member{}}
}

func (s *PebbleStore) lock(key string) *sync.Mutex {
	h := fnv.New32a()
	h.Write([]byte(key))
	return &s.locks[h.Sum32()%uint32(len(s.locks))]
}

func pairKey(a, b string) kv.Key {
	if b < a {
		a, b = b, a
	}
	return kv.NewKey(kv.PrefixConversation, 'p').Str(a).Str(b)
}

func convKey(id uint64) kv.Key      { return kv.NewKey(kv.PrefixConversation, 'c').U64(id) }
func memberPrefix(id uint64) kv.Key { return kv.NewKey(kv.PrefixConversation, 'm').U64(id) }
func userGroupKey(user string, id uint64) kv.Key {
	return kv.NewKey(kv.PrefixConversation, 'u').Str(user).U64(id)
}
func msgKey(id uint64) kv.Key       { return kv.NewKey(kv.PrefixStream, 'm').U64(id) }
func histPrefix(conv uint64) kv.Key { return kv.NewKey(kv.PrefixStream, 'h').U64(conv) }

// DirectConversation implements Store.
func (s *PebbleStore) DirectConversation(ctx context.Context, a, b string, newID func() uint64) (Conversation, error) {
	pk := pairKey(a, b)
	s.cacheMu.RLock()
	id, ok := s.pairs[string(pk)]
	s.cacheMu.RUnlock()
	if ok {
		return s.Conversation(ctx, id)
	}
	if id, err := kv.GetU64(s.db, pk); err != nil || id != 0 {
		if err != nil {
			return Conversation{}, fmt.Errorf("groupstream: %w", err)
		}
		return s.Conversation(ctx, id)
	}
	mu := s.lock(string(pk))
	mu.Lock()
	defer mu.Unlock()
	if id, err := kv.GetU64(s.db, pk); err != nil || id != 0 {
		if err != nil {
			return Conversation{}, fmt.Errorf("groupstream: %w", err)
		}
		return s.Conversation(ctx, id)
	}
	members := []string{a, b}
	if b < a {
		members = []string{b, a}
	}
	c := Conversation{ID: newID(), Kind: KindDirect, Members: members, CreatedAt: time.Now().UTC()}
	v, _ := json.Marshal(c)
	batch := s.db.NewBatch()
	defer batch.Close()
	_ = batch.Set(convKey(c.ID), v, nil)
	_ = batch.Set(pk, kv.U64Value(c.ID), nil)
	if err := batch.Commit(pebble.Sync); err != nil {
		return Conversation{}, fmt.Errorf("groupstream: allocate conversation: %w", err)
	}
	s.cache(c)
	return c, nil
}

func (s *PebbleStore) cache(c Conversation) {
	s.cacheMu.Lock()
	defer s.cacheMu.Unlock()
	if len(s.convs) >= maxCachedConversations {
		clear(s.convs)
		clear(s.pairs)
		clear(s.members)
	}
	s.convs[c.ID] = c
	if c.Kind == KindDirect && len(c.Members) == 2 {
		s.pairs[string(pairKey(c.Members[0], c.Members[1]))] = c.ID
	}
}

// Conversation implements Store.
func (s *PebbleStore) Conversation(ctx context.Context, id uint64) (Conversation, error) {
	s.cacheMu.RLock()
	c, ok := s.convs[id]
	s.cacheMu.RUnlock()
	if ok {
		return c, nil
	}
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
	s.cache(c)
	return c, nil
}

// CreateGroup implements Store.
func (s *PebbleStore) CreateGroup(ctx context.Context, id uint64, name, owner string, members []string, at time.Time) (Conversation, error) {
	at = at.UTC()
	c := Conversation{ID: id, Kind: KindGroup, CreatedAt: at, Name: name, Owner: owner, Version: 1}
	batch := s.db.NewBatch()
	defer batch.Close()
	seen := map[string]bool{}
	var list []Member
	for _, u := range append([]string{owner}, members...) {
		if seen[u] {
			continue
		}
		seen[u] = true
		m := Member{User: u, Role: RoleMember, JoinedAt: at}
		if u == owner {
			m.Role = RoleOwner
		}
		putMember(batch, id, m)
		list = append(list, m)
	}
	c.MemberCount = len(list)
	v, _ := json.Marshal(c)
	_ = batch.Set(convKey(id), v, nil)
	if err := batch.Commit(pebble.Sync); err != nil {
		return Conversation{}, fmt.Errorf("groupstream: create group: %w", err)
	}
	sortMembers(list)
	s.cacheGroup(c, list)
	return c, nil
}

func putMember(b *pebble.Batch, id uint64, m Member) {
	v, _ := json.Marshal(m)
	_ = b.Set(memberPrefix(id).Str(m.User), v, nil)
	_ = b.Set(userGroupKey(m.User, id), nil, nil)
}

func sortMembers(list []Member) {
	sort.Slice(list, func(i, j int) bool { return list[i].User < list[j].User })
}

func (s *PebbleStore) cacheGroup(c Conversation, members []Member) {
	s.cache(c)
	s.cacheMu.Lock()
	defer s.cacheMu.Unlock()
	s.members[c.ID] = members
}

// ChangeMembers implements Store.
func (s *PebbleStore) ChangeMembers(ctx context.Context, id uint64, ch MemberChange, at time.Time) (Conversation, error) {
	mu := s.lock(string(convKey(id)))
	mu.Lock()
	defer mu.Unlock()
	c, err := s.Conversation(ctx, id)
	if err != nil {
		return c, err
	}
	if c.Kind != KindGroup {
		return c, ErrNotFound
	}
	list, err := s.Members(ctx, id)
	if err != nil {
		return c, err
	}
	byUser := make(map[string]Member, len(list))
	for _, m := range list {
		byUser[m.User] = m
	}
	batch := s.db.NewBatch()
	defer batch.Close()
	changed := false
	for _, u := range ch.Remove {
		if _, ok := byUser[u]; !ok {
			continue
		}
		if u == c.Owner {
			return c, ErrOwner
		}
		delete(byUser, u)
		_ = batch.Delete(memberPrefix(id).Str(u), nil)
		_ = batch.Delete(userGroupKey(u, id), nil)
		changed = true
	}
	for _, u := range ch.Add {
		if _, ok := byUser[u]; ok {
			continue
		}
		m := Member{User: u, Role: RoleMember, JoinedAt: at.UTC()}
		byUser[u] = m
		putMember(batch, id, m)
		changed = true
	}
	for _, step := range []struct {
		users []string
		role  string
	}{{ch.Promote, RoleAdmin}, {ch.Demote, RoleMember}} {
		role := step.role
		for _, u := range step.users {
			m, ok := byUser[u]
			if !ok {
				return c, fmt.Errorf("%w: %s is not a member", ErrNotFound, u)
			}
			if u == c.Owner {
				return c, ErrOwner
			}
			if m.Role != role {
				m.Role = role
				byUser[u] = m
				putMember(batch, id, m)
				changed = true
			}
		}
	}
	if !changed {
		return c, nil
	}
	if ch.Max > 0 && len(byUser) > ch.Max {
		return c, ErrTooManyMembers
	}
	c.MemberCount = len(byUser)
	c.Version++
	v, _ := json.Marshal(c)
	_ = batch.Set(convKey(id), v, nil)
	if err := batch.Commit(pebble.Sync); err != nil {
		return c, fmt.Errorf("groupstream: change members: %w", err)
	}
	// A new slice: the old one may be held by callers of Members.
	next := make([]Member, 0, len(byUser))
	for _, m := range byUser {
		next = append(next, m)
	}
	sortMembers(next)
	s.cacheGroup(c, next)
	return c, nil
}

// Member implements Store.
func (s *PebbleStore) Member(ctx context.Context, conv uint64, user string) (Member, error) {
	c, err := s.Conversation(ctx, conv)
	if err != nil {
		return Member{}, err
	}
	if c.Kind == KindDirect {
		if !c.HasMember(user) {
			return Member{}, ErrNotFound
		}
		return Member{User: user, Role: RoleMember, JoinedAt: c.CreatedAt}, nil
	}
	s.cacheMu.RLock()
	list, ok := s.members[conv]
	s.cacheMu.RUnlock()
	if ok {
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
	m := Member{User: user}
	if err := json.Unmarshal(v, &m); err != nil {
		return Member{}, fmt.Errorf("groupstream: member %s of %d: %w", user, conv, err)
	}
	return m, nil
}

// Members implements Store.
func (s *PebbleStore) Members(ctx context.Context, conv uint64) ([]Member, error) {
	c, err := s.Conversation(ctx, conv)
	if err != nil {
		return nil, err
	}
	if c.Kind == KindDirect {
		out := make([]Member, len(c.Members))
		for i, u := range c.Members {
			out[i] = Member{User: u, Role: RoleMember, JoinedAt: c.CreatedAt}
		}
		return out, nil
	}
	s.cacheMu.RLock()
	list, ok := s.members[conv]
	s.cacheMu.RUnlock()
	if ok {
		return list, nil
	}
	prefix := memberPrefix(conv)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: kv.PrefixEnd(prefix)})
	if err != nil {
		return nil, fmt.Errorf("groupstream: %w", err)
	}
	defer it.Close()
	for it.First(); it.Valid(); it.Next() {
		k := it.Key()[len(prefix):]
		m := Member{User: string(k[1 : 1+k[0]])}
		if err := json.Unmarshal(it.Value(), &m); err != nil {
			return nil, fmt.Errorf("groupstream: member of %d: %w", conv, err)
		}
		list = append(list, m)
	}
	if err := it.Error(); err != nil {
		return nil, err
	}
	s.cacheMu.Lock()
	s.members[conv] = list
	s.cacheMu.Unlock()
	return list, nil
}

// PutMessages implements Store.
func (s *PebbleStore) PutMessages(ctx context.Context, msgs []Message) error {
	batch := s.db.NewBatch()
	defer batch.Close()
	for _, m := range msgs {
		_, exists, err := kv.Get(s.db, msgKey(m.ID))
		if err != nil {
			return fmt.Errorf("groupstream: %w", err)
		}
		if exists {
			continue
		}
		v, err := json.Marshal(m)
		if err != nil {
			return fmt.Errorf("groupstream: encode message %d: %w", m.ID, err)
		}
		_ = batch.Set(msgKey(m.ID), v, nil)
		_ = batch.Set(histPrefix(m.ConversationID).U64(m.ID), nil, nil)
	}
	if batch.Empty() {
		return nil
	}
	if err := batch.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("groupstream: put messages: %w", err)
	}
	return nil
}

// Message implements Store.
func (s *PebbleStore) Message(ctx context.Context, id uint64) (Message, error) {
	return s.message(s.db, id)
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
	for _, id := range ids {
		if _, ok := out[id]; ok {
			continue
		}
		m, err := s.message(snap, id)
		if err == ErrNotFound {
			continue
		}
		if err != nil {
			return nil, err
		}
		out[id] = m.Entry()
	}
	return out, nil
}

// History implements Store.
func (s *PebbleStore) History(ctx context.Context, conv, before uint64, limit int) ([]Message, bool, error) {
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
func (s *PebbleStore) Recall(ctx context.Context, id uint64, at time.Time) (Message, error) {
	mu := s.lock(string(msgKey(id)))
	mu.Lock()
	defer mu.Unlock()
	m, err := s.message(s.db, id)
	if err != nil || m.Recalled() {
		return m, err
	}
	m.RecalledAt = at.UTC()
	v, _ := json.Marshal(m)
	if err := s.db.Set(msgKey(id), v, pebble.Sync); err != nil {
		return Message{}, fmt.Errorf("groupstream: recall %d: %w", id, err)
	}
	return m, nil
}

func kvU64(b []byte) uint64 {
	var v uint64
	for _, c := range b[:8] {
		v = v<<8 | uint64(c)
	}
	return v
}
