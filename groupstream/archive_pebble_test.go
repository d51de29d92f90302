package groupstream

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/fanline/fanline/internal/ids"
	"github.com/fanline/fanline/internal/kv"
	"github.com/fanline/fanline/internal/tier"
)

// TestDropRunLetsLiveWritesIn: a move's reads and deletions call its pace hook
// every few rows, and while it deletes a long run's warm rows, writes
// to the conversation (and so to every conversation of its lock stripe, and every
// batch of the send stage holding one of them) go in between its chunks; they never
// wait for the whole run. The run still ends with every moved row gone and the new
// message kept.
func TestDropRunLetsLiveWritesIn(t *testing.T) {
	db, err := kv.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	s := NewPebbleStore(db, Config{})
	d, err := s.DirectConversation(ctx, "al", "bea", func() uint64 { return 900 })
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	base := uint64(now.Add(-time.Hour).Sub(ids.Epoch).Milliseconds()) << 22
	const n = 3*dropChunk + 7
	msgs := make([]Message, n)
	for i := range msgs {
		msgs[i] = Message{ID: base + uint64(i), ConversationID: d.ID, From: "al", Type: "text",
			Body: json.RawMessage(fmt.Sprintf(`{"n":%d}`, i)), CreatedAt: now}
	}
	if _, err := s.PutMessages(ctx, msgs); err != nil {
		t.Fatal(err)
	}
	live := base + n + 1000
	paces := 0
	recs, err := s.Run(tier.WithPace(ctx, func(context.Context) error { paces++; return nil }), d.ID, live, n)
	if err != nil || len(recs) != n {
		t.Fatalf("run: %d records, %v", len(recs), err)
	}
	if paces != n/tier.PaceRows {
		t.Errorf("reading %d rows paced %d times, want %d", n, paces, n/tier.PaceRows)
	}
	seg := tier.Segment{Conv: d.ID, Key: "seg", Created: now, FirstMsgID: recs[0].MsgID, LastMsgID: recs[n-1].MsgID, Messages: n}
	if err := s.AddSegment(ctx, seg); err != nil {
		t.Fatal(err)
	}

	paused, resume := make(chan struct{}), make(chan struct{})
	chunks := 0
	pace := func(context.Context) error {
		if chunks++; chunks == 1 {
			close(paused)
			<-resume
		}
		return nil
	}
	dropped := make(chan error, 1)
	go func() { dropped <- s.DeleteRun(tier.WithPace(ctx, pace), seg, recs) }()
	<-paused
	wrote := make(chan error, 1)
	go func() {
		_, err := s.PutMessages(ctx, []Message{{ID: live, ConversationID: d.ID, From: "bea", Type: "text",
			Body: json.RawMessage(`{"text":"live"}`), CreatedAt: now}})
		wrote <- err
	}()
	select {
	case err = <-wrote:
	case <-time.After(10 * time.Second):
		t.Error("a live write to the conversation waited for the whole run's deletion")
		close(resume)
		err = <-wrote
		resume = nil
	}
	if err != nil {
		t.Fatal(err)
	}
	if resume != nil {
		close(resume)
	}
	if err := <-dropped; err != nil {
		t.Fatal(err)
	}
	if chunks != 3 {
		t.Errorf("%d chunks between the run's deletions, want 3", chunks)
	}
	left, err := s.Run(ctx, d.ID, live+1, n+1)
	if err != nil || len(left) != 1 || left[0].MsgID != live {
		t.Fatalf("warm after the move: %d records (first %+v), %v; want the live message alone", len(left), left, err)
	}
	if m, err := s.Manifest(ctx, d.ID); err != nil || len(m) != 1 || m[0].Pending {
		t.Fatalf("manifest after the move: %+v %v", m, err)
	}
}
