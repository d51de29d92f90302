package testharness

import (
	"net"
	"strconv"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"
)

// Kafka is an in-process Kafka-protocol broker (kfake) that keeps its state in a
// directory, writing every produced batch through to disk before answering
// (kfake.SyncWrites), so a test can stop it and start it again on the same port with
// its topics, records and committed offsets. It is stopped at the test's cleanup.
type Kafka struct {
	// Addr is the broker's address; it stays the same across restarts.
	Addr string
	port int
	dir  string

	mu sync.Mutex // guards c
	c  *kfake.Cluster
}

// StartKafka starts a one-broker cluster on a free loopback port.
func StartKafka(t testing.TB) *Kafka {
	t.Helper()
	addr := FreeAddr(t)
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	port, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	k := &Kafka{Addr: addr, port: port, dir: t.TempDir()}
	k.Start(t)
	t.Cleanup(k.Stop)
	return k
}

// Start runs the broker (again) on its port, loading what it had persisted.
func (k *Kafka) Start(t testing.TB) {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(k.port), kfake.DataDir(k.dir), kfake.SyncWrites())
	if err != nil {
		t.Fatalf("testharness: start kfake on %s: %v", k.Addr, err)
	}
	k.mu.Lock()
	k.c = c
	k.mu.Unlock()
}

// Stop shuts the broker down (it closes its listener and connections and saves its
// state); stopping a stopped broker does nothing.
func (k *Kafka) Stop() {
	k.mu.Lock()
	c := k.c
	k.c = nil
	k.mu.Unlock()
	if c != nil {
		c.Close()
	}
}
