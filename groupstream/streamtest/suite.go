// Package streamtest is the conformance suite every groupstream.Store backend runs.
package streamtest

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fanline/fanline/groupstream"
)

// Factory returns a fresh, empty store with cfg for one test.
type Factory func(t *testing.T, cfg groupstream.Config) groupstream.Store

// Run runs the whole suite.
func Run(t *testing.T, f Factory) {
	def := func(t *testing.T) groupstream.Store { return f(t, groupstream.Config{}) }
	t.Run("PairAllocatedOnce", func(t *testing.T) { testPair(t, def(t)) })
	t.Run("MessagesHistoryRecall", func(t *testing.T) { testMessages(t, def(t)) })
	t.Run("GroupMembership", func(t *testing.T) { testGroups(t, def(t)) })
	t.Run("StreamAndFanoutSwitch", func(t *testing.T) {
		testStream(t, f(t, groupstream.Config{WriteMaxMembers: 3, WriteBackMembers: 2}))
	})
	t.Run("ReadCountsMatchOracle", func(t *testing.T) { testReadCounts(t, def(t)) })
	t.Run("Announcements", func(t *testing.T) { testAnnouncements(t, def(t)) })
	t.Run("RemovedSenderReads", func(t *testing.T) { testRemovedSenderReads(t, def(t)) })
	t.Run("CopiesInOneBatch", func(t *testing.T) {
		testCopiesInOneBatch(t, f(t, groupstream.Config{WriteMaxMembers: 3, WriteBackMembers: 2}))
	})
	t.Run("IDReusedIsRefused", func(t *testing.T) { testIDReused(t, def(t)) })
	t.Run("ArchiverSteps", func(t *testing.T) {
		testArchive(t, f(t, groupstream.Config{WriteMaxMembers: 3, WriteBackMembers: 2}))
	})
	t.Run("Holds", func(t *testing.T) { testHolds(t, def(t)) })
}

func users(ms []groupstream.Member) string {
	var out []string
	for _, m := range ms {
		out = append(out, m.User+":"+m.Role)
	}
	return strings.Join(out, ",")
}

func testGroups(t *testing.T, s groupstream.Store) {
	at := time.Now()
	g, err := s.CreateGroup(ctx, 500, "shop fans", "owen", []string{"bea", "al", "bea", "owen"}, at)
	if err != nil || g.Kind != groupstream.KindGroup || g.MemberCount != 3 || g.Version != 1 || g.Owner != "owen" {
		t.Fatalf("create: %+v %v", g, err)
	}
	ms, err := s.Members(ctx, 500)
	if err != nil || users(ms) != "al:member,bea:member,owen:owner" {
		t.Fatalf("members %s %v", users(ms), err)
	}
	if _, err := s.Member(ctx, 500, "zed"); err != groupstream.ErrNotFound {
		t.Fatalf("non-member: %v", err)
	}
	before := users(ms)
	g, err = s.ChangeMembers(ctx, 500, groupstream.MemberChange{Add: []string{"cy", "al"}, Remove: []string{"bea", "nobody"}, Promote: []string{"al"}}, at)
	if users(ms) != before {
		t.Fatalf("a change rewrote a member list handed out earlier: %s, was %s", users(ms), before)
	}
	if err != nil || g.MemberCount != 3 || g.Version != 2 {
		t.Fatalf("change: %+v %v", g, err)
	}
	ms, _ = s.Members(ctx, 500)
	if users(ms) != "al:admin,cy:member,owen:owner" {
		t.Fatalf("members after change %s", users(ms))
	}
	if m, err := s.Member(ctx, 500, "al"); err != nil || m.Role != groupstream.RoleAdmin {
		t.Fatalf("al: %+v %v", m, err)
	}
	// No-op changes keep the version.
	if g, _ = s.ChangeMembers(ctx, 500, groupstream.MemberChange{Add: []string{"cy"}, Promote: []string{"al"}}, at); g.Version != 2 {
		t.Fatalf("no-op change bumped the version to %d", g.Version)
	}
	if _, err := s.ChangeMembers(ctx, 500, groupstream.MemberChange{Remove: []string{"owen"}}, at); err != groupstream.ErrOwner {
		t.Fatalf("removing the owner: %v", err)
	}
	if _, err := s.ChangeMembers(ctx, 500, groupstream.MemberChange{Add: []string{"d1", "d2"}, Max: 4}, at); err != groupstream.ErrTooManyMembers {
		t.Fatalf("over the limit: %v", err)
	}
	if g, _ := s.Conversation(ctx, 500); g.MemberCount != 3 || g.Version != 2 {
		t.Fatalf("a refused change left %+v", g)
	}
	// Direct conversations answer membership from their pair.
	d, _ := s.DirectConversation(ctx, "al", "cy", func() uint64 { return 501 })
	if ms, err := s.Members(ctx, d.ID); err != nil || users(ms) != "al:member,cy:member" {
		t.Fatalf("direct members %s %v", users(ms), err)
	}
	if _, err := s.ChangeMembers(ctx, d.ID, groupstream.MemberChange{Add: []string{"x"}}, at); err != groupstream.ErrNotFound {
		t.Fatalf("changing a direct conversation: %v", err)
	}
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
	if err != nil || c.Kind != groupstream.KindDirect || strings.Join(c.Members, ",") != "alice,bob" {
		t.Fatalf("conversation %+v %v", c, err)
	}
	other, _ := s.DirectConversation(ctx, "alice", "carol", newID)
	if other.ID == c.ID {
		t.Fatal("two pairs share a conversation")
	}
	if _, err := s.Conversation(ctx, 42); err != groupstream.ErrNotFound {
		t.Fatalf("unknown conversation: %v", err)
	}
	// A buyer's conversation with a shop: allocated once, the buyer its one member.
	sc, err := s.ShopConversation(ctx, "alice", "acme", newID)
	if err != nil || sc.Kind != groupstream.KindShop || sc.Shop != "acme" {
		t.Fatalf("shop conversation %+v %v", sc, err)
	}
	if again, _ := s.ShopConversation(ctx, "alice", "acme", newID); again.ID != sc.ID {
		t.Fatal("a buyer and a shop got two conversations")
	}
	if other, _ := s.ShopConversation(ctx, "alice", "zeta", newID); other.ID == sc.ID {
		t.Fatal("two shops share a buyer's conversation")
	}
	if _, err := s.Member(ctx, sc.ID, "alice"); err != nil {
		t.Fatalf("the buyer is not a member: %v", err)
	}
	if _, err := s.Member(ctx, sc.ID, "acme"); err != groupstream.ErrNotFound {
		t.Fatalf("the shop id is a member: %v", err)
	}
}

func testMessages(t *testing.T, s groupstream.Store) {
	body := json.RawMessage(`{"text":"hi"}`)
	var msgs []groupstream.Message
	for id := uint64(1); id <= 25; id++ {
		msgs = append(msgs, groupstream.Message{ID: id, ConversationID: 9, From: "a", Type: "text", Body: body, CreatedAt: time.Now()})
	}
	if _, err := s.PutMessages(ctx, msgs); err != nil {
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
	if _, err := s.Recall(ctx, 3, "a", time.Now()); err != nil {
		t.Fatal(err)
	}
	// Storing the message again (a redelivered send) does not undo the recall.
	if again, err := s.PutMessages(ctx, msgs[2:3]); err != nil || !again[0].Recalled() {
		t.Fatalf("stored again: %+v %v", again, err)
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
