package dispatch

import (
	"context"
	"testing"
	"time"

	"github.com/fanline/fanline/internal/ids"
	"github.com/fanline/fanline/internal/testharness"
	"github.com/fanline/fanline/internal/wire"
)

// TestBacklog: the lag is the age of the oldest message acknowledged and not yet
// delivered (stored, then in every recipient's timeline), whatever the order its
// stages report in; a retried send or a redelivered batch changes nothing, and a
// message never reported done stops counting after backlogForget.
func TestBacklog(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0)
	id := func(ms int) uint64 { return ids.Before(t0.Add(time.Duration(ms) * time.Millisecond)) }
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	b := newBacklog()
	if got := b.behind(at(0)); got != 0 {
		t.Fatalf("empty: %v", got)
	}
	b.feed(id(0))
	b.feed(id(10))
	b.feed(id(0)) // a retried send
	if got := b.behind(at(500)); got != 500*time.Millisecond {
		t.Fatalf("nothing stored: %v, want 500ms", got)
	}
	b.stored(id(0), 2)
	b.delivered(id(0))
	b.stored(id(0), 2) // the send stage's batch redelivered
	if got := b.behind(at(500)); got != 500*time.Millisecond {
		t.Fatalf("one of two recipients: %v, want 500ms", got)
	}
	if !b.delivered(id(0)) || b.delivered(id(0)) {
		t.Fatal("delivered reports the backlog's messages only")
	}
	if got := b.behind(at(500)); got != 490*time.Millisecond {
		t.Fatalf("the first delivered: %v, want 490ms (the second's age)", got)
	}
	b.delivered(id(10)) // a fanout job reported before its send stage's store
	b.stored(id(10), 1)
	if got := b.behind(at(600)); got != 0 {
		t.Fatalf("all delivered: %v", got)
	}
	b.feed(id(700))
	b.feed(id(800))
	b.stored(id(800), 0) // a newer message delivered, on a partition that keeps up
	if got := b.behind(at(1000)); got != 300*time.Millisecond {
		t.Fatalf("the older one still on its way: %v, want 300ms", got)
	}
	b.stored(id(700), 0)
	b.feed(id(1000))
	b.stored(id(1000), 0) // read-fanout: delivered once stored
	b.feed(id(2000))
	if got := b.behind(at(2000).Add(backlogForget)); got != 0 {
		t.Fatalf("a message older than backlogForget: %v, want 0", got)
	}
	for i := range 5000 { // order stays proportional to what is on its way
		b.feed(id(3000 + i))
		b.stored(id(3000+i), 0)
		b.behind(at(9000))
	}
	if len(b.order) > 2048 {
		t.Fatalf("order holds %d ids with nothing on its way", len(b.order))
	}
}

// TestSendsRefusedWhileStagesLag: when the stages after the ack are further behind
// than MaxStageLag, sends are refused with overloaded and a Retry-After instead of
// acknowledged into a growing backlog; once the stages catch up, sends are accepted.
func TestSendsRefusedWhileStagesLag(t *testing.T) {
	d, _ := newTestDispatcher(t, nil)
	d.cfg.MaxStageLag = 100 * time.Millisecond
	ctx := context.Background()
	al := wire.Principal{ID: "al", Role: wire.RoleBuyer}
	send := func(cmid string) error {
		_, err := d.Send(ctx, al, "", wire.SendRequest{ClientMsgID: cmid, To: "bea", Type: "text", Body: []byte(`{"text":"x"}`)})
		return err
	}
	if err := send("c1"); err != nil { // the stages are not running: it waits in the queue
		t.Fatal(err)
	}
	testharness.WaitFor(t, 10*time.Second, "a refusal", func() bool {
		err := send("c2")
		we, ok := err.(*wire.Error)
		if err != nil && (!ok || we.Code != wire.CodeOverloaded || we.RetryAfter < 1) {
			t.Fatalf("send while behind: %v", err)
		}
		return err != nil
	})
	runStages(t, d)
	testharness.WaitFor(t, 10*time.Second, "sends accepted again", func() bool { return send("c3") == nil })
}
