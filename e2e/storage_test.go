package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fanline/fanline/client"
	"github.com/fanline/fanline/internal/testharness"
	"github.com/fanline/fanline/internal/wire"
)

// damagedLine is how the node reports a damaged data directory, once.
const damagedLine = `"msg":"kv: the data directory is damaged`

// TestDamagedDataDirStopsTheNode: a node whose data directory lost an SST file, or
// whose SST blocks were overwritten, while it was stopped or while it serves, does
// not go on serving on it: it exits non-zero within a bound, logging the damage once,
// and no request it answers meanwhile panics. A missing file is found when Pebble
// opens; overwritten blocks when they are read (at start, or by a request).
func TestDamagedDataDirStopsTheNode(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and restarts a server process")
	}
	remove := func(t *testing.T, sst string) {
		if err := os.Remove(sst); err != nil {
			t.Fatal(err)
		}
	}
	overwrite := func(t *testing.T, sst string) {
		// The first half holds the data blocks; the size, footer and index stay as
		// the manifest knows them, so the damage shows only when read.
		f, err := os.OpenFile(sst, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteAt([]byte(strings.Repeat("\xff", int(st.Size()/2))), 0); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, sst string)
		live   bool // damaged while the node serves, not while it is stopped
	}{
		{"sst missing", remove, false},
		{"sst blocks overwritten", overwrite, false},
		{"sst blocks overwritten while serving", overwrite, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := testharness.FreeAddr(t)
			data := filepath.Join(t.TempDir(), "data")
			proc := testharness.StartServer(t, addr, data, "FANLINE_LIMITS_RATE_PER_SECOND=-1")
			alice := connect(t, proc.URL(), "alice")
			ctx := context.Background()
			for i := 0; i < 50; i++ {
				cmid := fmt.Sprintf("d-%d", i)
				if _, err := alice.Send(ctx, wire.SendRequest{ClientMsgID: cmid, To: "bob", Type: "text",
					Body: text(strings.Repeat("x", 1000))}); err != nil {
					t.Fatal(err)
				}
			}
			alice.Close()
			proc.Kill()
			// Pebble flushes the replayed WAL into an SST when it opens the store again.
			flushed := testharness.Launch(t, addr, data, data+".flushed.log")
			testharness.WaitFor(t, 30*time.Second, "the restarted node to be ready", func() bool {
				resp, err := http.Get("http://" + addr + "/readyz")
				if err != nil {
					return false
				}
				resp.Body.Close()
				return resp.StatusCode == http.StatusOK
			})
			var ssts []string
			testharness.WaitFor(t, 30*time.Second, "an SST file in the data directory", func() bool {
				ssts, _ = filepath.Glob(filepath.Join(data, "pebble", "*.sst"))
				return len(ssts) > 0
			})
			node := flushed
			if !tc.live {
				flushed.Kill()
			}
			for _, sst := range ssts {
				tc.damage(t, sst)
			}
			if !tc.live {
				node = testharness.Launch(t, addr, data, data+".damaged.log")
			}
			url := "http://" + addr
			const bound = 30 * time.Second
			deadline := time.Now().Add(bound)
			var exitErr error
			for done := false; !done; {
				select {
				case <-node.Done():
					exitErr, done = node.Err(), true
					continue
				case <-time.After(20 * time.Millisecond):
				}
				if time.Now().After(deadline) {
					t.Fatalf("the node still runs %s after starting on a damaged data directory", bound)
				}
				poke(url)
			}
			var ee *exec.ExitError
			if !errors.As(exitErr, &ee) || ee.ExitCode() == 0 {
				t.Fatalf("the node exited with %v, want a non-zero exit code", exitErr)
			}
			b, err := os.ReadFile(node.Log)
			if err != nil {
				t.Fatal(err)
			}
			out := string(b)
			if strings.Contains(out, "panic") || strings.Contains(out, "goroutine ") {
				t.Fatalf("a panic in the log:\n%s", out)
			}
			if n := strings.Count(out, damagedLine); n != 1 {
				t.Fatalf("%d log lines report the damage, want 1:\n%s", n, out)
			}
		})
	}
}

// poke makes the requests a client would while the node runs: readiness, a
// WebSocket connect and a sync. Their answers do not matter; they must not panic.
func poke(url string) {
	if resp, err := http.Get(url + "/readyz"); err == nil {
		resp.Body.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	tok, err := client.DevToken(ctx, url, "bob", "", "")
	if err != nil {
		return
	}
	c, err := client.Connect(ctx, client.Config{URL: url, Token: tok})
	if err != nil {
		return
	}
	defer c.Close()
	_, _ = c.SyncPage(ctx, "", 100)
}
