// Package streamtest is the conformance suite every groupstream.Store backend runs.
package streamtest

import (
	"context"
	"encoding/json"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fanline/fanline/groupstream"
)

// Factory returns a fresh, empty store for one test.
type Factory func(t *testing.T) groupstream.Store

// Run runs the whole suite.
func Run(t *testing.T, f Factory) {
	t.Run("PairAllocatedOnce", func(t *testing.T) { testPair(t, f(t)) })
	t.Run("MessagesHistoryRecall", func(t *testing.T) { testMessages(t, f(t)) })
}

var ctx = context.Background()

func testPair(t *testing.T, s groupstream.Store) {
	var next atomic.Uint64
	newID := func() uint64 { return next.Add(1) + 1000 }
	var wg sync.WaitGroup
	ids := make([]uint64, 16)
	for i := range ids {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			a, b := "alice", "bob"
			if i%2 == 1 {
				a, b = b, a
			}
			c, err := s.DirectConversation(ctx, a, b, newID)
			if err != nil {
				t.Error(err)
			}
			ids[i] = c.ID
		}(i)
	}
	wg.Wait()
	for _, id := range ids {
		if id != ids[0] {
			t.Fatalf("pair got several conversations: %v", ids)
		}
	}
	c, err := s.Conversation(ctx, ids[0])
	if err != nil || c.Kind != groupstream.KindDirect || !c.HasMember("alice") || c.Peer("alice") != "bob" {
		t.Fatalf("conversation %+v %v", c, err)
	}
	other, _ := s.DirectConversation(ctx, "alice", "carol", newID)
	if other.ID == c.ID {
		t.Fatal("two pairs share a conversation")
	}
	if _, err := s.Conversation(ctx, 42); err != groupstream.ErrNotFound {
		t.Fatalf("unknown conversation: %v", err)
	}
}

func testMessages(t *testing.T, s groupstream.Store) {
	body := json.RawMessage(`{"text":"hi"}`)
	var msgs []groupstream.Message
	for id := uint64(1); id <= 25; id++ {
		msgs = append(msgs, groupstream.Message{ID: id, ConversationID: 9, From: "a", Type: "text", Body: body, CreatedAt: time.Now()})
	}
	if err := s.PutMessages(ctx, msgs); err != nil {
		t.Fatal(err)
	}
	page, more, err := s.History(ctx, 9, 0, 10)
	if err != nil || !more || len(page) != 10 || page[0].ID != 25 || page[9].ID != 16 {
		t.Fatalf("first page: %v more=%v %d", err, more, len(page))
	}
	page, more, _ = s.History(ctx, 9, 6, 10)
	if more || len(page) != 5 || page[0].ID != 5 || page[4].ID != 1 {
		t.Fatalf("last page: more=%v %+v", more, page)
	}
	if _, err := s.Recall(ctx, 3, time.Now()); err != nil {
		t.Fatal(err)
	}
	// Storing the message again (a redelivered send) does not undo the recall.
	if err := s.PutMessages(ctx, msgs[2:3]); err != nil {
		t.Fatal(err)
	}
	m, err := s.Message(ctx, 3)
	if err != nil || !m.Recalled() {
		t.Fatalf("message 3 after recall: %+v %v", m, err)
	}
	got, err := s.LookupMessages(ctx, []uint64{3, 4, 99})
	if err != nil || len(got) != 2 {
		t.Fatalf("lookup: %v %v", got, err)
	}
	if e := got[3]; !e.Recalled || e.Body != nil || e.Type != "" {
		t.Fatalf("recalled message rendered with content: %+v", e)
	}
	if e := got[4]; e.Recalled || string(e.Body) != `{"text":"hi"}` {
		t.Fatalf("message 4 rendered as %+v", e)
	}
	if _, err := s.Message(ctx, 99); err != groupstream.ErrNotFound {
		t.Fatalf("missing message: %v", err)
	}
}
