package timeline

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/fanline/fanline/internal/keylock"
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
//
// INVARIANT: a user's entries are the seqs k..head for some k (Trim drops a prefix
// and keeps the newest entry), so a Read that finds nothing is at the head, and one
// whose first entry is past after+1 read into the dropped part.
type PebbleStore struct {
	db  *pebble.DB
	cfg PebbleStoreConfig
	// locks serialise the writes of each user in this process; caches[i] is the
	// write-through cache of the users in stripe i, guarded by that stripe.
	locks  *keylock.Set
	caches [userStripes]cache
}

// cache holds committed heads, totals and states of some users.
//
// INVARIANT: a cached head, total or state equals what Pebble holds. It is filled from
// Pebble or from a committed write, always under the stripe lock, and this store is
// the only writer of its keys.
type cache struct {
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

var (
	_ Store  = (*PebbleStore)(nil)
	_ engine = (*PebbleStore)(nil)
)

// PebbleStoreConfig configures a PebbleStore.
type PebbleStoreConfig struct {
	// Counters keeps a copy of the unread counts for Unread. Nil: Unread reads the
	// conversation states.
	Counters UnreadCounters
}

// NewPebbleStore returns a Store on db.
func NewPebbleStore(db *pebble.DB, cfg PebbleStoreConfig) *PebbleStore {
	s := &PebbleStore{db: db, cfg: cfg, locks: keylock.New(userStripes)}
	for i := range s.caches {
		s.caches[i].clear()
	}
	return s
}

func (c *cache) clear() {
	c.heads = map[string]uint64{}
	c.totals = map[string]int64{}
	c.states = map[stateRef]ConvState{}
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

// cacheOf returns user's stripe cache; the caller holds the stripe lock.
func (s *PebbleStore) cacheOf(user string) *cache { return &s.caches[s.locks.Stripe(user)] }

func (s *PebbleStore) loadHead(_ context.Context, user string) (uint64, error) {
	if h, ok := s.cacheOf(user).heads[user]; ok {
		return h, nil
	}
	return kv.GetU64(s.db, headKey(user))
}

func (s *PebbleStore) loadTotal(_ context.Context, user string) (int64, error) {
	if v, ok := s.cacheOf(user).totals[user]; ok {
		return v, nil
	}
	u, err := kv.GetU64(s.db, totalKey(user))
	return int64(u), err
}

func (s *PebbleStore) loadState(_ context.Context, user string, conv uint64) (ConvState, bool, error) {
	if st, ok := s.cacheOf(user).states[stateRef{user, conv}]; ok {
		return st, true, nil
	}
	var st ConvState
	v, ok, err := kv.Get(s.db, stateKey(user, conv))
	if err != nil || !ok {
		return st, false, err
	}
	if err := json.Unmarshal(v, &st); err != nil {
		return st, false, fmt.Errorf("timeline: state of %s in %d: %w", user, conv, err)
	}
	return st, true, nil
}

func (s *PebbleStore) indexed(_ context.Context, it Item, _ uint64) (bool, error) {
	ik, err := indexKey(it)
	if err != nil {
		return false, err
	}
	_, exists, err := kv.Get(s.db, ik)
	return exists, err
}

func (s *PebbleStore) othersAfter(_ context.Context, user string, conv, msgID, _ uint64) (int64, error) {
	prefix := indexPrefix(user, conv)
	it, err := s.db.NewIter(&pebble.IterOptions{
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

func (s *PebbleStore) commit(_ context.Context, w *write) error {
	b := s.db.NewBatch()
	defer b.Close()
	for i, e := range w.entries {
		v, _ := json.Marshal(e)
		_ = b.Set(entryPrefix(e.User).U64(e.Seq), v, nil)
		ik, err := indexKey(w.items[i])
		if err != nil {
			return err
		}
		_ = b.Set(ik, kv.U64Value(e.Seq), nil)
	}
	for user, h := range w.heads {
		_ = b.Set(headKey(user), kv.U64Value(h), nil)
	}
	for user, m := range w.states {
		for conv, st := range m {
			v, _ := json.Marshal(st)
			_ = b.Set(stateKey(user, conv), v, nil)
		}
	}
	for user, v := range w.totals {
		_ = b.Set(totalKey(user), kv.U64Value(uint64(v)), nil)
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return err
	}
	// Committed: what this write read and wrote is now what Pebble holds.
	for user, h := range w.heads {
		c := s.cacheOf(user)
		if len(c.heads) >= maxCachedPerStripe || len(c.states) >= maxCachedPerStripe {
			c.clear()
		}
		c.heads[user] = h
	}
	for user, v := range w.totals {
		s.cacheOf(user).totals[user] = v
	}
	for user, m := range w.states {
		c := s.cacheOf(user)
		for conv, st := range m {
			c.states[stateRef{user, conv}] = *st
		}
	}
	return nil
}

func (s *PebbleStore) counters() UnreadCounters { return s.cfg.Counters }

// Unread implements Store.
func (s *PebbleStore) Unread(ctx context.Context, user string) (Counts, error) {
	return unreadCounts(ctx, s, s.cfg.Counters, user)
}

// Append implements Store.
func (s *PebbleStore) Append(ctx context.Context, items []Item) ([]Entry, error) {
	defer s.locks.Lock(usersOf(items)...)()
	return appendItems(ctx, s, items)
}

// MarkRead implements Store.
func (s *PebbleStore) MarkRead(ctx context.Context, user string, conv, msgID uint64, convKind string, at time.Time) (*Entry, ConvState, error) {
	defer s.locks.Lock(user)()
	return markRead(ctx, s, user, conv, msgID, convKind, at)
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
	if err := it.Error(); err != nil {
		return nil, err
	}
	if len(out) > 0 {
		// Trim keeps every user's newest entry, so a read that found nothing is at
		// the head: only one that found entries can have lost some before them.
		if err := checkKept(user, after, out[0].Seq, 0); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// trimUsersPerIter bounds the users one iterator of Trim walks, so that a long trim
// does not keep old files of the database alive for its whole run.
const trimUsersPerIter = 1024

// Trim implements Trimmer. It walks every user's entries in key order: one seek to a
// user's first entry, a scan to the first one to keep, one range deletion (unsynced:
// a deletion lost in a crash is redone by the next run). It takes no lock and so
// never holds up a write: it deletes only entries below the user's newest, and
// writes only add entries past the head.
func (s *PebbleStore) Trim(ctx context.Context, before time.Time) (int, error) {
	lower := kv.NewKey(kv.PrefixTimeline, 'e')
	upper := kv.PrefixEnd(lower)
	dropped := 0
	for from := []byte(lower); from != nil; {
		n, next, err := s.trimUsers(ctx, from, upper, before)
		dropped += n
		if err != nil {
			return dropped, fmt.Errorf("timeline: trim: %w", err)
		}
		from = next
	}
	return dropped, nil
}

// trimUsers trims up to trimUsersPerIter users, the first one whose entries start
// at or after from; next is where the next user's entries start (nil: none left).
func (s *PebbleStore) trimUsers(ctx context.Context, from, upper []byte, before time.Time) (dropped int, next []byte, err error) {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: from, UpperBound: upper})
	if err != nil {
		return 0, nil, err
	}
	defer it.Close()
	valid := it.First()
	for users := 0; valid && users < trimUsersPerIter; users++ {
		if err := ctx.Err(); err != nil {
			return dropped, nil, err
		}
		key := it.Key()
		if len(key) < 3 || len(key) != 3+int(key[2])+8 {
			return dropped, nil, fmt.Errorf("malformed entry key %x", key)
		}
		prefix := append([]byte(nil), key[:3+int(key[2])]...) // t e <user>
		first := binary.BigEndian.Uint64(key[len(prefix):])
		keep := first // the first seq kept
		for {
			var e struct {
				At time.Time `json:"t"`
			}
			if err := json.Unmarshal(it.Value(), &e); err != nil {
				return dropped, nil, fmt.Errorf("entry %x: %w", it.Key(), err)
			}
			keep = binary.BigEndian.Uint64(it.Key()[len(prefix):])
			if !e.At.Before(before) {
				break
			}
			if !it.Next() || !bytes.HasPrefix(it.Key(), prefix) {
				break // all old: keep the newest
			}
		}
		if keep > first {
			start := kv.Key(slices.Clip(prefix)).U64(first)
			end := kv.Key(slices.Clip(prefix)).U64(keep)
			if err := s.db.DeleteRange(start, end, pebble.NoSync); err != nil {
				return dropped, nil, err
			}
			dropped += int(keep - first) // a user's seqs are continuous
		}
		valid = it.SeekGE(kv.PrefixEnd(prefix))
	}
	if !valid {
		return dropped, nil, it.Error()
	}
	return dropped, append([]byte(nil), it.Key()...), nil
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
