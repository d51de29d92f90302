package dispatch

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisDedup keeps dedup reservations in Redis: SET NX with the TTL, one key per
// (sender, client_msg_id) under {prefix}{sender}:, so a sender's keys share a hash slot.
//
// Redis answers from memory: with AOF fsync every second, a Redis crash can forget the
// last second of reservations, and a client retry of such a send is then stored as a
// new message. Use the Pebble dedup when that matters more than sharing dedup across
// pipeline nodes.
type RedisDedup struct {
	rdb    redis.UniversalClient
	prefix string
}

var _ Dedup = (*RedisDedup)(nil)

// NewRedisDedup returns a Dedup on rdb; prefix "" means "fanline:dedup:".
func NewRedisDedup(rdb redis.UniversalClient, prefix string) *RedisDedup {
	if prefix == "" {
		prefix = "fanline:dedup:"
	}
	return &RedisDedup{rdb: rdb, prefix: prefix}
}

// Reserve implements Dedup.
func (d *RedisDedup) Reserve(ctx context.Context, sender, clientMsgID string, msgID uint64, ttl time.Duration) (uint64, bool, error) {
	key := d.prefix + "{" + sender + "}:" + clientMsgID
	for {
		ok, err := d.rdb.SetNX(ctx, key, msgID, ttl).Result()
		if err != nil {
			return 0, false, fmt.Errorf("dispatch: redis dedup: %w", err)
		}
		if ok {
			return msgID, false, nil
		}
		v, err := d.rdb.Get(ctx, key).Result()
		if errors.Is(err, redis.Nil) {
			continue // expired between the two calls: try to reserve again
		}
		if err != nil {
			return 0, false, fmt.Errorf("dispatch: redis dedup: %w", err)
		}
		held, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return 0, false, fmt.Errorf("dispatch: redis dedup: key %s holds %q", key, v)
		}
		return held, true, nil
	}
}

// Sweep implements Dedup: Redis expires keys itself.
func (d *RedisDedup) Sweep(context.Context, time.Time) error { return nil }
