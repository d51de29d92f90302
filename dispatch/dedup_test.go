package dispatch_test

import (
	"fmt"
	"testing"

	"github.com/fanline/fanline/dispatch"
	"github.com/fanline/fanline/dispatch/deduptest"
	"github.com/fanline/fanline/internal/kv"
	"github.com/fanline/fanline/internal/testharness"
	"github.com/redis/go-redis/v9"
)

func TestPebbleDedupConformance(t *testing.T) {
	for _, shared := range []bool{true, false} {
		t.Run(fmt.Sprintf("sharedWithQueue=%v", shared), func(t *testing.T) {
			deduptest.Run(t, func(t *testing.T) dispatch.Dedup {
				db, err := kv.Open(t.TempDir(), nil)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { db.Close() })
				return dispatch.NewPebbleDedup(db, shared)
			})
		})
	}
}

func TestRedisDedupConformance(t *testing.T) {
	addr := testharness.StartRedis(t)
	n := 0
	deduptest.Run(t, func(t *testing.T) dispatch.Dedup {
		rdb := redis.NewClient(&redis.Options{Addr: addr})
		t.Cleanup(func() { rdb.Close() })
		n++
		return dispatch.NewRedisDedup(rdb, fmt.Sprintf("t%d:", n))
	})
}
