package streamtest

import (
	"strings"
	"testing"
	"time"

	"github.com/fanline/fanline/groupstream"
)

// testAnnouncements: a group's creation and every membership change with an Event
// leave a pending announcement, written with the change, naming exactly what
// changed; a change that changes nothing leaves none; Announced removes one.
func testAnnouncements(t *testing.T, s groupstream.Store) {
	at := time.Now()
	if _, err := s.CreateGroup(ctx, 700, "g", "owen", []string{"bea", "al"}, at); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ChangeMembers(ctx, 700, groupstream.MemberChange{Add: []string{"cy"}, Remove: []string{"bea"},
		Promote: []string{"al"}, Event: 9001, Actor: "owen"}, at); err != nil {
		t.Fatal(err)
	}
	// The same change again changes nothing and announces nothing.
	if _, err := s.ChangeMembers(ctx, 700, groupstream.MemberChange{Add: []string{"cy"}, Remove: []string{"bea"},
		Event: 9002, Actor: "owen"}, at); err != nil {
		t.Fatal(err)
	}
	// Without an Event nothing is recorded.
	if _, err := s.ChangeMembers(ctx, 700, groupstream.MemberChange{Demote: []string{"al"}}, at); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateGroup(ctx, 701, "h", "zed", nil, at); err != nil {
		t.Fatal(err)
	}
	got, err := s.Announcements(ctx, 700, 0)
	if err != nil || len(got) != 2 {
		t.Fatalf("announcements of group 700: %+v %v, want 2", got, err)
	}
	c, ch := got[0], got[1]
	if c.Type != "created" || c.Event != 700 || c.Version != 1 || c.Actor != "owen" || strings.Join(c.Added, ",") != "al,bea,owen" {
		t.Fatalf("creation %+v", c)
	}
	if ch.Type != "members_changed" || ch.Event != 9001 || ch.Version != 2 || ch.Actor != "owen" ||
		strings.Join(ch.Added, ",") != "cy" || strings.Join(ch.Removed, ",") != "bea" || strings.Join(ch.Promoted, ",") != "al" ||
		len(ch.Demoted) != 0 {
		t.Fatalf("change %+v", ch)
	}
	all, err := s.Announcements(ctx, 0, 0)
	if err != nil || len(all) != 3 {
		t.Fatalf("every group's announcements: %+v %v", all, err)
	}
	if some, err := s.Announcements(ctx, 0, 2); err != nil || len(some) != 2 {
		t.Fatalf("limit 2: %+v %v", some, err)
	}
	for _, v := range []uint64{1, 1, 2} {
		if err := s.Announced(ctx, 700, v); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := s.Announcements(ctx, 700, 0); err != nil || len(got) != 0 {
		t.Fatalf("after Announced: %+v %v", got, err)
	}
}

// testRemovedSenderReads: a message acked while its sender was a member and stored
// after their removal does not give them a read position (a removed member's reads
// would count in "read by N of M").
func testRemovedSenderReads(t *testing.T, s groupstream.Store) {
	at := time.Now()
	if _, err := s.CreateGroup(ctx, 710, "g", "owen", []string{"bea", "al"}, at); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ChangeMembers(ctx, 710, groupstream.MemberChange{Remove: []string{"bea"}}, at); err != nil {
		t.Fatal(err)
	}
	stored, err := s.PutMessages(ctx, []groupstream.Message{{ID: 7101, ConversationID: 710, From: "bea", ClientMsgID: "b1",
		Type: "text", Body: []byte(`{"text":"x"}`), CreatedAt: at}})
	if err != nil || stored[0].Seq == 0 {
		t.Fatalf("stored %+v %v", stored, err)
	}
	if seq, err := s.ReadSeq(ctx, 710, "bea"); err != nil || seq != 0 {
		t.Fatalf("the removed sender's read position %d %v, want none", seq, err)
	}
	if n, err := s.ReadCount(ctx, 710, stored[0].Seq); err != nil || n != 0 {
		t.Fatalf("read count %d %v, want 0 (no member has read it)", n, err)
	}
}
