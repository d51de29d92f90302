package timeline_test

import (
	"fmt"
	"testing"

	"github.com/fanline/fanline/internal/testharness"
	"github.com/fanline/fanline/timeline"
	"github.com/fanline/fanline/timeline/timelinetest"
	"github.com/redis/go-redis/v9"
)

func TestRedisEntryCache(t *testing.T) {
	addr := testharness.StartRedis(t)
	n := 0
	timelinetest.RunCache(t, func(t *testing.T, keep int) timeline.EntryCache {
		rdb := redis.NewClient(&redis.Options{Addr: addr})
		t.Cleanup(func() { rdb.Close() })
		n++
		return timeline.NewRedisEntryCache(rdb, timeline.RedisEntryCacheConfig{Entries: keep, Prefix: fmt.Sprintf("t%d:", n)})
	})
}
