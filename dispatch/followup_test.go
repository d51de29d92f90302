package dispatch

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/fanline/fanline/internal/queue"
	"github.com/fanline/fanline/internal/testharness"
	"github.com/fanline/fanline/internal/wire"
	"github.com/fanline/fanline/timeline"
)

// failingQueue fails the next fails Produce calls to topic (a broker or disk fault).
type failingQueue struct {
	queue.Queue
	topic string
	mu    sync.Mutex
	fails int
}

func (q *failingQueue) failNext(topic string, n int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.topic, q.fails = topic, n
}

func (q *failingQueue) Produce(ctx context.Context, topic string, recs ...queue.Record) error {
	q.mu.Lock()
	fail := topic == q.topic && q.fails > 0
	if fail {
		q.fails--
	}
	q.mu.Unlock()
	if fail {
		return errors.New("injected: queue write failed")
	}
	return q.Queue.Produce(ctx, topic, recs...)
}

// indexPusher records the gateways' member-index hints.
type indexPusher struct {
	nopPusher
	mu      sync.Mutex
	removed map[string]int
}

func (p *indexPusher) GroupMembers(_, _ uint64, _, removed []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, u := range removed {
		p.removed[u]++
	}
}

// runStages runs d's stages until the test ends.
func runStages(t *testing.T, d *Dispatcher) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
}

// entries returns user's timeline entries of kind about msg.
func entries(t *testing.T, d *Dispatcher, user, kind string, msg uint64) int {
	t.Helper()
	res, err := d.timelines.Read(context.Background(), user, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range res {
		if e.Kind == kind && (msg == 0 || e.MsgID == msg) {
			n++
		}
	}
	return n
}

// TestMarkReadRetryQueuesReceipts: mark-read commits the read position and then
// queues the receipts. When the queue write fails, the call fails; its retry finds
// the position committed and must still queue the receipts, once.
func TestMarkReadRetryQueuesReceipts(t *testing.T) {
	d, _ := newTestDispatcher(t, nil)
	q := &failingQueue{Queue: d.q}
	d.q = q
	runStages(t, d)
	ctx := context.Background()
	al, bea := wire.Principal{ID: "al", Role: wire.RoleBuyer}, wire.Principal{ID: "bea", Role: wire.RoleBuyer}
	res, err := d.Send(ctx, al, "", wire.SendRequest{ClientMsgID: "c1", To: "bea", Type: "text", Body: []byte(`{"text":"hi"}`)})
	if err != nil {
		t.Fatal(err)
	}
	msg, conv := uint64(res.MsgID), uint64(res.ConversationID)
	testharness.WaitFor(t, 10*time.Second, "the message in bea's timeline", func() bool {
		return entries(t, d, "bea", timeline.KindMessage, msg) == 1
	})
	q.failNext(TopicControl, 1)
	if _, err := d.MarkRead(ctx, bea, conv, msg); err == nil {
		t.Fatal("mark-read succeeded although its receipts could not be queued")
	}
	if _, err := d.MarkRead(ctx, bea, conv, msg); err != nil {
		t.Fatal(err)
	}
	testharness.WaitFor(t, 10*time.Second, "al's receipt", func() bool {
		return entries(t, d, "al", timeline.KindRead, msg) == 1
	})
}

// TestMembershipRetryAnnounces: a membership change commits and then announces
// itself (the group event, the members' entries, the gateways' index). When the
// announcement fails, a retry of the same change must still make it; and with no
// retry at all, the dispatcher makes it by itself.
func TestMembershipRetryAnnounces(t *testing.T) {
	for _, retry := range []bool{true, false} {
		name := map[bool]string{true: "retried", false: "not retried"}[retry]
		t.Run(name, func(t *testing.T) {
			d, _ := newTestDispatcher(t, nil)
			q := &failingQueue{Queue: d.q}
			push := &indexPusher{removed: map[string]int{}}
			d.q, d.push = q, push
			ctx := context.Background()
			al := wire.Principal{ID: "al", Role: wire.RoleBuyer}
			g, err := d.CreateGroup(ctx, al, wire.CreateGroupRequest{Name: "g", Members: []string{"bea", "cy"}})
			if err != nil {
				t.Fatal(err)
			}
			q.failNext(TopicControl, 1)
			change := wire.MembersRequest{Remove: []string{"bea"}}
			if _, err := d.ChangeMembers(ctx, al, uint64(g.GroupID), change); err == nil {
				t.Fatal("the change succeeded although its announcement could not be queued")
			}
			if retry {
				if _, err := d.ChangeMembers(ctx, al, uint64(g.GroupID), change); err != nil {
					t.Fatal(err)
				}
			}
			d.announceGrace = 0 // the drain at start takes every pending announcement
			runStages(t, d)
			testharness.WaitFor(t, 10*time.Second, "bea's and cy's group events", func() bool {
				return entries(t, d, "bea", timeline.KindGroupEvent, 0) == 2 && entries(t, d, "cy", timeline.KindGroupEvent, 0) == 2
			})
			push.mu.Lock()
			defer push.mu.Unlock()
			if push.removed["bea"] == 0 {
				t.Fatal("the gateways were never told bea left the group")
			}
		})
	}
}
