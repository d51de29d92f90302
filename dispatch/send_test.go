package dispatch

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/fanline/fanline/groupstream"
	"github.com/fanline/fanline/internal/queue"
	"github.com/fanline/fanline/internal/testharness"
	"github.com/fanline/fanline/internal/wire"
)

// TestRetriedGroupSendInOneBatch: a group send retried (same client_msg_id, so the
// same msg_id) before the send stage stored the first copy can bring both copies into
// one batch. The message is stored once, with one group seq, and fanned out once:
// the member's unread is 1 and the next message's seq follows without a gap.
func TestRetriedGroupSendInOneBatch(t *testing.T) {
	d, _ := newTestDispatcher(t, nil)
	ctx := context.Background()
	al := wire.Principal{ID: "al", Role: wire.RoleBuyer}
	g, err := d.CreateGroup(ctx, al, wire.CreateGroupRequest{Name: "g", Members: []string{"bea"}})
	if err != nil {
		t.Fatal(err)
	}
	id, _ := d.ids.Next()
	job := sendJob{MsgID: id, Conv: uint64(g.GroupID), ConvKind: "group", From: "al", ClientMsgID: "c1", Type: "text",
		Body: []byte(`{"text":"x"}`)}
	rec := queue.Record{Key: []byte(g.GroupID.String()), Value: job.marshal()}
	if err := d.handleSend(ctx, TopicSend, 0, []queue.Record{rec, rec}); err != nil {
		t.Fatal(err)
	}
	m, err := d.streams.Message(ctx, id)
	if err != nil || m.Seq != 1 {
		t.Fatalf("stored %+v %v", m, err)
	}
	next := job
	next.ClientMsgID = "c2"
	if next.MsgID, err = d.ids.Next(); err != nil {
		t.Fatal(err)
	}
	if err := d.handleSend(ctx, TopicSend, 0, []queue.Record{{Key: rec.Key, Value: next.marshal()}}); err != nil {
		t.Fatal(err)
	}
	if m, _ := d.streams.Message(ctx, next.MsgID); m.Seq != 2 {
		t.Fatalf("the next message's seq %d, want 2", m.Seq)
	}
	// The fanout jobs: one per member and message.
	var mu sync.Mutex
	fanned := map[string]int{}
	cctx, cancel := context.WithCancel(ctx)
	consumed := make(chan error, 1)
	go func() {
		consumed <- d.q.Consume(cctx, TopicFanout, groupFanout, func(ctx context.Context, _ int, recs []queue.Record) error {
			mu.Lock()
			for _, r := range recs {
				var j fanoutJob
				if j.unmarshal(r.Value) == nil && j.MsgID == id {
					fanned[j.User]++
				}
			}
			mu.Unlock()
			return d.handleFanout(ctx, TopicFanout, 0, recs)
		})
	}()
	testharness.WaitFor(t, 10*time.Second, "bea's two messages", func() bool {
		u, err := d.Unread(ctx, wire.Principal{ID: "bea", Role: wire.RoleBuyer})
		return err == nil && u.TotalUnread == 2
	})
	cancel()
	<-consumed
	mu.Lock()
	defer mu.Unlock()
	if fanned["bea"] != 1 || fanned["al"] != 1 {
		t.Fatalf("fanout jobs of the message %v, want one each", fanned)
	}
}

// TestGroupOrderAcrossTheFanoutSwitch: one sender's group messages keep their send
// order in group_seq when a membership change switches the group's fanout mode
// between them, even while the stage that took the first one is backlogged.
func TestGroupOrderAcrossTheFanoutSwitch(t *testing.T) {
	d, db := newTestDispatcher(t, nil)
	d.cfg.MaxStageLag = -1 // the backlog is the point
	d.streams = groupstream.NewPebbleStore(db, groupstream.Config{WriteMaxMembers: 2, WriteBackMembers: 1})
	ctx := context.Background()
	al := wire.Principal{ID: "al", Role: wire.RoleBuyer}
	g, err := d.CreateGroup(ctx, al, wire.CreateGroupRequest{Name: "g", Members: []string{"bea"}})
	if err != nil || g.Fanout != groupstream.FanoutWrite {
		t.Fatalf("create: %+v %v", g, err)
	}
	// A backlog of direct chats ahead of the group's first message.
	for i := range 300 {
		if _, err := d.Send(ctx, al, "", wire.SendRequest{ClientMsgID: fmt.Sprintf("d%d", i), To: "bea", Type: "text",
			Body: []byte(`{"text":"x"}`)}); err != nil {
			t.Fatal(err)
		}
	}
	send := func(cmid string) uint64 {
		t.Helper()
		res, err := d.Send(ctx, al, "", wire.SendRequest{ClientMsgID: cmid, GroupID: g.GroupID, Type: "text",
			Body: []byte(`{"text":"x"}`)})
		if err != nil {
			t.Fatal(err)
		}
		return uint64(res.MsgID)
	}
	first := send("g1")
	if _, err := d.ChangeMembers(ctx, al, uint64(g.GroupID), wire.MembersRequest{Add: []string{"cy"}}); err != nil {
		t.Fatal(err)
	}
	if c, err := d.streams.Conversation(ctx, uint64(g.GroupID)); err != nil || c.FanoutMode() != groupstream.FanoutRead {
		t.Fatalf("after the switch: %+v %v", c, err)
	}
	second := send("g2")
	runStages(t, d)
	var a, b groupstream.Message
	testharness.WaitFor(t, 20*time.Second, "both group messages stored", func() bool {
		var ea, eb error
		a, ea = d.streams.Message(ctx, first)
		b, eb = d.streams.Message(ctx, second)
		return ea == nil && eb == nil
	})
	if a.Seq >= b.Seq {
		t.Fatalf("al's first group message has seq %d, the second (sent after it) %d", a.Seq, b.Seq)
	}
}
