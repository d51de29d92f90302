package presence

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisRegistryConfig configures a RedisRegistry.
type RedisRegistryConfig struct {
	// TTL is how long a node's presence entries live without a refresh: a node that
	// crashes loses its users after at most this long. Zero means 90 s.
	TTL time.Duration
	// Prefix starts every key. Zero means "fanline:presence:".
	Prefix string
}

// RedisRegistry keeps presence in Redis so every gateway node sees every user.
//
// Each user has one sorted set {prefix}{user} whose members are the nodes holding the
// user's connections, scored by expiry (unix ms); the braces keep a user on one hash
// slot. Connection counts per node are kept here in memory and Redis is written only
// when a node's count for a user goes 0 -> 1 or 1 -> 0. Run refreshes the expiry of
// every user this process holds, every TTL/3.
type RedisRegistry struct {
	rdb redis.UniversalClient
	cfg RedisRegistryConfig

	mu    sync.Mutex // guards local
	local map[string]map[string]int
}

var _ Registry = (*RedisRegistry)(nil)

// NewRedisRegistry returns a registry on rdb.
func NewRedisRegistry(rdb redis.UniversalClient, cfg RedisRegistryConfig) *RedisRegistry {
	if cfg.TTL <= 0 {
		cfg.TTL = 90 * time.Second
	}
	if cfg.Prefix == "" {
		cfg.Prefix = "fanline:presence:"
	}
	return &RedisRegistry{rdb: rdb, cfg: cfg, local: map[string]map[string]int{}}
}

func (r *RedisRegistry) key(user string) string { return r.cfg.Prefix + "{" + user + "}" }

func (r *RedisRegistry) expiry(now time.Time) float64 {
	return float64(now.Add(r.cfg.TTL).UnixMilli())
}

// Connect implements Registry.
func (r *RedisRegistry) Connect(ctx context.Context, user, node string) error {
	r.mu.Lock()
	n := count(r.local, user, node, +1)
	r.mu.Unlock()
	if n != 1 {
		return nil
	}
	return r.touch(ctx, map[string][]string{user: {node}})
}

// Disconnect implements Registry.
func (r *RedisRegistry) Disconnect(ctx context.Context, user, node string) error {
	r.mu.Lock()
	n := count(r.local, user, node, -1)
	r.mu.Unlock()
	if n != 0 {
		return nil
	}
	if err := r.rdb.ZRem(ctx, r.key(user), node).Err(); err != nil {
		return fmt.Errorf("presence: redis: %w", err)
	}
	return nil
}

// touch writes fresh expiries for the given users' nodes in one pipeline.
func (r *RedisRegistry) touch(ctx context.Context, nodes map[string][]string) error {
	exp := r.expiry(time.Now())
	_, err := r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for user, ns := range nodes {
			zs := make([]redis.Z, len(ns))
			for i, n := range ns {
				zs[i] = redis.Z{Score: exp, Member: n}
			}
			p.ZAdd(ctx, r.key(user), zs...)
			p.PExpire(ctx, r.key(user), r.cfg.TTL)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("presence: redis: %w", err)
	}
	return nil
}

// Refresh extends the expiry of every user connected through this process.
func (r *RedisRegistry) Refresh(ctx context.Context) error {
	r.mu.Lock()
	nodes := make(map[string][]string, len(r.local))
	for user, ns := range r.local {
		for n := range ns {
			nodes[user] = append(nodes[user], n)
		}
	}
	r.mu.Unlock()
	if len(nodes) == 0 {
		return nil
	}
	return r.touch(ctx, nodes)
}

// Run refreshes every TTL/3 until ctx is done. Failures are returned to onError (may
// be nil) and retried at the next tick.
func (r *RedisRegistry) Run(ctx context.Context, onError func(error)) {
	t := time.NewTicker(r.cfg.TTL / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := r.Refresh(ctx); err != nil && onError != nil && ctx.Err() == nil {
				onError(err)
			}
		}
	}
}

// Online implements Registry: a user is online while a node entry has not expired.
func (r *RedisRegistry) Online(ctx context.Context, users []string) (map[string]bool, error) {
	now := strconv.FormatInt(time.Now().UnixMilli(), 10)
	cmds := make([]*redis.IntCmd, len(users))
	_, err := r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, u := range users {
			cmds[i] = p.ZCount(ctx, r.key(u), "("+now, "+inf")
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("presence: redis: %w", err)
	}
	out := make(map[string]bool, len(users))
	for i, u := range users {
		out[u] = cmds[i].Val() > 0
	}
	return out, nil
}

// Nodes implements Registry: the unexpired node entries of each user.
func (r *RedisRegistry) Nodes(ctx context.Context, users []string) (map[string][]string, error) {
	now := strconv.FormatInt(time.Now().UnixMilli(), 10)
	cmds := make([]*redis.StringSliceCmd, len(users))
	_, err := r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, u := range users {
			cmds[i] = p.ZRangeByScore(ctx, r.key(u), &redis.ZRangeBy{Min: "(" + now, Max: "+inf"})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("presence: redis: %w", err)
	}
	out := make(map[string][]string, len(users))
	for i, u := range users {
		if ns := cmds[i].Val(); len(ns) > 0 {
			slices.Sort(ns)
			out[u] = ns
		}
	}
	return out, nil
}
