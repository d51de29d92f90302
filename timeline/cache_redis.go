package timeline

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisEntryCacheConfig configures a RedisEntryCache.
type RedisEntryCacheConfig struct {
	// Entries is how many of the newest entries are kept per user. Zero means 256.
	Entries int
	// TTL drops the cache of a user with no writes for this long. Zero means 24 h.
	TTL time.Duration
	// Prefix starts every key. Zero means "fanline:timeline:".
	Prefix string
}

// RedisEntryCache keeps each user's newest entries in one sorted set
// {prefix}{user}, scored by seq, trimmed to the newest Entries and expiring TTL after
// the last write.
type RedisEntryCache struct {
	rdb redis.UniversalClient
	cfg RedisEntryCacheConfig
}

var _ EntryCache = (*RedisEntryCache)(nil)

// NewRedisEntryCache returns a cache on rdb.
func NewRedisEntryCache(rdb redis.UniversalClient, cfg RedisEntryCacheConfig) *RedisEntryCache {
	if cfg.Entries <= 0 {
		cfg.Entries = 256
	}
	if cfg.TTL <= 0 {
		cfg.TTL = 24 * time.Hour
	}
	if cfg.Prefix == "" {
		cfg.Prefix = "fanline:timeline:"
	}
	return &RedisEntryCache{rdb: rdb, cfg: cfg}
}

func (c *RedisEntryCache) key(user string) string { return c.cfg.Prefix + "{" + user + "}" }

// cachedEntry is an entry with its seq, as cached.
type cachedEntry struct {
	Entry
	Seq uint64 `json:"s"`
}

// Add implements EntryCache.
func (c *RedisEntryCache) Add(ctx context.Context, user string, entries []Entry) error {
	if len(entries) == 0 {
		return nil
	}
	zs := make([]redis.Z, len(entries))
	for i, e := range entries {
		b, err := json.Marshal(cachedEntry{Entry: e, Seq: e.Seq})
		if err != nil {
			return err
		}
		zs[i] = redis.Z{Score: float64(e.Seq), Member: b}
	}
	k := c.key(user)
	_, err := c.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		// A seq is written once; ZREMRANGEBYSCORE first keeps a repeat from adding a
		// second member (a re-encoding) with the same score.
		for _, e := range entries {
			s := strconv.FormatUint(e.Seq, 10)
			p.ZRemRangeByScore(ctx, k, s, s)
		}
		p.ZAdd(ctx, k, zs...)
		p.ZRemRangeByRank(ctx, k, 0, int64(-c.cfg.Entries-1))
		p.PExpire(ctx, k, c.cfg.TTL)
		return nil
	})
	if err != nil {
		return fmt.Errorf("timeline: redis cache: %w", err)
	}
	return nil
}

// Range implements EntryCache.
func (c *RedisEntryCache) Range(ctx context.Context, user string, after, upto uint64) ([]Entry, bool, error) {
	if upto <= after {
		return nil, true, nil
	}
	vals, err := c.rdb.ZRangeByScore(ctx, c.key(user), &redis.ZRangeBy{
		Min: "(" + strconv.FormatUint(after, 10), Max: strconv.FormatUint(upto, 10),
	}).Result()
	if err != nil {
		return nil, false, fmt.Errorf("timeline: redis cache: %w", err)
	}
	if uint64(len(vals)) != upto-after {
		return nil, false, nil
	}
	out := make([]Entry, len(vals))
	for i, v := range vals {
		var ce cachedEntry
		if err := json.Unmarshal([]byte(v), &ce); err != nil || ce.Seq != after+uint64(i)+1 {
			return nil, false, nil
		}
		ce.Entry.User, ce.Entry.Seq = user, ce.Seq
		out[i] = ce.Entry
	}
	return out, true, nil
}
