package groupstream

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/fanline/fanline/internal/kv"
	"github.com/fanline/fanline/internal/wire"
)

// PebbleStore is the embedded Store.
//
// Keys: c p <a> <b> -> conversation id (a < b); c c <id> -> conversation; s m <msg id> ->
// message; s h <conv> <msg id> -> "" (history index).
type PebbleStore struct {
	db *pebble.DB

	// locks serialise read-modify-write of one key (pair allocation, recall), striped
	// by key hash.
	locks [64]sync.Mutex

	cacheMu sync.RWMutex // guards convs and pairs
	convs   map[uint64]Conversation
	pairs   map[string]uint64 // pair key -> conversation id
}

var _ Store = (*PebbleStore)(nil)

// maxCachedConversations bounds the directory cache; conversations never change, so
// the cache is only ever cleared, never invalidated.
const maxCachedConversations = 1 << 18

// NewPebbleStore returns a Store on db.
func NewPebbleStore(db *pebble.DB) *PebbleStore {
	return &PebbleStore{db: db, convs: map[uint64]Conversation{}, pairs: map[string]uint64{}}
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
