package e2e

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fanline/fanline/internal/config"
	"github.com/fanline/fanline/internal/testharness"
	"github.com/fanline/fanline/internal/wire"
	"github.com/gorilla/websocket"
)

func TestRecallHistoryReceipts(t *testing.T) {
	ts := startServer(t, nil)
	ctx := context.Background()
	ann, bob := connect(t, ts.URL, "ann"), connect(t, ts.URL, "bob")
	var ids []wire.ID
	for i := 0; i < 25; i++ {
		res, err := ann.Send(ctx, wire.SendRequest{To: "bob", Type: "text", Body: text(fmt.Sprintf("m%d", i))})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, res.MsgID)
	}
	es := collect(t, bob, 25, 30*time.Second)
	conv := es[0].ConversationID

	// History pages newest first.
	var paged []wire.ID
	var before wire.ID
	for {
		page, err := bob.History(ctx, conv, before, 10)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range page.Messages {
			paged = append(paged, m.MsgID)
		}
		if !page.HasMore {
			break
		}
		before = page.Messages[len(page.Messages)-1].MsgID
	}
	if len(paged) != 25 || paged[0] != ids[24] || paged[24] != ids[0] {
		t.Fatalf("history %v", paged)
	}

	// Recall: the recipient's device is told, and no API returns the body afterwards.
	recalled := ids[24]
	if err := ann.Recall(ctx, recalled); err != nil {
		t.Fatal(err)
	}
	if err := ann.Recall(ctx, recalled); err != nil {
		t.Fatalf("second recall: %v", err)
	}
	var e wire.Entry
	select {
	case e = <-bob.Entries():
	case <-time.After(10 * time.Second):
		t.Fatal("no recall entry")
	}
	if e.Kind != wire.KindRecall || e.MsgID != recalled || e.From != "ann" {
		t.Fatalf("recall entry %+v", e)
	}
	page, _ := bob.History(ctx, conv, 0, 1)
	if m := page.Messages[0]; !m.Recalled || m.Body != nil || m.Type != "" {
		t.Fatalf("history shows recalled message as %+v", m)
	}
	all, _ := bob.SyncPage(ctx, "", 100)
	for _, e := range all.Entries {
		if e.MsgID == recalled && e.Kind == wire.KindMessage && (e.Body != nil || !e.Recalled) {
			t.Fatalf("sync shows recalled message as %+v", e)
		}
		if e.Kind == wire.KindRecall && e.Seq != 26 {
			t.Fatalf("recall entry at seq %d; recalling twice must add one entry", e.Seq)
		}
	}
	list, _ := bob.Conversations(ctx)
	if lm := list.Conversations[0].LastMessage; lm == nil || lm.Body != nil || !lm.Recalled {
		t.Fatalf("conversation list shows recalled last message as %+v", lm)
	}

	// Receipts: unread until bob reads; then ann's devices get a read entry.
	rc, err := ann.Receipts(ctx, ids[10])
	if err != nil || rc.ReadCount != 0 || rc.MemberCount != 1 {
		t.Fatalf("receipts before read: %+v %v", rc, err)
	}
	if err := bob.MarkRead(ctx, conv, ids[10]); err != nil {
		t.Fatal(err)
	}
	var annSaw wire.Entry
	for annSaw.Kind != wire.KindRead {
		select {
		case annSaw = <-ann.Entries():
		case <-time.After(10 * time.Second):
			t.Fatal("ann got no read entry")
		}
	}
	if annSaw.From != "bob" || annSaw.MsgID != ids[10] {
		t.Fatalf("read entry %+v", annSaw)
	}
	for i, want := range map[int]int{10: 1, 9: 1, 11: 0} {
		rc, _ := ann.Receipts(ctx, ids[i])
		if rc.ReadCount != want || (want == 1 && rc.Readers[0] != "bob") {
			t.Fatalf("receipts of message %d: %+v", i, rc)
		}
	}
	list, _ = bob.Conversations(ctx)
	if list.Conversations[0].Unread != 14 || list.TotalUnread != 14 {
		t.Fatalf("bob unread after reading 11 of 25: %+v", list)
	}
}

func TestPresenceAndMultiDevicePush(t *testing.T) {
	ts := startServer(t, nil)
	ctx := context.Background()
	ann := connect(t, ts.URL, "ann")
	bob1, bob2 := connect(t, ts.URL, "bob"), connect(t, ts.URL, "bob")
	p, err := ann.Presence(ctx, "bob", "zed")
	if err != nil || p["bob"] != "online" || p["zed"] != "offline" {
		t.Fatalf("presence %v %v", p, err)
	}
	if _, err := ann.Send(ctx, wire.SendRequest{To: "bob", Type: "emoji", Body: []byte(`{"emoji":":)"}`)}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []interface{ Entries() <-chan wire.Entry }{bob1, bob2, ann} {
		select {
		case e := <-c.Entries():
			if e.Type != "emoji" || e.From != "ann" {
				t.Fatalf("entry %+v", e)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("a device got no push")
		}
	}
	bob1.Close()
	bob2.Close()
	testharness.WaitFor(t, 10*time.Second, "bob offline", func() bool {
		p, _ := ann.Presence(ctx, "bob")
		return p["bob"] == "offline"
	})
}

func TestHeartbeatTimeout(t *testing.T) {
	ts := startServer(t, func(c *config.Config) { c.Gateway.HeartbeatTimeout = config.Duration(300 * time.Millisecond) })
	ws := dialWS(t, ts.URL, token(t, ts.URL, "quiet"))
	ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, _, err := ws.ReadMessage()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != 4000 {
		t.Fatalf("idle connection ended with %v, want close 4000", err)
	}
}

// TestSlowReaderIsDisconnected: a device that stops reading is closed once its send
// queue is full, and the user's other device still gets everything.
func TestSlowReaderIsDisconnected(t *testing.T) {
	ts := startServer(t, func(c *config.Config) { c.Gateway.SendQueue = 4 })
	ctx := context.Background()
	stalled := dialWS(t, ts.URL, token(t, ts.URL, "bob")) // never reads
	bob := connect(t, ts.URL, "bob")
	ann := connect(t, ts.URL, "ann")
	payload := strings.Repeat("y", 32<<10)
	const n = 800 // ~26 MB of pushes: well over what loopback socket buffers hold
	// One message at a time: the reading device never has more than one frame
	// queued, however slowly this machine runs it, so only the stalled one can
	// fill its queue.
	for range n {
		if _, err := ann.Send(ctx, wire.SendRequest{To: "bob", Type: "text", Body: text(payload)}); err != nil {
			t.Fatal(err)
		}
		collect(t, bob, 1, 30*time.Second)
	}
	if n := metric(t, ts.URL, "fanline_slow_connections_closed_total"); n != 1 {
		t.Fatalf("slow connections closed: %v, want 1", n)
	}
	// The stalled connection ends: with close 1013 when the socket could still take the
	// close frame, else dropped (1006) once the stuck write times out.
	stalled.SetReadDeadline(time.Now().Add(30 * time.Second))
	var err error
	for err == nil {
		_, _, err = stalled.ReadMessage()
	}
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || (ce.Code != websocket.CloseTryAgainLater && ce.Code != websocket.CloseAbnormalClosure) {
		t.Fatalf("stalled connection ended with %v, want close 1013 or a dropped connection", err)
	}
}

// TestGracefulShutdown: SIGTERM lets in-flight work finish and the process exit 0.
func TestGracefulShutdown(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a server process")
	}
	addr := testharness.FreeAddr(t)
	data := filepath.Join(t.TempDir(), "data")
	proc := testharness.StartServer(t, addr, data)
	url := proc.URL()
	ann := connect(t, url, "ann")
	ctx := context.Background()
	res, err := ann.Send(ctx, wire.SendRequest{To: "bob", Type: "text", Body: text("before shutdown")})
	if err != nil {
		t.Fatal(err)
	}
	proc.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-proc.Done():
		var ee *exec.ExitError
		if err := proc.Err(); errors.As(err, &ee) {
			t.Fatalf("exit after SIGTERM: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("server did not exit after SIGTERM")
	}
	testharness.StartServer(t, addr, data)
	bob := connect(t, url, "bob")
	es := collect(t, bob, 1, 30*time.Second)
	if es[0].MsgID != res.MsgID {
		t.Fatalf("after restart bob has %+v", es[0])
	}
}
