package timeline

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisUnreadCountersConfig configures RedisUnreadCounters.
type RedisUnreadCountersConfig struct {
	// TTL drops the copy of a user with no changes for this long. Zero means 7 days.
	TTL time.Duration
	// Prefix starts every key. Zero means "fanline:unread:".
	Prefix string
}

// RedisUnreadCounters keeps each user's counts in one hash {prefix}{user}: fields
// head, full (1 once seeded), total, and c<conv> per conversation with unread
// messages. Lua scripts change them, so a user's per-conversation counts and total
// move together, on one hash slot.
type RedisUnreadCounters struct {
	rdb redis.UniversalClient
	cfg RedisUnreadCountersConfig
}

var _ UnreadCounters = (*RedisUnreadCounters)(nil)

// NewRedisUnreadCounters returns counters on rdb.
func NewRedisUnreadCounters(rdb redis.UniversalClient, cfg RedisUnreadCountersConfig) *RedisUnreadCounters {
	if cfg.TTL <= 0 {
		cfg.TTL = 7 * 24 * time.Hour
	}
	if cfg.Prefix == "" {
		cfg.Prefix = "fanline:unread:"
	}
	return &RedisUnreadCounters{rdb: rdb, cfg: cfg}
}

func (r *RedisUnreadCounters) key(user string) string { return r.cfg.Prefix + "{" + user + "}" }

// setScript: ARGV = head, ttl ms, total ("" unchanged), then conv, count pairs.
var setScript = redis.NewScript(`
local head = tonumber(ARGV[1])
if head <= tonumber(redis.call('HGET', KEYS[1], 'head') or '0') then return 0 end
redis.call('HSET', KEYS[1], 'head', ARGV[1])
if redis.call('HGET', KEYS[1], 'full') == '1' then
  if ARGV[3] ~= '' then redis.call('HSET', KEYS[1], 'total', ARGV[3]) end
  for i = 4, #ARGV, 2 do
    if ARGV[i+1] == '0' then redis.call('HDEL', KEYS[1], 'c' .. ARGV[i])
    else redis.call('HSET', KEYS[1], 'c' .. ARGV[i], ARGV[i+1]) end
  end
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1`)

// seedScript: ARGV = head, ttl ms, total, then conv, count pairs.
var seedScript = redis.NewScript(`
local head = tonumber(ARGV[1])
if head < tonumber(redis.call('HGET', KEYS[1], 'head') or '0') then return 0 end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'head', ARGV[1], 'full', '1', 'total', ARGV[3])
for i = 4, #ARGV, 2 do redis.call('HSET', KEYS[1], 'c' .. ARGV[i], ARGV[i+1]) end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1`)

func (r *RedisUnreadCounters) args(head uint64, total string, convs map[uint64]int64) []any {
	args := []any{head, r.cfg.TTL.Milliseconds(), total}
	for conv, n := range convs {
		args = append(args, conv, n)
	}
	return args
}

// Set implements UnreadCounters.
func (r *RedisUnreadCounters) Set(ctx context.Context, user string, head uint64, convs map[uint64]int64, total *int64) error {
	t := ""
	if total != nil {
		t = strconv.FormatInt(*total, 10)
	}
	if err := setScript.Run(ctx, r.rdb, []string{r.key(user)}, r.args(head, t, convs)...).Err(); err != nil {
		return fmt.Errorf("timeline: redis counters: %w", err)
	}
	return nil
}

// Seed implements UnreadCounters.
func (r *RedisUnreadCounters) Seed(ctx context.Context, user string, c Counts) error {
	convs := make(map[uint64]int64, len(c.Convs))
	for conv, n := range c.Convs {
		if n != 0 {
			convs[conv] = n
		}
	}
	err := seedScript.Run(ctx, r.rdb, []string{r.key(user)}, r.args(c.Head, strconv.FormatInt(c.Total, 10), convs)...).Err()
	if err != nil {
		return fmt.Errorf("timeline: redis counters: %w", err)
	}
	return nil
}

// Get implements UnreadCounters.
func (r *RedisUnreadCounters) Get(ctx context.Context, user string) (Counts, bool, error) {
	m, err := r.rdb.HGetAll(ctx, r.key(user)).Result()
	if err != nil {
		return Counts{}, false, fmt.Errorf("timeline: redis counters: %w", err)
	}
	if m["full"] != "1" {
		return Counts{}, false, nil
	}
	c := Counts{Convs: map[uint64]int64{}}
	c.Head, _ = strconv.ParseUint(m["head"], 10, 64)
	c.Total, _ = strconv.ParseInt(m["total"], 10, 64)
	for k, v := range m {
		if id, ok := strings.CutPrefix(k, "c"); ok {
			conv, err1 := strconv.ParseUint(id, 10, 64)
			n, err2 := strconv.ParseInt(v, 10, 64)
			if err1 != nil || err2 != nil {
				return Counts{}, false, fmt.Errorf("timeline: redis counters of %s: bad field %s=%s", user, k, v)
			}
			c.Convs[conv] = n
		}
	}
	return c, true, nil
}
