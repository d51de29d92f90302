package e2e

import (
	"context"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/fanline/fanline/internal/config"
	"github.com/fanline/fanline/internal/testharness"
	"github.com/fanline/fanline/server"
)

// TestRedisPresence: with presence.backend redis, presence works through the API and
// /readyz reports Redis.
func TestRedisPresence(t *testing.T) {
	addr := testharness.StartRedis(t)
	ts := startServer(t, func(c *config.Config) {
		c.Presence.Backend = "redis"
		c.Redis.Addr = addr
	})
	ctx := context.Background()
	ann := connect(t, ts.URL, "ann")
	bob := connect(t, ts.URL, "bob")
	p, err := ann.Presence(ctx, "bob", "cat")
	if err != nil || p["bob"] != "online" || p["cat"] != "offline" {
		t.Fatalf("presence %v %v", p, err)
	}
	bob.Close()
	testharness.WaitFor(t, 10*time.Second, "bob offline", func() bool {
		p, _ := ann.Presence(ctx, "bob")
		return p["bob"] == "offline"
	})
	resp, err := http.Get(ts.URL + "/readyz")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("readyz: %v %v", resp, err)
	}
	resp.Body.Close()
}

func TestPresenceBackendChecked(t *testing.T) {
	for _, tc := range []struct{ backend, addr string }{{"etcd", ""}, {"redis", ""}, {"redis", testharness.FreeAddr(t)}} {
		cfg, _ := config.Load("", nil)
		cfg.Addr, cfg.DataDir = "127.0.0.1:0", t.TempDir()
		cfg.Presence.Backend, cfg.Redis.Addr = tc.backend, tc.addr
		if s, err := server.New(cfg, slog.New(slog.DiscardHandler)); err == nil {
			t.Errorf("server started with presence %s at %q", tc.backend, tc.addr)
			s.Run(canceled())
		}
	}
}

func canceled() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}
