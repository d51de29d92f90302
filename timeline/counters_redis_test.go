package timeline_test

import (
	"fmt"
	"testing"

	"github.com/fanline/fanline/internal/kv"
	"github.com/fanline/fanline/internal/testharness"
	"github.com/fanline/fanline/timeline"
	"github.com/fanline/fanline/timeline/timelinetest"
	"github.com/redis/go-redis/v9"
)

func TestRedisUnreadCounters(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: testharness.StartRedis(t)})
	t.Cleanup(func() { rdb.Close() })
	n := 0
	timelinetest.RunCounters(t, func(t *testing.T) timeline.UnreadCounters {
		n++
		return timeline.NewRedisUnreadCounters(rdb, timeline.RedisUnreadCountersConfig{Prefix: fmt.Sprintf("c%d:", n)})
	})
}

// TestPebbleStoreWithRedisCounters runs the store suite with unread counts copied
// to Redis: Unread must agree with the states whichever answers.
func TestPebbleStoreWithRedisCounters(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: testharness.StartRedis(t)})
	t.Cleanup(func() { rdb.Close() })
	n := 0
	timelinetest.Run(t, func(t *testing.T) timeline.Store {
		db, err := kv.Open(t.TempDir(), nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		n++
		counters := timeline.NewRedisUnreadCounters(rdb, timeline.RedisUnreadCountersConfig{Prefix: fmt.Sprintf("s%d:", n)})
		return timeline.NewPebbleStore(db, timeline.PebbleStoreConfig{Counters: counters})
	})
}
