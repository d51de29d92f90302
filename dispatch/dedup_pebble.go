package dispatch

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/fanline/fanline/internal/kv"
)

// PebbleDedup is the embedded Dedup.
//
// Keys: d <sender> <client_msg_id> -> msg id (8 bytes) + expiry in unix ms (8 bytes).
type PebbleDedup struct {
	db      *pebble.DB
	write   *pebble.WriteOptions
	stripes [64]sync.Mutex // serialise check-and-set per key, striped by key hash
}

var _ Dedup = (*PebbleDedup)(nil)

// NewPebbleDedup returns a Dedup on db. sharedWithQueue says the send queue lives in
// the same database: a reservation is then written without sync, since the queue's
// synced commit, which comes before the ack, makes it durable too (Pebble's WAL is in
// commit order). Otherwise every reservation is synced.
func NewPebbleDedup(db *pebble.DB, sharedWithQueue bool) *PebbleDedup {
	w := pebble.Sync
	if sharedWithQueue {
		w = pebble.NoSync
	}
	return &PebbleDedup{db: db, write: w}
}

// Reserve implements Dedup.
func (d *PebbleDedup) Reserve(ctx context.Context, sender, clientMsgID string, msgID uint64, ttl time.Duration) (uint64, bool, error) {
	key := kv.NewKey(kv.PrefixDedup, 'k').Str(sender).Str(clientMsgID)
	mu := d.stripe(key)
	mu.Lock()
	defer mu.Unlock()
	now := time.Now()
	v, ok, err := kv.Get(d.db, key)
	if err != nil {
		return 0, false, fmt.Errorf("dispatch: dedup: %w", err)
	}
	if ok && !expired(v, now) {
		return binary.BigEndian.Uint64(v[:8]), true, nil
	}
	val := binary.BigEndian.AppendUint64(kv.U64Value(msgID), uint64(now.Add(ttl).UnixMilli()))
	if err := d.db.Set(key, val, d.write); err != nil {
		return 0, false, fmt.Errorf("dispatch: dedup: %w", err)
	}
	return msgID, false, nil
}

func (d *PebbleDedup) stripe(key []byte) *sync.Mutex {
	h := fnv.New32a()
	h.Write(key)
	return &d.stripes[h.Sum32()%uint32(len(d.stripes))]
}

func expired(v []byte, now time.Time) bool {
	return len(v) != 16 || int64(binary.BigEndian.Uint64(v[8:])) <= now.UnixMilli()
}

// Sweep implements Dedup. Each expired key is re-checked under its stripe lock, so a
// reservation made during the sweep survives.
func (d *PebbleDedup) Sweep(ctx context.Context, now time.Time) error {
	prefix := kv.NewKey(kv.PrefixDedup, 'k')
	it, err := d.db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: kv.PrefixEnd(prefix)})
	if err != nil {
		return err
	}
	var stale [][]byte
	for it.First(); it.Valid() && ctx.Err() == nil; it.Next() {
		if expired(it.Value(), now) {
			stale = append(stale, append([]byte(nil), it.Key()...))
		}
	}
	if err := it.Close(); err != nil {
		return err
	}
	for _, key := range stale {
		mu := d.stripe(key)
		mu.Lock()
		v, ok, err := kv.Get(d.db, key)
		if err == nil && ok && expired(v, now) {
			err = d.db.Delete(key, pebble.NoSync)
		}
		mu.Unlock()
		if err != nil {
			return fmt.Errorf("dispatch: dedup sweep: %w", err)
		}
	}
	return nil
}
