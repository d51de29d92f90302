package dispatch

import (
	"context"
	"sync"
	"testing"

	"github.com/fanline/fanline/internal/queue"
	"github.com/fanline/fanline/internal/wire"
)

// recordingPusher keeps every timeline push.
type recordingPusher struct {
	nopPusher
	mu     sync.Mutex
	pushed map[string][]wire.Entry
}

func (p *recordingPusher) Push(user string, e wire.Entry, _ string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pushed == nil {
		p.pushed = map[string][]wire.Entry{}
	}
	p.pushed[user] = append(p.pushed[user], e)
}

// TestLateFanoutAfterRecallPushesNoBody: when a message's fanout job runs after the
// message was recalled (the fanout stage behind, or the job redelivered), the entry
// pushed to the recipients says recalled and carries no body.
func TestLateFanoutAfterRecallPushesNoBody(t *testing.T) {
	d, _ := newTestDispatcher(t, nil)
	push := &recordingPusher{}
	d.push = push
	ctx := context.Background()
	job := sendJob{MsgID: nextID(t, d), Conv: directConv(t, d), ConvKind: "direct", From: "al", ClientMsgID: "c1",
		Type: "text", Body: []byte(`{"text":"secret"}`)}
	if err := d.handleSend(ctx, TopicSend, 0, []queue.Record{{Key: []byte("al"), Value: job.marshal()}}); err != nil {
		t.Fatal(err)
	}
	jobs := records(t, d, TopicFanout, groupFanout, 2) // al's and bea's entries, not appended yet
	if err := d.Recall(ctx, wire.Principal{ID: "al", Role: wire.RoleBuyer}, job.MsgID); err != nil {
		t.Fatal(err)
	}
	if err := d.handleFanout(ctx, TopicFanout, 0, jobs); err != nil {
		t.Fatal(err)
	}
	push.mu.Lock()
	defer push.mu.Unlock()
	for _, user := range []string{"al", "bea"} {
		got := push.pushed[user]
		if len(got) != 1 {
			t.Fatalf("%s got %d pushes, want 1: %+v", user, len(got), got)
		}
		if e := got[0]; e.Body != nil || e.Type != "" || !e.Recalled {
			t.Fatalf("%s was pushed %+v after the recall, want a recalled entry without body", user, e)
		}
	}
}
