package dispatch

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/fanline/fanline/internal/queue"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestUndecodableRecordIsDeadLettered: a record the send stage cannot decode is not
// dropped silently. It goes to the dead-letter topic (where it came from, why, its
// bytes) with a metric, and the good records of its batch are stored as usual.
func TestUndecodableRecordIsDeadLettered(t *testing.T) {
	d, _ := newTestDispatcher(t, nil)
	ctx := context.Background()
	good := sendJob{MsgID: nextID(t, d), Conv: directConv(t, d), ConvKind: "direct", From: "al", ClientMsgID: "c1",
		Type: "text", Body: []byte(`{"text":"x"}`)}
	poison := queue.Record{Key: []byte("al"), Value: []byte{jobVersion, 0xff}, Offset: 7}
	if err := d.handleSend(ctx, TopicSend, 3, []queue.Record{poison, {Key: []byte("al"), Value: good.marshal()}}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.streams.Message(ctx, good.MsgID); err != nil {
		t.Fatalf("the good record of the batch: %v", err)
	}
	letters := deadLetters(t, d, 1)
	l := letters[0]
	if l.Topic != TopicSend || l.Partition != 3 || l.Offset != 7 || string(l.Value) != string(poison.Value) || l.Error == "" {
		t.Fatalf("dead letter %+v", l)
	}
	if n := testutil.ToFloat64(d.m.DeadLetters.WithLabelValues(TopicSend)); n != 1 {
		t.Fatalf("dead-letter metric %v, want 1", n)
	}
}

// TestNewerRecordIsRefused: a record written by a newer fanline (a downgrade with
// records in flight) is neither dropped nor dead-lettered: the stage handles the
// records before it and fails, so the queue retries from that record until a binary
// that reads it runs.
func TestNewerRecordIsRefused(t *testing.T) {
	d, _ := newTestDispatcher(t, nil)
	ctx := context.Background()
	conv := directConv(t, d)
	before := sendJob{MsgID: nextID(t, d), Conv: conv, ConvKind: "direct", From: "al", ClientMsgID: "c1",
		Type: "text", Body: []byte(`{"text":"x"}`)}
	after := before
	after.MsgID, after.ClientMsgID = nextID(t, d), "c3"
	newer := append([]byte{jobVersion + 1}, before.marshal()[1:]...)
	err := d.handleSend(ctx, TopicSend, 0, []queue.Record{
		{Key: []byte("al"), Value: before.marshal()}, {Key: []byte("al"), Value: newer}, {Key: []byte("al"), Value: after.marshal()}})
	if !errors.Is(err, errNewerJob) {
		t.Fatalf("handler returned %v, want the newer-version refusal", err)
	}
	if _, err := d.streams.Message(ctx, before.MsgID); err != nil {
		t.Fatalf("the record before the refused one: %v", err)
	}
	if _, err := d.streams.Message(ctx, after.MsgID); err == nil {
		t.Fatal("a record after the refused one was handled out of order")
	}
	if n := testutil.ToFloat64(d.m.RecordsRefused.WithLabelValues(TopicSend)); n != 1 {
		t.Fatalf("refusal metric %v, want 1", n)
	}
	if n := testutil.ToFloat64(d.m.DeadLetters.WithLabelValues(TopicSend)); n != 0 {
		t.Fatalf("a newer record was dead-lettered")
	}
}

// TestUndecodableFanoutRecordIsDeadLettered covers the fanout stage's decoding too.
func TestUndecodableFanoutRecordIsDeadLettered(t *testing.T) {
	d, _ := newTestDispatcher(t, nil)
	if err := d.handleFanout(context.Background(), TopicControl, 0, []queue.Record{{Key: []byte("bea"), Value: []byte("{}")}}); err != nil {
		t.Fatal(err)
	}
	if l := deadLetters(t, d, 1)[0]; l.Topic != TopicControl || string(l.Key) != "bea" {
		t.Fatalf("dead letter %+v", l)
	}
}

// deadLetters reads n records of the dead-letter topic.
func deadLetters(t *testing.T, d *Dispatcher, n int) []deadLetter {
	t.Helper()
	var out []deadLetter
	for _, r := range records(t, d, TopicDead, groupDead, n) {
		var l deadLetter
		if err := json.Unmarshal(r.Value, &l); err != nil {
			t.Fatalf("dead letter %q: %v", r.Value, err)
		}
		out = append(out, l)
	}
	return out
}
