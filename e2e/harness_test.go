// Package e2e runs fanline over real sockets: in-process servers for most tests, a
// child process for the crash test.
package e2e

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/fanline/fanline/client"
	"github.com/fanline/fanline/internal/config"
	"github.com/fanline/fanline/internal/wire"
	"github.com/fanline/fanline/server"
)

// testServer is an in-process fanline on a free port.
type testServer struct {
	URL  string
	srv  *server.Server
	stop func()
}

func startServer(t *testing.T, tweak func(*config.Config)) *testServer {
	t.Helper()
	cfg, err := config.Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Addr = "127.0.0.1:0"
	cfg.DataDir = t.TempDir()
	cfg.Limits.RatePerSecond = -1
	if tweak != nil {
		tweak(&cfg)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	s, err := server.New(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	ts := &testServer{URL: "http://" + s.Addr(), srv: s}
	var once bool
	ts.stop = func() {
		if once {
			return
		}
		once = true
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("server: %v", err)
		}
	}
	t.Cleanup(ts.stop)
	return ts
}

func token(t *testing.T, url, user string) string {
	t.Helper()
	tok, err := client.DevToken(context.Background(), url, user, "", "")
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func connect(t *testing.T, url, user string) *client.Client {
	t.Helper()
	c, err := client.Connect(context.Background(), client.Config{URL: url, Token: token(t, url, user), BackstopSync: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// collect reads entries from c until n message entries arrived or timeout.
func collect(t *testing.T, c *client.Client, n int, timeout time.Duration) []wire.Entry {
	t.Helper()
	var out []wire.Entry
	msgs := 0
	deadline := time.After(timeout)
	for msgs < n {
		select {
		case e := <-c.Entries():
			out = append(out, e)
			if e.Kind == wire.KindMessage {
				msgs++
			}
		case <-deadline:
			t.Fatalf("timed out with %d of %d messages", msgs, n)
		}
	}
	return out
}

func text(s string) []byte { return []byte(`{"text":"` + s + `"}`) }

// smallAndLarge has owner create a write-fanout group {owner, bob, carol} and, with
// fanout.write_max_members 3, a read-fanout one of five.
func smallAndLarge(t *testing.T, owner *client.Client) (small, large wire.Group) {
	t.Helper()
	ctx := context.Background()
	small, err := owner.CreateGroup(ctx, "small", "bob", "carol")
	if err != nil {
		t.Fatal(err)
	}
	large, err = owner.CreateGroup(ctx, "large", "bob", "carol", "dave", "erin")
	if err != nil {
		t.Fatal(err)
	}
	return small, large
}
