package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fanline/fanline/client"
	"github.com/fanline/fanline/internal/config"
	"github.com/fanline/fanline/internal/wire"
)

// coldConfig moves history older than a second, every half second (without
// resting between segments), and keeps timeline entries two seconds; groups of more
// than three members use read-fanout.
func coldConfig(c *config.Config) {
	c.Coldstore.After = config.Duration(time.Second)
	c.Coldstore.Interval = config.Duration(500 * time.Millisecond)
	c.Coldstore.BusyFraction = 1
	c.Coldstore.SegmentMessages = 200
	c.Coldstore.TimelineKeep = config.Duration(2 * time.Second)
	c.Fanout.WriteMaxMembers = 3
	c.Fanout.WriteBackMembers = 3
}

// coldConversation is one conversation of the cold tests and what was sent to it.
type coldConversation struct {
	name  string
	id    wire.ID
	send  func(i int) wire.SendRequest
	sent  []wire.ID // in send order
	texts map[wire.ID]string
}

// sendAll sends n messages from c to each conversation, in order per conversation.
func sendAll(t *testing.T, c *client.Client, convs []*coldConversation, n int) {
	t.Helper()
	ctx := context.Background()
	var wg sync.WaitGroup
	for _, cv := range convs {
		cv.texts = map[wire.ID]string{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < n; i++ {
				req := cv.send(i)
				res, err := c.Send(ctx, req)
				if err != nil {
					t.Errorf("%s: send %d: %v", cv.name, i, err)
					return
				}
				cv.id = res.ConversationID
				cv.sent = append(cv.sent, res.MsgID)
				cv.texts[res.MsgID] = fmt.Sprintf("%s-%d", cv.name, i)
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
}

// fullHistory pages a conversation's whole history, oldest first.
func fullHistory(t *testing.T, c *client.Client, conv wire.ID) []wire.Entry {
	t.Helper()
	var newest []wire.Entry
	var before wire.ID
	for {
		page, err := c.History(context.Background(), conv, before, 37)
		if err != nil {
			t.Fatalf("history of %v before %v: %v", conv, before, err)
		}
		newest = append(newest, page.Messages...)
		if !page.HasMore || len(page.Messages) == 0 {
			break
		}
		before = page.Messages[len(page.Messages)-1].MsgID
	}
	out := make([]wire.Entry, len(newest))
	for i, e := range newest {
		out[len(newest)-1-i] = e
	}
	return out
}

// checkHistory checks that conv's history holds exactly what was sent, in order,
// bodies intact, and recalled without a body.
func checkHistory(t *testing.T, c *client.Client, cv *coldConversation, recalled ...wire.ID) {
	t.Helper()
	var got []wire.Entry
	for _, e := range fullHistory(t, c, cv.id) {
		if e.Kind == wire.KindMessage {
			got = append(got, e)
		}
	}
	if len(got) != len(cv.sent) {
		t.Fatalf("%s: history has %d messages, sent %d", cv.name, len(got), len(cv.sent))
	}
	for i, e := range got {
		if e.MsgID != cv.sent[i] {
			t.Fatalf("%s: history[%d] is %v, sent %v", cv.name, i, e.MsgID, cv.sent[i])
		}
		want := `{"text":"` + cv.texts[e.MsgID] + `"}`
		switch {
		case slices.Contains(recalled, e.MsgID):
			if !e.Recalled || len(e.Body) != 0 {
				t.Fatalf("%s: recalled message %v shows recalled=%v body %s", cv.name, e.MsgID, e.Recalled, e.Body)
			}
		case string(e.Body) != want:
			t.Fatalf("%s: message %v body %s, want %s", cv.name, e.MsgID, e.Body, want)
		}
	}
}

// TestColdHistory: with coldstore.after 1s, a direct chat, a small group and a
// read-fanout group of 500 messages each move to cold segments; history pages
// return all of them in order with their bodies, a recall made before the move and
// one made after it both hide the body, and new messages stay warm beside them.
func TestColdHistory(t *testing.T) {
	srv := startServer(t, coldConfig)
	ctx := context.Background()
	alice := connect(t, srv.URL, "alice")
	bob := connect(t, srv.URL, "bob")
	small, large := smallAndLarge(t, alice)
	if large.Fanout != "read" || small.Fanout != "write" {
		t.Fatalf("fanout: small %s, large %s", small.Fanout, large.Fanout)
	}
	convs := []*coldConversation{
		{name: "direct", send: func(i int) wire.SendRequest {
			return wire.SendRequest{ClientMsgID: fmt.Sprintf("d%d", i), To: "bob", Type: "text", Body: text(fmt.Sprintf("direct-%d", i))}
		}},
		{name: "small", send: func(i int) wire.SendRequest {
			return wire.SendRequest{ClientMsgID: fmt.Sprintf("s%d", i), GroupID: small.GroupID, Type: "text", Body: text(fmt.Sprintf("small-%d", i))}
		}},
		{name: "large", send: func(i int) wire.SendRequest {
			return wire.SendRequest{ClientMsgID: fmt.Sprintf("l%d", i), GroupID: large.GroupID, Type: "text", Body: text(fmt.Sprintf("large-%d", i))}
		}},
	}
	const n = 500
	sendAll(t, alice, convs, n)
	// One recall before the move.
	recalled := map[string]wire.ID{}
	for _, cv := range convs {
		recalled[cv.name] = cv.sent[n/2]
		if err := alice.Recall(ctx, cv.sent[n/2]); err != nil {
			t.Fatal(err)
		}
	}
	// Every message, and the two groups' creation events, moves.
	want := float64(3*n + 2)
	deadline := time.Now().Add(60 * time.Second)
	for metric(t, srv.URL, "fanline_cold_messages_total") < want {
		if time.Now().After(deadline) {
			t.Fatalf("after 60s %v of %v messages are cold", metric(t, srv.URL, "fanline_cold_messages_total"), want)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if got := metric(t, srv.URL, "fanline_cold_messages_total"); got != want {
		t.Fatalf("%v messages moved, want %v: a message moved twice", got, want)
	}
	// A recall of an archived message.
	for _, cv := range convs {
		if err := alice.Recall(ctx, cv.sent[n-1]); err != nil {
			t.Fatalf("%s: recall of an archived message: %v", cv.name, err)
		}
	}
	for _, cv := range convs {
		checkHistory(t, bob, cv, recalled[cv.name], cv.sent[n-1])
		page, err := bob.History(ctx, cv.id, 0, 1)
		if err != nil || len(page.Messages) != 1 || !page.Messages[0].Recalled {
			t.Fatalf("%s: newest message after its recall in the cold tier: %+v %v", cv.name, page, err)
		}
	}
	// Export streams every tier, oldest first, without recalled bodies.
	for _, cv := range convs {
		var buf bytes.Buffer
		if err := bob.Export(ctx, cv.id, "jsonl", &buf); err != nil {
			t.Fatalf("%s: export: %v", cv.name, err)
		}
		var ids []wire.ID
		for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
			var e wire.Entry
			if err := json.Unmarshal([]byte(line), &e); err != nil {
				t.Fatalf("%s: export line %q: %v", cv.name, line, err)
			}
			if e.Kind != wire.KindMessage {
				continue
			}
			ids = append(ids, e.MsgID)
			if (e.MsgID == recalled[cv.name] || e.MsgID == cv.sent[n-1]) != (e.Recalled && len(e.Body) == 0) {
				t.Fatalf("%s: exported %+v", cv.name, e)
			}
		}
		if !slices.Equal(ids, cv.sent) {
			t.Fatalf("%s: export holds %d messages, sent %d (or out of order)", cv.name, len(ids), len(cv.sent))
		}
	}
	// A new message joins the cold ones in one history.
	res, err := alice.Send(ctx, wire.SendRequest{ClientMsgID: "after", To: "bob", Type: "text", Body: text("after")})
	if err != nil {
		t.Fatal(err)
	}
	// (The ack comes when the send is durable in the queue; the store follows.)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		page, err := bob.History(ctx, convs[0].id, 0, 3)
		if err == nil && len(page.Messages) == 3 && page.Messages[0].MsgID == res.MsgID {
			if page.Messages[1].MsgID != convs[0].sent[n-1] || page.Messages[2].MsgID != convs[0].sent[n-2] {
				t.Fatalf("a page spanning warm and cold: %+v", page)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the new message is not in history: %+v %v", page, err)
		}
	}
	// A new device of bob's: its timeline is trimmed, so the SDK resyncs from the
	// conversation list and each conversation's newest history page (cold), and
	// the app pages the rest as checkHistory did.
	time.Sleep(3 * time.Second) // past timeline_keep, and a pass to trim
	dev, err := client.Connect(ctx, client.Config{URL: srv.URL, Token: token(t, srv.URL, "bob"), BackstopSync: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	got := map[wire.ID]int{}
	resynced := false
	for deadline := time.After(30 * time.Second); len(got) < len(convs); {
		select {
		case e := <-dev.Entries():
			resynced = resynced || e.Kind == client.KindResync
			if e.Kind == wire.KindMessage && e.Body != nil {
				got[e.ConversationID]++
			}
		case <-deadline:
			t.Fatalf("a new device got messages of %d of %d conversations", len(got), len(convs))
		}
	}
	if !resynced {
		t.Fatal("the new device did not resync from a trimmed timeline")
	}
	list, err := dev.Conversations(ctx)
	if err != nil || len(list.Conversations) != len(convs) {
		t.Fatalf("conversation list of the new device: %+v %v", list, err)
	}
	// Receipts of an archived message still answer.
	if _, err := bob.Receipts(ctx, convs[1].sent[3]); err != nil {
		t.Fatalf("receipts of an archived message: %v", err)
	}
}
