package gateway

import (
	"encoding/json"
	"testing"

	"github.com/fanline/fanline/internal/metrics"
	"github.com/fanline/fanline/internal/wire"
)

// TestPushAfterRecallHasNoBody: a message push that reaches a node after the push of
// its recall (a late fanout job, pushes crossing on the way) goes out as recalled,
// without its body, whether it comes from this process or relayed from another node.
func TestPushAfterRecallHasNoBody(t *testing.T) {
	h := NewHub(metrics.New())
	ann := testConn(h, "ann", "")
	msg := wire.Entry{Kind: wire.KindMessage, MsgID: 7, ConversationID: 3, Type: "text", Body: json.RawMessage(`{"text":"secret"}`)}
	h.Push("ann", msg, "")
	h.Push("ann", wire.Entry{Kind: wire.KindRecall, MsgID: 7, ConversationID: 3}, "")
	h.Push("ann", msg, "") // the late copy
	other := msg
	other.MsgID = 8
	h.Push("ann", other, "")
	frame, _ := json.Marshal(wire.ServerFrame{Type: wire.FrameMessage, Entry: &msg})
	h.deliver(t.Context(), relayed{User: "ann", Frame: frame, Kind: msg.Kind, Msg: 7})

	var got []wire.Entry
	for len(ann.out) > 0 {
		var f wire.ServerFrame
		if err := json.Unmarshal((<-ann.out).data, &f); err != nil {
			t.Fatal(err)
		}
		got = append(got, *f.Entry)
	}
	if len(got) != 5 {
		t.Fatalf("%d pushes, want 5", len(got))
	}
	if got[0].Body == nil || got[3].Body == nil {
		t.Fatalf("a push before the recall, or of another message, lost its body: %+v", got)
	}
	for _, i := range []int{2, 4} {
		if e := got[i]; e.Body != nil || e.Type != "" || !e.Recalled {
			t.Fatalf("push %d after the recall: %+v, want recalled without body", i, e)
		}
	}
}

func TestRecentRecallsForgetsTheOldest(t *testing.T) {
	r := newRecentRecalls()
	for i := uint64(1); i <= recallsKept+1; i++ {
		r.note(i)
	}
	if r.seen(1) || !r.seen(2) || !r.seen(recallsKept+1) {
		t.Fatal("the ring kept the wrong recalls")
	}
}
