package timeline

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"sort"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/fanline/fanline/internal/kv"
)

// PebbleStore is the embedded Store.
//
// Keys, all under the timeline prefix:
//
//	h <user>                               -> head seq
//	e <user> <seq>                         -> entry
//	x <user> <conv> <msg> <kind> <from>    -> seq (presence check and unread scans)
//	s <user> <conv>                        -> conversation state
//	n <user>                               -> total unread
type PebbleStore struct {
	db *pebble.DB
	// stripes serialise writes per user (striped by user hash) and guard that
	// stripe's cache. Lock order: ascending stripe index.
	stripes [256]stripe
}

// stripe is a lock and the write-through cache of the users hashed to it.
//
// INVARIANT: a cached head, total or state equals what Pebble holds. It is filled from
// Pebble or from a committed write, always under the stripe lock, and this store is
// the only writer of its keys.
type stripe struct {
	sync.Mutex
	heads  map[string]uint64
	totals map[string]int64
	states map[stateRef]ConvState
}

type stateRef struct {
	user string
	conv uint64
}

// maxCachedPerStripe bounds each stripe's cache; a full cache is cleared.
const maxCachedPerStripe = 4096

var _ Store = (*PebbleStore)(nil)

// NewPebbleStore returns a Store on db.
func NewPebbleStore(db *pebble.DB) *PebbleStore {
	s := &PebbleStore{db: db}
	for i := range s.stripes {
		s.stripes[i].clear()
	}
	return s
}

func (st *stripe) clear() {
	st.heads = map[string]uint64{}
	st.totals = map[string]int64{}
	st.states = map[stateRef]ConvState{}
}

func headKey(user string) kv.Key  { return kv.NewKey(kv.PrefixTimeline, 'h').Str(user) }
func totalKey(user string) kv.Key { return kv.NewKey(kv.PrefixTimeline, 'n').Str(user) }
func entryPrefix(user string) kv.Key {
	return kv.NewKey(kv.PrefixTimeline, 'e').Str(user)
}
func statePrefix(user string) kv.Key { return kv.NewKey(kv.PrefixTimeline, 's').Str(user) }
func stateKey(user string, conv uint64) kv.Key {
	return statePrefix(user).U64(conv)
}
func indexPrefix(user string, conv uint64) kv.Key {
	return kv.NewKey(kv.PrefixTimeline, 'x').Str(user).U64(conv)
}

var kindBytes = map[string]byte{KindMessage: 'm', KindRecall: 'x', KindRead: 'r', KindGroupEvent: 'g'}

func indexKey(it Item) (kv.Key, error) {
	kb, ok := kindBytes[it.Kind]
	if !ok {
		return nil, fmt.Errorf("timeline: unknown entry kind %q", it.Kind)
	}
	return append(indexPrefix(it.User, it.ConversationID).U64(it.MsgID), kb).Str(it.From), nil
}

func (s *PebbleStore) stripeOf(user string) int {
	h := fnv.New32a()
	h.Write([]byte(user))
	return int(h.Sum32() % uint32(len(s.stripes)))
}

// lockUsers locks the stripes of users in ascending order and returns the unlock.
func (s *PebbleStore) lockUsers(users []string) func() {
	idx := map[int]bool{}
	for _, u := range users {
		idx[s.stripeOf(u)] = true
	}
	order := make([]int, 0, len(idx))
	for i := range idx {
		order = append(order, i)
	}
	sort.Ints(order)
	for _, i := range order {
		s.stripes[i].Lock()
	}
	return func() {
		for _, i := range order {
			s.stripes[i].Unlock()
		}
	}
}

// txn is the state of one write: an indexed batch plus the heads, states and totals it
// has touched, written back at the end.
type txn struct {
	s      *PebbleStore
	b      *pebble.Batch
	heads  map[string]uint64
	states map[string]map[uint64]*ConvState
	totals map[string]int64
}

// newTxn starts a write; the caller holds the stripe locks of every user it touches.
func (s *PebbleStore) newTxn() *txn {
	return &txn{
		s:      s,
		b:      s.db.NewIndexedBatch(),
		heads:  map[string]uint64{},
		states: map[string]map[uint64]*ConvState{},
		totals: map[string]int64{},
	}
}

func (t *txn) stripe(user string) *stripe { return &t.s.stripes[t.s.stripeOf(user)] }

func (t *txn) head(user string) (uint64, error) {
	if h, ok := t.heads[user]; ok {
		return h, nil
	}
	h, ok := t.stripe(user).heads[user]
	var err error
	if !ok {
		h, err = kv.GetU64(t.b, headKey(user))
	}
	t.heads[user] = h
	return h, err
}

func (t *txn) total(user string) (int64, error) {
	if v, ok := t.totals[user]; ok {
		return v, nil
	}
	v, ok := t.stripe(user).totals[user]
	if !ok {
		u, err := kv.GetU64(t.b, totalKey(user))
		if err != nil {
			return 0, err
		}
		v = int64(u)
	}
	t.totals[user] = v
	return v, nil
}

// state returns the user's state in conv; created reports a fresh one.
func (t *txn) state(user string, conv uint64) (*ConvState, bool, error) {
	if m, ok := t.states[user]; ok {
		if st, ok := m[conv]; ok {
			return st, false, nil
		}
	} else {
		t.states[user] = map[uint64]*ConvState{}
	}
	if cached, ok := t.stripe(user).states[stateRef{user, conv}]; ok {
		st := cached
		t.states[user][conv] = &st
		return &st, false, nil
	}
	st := &ConvState{ConversationID: conv}
	v, ok, err := kv.Get(t.b, stateKey(user, conv))
	if err != nil {
		return nil, false, err
	}
	if ok {
		if err := json.Unmarshal(v, st); err != nil {
			return nil, false, fmt.Errorf("timeline: state of %s in %d: %w", user, conv, err)
		}
	}
	t.states[user][conv] = st
	return st, !ok, nil
}

func (t *txn) append(it Item) (Entry, error) {
	h, err := t.head(it.User)
	if err != nil {
		return Entry{}, err
	}
	h++
	t.heads[it.User] = h
	e := Entry{User: it.User, Seq: h, Kind: it.Kind, ConversationID: it.ConversationID, MsgID: it.MsgID, From: it.From, At: it.At.UTC()}
	v, _ := json.Marshal(e)
	_ = t.b.Set(entryPrefix(it.User).U64(h), v, nil)
	ik, err := indexKey(it)
	if err != nil {
		return Entry{}, err
	}
	_ = t.b.Set(ik, kv.U64Value(h), nil)
	return e, nil
}

// present reports whether it is already in its user's timeline.
//
// A message newer than the conversation's last message cannot be: appending it would
// have raised LastMsgID to at least its id in the same write. Only older ones (late
// arrivals and redeliveries) and other kinds need the index probe.
func (t *txn) present(it Item) (bool, error) {
	if it.Kind == KindMessage {
		st, _, err := t.state(it.User, it.ConversationID)
		if err != nil {
			return false, err
		}
		if it.MsgID > st.LastMsgID {
			return false, nil
		}
	}
	ik, err := indexKey(it)
	if err != nil {
		return false, err
	}
	_, exists, err := kv.Get(t.b, ik)
	return exists, err
}

// unreadAfter counts messages from others in user's conv with id > msgID.
func (t *txn) unreadAfter(user string, conv, msgID uint64) (int64, error) {
	prefix := indexPrefix(user, conv)
	it, err := t.b.NewIter(&pebble.IterOptions{
		LowerBound: append(kv.Key(nil), prefix...).U64(msgID + 1),
		UpperBound: kv.PrefixEnd(prefix),
	})
	if err != nil {
		return 0, err
	}
	var n int64
	for it.First(); it.Valid(); it.Next() {
		rest := it.Key()[len(prefix)+8:]
		if rest[0] == 'm' && string(rest[2:2+rest[1]]) != user {
			n++
		}
	}
	return n, it.Close()
}

// moveRead advances st's read position to msgID and recomputes unread and total.
func (t *txn) moveRead(user string, st *ConvState, msgID uint64) error {
	unread, err := t.unreadAfter(user, st.ConversationID, msgID)
	if err != nil {
		return err
	}
	return t.setRead(user, st, msgID, unread)
}

// setRead sets st's read position and unread count, adjusting the user's total.
func (t *txn) setRead(user string, st *ConvState, msgID uint64, unread int64) error {
	total, err := t.total(user)
	if err != nil {
		return err
	}
	t.totals[user] = total + unread - st.Unread
	st.Unread, st.ReadMsgID = unread, msgID
	return nil
}

func (t *txn) commit() error {
	for user, h := range t.heads {
		_ = t.b.Set(headKey(user), kv.U64Value(h), nil)
	}
	for user, m := range t.states {
		for conv, st := range m {
			v, _ := json.Marshal(st)
			_ = t.b.Set(stateKey(user, conv), v, nil)
		}
	}
	for user, v := range t.totals {
		_ = t.b.Set(totalKey(user), kv.U64Value(uint64(v)), nil)
	}
	if err := t.b.Commit(pebble.Sync); err != nil {
		return err
	}
	// Committed: what this write read and wrote is now what Pebble holds.
	for user, h := range t.heads {
		st := t.stripe(user)
		if len(st.heads) >= maxCachedPerStripe || len(st.states) >= maxCachedPerStripe {
			st.clear()
		}
		st.heads[user] = h
	}
	for user, v := range t.totals {
		t.stripe(user).totals[user] = v
	}
	for user, m := range t.states {
		st := t.stripe(user)
		for conv, cs := range m {
			st.states[stateRef{user, conv}] = *cs
		}
	}
	return nil
}

// Append implements Store.
func (s *PebbleStore) Append(ctx context.Context, items []Item) ([]Entry, error) {
	users := make([]string, len(items))
	for i, it := range items {
		users[i] = it.User
	}
	defer s.lockUsers(users)()
	t := s.newTxn()
	defer t.b.Close()
	out := make([]Entry, 0, len(items))
	for _, it := range items {
		dup, err := t.present(it)
		if err != nil {
			return nil, fmt.Errorf("timeline: %w", err)
		}
		if dup {
			continue
		}
		e, err := t.append(it)
		if err != nil {
			return nil, fmt.Errorf("timeline: %w", err)
		}
		out = append(out, e)
		if it.Kind != KindMessage && it.Kind != KindGroupEvent {
			continue
		}
		st, _, err := t.state(it.User, it.ConversationID)
		if err != nil {
			return nil, err
		}
		if st.Kind == "" {
			st.Kind, st.Peer = it.ConvKind, it.Peer
		}
		if it.GroupSeq > st.GroupSeq {
			st.GroupSeq, st.GroupSeqAt = it.GroupSeq, e.Seq
		}
		if it.Kind == KindGroupEvent {
			continue // the conversation now exists for the user; nothing to read
		}
		newest := it.MsgID > st.LastMsgID
		if newest {
			st.LastMsgID, st.LastAt = it.MsgID, it.At.UTC()
		}
		switch {
		case it.MsgID <= st.ReadMsgID:
		case it.From == it.User && newest:
			// Sending reads everything before the message; nothing is after it.
			err = t.setRead(it.User, st, it.MsgID, 0)
		case it.From == it.User:
			err = t.moveRead(it.User, st, it.MsgID)
		default:
			st.Unread++
			var total int64
			if total, err = t.total(it.User); err == nil {
				t.totals[it.User] = total + 1
			}
		}
		if err != nil {
			return nil, fmt.Errorf("timeline: %w", err)
		}
	}
	if len(out) == 0 {
		return nil, nil
	}
	if err := t.commit(); err != nil {
		return nil, fmt.Errorf("timeline: append: %w", err)
	}
	return out, nil
}

// MarkRead implements Store.
func (s *PebbleStore) MarkRead(ctx context.Context, user string, conv, msgID uint64, convKind string, at time.Time) (*Entry, ConvState, error) {
	defer s.lockUsers([]string{user})()
	t := s.newTxn()
	defer t.b.Close()
	st, created, err := t.state(user, conv)
	if err != nil {
		return nil, ConvState{}, fmt.Errorf("timeline: %w", err)
	}
	if created && convKind == "" {
		return nil, ConvState{}, ErrNotFound
	}
	if created {
		st.Kind = convKind
	}
	if msgID <= st.ReadMsgID {
		return nil, *st, nil
	}
	if err := t.moveRead(user, st, msgID); err != nil {
		return nil, ConvState{}, fmt.Errorf("timeline: %w", err)
	}
	e, err := t.append(Item{User: user, Kind: KindRead, ConversationID: conv, MsgID: msgID, From: user, At: at})
	if err != nil {
		return nil, ConvState{}, fmt.Errorf("timeline: %w", err)
	}
	if err := t.commit(); err != nil {
		return nil, ConvState{}, fmt.Errorf("timeline: mark read: %w", err)
	}
	return &e, *st, nil
}

// Read implements Store.
func (s *PebbleStore) Read(ctx context.Context, user string, after uint64, limit int) ([]Entry, error) {
	prefix := entryPrefix(user)
	it, err := s.db.NewIter(&pebble.IterOptions{
		LowerBound: append(kv.Key(nil), prefix...).U64(after + 1),
		UpperBound: kv.PrefixEnd(prefix),
	})
	if err != nil {
		return nil, fmt.Errorf("timeline: %w", err)
	}
	defer it.Close()
	var out []Entry
	for it.First(); it.Valid() && len(out) < limit; it.Next() {
		var e Entry
		if err := json.Unmarshal(it.Value(), &e); err != nil {
			return nil, fmt.Errorf("timeline: entry of %s: %w", user, err)
		}
		e.User, e.Seq = user, binary.BigEndian.Uint64(it.Key()[len(prefix):])
		out = append(out, e)
	}
	return out, it.Error()
}

// Head implements Store.
func (s *PebbleStore) Head(ctx context.Context, user string) (uint64, error) {
	return kv.GetU64(s.db, headKey(user))
}

// Conversations implements Store.
func (s *PebbleStore) Conversations(ctx context.Context, user string) ([]ConvState, int64, error) {
	snap := s.db.NewSnapshot()
	defer snap.Close()
	prefix := statePrefix(user)
	it, err := snap.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: kv.PrefixEnd(prefix)})
	if err != nil {
		return nil, 0, fmt.Errorf("timeline: %w", err)
	}
	defer it.Close()
	var out []ConvState
	for it.First(); it.Valid(); it.Next() {
		var st ConvState
		if err := json.Unmarshal(it.Value(), &st); err != nil {
			return nil, 0, fmt.Errorf("timeline: state of %s: %w", user, err)
		}
		st.ConversationID = binary.BigEndian.Uint64(it.Key()[len(prefix):])
		out = append(out, st)
	}
	total, err := kv.GetU64(snap, totalKey(user))
	return out, int64(total), err
}

// ConvState implements Store.
func (s *PebbleStore) ConvState(ctx context.Context, user string, conv uint64) (ConvState, error) {
	v, ok, err := kv.Get(s.db, stateKey(user, conv))
	if err != nil {
		return ConvState{}, fmt.Errorf("timeline: %w", err)
	}
	if !ok {
		return ConvState{}, ErrNotFound
	}
	st := ConvState{ConversationID: conv}
	if err := json.Unmarshal(v, &st); err != nil {
		return ConvState{}, fmt.Errorf("timeline: state of %s in %d: %w", user, conv, err)
	}
	return st, nil
}
