package groupstream

import (
	"context"
	"encoding/json"
	"fmt"
	"math"

	"github.com/cockroachdb/pebble/v2"
	"github.com/fanline/fanline/internal/kv"
)

var _ Holds = (*PebbleStore)(nil)

// Keys: c h <conv> <scope> -> Hold (JSON).
func holdPrefix() kv.Key                   { return kv.NewKey(kv.PrefixConversation, 'h') }
func holdsKey(conv uint64) kv.Key          { return holdPrefix().U64(conv) }
func holdKey(h Hold) kv.Key                { return holdsKey(h.Conv).Str(h.Scope) }
func holdErr(what string, err error) error { return fmt.Errorf("groupstream: %s: %w", what, err) }

// PutHold implements Holds. The write is synced: a hold acknowledged is kept.
func (s *PebbleStore) PutHold(ctx context.Context, h Hold) error {
	if !ValidHoldScope(h.Scope) {
		return fmt.Errorf("groupstream: hold scope %q is neither ops nor shop:<id>", h.Scope)
	}
	v, err := json.Marshal(h)
	if err != nil {
		return holdErr("hold", err)
	}
	if err := s.db.Set(holdKey(h), v, pebble.Sync); err != nil {
		return holdErr("put hold", err)
	}
	return nil
}

// DeleteHold implements Holds.
func (s *PebbleStore) DeleteHold(ctx context.Context, conv uint64, scope string) error {
	if err := s.db.Delete(holdKey(Hold{Conv: conv, Scope: scope}), pebble.Sync); err != nil {
		return holdErr("delete hold", err)
	}
	return nil
}

// Holds implements Holds.
func (s *PebbleStore) Holds(ctx context.Context, conv uint64) ([]Hold, error) {
	var out []Hold
	err := s.scan(holdsKey(conv), func(_, v []byte) error {
		h, err := decodeHold(v)
		out = append(out, h)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ListHolds implements Holds.
func (s *PebbleStore) ListHolds(ctx context.Context, after uint64, limit int) ([]Hold, error) {
	if after == math.MaxUint64 {
		return nil, nil
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: holdsKey(after + 1), UpperBound: kv.PrefixEnd(holdPrefix())})
	if err != nil {
		return nil, holdErr("list holds", err)
	}
	defer it.Close()
	var out []Hold
	convs := 0
	for it.First(); it.Valid(); it.Next() {
		h, err := decodeHold(it.Value())
		if err != nil {
			return nil, err
		}
		if len(out) == 0 || out[len(out)-1].Conv != h.Conv {
			if convs == limit {
				break
			}
			convs++
		}
		out = append(out, h)
	}
	if err := it.Error(); err != nil {
		return nil, holdErr("list holds", err)
	}
	return out, nil
}

func decodeHold(v []byte) (Hold, error) {
	var h Hold
	if err := json.Unmarshal(v, &h); err != nil {
		return h, holdErr("hold", err)
	}
	return h, nil
}
