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
	"github.com/fanline/fanline/internal/wire"
)

func streamPrefix(conv uint64) kv.Key { return kv.NewKey(kv.PrefixStream, 'q').U64(conv) }
func readPrefix(conv uint64) kv.Key   { return kv.NewKey(kv.PrefixStream, 'r').U64(conv) }
func readKey(conv uint64, user string) kv.Key {
	return readPrefix(conv).Str(user)
}

// A stream entry's value: kind byte ('m' message, 'x' recall), msg id, the group's
// rank after the entry, time in unix nanoseconds, then the sender.
func putStreamEntry(b *pebble.Batch, conv uint64, e StreamEntry, rank uint64) {
	kind := byte('m')
	if e.Kind == wire.KindRecall {
		kind = 'x'
	}
	v := []byte{kind}
	v = binary.BigEndian.AppendUint64(v, e.MsgID)
	v = binary.BigEndian.AppendUint64(v, rank)
	v = binary.BigEndian.AppendUint64(v, uint64(e.At.UnixNano()))
	v = append(v, e.From...)
	_ = b.Set(streamPrefix(conv).U64(e.Seq), v, nil)
}

func decodeStreamEntry(seq uint64, v []byte) (StreamEntry, uint64, error) {
	if len(v) < 25 {
		return StreamEntry{}, 0, fmt.Errorf("groupstream: stream entry %d is %d bytes", seq, len(v))
	}
	e := StreamEntry{Seq: seq, Kind: wire.KindMessage, MsgID: binary.BigEndian.Uint64(v[1:]),
		At: time.Unix(0, int64(binary.BigEndian.Uint64(v[17:]))).UTC(), From: string(v[25:])}
	if v[0] == 'x' {
		e.Kind = wire.KindRecall
	}
	return e, binary.BigEndian.Uint64(v[9:]), nil
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

// LeftGroups implements Store.
func (s *PebbleStore) LeftGroups(ctx context.Context, user string) ([]Left, error) {
	var out []Left
	err := s.scan(kv.NewKey(kv.PrefixConversation, 'x').Str(user), func(_, v []byte) error {
		var l Left
		if err := json.Unmarshal(v, &l); err != nil {
			return fmt.Errorf("groupstream: past membership of %s: %w", user, err)
		}
		if time.Since(l.At) <= keepLeftFor {
			out = append(out, l)
		}
		return nil
	})
	return out, err
}

// Stream implements Store.
func (s *PebbleStore) Stream(ctx context.Context, conv, after uint64, limit int) ([]StreamEntry, error) {
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
func (s *PebbleStore) rankAt(_ context.Context, conv, seq uint64) (uint64, error) {
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
		return 0, it.Error()
	}
	_, rank, err := decodeStreamEntry(seq, it.Value())
	return rank, err
}

// Unread implements Store.
func (s *PebbleStore) Unread(ctx context.Context, conv uint64, user string) (int64, error) {
	return unread(ctx, s, conv, user)
}

// maxReadIndexes bounds the groups whose read positions are held in memory.
const maxReadIndexes = 1024

// readIndexOf returns conv's read index, loading it from Pebble the first time.
// The caller holds conv's lock, so no write to its positions runs meanwhile.
func (s *PebbleStore) readIndexOf(conv uint64) (*readIndex, error) {
	s.readsMu.Lock()
	x, ok := s.reads[conv]
	s.readsMu.Unlock()
	if ok {
		return x, nil
	}
	x = &readIndex{byUser: map[string]uint64{}}
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
	s.readsMu.Lock()
	if len(s.reads) >= maxReadIndexes {
		clear(s.reads)
	}
	s.reads[conv] = x
	s.readsMu.Unlock()
	return x, nil
}

// movedRead updates a loaded read index after a committed write; the caller holds
// conv's lock.
func (s *PebbleStore) movedRead(conv uint64, user string, seq uint64) {
	s.readsMu.Lock()
	x := s.reads[conv]
	s.readsMu.Unlock()
	if x != nil {
		x.set(user, seq)
	}
}

// forgetReads drops removed members from a loaded read index; the caller holds conv's
// lock.
func (s *PebbleStore) forgetReads(conv uint64, users []string) {
	s.readsMu.Lock()
	x := s.reads[conv]
	s.readsMu.Unlock()
	if x == nil {
		return
	}
	for _, u := range users {
		x.remove(u)
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
	s.readsMu.Lock()
	x, ok := s.reads[conv]
	s.readsMu.Unlock()
	if ok {
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
