package e2e

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/fanline/fanline/client"
	"github.com/fanline/fanline/internal/wire"
)

// buildBinary builds cmd/fanline once per test binary run.
var buildBinary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "fanline-bin")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "fanline")
	out, err := exec.Command("go", "build", "-o", bin, "../cmd/fanline").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// child is a fanline serve process.
type child struct {
	cmd *exec.Cmd
}

func startChild(t *testing.T, addr, data string, env ...string) *child {
	t.Helper()
	bin, err := buildBinary()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", "--addr", addr, "--data", data)
	cmd.Env = append(os.Environ(), env...)
	logf, err := os.OpenFile(filepath.Join(data, "..", filepath.Base(data)+".log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd}
	t.Cleanup(func() { c.kill() })
	waitFor(t, 30*time.Second, "server health", func() bool {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return c
}

func (c *child) kill() {
	if c.cmd.ProcessState == nil {
		c.cmd.Process.Signal(syscall.SIGKILL)
		c.cmd.Wait()
	}
}

// TestCrashLosesNothing kills the server with SIGKILL while 1,000 sends are in flight,
// restarts it on the same data, and checks that every acknowledged message is in both
// timelines exactly once, and that the SDK's retries leave every message there once.
func TestCrashLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills a server process")
	}
	addr := freeAddr(t)
	data := filepath.Join(t.TempDir(), "data")
	env := []string{"FANLINE_LIMITS_RATE_PER_SECOND=-1"}
	proc := startChild(t, addr, data, env...)
	url := "http://" + addr
	ctx := context.Background()

	alice := connect(t, url, "alice")
	bob := connect(t, url, "bob")
	const total = 1000
	var acked atomic.Int64
	var mu sync.Mutex
	ackedIDs := map[string]wire.ID{} // client_msg_id -> msg_id from the ack
	var wg sync.WaitGroup
	sem := make(chan struct{}, 100)
	for i := 0; i < total; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			c, to := alice, "bob"
			if i%2 == 1 {
				c, to = bob, "alice"
			}
			cmid := fmt.Sprintf("crash-%d", i)
			sctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
			defer cancel()
			res, err := c.Send(sctx, wire.SendRequest{ClientMsgID: cmid, To: to, Type: "text", Body: text(cmid)})
			if err != nil {
				t.Errorf("send %s: %v", cmid, err)
				return
			}
			mu.Lock()
			ackedIDs[cmid] = res.MsgID
			mu.Unlock()
			acked.Add(1)
		}(i)
	}
	waitFor(t, time.Minute, "300 acks", func() bool { return acked.Load() >= 300 })
	proc.kill()
	killedAt := acked.Load()
	mu.Lock()
	beforeKill := map[string]wire.ID{}
	for k, v := range ackedIDs {
		beforeKill[k] = v
	}
	mu.Unlock()
	t.Logf("killed the server with %d of %d sends acknowledged", killedAt, total)
	if killedAt >= total {
		t.Fatal("every send finished before the kill; nothing was in flight")
	}
	startChild(t, addr, data, env...)
	wg.Wait()
	if t.Failed() {
		return
	}

	for _, c := range []*client.Client{alice, bob} {
		var entries []wire.Entry
		cursor := ""
		for {
			page, err := c.SyncPage(ctx, cursor, 500)
			if err != nil {
				t.Fatal(err)
			}
			entries = append(entries, page.Entries...)
			cursor = page.Cursor
			if !page.HasMore {
				break
			}
		}
		seen := map[string]wire.ID{}
		for i, e := range entries {
			if e.Seq != uint64(i+1) {
				t.Fatalf("timeline seq %d at position %d", e.Seq, i)
			}
			if e.Kind != wire.KindMessage {
				continue
			}
			if _, dup := seen[e.ClientMsgID]; dup {
				t.Fatalf("%s stored twice", e.ClientMsgID)
			}
			seen[e.ClientMsgID] = e.MsgID
		}
		if len(seen) != total {
			t.Fatalf("timeline holds %d messages, want %d", len(seen), total)
		}
		for cmid, id := range ackedIDs {
			if seen[cmid] != id {
				t.Fatalf("%s acknowledged as %s, stored as %s", cmid, id, seen[cmid])
			}
		}
		for cmid, id := range beforeKill {
			if seen[cmid] != id {
				t.Fatalf("%s acknowledged before the crash as %s, stored as %s", cmid, id, seen[cmid])
			}
		}
	}
}
