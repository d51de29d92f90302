package groupstream

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/fanline/fanline/internal/kv"
)

func streamPrefix(conv uint64) kv.Key { return kv.NewKey(kv.PrefixStream, 'q').U64(conv) }
func readPrefix(conv uint64) kv.Key   { return kv.NewKey(kv.PrefixStream, 'r').U64(conv) }
func readKey(conv uint64, user string) kv.Key {
	return readPrefix(conv).Str(user)
}

func putStreamEntry(b *pebble.Batch, conv uint64, e StreamEntry, rank uint64) {
	_ = b.Set(streamPrefix(conv).U64(e.Seq), streamValue(e, rank), nil)
}

// UserGroups implements Store.
func (s *PebbleStore) UserGroups(ctx context.Context, user string) ([]uint64, error) {
	var out []uint64
	err := s.scan(kv.NewKey(kv.PrefixConversation, 'u').Str(user), func(k, _ []byte) error {
		out = append(out, binary.BigEndian.Uint64(k))
		return nil
	})
	return out, err
}

// keepLeftFor is how long a past membership's stream entries stay available to the
// former member's devices.
const keepLeftFor = 30 * 24 * time.Hour

// LeftGroups implements Store. Expired past memberships it comes across are
// deleted (SweepLeft deletes those of users who never ask).
func (s *PebbleStore) LeftGroups(ctx context.Context, user string) ([]Left, error) {
	now := time.Now()
	var out []Left
	var expired []leftRef
	err := s.scan(kv.NewKey(kv.PrefixConversation, 'x').Str(user), func(k, v []byte) error {
		l, err := decodeLeft(user, v)
		if err != nil {
			return err
		}
		if leftExpired(l, now) {
			expired = append(expired, leftRef{user, binary.BigEndian.Uint64(k)})
		} else {
			out = append(out, l)
		}
		return nil
	})
	if err == nil && len(expired) > 0 {
		// Best effort: the answer is right either way, and a failed delete is
		// retried at the next read or sweep.
		_, _ = s.trimLeft(expired, now)
	}
	return out, err
}

// leftRef names one past membership: c x <user> <conv>.
type leftRef struct {
	user string
	conv uint64
}

func decodeLeft(user string, v []byte) (Left, error) {
	var l Left
	if err := json.Unmarshal(v, &l); err != nil {
		return Left{}, fmt.Errorf("groupstream: past membership of %s: %w", user, err)
	}
	return l, nil
}

// leftExpired reports whether past membership l is older than keepLeftFor at now.
func leftExpired(l Left, now time.Time) bool { return now.Sub(l.At) > keepLeftFor }

// sweepChunk is how many expired past memberships SweepLeft deletes per commit.
const sweepChunk = 256

// SweepLeft deletes every past membership that expired at now (kept keepLeftFor,
// 30 days) and returns how many it deleted. It runs alongside other writes; call it
// now and then (Cassandra expires the rows itself, by TTL).
func (s *PebbleStore) SweepLeft(ctx context.Context, now time.Time) (int, error) {
	prefix := kv.NewKey(kv.PrefixConversation, 'x')
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: kv.PrefixEnd(prefix)})
	if err != nil {
		return 0, fmt.Errorf("groupstream: %w", err)
	}
	defer it.Close()
	deleted := 0
	var refs []leftRef
	flush := func() error {
		n, err := s.trimLeft(refs, now)
		deleted += n
		refs = refs[:0]
		if err != nil {
			return err
		}
		return ctx.Err()
	}
	for it.First(); it.Valid(); it.Next() {
		rest := it.Key()[len(prefix):]
		if len(rest) < 1 || len(rest) != 1+int(rest[0])+8 {
			return deleted, fmt.Errorf("groupstream: past membership key %q", it.Key())
		}
		user := string(rest[1 : 1+rest[0]])
		l, err := decodeLeft(user, it.Value())
		if err != nil {
			return deleted, err
		}
		if !leftExpired(l, now) {
			continue
		}
		refs = append(refs, leftRef{user, binary.BigEndian.Uint64(rest[1+rest[0]:])})
		if len(refs) == sweepChunk {
			if err := flush(); err != nil {
				return deleted, err
			}
		}
	}
	if err := it.Error(); err != nil {
		return deleted, fmt.Errorf("groupstream: %w", err)
	}
	if len(refs) > 0 {
		err = flush()
	}
	return deleted, err
}

// trimLeft deletes the past memberships refs that are still expired at now, under
// their groups' locks (a member removed again meanwhile has a new record, which
// stays), and returns how many it deleted.
func (s *PebbleStore) trimLeft(refs []leftRef, now time.Time) (int, error) {
	convs := make([]uint64, len(refs))
	for i, r := range refs {
		convs[i] = r.conv
	}
	defer lockConvs(s.locks, convs)()
	batch := s.db.NewBatch()
	defer batch.Close()
	n := 0
	for _, r := range refs {
		k := leftKey(r.user, r.conv)
		v, ok, err := kv.Get(s.db, k)
		if err != nil {
			return 0, fmt.Errorf("groupstream: %w", err)
		}
		if !ok {
			continue
		}
		if l, err := decodeLeft(r.user, v); err != nil || !leftExpired(l, now) {
			continue
		}
		_ = batch.Delete(k, nil)
		n++
	}
	if n == 0 {
		return 0, nil
	}
	// Not synced: a delete lost in a crash is done again by the next read or sweep.
	if err := batch.Commit(pebble.NoSync); err != nil {
		return 0, fmt.Errorf("groupstream: delete past memberships: %w", err)
	}
	return n, nil
}

// Stream implements Store.
func (s *PebbleStore) Stream(ctx context.Context, conv, after uint64, limit int) ([]StreamEntry, error) {
	c, err := s.Conversation(ctx, conv)
	if err != nil && err != ErrNotFound {
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
	warm, err := s.warmStream(conv, after, limit-len(cold))
	return append(cold, warm...), err
}

// warmStream is Stream of the warm entries only.
func (s *PebbleStore) warmStream(conv, after uint64, limit int) ([]StreamEntry, error) {
	prefix := streamPrefix(conv)
	it, err := s.db.NewIter(&pebble.IterOptions{
		LowerBound: append(kv.Key(nil), prefix...).U64(after + 1),
		UpperBound: kv.PrefixEnd(prefix),
	})
	if err != nil {
		return nil, fmt.Errorf("groupstream: %w", err)
	}
	defer it.Close()
	var out []StreamEntry
	for it.First(); it.Valid() && len(out) < limit; it.Next() {
		e, _, err := decodeStreamEntry(binary.BigEndian.Uint64(it.Key()[len(prefix):]), it.Value())
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, it.Error()
}

// rankAt returns the group's rank after its last stream entry at or before seq.
func (s *PebbleStore) rankAt(ctx context.Context, conv, seq uint64) (uint64, error) {
	prefix := streamPrefix(conv)
	it, err := s.db.NewIter(&pebble.IterOptions{
		LowerBound: prefix,
		UpperBound: append(kv.Key(nil), prefix...).U64(seq + 1),
	})
	if err != nil {
		return 0, fmt.Errorf("groupstream: %w", err)
	}
	defer it.Close()
	if !it.Last() {
		if err := it.Error(); err != nil {
			return 0, err
		}
		c, err := s.Conversation(ctx, conv)
		if err != nil {
			return 0, err
		}
		return s.tiers.rankBelow(ctx, c, seq)
	}
	_, rank, err := decodeStreamEntry(seq, it.Value())
	return rank, err
}

// Unread implements Store.
func (s *PebbleStore) Unread(ctx context.Context, conv uint64, user string) (int64, error) {
	return unread(ctx, s, conv, user)
}

// readIndexOf returns conv's read index, loading it from Pebble when it is not
// cached. The caller holds conv's lock, so no write to its positions runs meanwhile.
// A group's index is cached with its estimated size (Config.CacheBytes); one too
// large to cache is loaded for each call.
func (s *PebbleStore) readIndexOf(conv uint64) (*readIndex, error) {
	k := readsCacheKey(conv)
	if x, ok := s.cache.get(k); ok {
		return x.(*readIndex), nil
	}
	x := &readIndex{byUser: map[string]uint64{}}
	err := s.scan(readPrefix(conv), func(k, v []byte) error {
		seq := binary.BigEndian.Uint64(v)
		x.byUser[string(k[1:1+k[0]])] = seq
		x.sorted = append(x.sorted, seq)
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(x.sorted, func(i, j int) bool { return x.sorted[i] < x.sorted[j] })
	s.cache.set(k, x, readIndexSize(x))
	return x, nil
}

// cachedReadIndex returns conv's read index if it is cached.
func (s *PebbleStore) cachedReadIndex(conv uint64) *readIndex {
	if x, ok := s.cache.get(readsCacheKey(conv)); ok {
		return x.(*readIndex)
	}
	return nil
}

// movedRead updates a cached read index after a committed write of user's position
// (to seq exactly, as PutMessages and SetReadSeq write it); the caller holds conv's
// lock.
func (s *PebbleStore) movedRead(conv uint64, user string, seq uint64) {
	if x := s.cachedReadIndex(conv); x != nil && x.put(user, seq) {
		s.cache.resize(readsCacheKey(conv), x, readPositionSize(user))
	}
}

// forgetReads drops removed members from a cached read index; the caller holds
// conv's lock.
func (s *PebbleStore) forgetReads(conv uint64, users []string) {
	x := s.cachedReadIndex(conv)
	if x == nil {
		return
	}
	var freed int64
	for _, u := range users {
		if x.remove(u) {
			freed += readPositionSize(u)
		}
	}
	if freed > 0 {
		s.cache.resize(readsCacheKey(conv), x, -freed)
	}
}

// SetReadSeq implements Store.
func (s *PebbleStore) SetReadSeq(ctx context.Context, conv uint64, user string, seq uint64) error {
	defer lockConvs(s.locks, []uint64{conv})()
	if _, err := s.Member(ctx, conv, user); err != nil {
		return err
	}
	old, err := kv.GetU64(s.db, readKey(conv, user))
	if err != nil || seq <= old {
		return err
	}
	if err := s.db.Set(readKey(conv, user), kv.U64Value(seq), pebble.Sync); err != nil {
		return fmt.Errorf("groupstream: read position: %w", err)
	}
	s.movedRead(conv, user, seq)
	return nil
}

// ReadSeq implements Store.
func (s *PebbleStore) ReadSeq(ctx context.Context, conv uint64, user string) (uint64, error) {
	return kv.GetU64(s.db, readKey(conv, user))
}

func (s *PebbleStore) loadedReadIndex(conv uint64) (*readIndex, error) {
	if x := s.cachedReadIndex(conv); x != nil {
		return x, nil
	}
	defer lockConvs(s.locks, []uint64{conv})()
	return s.readIndexOf(conv)
}

// ReadCount implements Store.
func (s *PebbleStore) ReadCount(ctx context.Context, conv, seq uint64) (int, error) {
	x, err := s.loadedReadIndex(conv)
	if err != nil {
		return 0, err
	}
	return x.count(seq), nil
}

// Readers implements Store.
func (s *PebbleStore) Readers(ctx context.Context, conv, seq uint64, after string, limit int) ([]string, error) {
	members, err := s.Members(ctx, conv)
	if err != nil {
		return nil, err
	}
	x, err := s.loadedReadIndex(conv)
	if err != nil {
		return nil, err
	}
	return x.readers(members, seq, after, limit), nil
}
