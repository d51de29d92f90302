package testharness

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
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
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		missing(t, "redis-server")
	}
	addr := FreeAddr(t)
	host, port := splitAddr(addr)
	cmd := exec.Command(bin, "--bind", host, "--port", port, "--save", "", "--appendonly", "no",
		"--dir", t.TempDir(), "--protected-mode", "no")
	if err := cmd.Start(); err != nil {
		t.Fatalf("testharness: start redis-server: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer rdb.Close()
	deadline := time.Now().Add(10 * time.Second)
	for rdb.Ping(context.Background()).Err() != nil {
		if time.Now().After(deadline) {
			t.Fatalf("testharness: redis-server on %s did not answer PING", addr)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return addr
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
