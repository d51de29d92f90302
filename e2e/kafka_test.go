package e2e

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/fanline/fanline/client"
	"github.com/fanline/fanline/internal/config"
	"github.com/fanline/fanline/internal/testharness"
	"github.com/fanline/fanline/internal/wire"
	"github.com/fanline/fanline/server"
	"github.com/twmb/franz-go/pkg/kfake"
)

// TestPipelineOnKafka runs the send and fanout stages on a Kafka-protocol broker
// (kfake, in-process, spoken to only through sarama) with dedup keys and presence in
// a real Redis: topics come from migrate, and a chat with duplicate resends arrives
// once each, in order, on both sides.
func TestPipelineOnKafka(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	redisAddr := testharness.StartRedis(t)
	kafka := func(c *config.Config) {
		c.Queue.Backend = "kafka"
		c.Kafka.Brokers = cluster.ListenAddrs()
		c.Kafka.Replication = 1
		c.Queue.SendPartitions, c.Queue.FanoutPartitions = 3, 3
		c.Dedup.Backend, c.Presence.Backend, c.Redis.Addr = "redis", "redis", redisAddr
	}
	cfg, _ := config.Load("", nil)
	kafka(&cfg)
	if _, err := server.New(withTempDirs(t, cfg), slog.New(slog.DiscardHandler)); err == nil {
		t.Fatal("server started on Kafka before migrate created the topics")
	}
	for i := 0; i < 2; i++ { // migrate is idempotent
		if err := server.Migrate(cfg, slog.New(slog.DiscardHandler)); err != nil {
			t.Fatal(err)
		}
	}
	ts := startServer(t, kafka)
	ctx := context.Background()
	ann, bob := connect(t, ts.URL, "ann"), connect(t, ts.URL, "bob")
	const n = 100
	for i := 0; i < n; i++ {
		c, to := ann, "bob"
		if i%2 == 1 {
			c, to = bob, "ann"
		}
		req := wire.SendRequest{ClientMsgID: fmt.Sprintf("k%d", i), To: to, Type: "text", Body: text(fmt.Sprint(i))}
		first, err := c.Send(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if i%10 == 0 {
			again, err := c.Send(ctx, req)
			if err != nil || !again.Duplicate || again.MsgID != first.MsgID {
				t.Fatalf("resend %d: %+v %v", i, again, err)
			}
		}
	}
	for _, c := range []*client.Client{ann, bob} {
		es := collect(t, c, n, time.Minute)
		seen := map[wire.ID]bool{}
		last := map[string]int{"ann": -1, "bob": -1}
		for i, e := range es {
			var v int
			fmt.Sscanf(string(e.Body), `{"text":"%d"}`, &v)
			if e.Seq != uint64(i+1) || seen[e.MsgID] || v <= last[e.From] {
				t.Fatalf("entry %d: %+v (last from %s: %d)", i, e, e.From, last[e.From])
			}
			seen[e.MsgID], last[e.From] = true, v
		}
	}
}

func withTempDirs(t *testing.T, cfg config.Config) config.Config {
	cfg.Addr, cfg.DataDir = "127.0.0.1:0", t.TempDir()
	return cfg
}

// TestCassandraBackendsNeedAServer: choosing a Cassandra backend without a reachable
// server fails at start and at migrate with a clear error, never later.
func TestCassandraBackendsNeedAServer(t *testing.T) {
	for name, pick := range map[string]func(*config.Config){
		"timeline":    func(c *config.Config) { c.Timeline.Backend = "cassandra" },
		"groupstream": func(c *config.Config) { c.Groupstream.Backend = "cassandra" },
	} {
		for _, hosts := range [][]string{nil, {testharness.FreeAddr(t)}} {
			cfg, _ := config.Load("", nil)
			pick(&cfg)
			cfg.Cassandra.Hosts, cfg.Cassandra.Timeout = hosts, config.Duration(time.Second)
			if _, err := server.New(withTempDirs(t, cfg), slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "cql:") {
				t.Errorf("%s on %v: server.New = %v", name, hosts, err)
			}
			if err := server.Migrate(cfg, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "cql:") {
				t.Errorf("%s on %v: Migrate = %v", name, hosts, err)
			}
		}
	}
}
