package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/fanline/fanline/client"
	"github.com/fanline/fanline/internal/testharness"
	"github.com/fanline/fanline/internal/wire"
)

// TestTimelineTrimmedDeviceResyncs: after the server drops old timeline entries
// (Server.TrimTimelines, which the retention run calls), a sync from the beginning answers 410
// cursor_expired with the cursor to continue from; the SDK on a new device, and on
// an old device with a cursor into the dropped part, recovers by itself: a resync
// entry, then every conversation's messages from history, each once, then live
// delivery from the kept timeline.
func TestTimelineTrimmedDeviceResyncs(t *testing.T) {
	ts := startServer(t, nil)
	ctx := context.Background()
	al, cy := connect(t, ts.URL, "al"), connect(t, ts.URL, "cy")
	bea := connect(t, ts.URL, "bea")
	g, err := al.CreateGroup(ctx, "trio", "bea", "cy")
	if err != nil {
		t.Fatal(err)
	}
	sends := []struct {
		c   *client.Client
		req wire.SendRequest
	}{
		{al, wire.SendRequest{To: "bea", Type: "text", Body: text("a1")}},
		{cy, wire.SendRequest{To: "bea", Type: "text", Body: text("c1")}},
		{al, wire.SendRequest{GroupID: g.GroupID, Type: "text", Body: text("g1")}},
		{al, wire.SendRequest{To: "bea", Type: "text", Body: text("a2")}},
		{cy, wire.SendRequest{GroupID: g.GroupID, Type: "text", Body: text("g2")}},
		{cy, wire.SendRequest{To: "bea", Type: "text", Body: text("c2")}},
	}
	want := map[wire.ID]bool{}
	var oldCursor string
	var oldLast uint64
	for i, s := range sends {
		res, err := s.c.Send(ctx, s.req)
		if err != nil {
			t.Fatal(err)
		}
		want[res.MsgID] = true
		if i == 1 {
			// An old device stops here: its cursor will point into the dropped part.
			es := collect(t, bea, 2, 30*time.Second)
			oldCursor, oldLast = bea.Cursor(), es[len(es)-1].Seq
			bea.Close()
		}
	}
	probe := connect(t, ts.URL, "bea") // for HTTP calls as bea
	testharness.WaitFor(t, 30*time.Second, "bea's timeline", func() bool {
		page, err := probe.SyncPage(ctx, "", 0)
		return err == nil && len(page.Entries) == 1+len(sends) // with the group's creation
	})
	// The retention run trims at now - coldstore.timeline_keep; a cutoff of now
	// leaves each timeline only its newest entry.
	dropped, err := ts.srv.TrimTimelines(ctx, time.Now())
	if err != nil || dropped == 0 {
		t.Fatalf("TrimTimelines = %d, %v", dropped, err)
	}

	// The HTTP answer: 410, the code and the cursor to continue from.
	req, _ := http.NewRequest(http.MethodGet, ts.URL+"/v1/sync", nil)
	req.Header.Set("Authorization", "Bearer "+token(t, ts.URL, "bea"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var eb wire.ErrorBody
	err = json.NewDecoder(resp.Body).Decode(&eb)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusGone || eb.Error == nil || eb.Error.Code != wire.CodeCursorExpired || eb.Error.Cursor == "" {
		t.Fatalf("sync from the beginning: %d %+v %v", resp.StatusCode, eb.Error, err)
	}
	kept, err := probe.SyncPage(ctx, eb.Error.Cursor, 0)
	if err != nil || len(kept.Entries) != 1 {
		t.Fatalf("sync from the error's cursor: %+v, %v", kept, err)
	}

	for _, dc := range []struct {
		name string
		cfg  client.Config
	}{
		{"new device", client.Config{}},
		{"old device", client.Config{Cursor: oldCursor, LastSeq: oldLast}},
	} {
		name, cfg := dc.name, dc.cfg
		t.Run(name, func(t *testing.T) {
			cfg.URL, cfg.Token, cfg.BackstopSync = ts.URL, token(t, ts.URL, "bea"), time.Second
			dev, err := client.Connect(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer dev.Close()
			seen := map[wire.ID]int{}
			first := true
			read := func(until func() bool) {
				t.Helper()
				deadline := time.After(30 * time.Second)
				for !until() {
					select {
					case e := <-dev.Entries():
						if first && e.Kind != client.KindResync {
							t.Fatalf("first entry %+v, want a resync", e)
						}
						first = false
						if e.Kind == wire.KindMessage {
							if seen[e.MsgID]++; seen[e.MsgID] > 1 {
								t.Fatalf("message %v delivered twice", e.MsgID)
							}
						}
					case <-deadline:
						t.Fatalf("timed out with %d of %d messages", len(seen), len(want))
					}
				}
			}
			read(func() bool { return len(seen) == len(want) })
			for id := range want {
				if seen[id] != 1 {
					t.Errorf("message %v not delivered", id)
				}
			}
			// Delivery goes on live from the kept timeline.
			res, err := al.Send(ctx, wire.SendRequest{To: "bea", Type: "text", Body: text("after " + name)})
			if err != nil {
				t.Fatal(err)
			}
			read(func() bool { return seen[res.MsgID] == 1 })
			want[res.MsgID] = true
		})
	}
}
