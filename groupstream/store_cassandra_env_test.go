package groupstream_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/fanline/fanline/groupstream"
	"github.com/fanline/fanline/groupstream/streamtest"
	"github.com/fanline/fanline/internal/cql"
	"github.com/fanline/fanline/internal/testharness"
)

// TestCassandraStoreConformance runs the store suite on a real Cassandra (a keyspace
// per test) when FANLINE_CASSANDRA_HOSTS names one; it is skipped otherwise.
func TestCassandraStoreConformance(t *testing.T) {
	hosts := testharness.CassandraHosts(t)
	n := 0
	streamtest.Run(t, func(t *testing.T, cfg groupstream.Config) groupstream.Store {
		n++
		cc := cql.Config{Hosts: hosts, Keyspace: fmt.Sprintf("fanline_gs_%d_%d", time.Now().Unix(), n),
			Replication: "{'class': 'SimpleStrategy', 'replication_factor': 1}", Consistency: "ONE"}
		if err := cql.Migrate(context.Background(), cc, groupstream.CassandraSchema); err != nil {
			t.Fatal(err)
		}
		s, err := cql.Open(cc)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			s.Query("DROP KEYSPACE " + cc.Keyspace).Exec()
			s.Close()
		})
		return groupstream.NewCassandraStore(s, groupstream.CassandraStoreConfig{Config: cfg})
	})
}
