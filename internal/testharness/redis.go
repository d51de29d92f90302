package testharness

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// requireServices reports whether a missing server must fail the test rather than
// skip it (FANLINE_REQUIRE_SERVICES=1, set by .ci/run).
func requireServices() bool { return os.Getenv("FANLINE_REQUIRE_SERVICES") == "1" }

// missing skips the test, or fails it when services are required.
func missing(t testing.TB, what string) {
	t.Helper()
	if requireServices() {
		t.Fatalf("%s is not installed and FANLINE_REQUIRE_SERVICES=1", what)
	}
	t.Skipf("%s is not installed (apt-get install redis-server); skipping", what)
}

// StartRedis runs a private redis-server on a free loopback port for the test and
// returns its address. Nothing is persisted; the server is killed at cleanup.
func StartRedis(t testing.TB) string {
	t.Helper()
	r := &RedisServer{Addr: FreeAddr(t), dir: t.TempDir()}
	r.args = []string{"--save", "", "--appendonly", "no"}
	r.Start(t)
	t.Cleanup(r.Kill)
	return r.Addr
}

// RedisServer is a redis-server a test can kill and start again.
type RedisServer struct {
	// Addr is the server's address; it stays the same across restarts.
	Addr string
	dir  string
	args []string // persistence options

	mu  sync.Mutex // guards cmd
	cmd *exec.Cmd
}

// StartDurableRedis runs a redis-server that appends every write to its AOF and
// fsyncs it before answering (appendfsync always), so after Kill (SIGKILL) and Start
// it has everything it acknowledged, as a production Redis configured for it would.
// It is killed at cleanup.
func StartDurableRedis(t testing.TB) *RedisServer {
	t.Helper()
	r := &RedisServer{Addr: FreeAddr(t), dir: t.TempDir()}
	r.args = []string{"--save", "", "--appendonly", "yes", "--appendfsync", "always"}
	r.Start(t)
	t.Cleanup(r.Kill)
	return r
}

// Start runs the server (again) on its address and data directory and waits until it
// answers PING.
func (r *RedisServer) Start(t testing.TB) {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		missing(t, "redis-server")
	}
	host, port := splitAddr(r.Addr)
	args := append([]string{"--bind", host, "--port", port, "--dir", r.dir, "--protected-mode", "no"}, r.args...)
	cmd := exec.Command(bin, args...)
	if err := cmd.Start(); err != nil {
		t.Fatalf("testharness: start redis-server: %v", err)
	}
	r.mu.Lock()
	r.cmd = cmd
	r.mu.Unlock()
	rdb := redis.NewClient(&redis.Options{Addr: r.Addr})
	defer rdb.Close()
	deadline := time.Now().Add(10 * time.Second)
	for rdb.Ping(context.Background()).Err() != nil {
		if time.Now().After(deadline) {
			t.Fatalf("testharness: redis-server on %s did not answer PING", r.Addr)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Kill stops the server with SIGKILL and reaps it; killing a stopped server does
// nothing.
func (r *RedisServer) Kill() {
	r.mu.Lock()
	cmd := r.cmd
	r.cmd = nil
	r.mu.Unlock()
	if cmd != nil {
		cmd.Process.Kill()
		cmd.Wait()
	}
}

func splitAddr(addr string) (host, port string) {
	for i := len(addr) - 1; i >= 0; i-- {
		if addr[i] == ':' {
			return addr[:i], addr[i+1:]
		}
	}
	panic(fmt.Sprintf("testharness: bad address %q", addr))
}

// CassandraHosts returns the Cassandra contact points in FANLINE_CASSANDRA_HOSTS
// (comma-separated), or skips the test saying why: no Cassandra server can be
// installed on the CI machines, so these suites run only where one is provided.
func CassandraHosts(t testing.TB) []string {
	t.Helper()
	v := os.Getenv("FANLINE_CASSANDRA_HOSTS")
	if v == "" {
		t.Skip("FANLINE_CASSANDRA_HOSTS is not set: no Cassandra server to run against; skipping")
	}
	return strings.Split(v, ",")
}
