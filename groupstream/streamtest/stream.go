package streamtest

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/fanline/fanline/groupstream"
	"github.com/fanline/fanline/internal/wire"
)

// put stores one message from user in group g and returns it as stored.
func put(t *testing.T, s groupstream.Store, g, id uint64, from string) groupstream.Message {
	t.Helper()
	out, err := s.PutMessages(ctx, []groupstream.Message{{ID: id, ConversationID: g, From: from, Type: "text",
		Body: []byte(`{"text":"x"}`), CreatedAt: time.Now()}})
	if err != nil {
		t.Fatal(err)
	}
	return out[0]
}

func streamSeqs(t *testing.T, s groupstream.Store, g, after uint64) string {
	t.Helper()
	es, err := s.Stream(ctx, g, after, 100)
	if err != nil {
		t.Fatal(err)
	}
	out := ""
	for _, e := range es {
		out += fmt.Sprintf("%d:%s:%d:%s ", e.Seq, e.Kind, e.MsgID, e.From)
	}
	return out
}

func unreadOf(t *testing.T, s groupstream.Store, g uint64, user string) int64 {
	t.Helper()
	n, err := s.Unread(ctx, g, user)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// testStream walks a group (write at most 3 members, back below 2) through both
// switches and checks seqs, modes, the stream, read positions and derived unread.
func testStream(t *testing.T, s groupstream.Store) {
	at := time.Now()
	const g = 700
	if c, _ := s.CreateGroup(ctx, g, "g", "o", []string{"a", "b"}, at); c.FanoutMode() != groupstream.FanoutWrite {
		t.Fatalf("3 members: %s", c.FanoutMode())
	}
	if m := put(t, s, g, 1, "a"); m.Seq != 1 || m.Fanout != groupstream.FanoutWrite {
		t.Fatalf("first message %+v", m)
	}
	c, err := s.ChangeMembers(ctx, g, groupstream.MemberChange{Add: []string{"c"}}, at)
	if err != nil || c.FanoutMode() != groupstream.FanoutRead || c.FanoutSince != 2 {
		t.Fatalf("4 members: %+v %v", c, err)
	}
	if m, _ := s.Member(ctx, g, "c"); m.JoinSeq != 2 {
		t.Fatalf("c joins at %d, want 2", m.JoinSeq)
	}
	if m := put(t, s, g, 2, "b"); m.Seq != 2 || m.Fanout != groupstream.FanoutRead {
		t.Fatalf("second message %+v", m)
	}
	put(t, s, g, 3, "c")
	if got := streamSeqs(t, s, g, 0); got != "2:message:2:b 3:message:3:c " {
		t.Fatalf("stream: %s", got)
	}
	if got := streamSeqs(t, s, g, 2); got != "3:message:3:c " {
		t.Fatalf("stream after 2: %s", got)
	}
	// Sending reads up to the message; unread counts read-fanout messages only.
	for user, want := range map[string]int64{"a": 2, "b": 1, "c": 0, "o": 2} {
		if n := unreadOf(t, s, g, user); n != want {
			t.Errorf("unread of %s = %d, want %d", user, n, want)
		}
	}
	if n, _ := s.ReadCount(ctx, g, 2); n != 2 {
		t.Errorf("read count of seq 2 = %d, want 2 (b, c)", n)
	}
	if err := s.SetReadSeq(ctx, g, "a", 3); err != nil {
		t.Fatal(err)
	}
	if err := s.SetReadSeq(ctx, g, "a", 1); err != nil { // never backwards
		t.Fatal(err)
	}
	if r, _ := s.ReadSeq(ctx, g, "a"); r != 3 {
		t.Fatalf("a's read seq %d", r)
	}
	if n, _ := s.ReadCount(ctx, g, 3); n != 2 {
		t.Errorf("read count of seq 3 = %d, want 2 (a, c)", n)
	}
	if rs, _ := s.Readers(ctx, g, 2, "", 10); !slices.Equal(rs, []string{"a", "b", "c"}) {
		t.Errorf("readers of seq 2: %v", rs)
	}
	if rs, _ := s.Readers(ctx, g, 2, "a", 1); !slices.Equal(rs, []string{"b"}) {
		t.Errorf("second page of readers: %v", rs)
	}
	if err := s.SetReadSeq(ctx, g, "zed", 3); err != groupstream.ErrNotFound {
		t.Errorf("a non-member's read position: %v", err)
	}
	// A recall in read-fanout is a stream entry; it adds no unread.
	if m, err := s.Recall(ctx, 2, "o", at); err != nil || m.RecallSeq != 4 {
		t.Fatalf("recall: %+v %v", m, err)
	}
	if got := streamSeqs(t, s, g, 3); got != "4:recall:2:o " {
		t.Fatalf("stream after recall: %s", got)
	}
	if n := unreadOf(t, s, g, "o"); n != 2 {
		t.Errorf("o's unread after the recall entry = %d, want 2", n)
	}
	// Redelivery returns the first seq and mode and moves nothing.
	if m := put(t, s, g, 2, "b"); m.Seq != 2 || m.Fanout != groupstream.FanoutRead {
		t.Fatalf("redelivered message %+v", m)
	}
	// Down to 2 members (not below 2): still read. Down to 1: write again at seq 5.
	c, _ = s.ChangeMembers(ctx, g, groupstream.MemberChange{Remove: []string{"a", "c"}}, at)
	if c.FanoutMode() != groupstream.FanoutRead {
		t.Fatalf("2 members, hysteresis: %s", c.FanoutMode())
	}
	if n, _ := s.ReadCount(ctx, g, 3); n != 0 {
		t.Errorf("removed members still counted: %d", n)
	}
	// A past member's devices may still sync what they were a member for.
	if ls, err := s.LeftGroups(ctx, "c"); err != nil || len(ls) != 1 || ls[0].Conv != g || ls[0].JoinSeq != 2 || ls[0].LeftSeq != 4 {
		t.Fatalf("c's past membership: %+v %v", ls, err)
	}
	c, _ = s.ChangeMembers(ctx, g, groupstream.MemberChange{Remove: []string{"b"}}, at)
	if c.FanoutMode() != groupstream.FanoutWrite || c.FanoutSince != 5 {
		t.Fatalf("1 member: %+v", c)
	}
	if m := put(t, s, g, 5, "o"); m.Seq != 5 || m.Fanout != groupstream.FanoutWrite {
		t.Fatalf("message after switching back %+v", m)
	}
	if got := streamSeqs(t, s, g, 4); got != "" {
		t.Fatalf("write-fanout message in the stream: %s", got)
	}
	if gs, _ := s.UserGroups(ctx, "b"); len(gs) != 0 {
		t.Errorf("b's groups after removal: %v", gs)
	}
	// Rejoining gives the past membership up.
	if _, err := s.ChangeMembers(ctx, g, groupstream.MemberChange{Add: []string{"c"}}, at); err != nil {
		t.Fatal(err)
	}
	if ls, _ := s.LeftGroups(ctx, "c"); len(ls) != 0 {
		t.Errorf("c rejoined, past membership kept: %+v", ls)
	}
	if gs, _ := s.UserGroups(ctx, "o"); !slices.Equal(gs, []uint64{g}) {
		t.Errorf("o's groups: %v", gs)
	}
	if e := (groupstream.Message{ID: 5, Seq: 5}).Entry(); e.GroupSeq != 5 || e.Kind != wire.KindMessage {
		t.Errorf("entry of a group message: %+v", e)
	}
}

// testReadCounts moves random read positions in a read-fanout group and compares
// ReadCount, Readers and Unread with a brute-force model.
func testReadCounts(t *testing.T, s groupstream.Store) {
	const g, n = 800, 40
	var members []string
	for i := range n {
		members = append(members, fmt.Sprintf("u%02d", i))
	}
	if _, err := s.CreateGroup(ctx, g, "big", members[0], members[1:], time.Now()); err != nil {
		t.Fatal(err)
	}
	// 600 members > 500: read-fanout. Pad with members who never read.
	var pad []string
	for i := range 600 {
		pad = append(pad, fmt.Sprintf("p%03d", i))
	}
	if _, err := s.ChangeMembers(ctx, g, groupstream.MemberChange{Add: pad}, time.Now()); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	read := map[string]uint64{}
	var head uint64
	for step := range 400 {
		u := members[rng.IntN(n)]
		if rng.IntN(3) == 0 {
			m := put(t, s, g, uint64(1000+step), u)
			head = m.Seq
			read[u] = m.Seq
			continue
		}
		if head == 0 {
			continue
		}
		seq := 1 + rng.Uint64N(head)
		if err := s.SetReadSeq(ctx, g, u, seq); err != nil {
			t.Fatal(err)
		}
		read[u] = max(read[u], seq)
	}
	for seq := uint64(1); seq <= head; seq++ {
		var want []string
		for _, u := range members {
			if read[u] >= seq {
				want = append(want, u)
			}
		}
		if got, _ := s.ReadCount(ctx, g, seq); got != len(want) {
			t.Fatalf("read count of %d = %d, want %d", seq, got, len(want))
		}
		if got, _ := s.Readers(ctx, g, seq, "", 1000); !slices.Equal(got, want) {
			t.Fatalf("readers of %d = %v, want %v", seq, got, want)
		}
	}
	for _, u := range members {
		if got, want := unreadOf(t, s, g, u), int64(head-read[u]); got != want {
			t.Fatalf("unread of %s = %d, want %d", u, got, want)
		}
	}
}

// testCopiesInOneBatch: a send retried before its first copy was stored brings the
// same message twice in one batch; it is stored once, with one seq, in both modes.
func testCopiesInOneBatch(t *testing.T, s groupstream.Store) {
	at := time.Now()
	for _, tc := range []struct {
		g       uint64
		members []string
		mode    string
	}{{810, []string{"a"}, groupstream.FanoutWrite}, {811, []string{"a", "b", "c", "d"}, groupstream.FanoutRead}} {
		if c, err := s.CreateGroup(ctx, tc.g, "g", "o", tc.members, at); err != nil || c.FanoutMode() != tc.mode {
			t.Fatalf("group %d: %+v %v", tc.g, c, err)
		}
		m := groupstream.Message{ID: tc.g*10 + 1, ConversationID: tc.g, From: "a", Type: "text", Body: []byte(`{"text":"x"}`), CreatedAt: at}
		next := m
		next.ID++
		out, err := s.PutMessages(ctx, []groupstream.Message{m, m, next, m})
		if err != nil {
			t.Fatal(err)
		}
		if out[0].Seq != 1 || out[1].Seq != 1 || out[3].Seq != 1 || out[2].Seq != 2 {
			t.Fatalf("%s: seqs %d %d %d %d, want 1 1 2 1", tc.mode, out[0].Seq, out[1].Seq, out[2].Seq, out[3].Seq)
		}
		c, err := s.Conversation(ctx, tc.g)
		if err != nil || c.Head != 2 {
			t.Fatalf("%s: head %d after two messages (%v)", tc.mode, c.Head, err)
		}
		if tc.mode == groupstream.FanoutRead {
			if got := streamSeqs(t, s, tc.g, 0); got != fmt.Sprintf("1:message:%d:a 2:message:%d:a ", m.ID, next.ID) {
				t.Fatalf("stream %q", got)
			}
		}
		if n := unreadOf(t, s, tc.g, "b"); tc.mode == groupstream.FanoutRead && n != 2 {
			t.Fatalf("b's unread %d, want 2", n)
		}
	}
}

// testIDReused: a msg_id already taken by a message is refused, with ErrIDReused, for a
// different message (another conversation, sender or client_msg_id), stored or in
// the same batch, and nothing of that batch is stored; the same send again is
// answered with the stored message.
func testIDReused(t *testing.T, s groupstream.Store) {
	at := time.Now()
	if _, err := s.CreateGroup(ctx, 820, "g", "a", []string{"b"}, at); err != nil {
		t.Fatal(err)
	}
	m := groupstream.Message{ID: 8201, ConversationID: 820, From: "a", ClientMsgID: "c1", Type: "text",
		Body: []byte(`{"text":"first"}`), CreatedAt: at}
	if _, err := s.PutMessages(ctx, []groupstream.Message{m}); err != nil {
		t.Fatal(err)
	}
	bystander := groupstream.Message{ID: 8202, ConversationID: 820, From: "b", ClientMsgID: "c9", Type: "text",
		Body: []byte(`{"text":"other"}`), CreatedAt: at}
	other := func(change func(*groupstream.Message)) groupstream.Message {
		o := m
		o.Body = []byte(`{"text":"second"}`)
		change(&o)
		return o
	}
	for name, batch := range map[string][]groupstream.Message{
		"conversation":           {bystander, other(func(o *groupstream.Message) { o.ConversationID = 821 })},
		"sender":                 {bystander, other(func(o *groupstream.Message) { o.From = "b" })},
		"client_msg_id":          {bystander, other(func(o *groupstream.Message) { o.ClientMsgID = "c2" })},
		"in one batch":           {other(func(o *groupstream.Message) { o.ID = 8203 }), bystander, other(func(o *groupstream.Message) { o.ID, o.From = 8203, "b" })},
		"in one batch, reversed": {other(func(o *groupstream.Message) { o.ID, o.From = 8203, "b" }), other(func(o *groupstream.Message) { o.ID = 8203 })},
	} {
		if _, err := s.PutMessages(ctx, batch); !errors.Is(err, groupstream.ErrIDReused) {
			t.Fatalf("%s: a different message under a taken id: %v, want ErrIDReused", name, err)
		}
		for _, id := range []uint64{8202, 8203} {
			if got, err := s.Message(ctx, id); !errors.Is(err, groupstream.ErrNotFound) {
				t.Fatalf("%s: message %d of the refused batch stored: %+v %v", name, id, got, err)
			}
		}
	}
	stored, err := s.Message(ctx, m.ID)
	if err != nil || stored.From != "a" || string(stored.Body) != `{"text":"first"}` || stored.Seq != 1 {
		t.Fatalf("the first message after the refusals: %+v %v", stored, err)
	}
	if c, err := s.Conversation(ctx, 820); err != nil || c.Head != 1 {
		t.Fatalf("head %d after refusals (%v), want 1", c.Head, err)
	}
	// The same send again (a redelivery, or a retry whose body changed) is not a reuse.
	again, err := s.PutMessages(ctx, []groupstream.Message{other(func(*groupstream.Message) {}), bystander})
	if err != nil || again[0].Seq != 1 || string(again[0].Body) != `{"text":"first"}` || again[1].Seq != 2 {
		t.Fatalf("the same send again: %+v %v", again, err)
	}
}
