package presence_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/fanline/fanline/internal/presence"
	"github.com/fanline/fanline/internal/presence/presencetest"
	"github.com/fanline/fanline/internal/testharness"
	"github.com/redis/go-redis/v9"
)

func redisClient(t *testing.T, addr string) *redis.Client {
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

func TestRedisRegistryConformance(t *testing.T) {
	addr := testharness.StartRedis(t)
	n := 0
	presencetest.Run(t, func(t *testing.T) presence.Registry {
		n++ // a fresh key space per test
		return presence.NewRedisRegistry(redisClient(t, addr), presence.RedisRegistryConfig{Prefix: fmt.Sprintf("t%d:", n)})
	})
}

// TestRedisRegistryNodesShareAndExpire: two processes (gateway nodes) see each other's
// users; a node that stops refreshing (crashed) loses its users after the TTL, while a
// live node's refreshes keep its users online.
func TestRedisRegistryNodesShareAndExpire(t *testing.T) {
	addr := testharness.StartRedis(t)
	ctx := context.Background()
	cfg := presence.RedisRegistryConfig{TTL: 300 * time.Millisecond}
	a := presence.NewRedisRegistry(redisClient(t, addr), cfg)
	b := presence.NewRedisRegistry(redisClient(t, addr), cfg)
	if err := a.Connect(ctx, "ann", "node-a"); err != nil {
		t.Fatal(err)
	}
	if err := b.Connect(ctx, "bob", "node-b"); err != nil {
		t.Fatal(err)
	}
	if got, err := b.Online(ctx, []string{"ann", "bob"}); err != nil || !got["ann"] || !got["bob"] {
		t.Fatalf("node b sees %v %v", got, err)
	}
	// b keeps refreshing; a "crashes" (never refreshes again).
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		b.Run(runCtx, func(err error) { t.Error(err) })
	}()
	defer func() {
		stop()
		<-done
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, err := b.Online(ctx, []string{"ann", "bob"})
		if err != nil {
			t.Fatal(err)
		}
		if !got["ann"] {
			if !got["bob"] {
				t.Fatal("bob expired although his node refreshes")
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("ann still online long after her node stopped refreshing")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// And bob stays online across several TTLs.
	time.Sleep(3 * cfg.TTL)
	if got, _ := a.Online(ctx, []string{"bob"}); !got["bob"] {
		t.Fatal("bob expired although his node refreshes")
	}
}
