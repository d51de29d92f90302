package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fanline/fanline/client"
	"github.com/fanline/fanline/internal/testharness"
	"github.com/fanline/fanline/internal/wire"
)

// TestCrashLosesNothing kills the server with SIGKILL while 1,000 sends are in flight,
// restarts it on the same data, and checks that every acknowledged message is in both
// timelines exactly once, and that the SDK's retries leave every message there once.
func TestCrashLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills a server process")
	}
	addr := testharness.FreeAddr(t)
	data := filepath.Join(t.TempDir(), "data")
	env := []string{"FANLINE_LIMITS_RATE_PER_SECOND=-1"}
	proc := testharness.StartServer(t, addr, data, env...)
	url := proc.URL()
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
	testharness.WaitFor(t, time.Minute, "300 acks", func() bool { return acked.Load() >= 300 })
	proc.Kill()
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
	testharness.StartServer(t, addr, data, env...)
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

// TestCrashKeepsMembers kills the server while messages go to a write-fanout group,
// a read-fanout one and a direct chat, restarts it, and checks that every member of
// both groups is still one at once: the groups answer, and their members can send.
func TestCrashKeepsMembers(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills a server process")
	}
	addr := testharness.FreeAddr(t)
	data := filepath.Join(t.TempDir(), "data")
	env := []string{"FANLINE_LIMITS_RATE_PER_SECOND=-1", "FANLINE_FANOUT_WRITE_MAX_MEMBERS=3"}
	proc := testharness.StartServer(t, addr, data, env...)
	url := proc.URL()
	ctx := context.Background()

	alice := connect(t, url, "alice")
	small, large := smallAndLarge(t, alice)
	to := []wire.SendRequest{{To: "bob"}, {GroupID: small.GroupID}, {GroupID: large.GroupID}}
	for i := 0; i < 60; i++ {
		req := to[i%3]
		req.Type, req.Body = "text", text(fmt.Sprint("m", i))
		if _, err := alice.Send(ctx, req); err != nil {
			t.Fatal(err)
		}
	}
	alice.Close()
	proc.Kill()
	proc = testharness.StartServer(t, addr, data, env...)
	for _, user := range []string{"alice", "bob", "carol"} {
		c := connect(t, proc.URL(), user)
		for _, g := range []wire.ID{small.GroupID, large.GroupID} {
			if _, err := c.Group(ctx, g); err != nil {
				t.Errorf("%s: group %v after the restart: %v", user, g, err)
			}
			if _, err := c.Send(ctx, wire.SendRequest{GroupID: g, Type: "text", Body: text("after")}); err != nil {
				t.Errorf("%s: send to group %v after the restart: %v", user, g, err)
			}
		}
		c.Close()
	}
}
