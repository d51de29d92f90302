package timeline_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/fanline/fanline/internal/cql"
	"github.com/fanline/fanline/internal/testharness"
	"github.com/fanline/fanline/timeline"
	"github.com/fanline/fanline/timeline/timelinetest"
	"github.com/redis/go-redis/v9"
)

// TestCassandraStoreConformance runs the store suite on a real Cassandra (a keyspace
// per test) with the Redis entry cache in front, when FANLINE_CASSANDRA_HOSTS names
// one; it is skipped otherwise.
func TestCassandraStoreConformance(t *testing.T) {
	hosts := testharness.CassandraHosts(t)
	rdb := redis.NewClient(&redis.Options{Addr: testharness.StartRedis(t)})
	t.Cleanup(func() { rdb.Close() })
	n := 0
	timelinetest.Run(t, func(t *testing.T) timeline.Store {
		n++
		cfg := cql.Config{Hosts: hosts, Keyspace: fmt.Sprintf("fanline_test_%d_%d", time.Now().Unix(), n),
			Replication: "{'class': 'SimpleStrategy', 'replication_factor': 1}", Consistency: "ONE"}
		if err := cql.Migrate(context.Background(), cfg, timeline.CassandraSchema); err != nil {
			t.Fatal(err)
		}
		s, err := cql.Open(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			s.Query("DROP KEYSPACE " + cfg.Keyspace).Exec()
			s.Close()
		})
		cache := timeline.NewRedisEntryCache(rdb, timeline.RedisEntryCacheConfig{Prefix: cfg.Keyspace + ":"})
		counters := timeline.NewRedisUnreadCounters(rdb, timeline.RedisUnreadCountersConfig{Prefix: cfg.Keyspace + ":"})
		return timeline.NewCassandraStore(s, timeline.CassandraStoreConfig{Cache: cache, Counters: counters})
	})
}
