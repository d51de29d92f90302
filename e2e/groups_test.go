package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fanline/fanline/client"
	"github.com/fanline/fanline/internal/config"
	"github.com/fanline/fanline/internal/testharness"
	"github.com/fanline/fanline/internal/wire"
)

// nextMessage returns the next message entry a device gets, skipping other kinds.
func nextMessage(t *testing.T, c *client.Client) wire.Entry {
	t.Helper()
	for {
		select {
		case e := <-c.Entries():
			if e.Kind == wire.KindMessage {
				return e
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no message entry")
		}
	}
}

func wantCode(t *testing.T, what string, err error, code wire.Code) {
	t.Helper()
	if we, ok := err.(*wire.Error); !ok || we.Code != code {
		t.Fatalf("%s: got %v, want %s", what, err, code)
	}
}

// TestSmallGroup: a group of a few members is written into every member's timeline;
// membership changes take effect from the next message; owner and admins manage it.
func TestSmallGroup(t *testing.T) {
	ts := startServer(t, func(c *config.Config) {
		c.Limits.MaxGroupMembers = 5
		c.Messages.RecallWindow = config.Duration(time.Millisecond)
	})
	ctx := context.Background()
	owen, al, bea, cy := connect(t, ts.URL, "owen"), connect(t, ts.URL, "al"), connect(t, ts.URL, "bea"), connect(t, ts.URL, "cy")

	g, err := owen.CreateGroup(ctx, "  buyers club ", "al", "bea", "al")
	if err != nil || g.Name != "buyers club" || g.MemberCount != 3 || g.Fanout != "write" || g.Role != "owner" || g.Owner != "owen" {
		t.Fatalf("create: %+v %v", g, err)
	}
	first, err := al.Send(ctx, wire.SendRequest{GroupID: g.GroupID, Type: "text", Body: text("hello club")})
	if err != nil || first.ConversationID != g.GroupID {
		t.Fatalf("send: %+v %v", first, err)
	}
	for _, c := range []*client.Client{owen, al, bea} {
		if e := nextMessage(t, c); e.MsgID != first.MsgID || e.ConversationID != g.GroupID || e.From != "al" {
			t.Fatalf("member got %+v", e)
		}
	}
	list, _ := bea.Conversations(ctx)
	if len(list.Conversations) != 1 || list.Conversations[0].Kind != "group" || list.Conversations[0].GroupID != g.GroupID ||
		list.Conversations[0].Unread != 1 || list.TotalUnread != 1 {
		t.Fatalf("bea's conversations %+v", list)
	}

	// Outsiders and plain members.
	_, err = cy.Send(ctx, wire.SendRequest{GroupID: g.GroupID, Type: "text", Body: text("let me in")})
	wantCode(t, "outsider sends", err, wire.CodeNotParticipant)
	_, err = cy.Group(ctx, g.GroupID)
	wantCode(t, "outsider reads the group", err, wire.CodeNotParticipant)
	_, err = al.ChangeMembers(ctx, g.GroupID, wire.MembersRequest{Add: []string{"cy"}})
	wantCode(t, "member adds", err, wire.CodeNotGroupAdmin)
	_, err = owen.Group(ctx, 12345)
	wantCode(t, "unknown group", err, wire.CodeGroupMissing)
	_, err = owen.Group(ctx, first.ConversationID+1)
	wantCode(t, "not a group id", err, wire.CodeGroupMissing)

	// The owner promotes al; al adds cy, who sees messages from the join point only.
	if g, err = owen.ChangeMembers(ctx, g.GroupID, wire.MembersRequest{Promote: []string{"al"}}); err != nil || g.Version != 2 {
		t.Fatalf("promote: %+v %v", g, err)
	}
	_, err = al.ChangeMembers(ctx, g.GroupID, wire.MembersRequest{Promote: []string{"bea"}})
	wantCode(t, "admin promotes", err, wire.CodeNotGroupAdmin)
	if g, err = al.ChangeMembers(ctx, g.GroupID, wire.MembersRequest{Add: []string{"cy"}}); err != nil || g.MemberCount != 4 {
		t.Fatalf("admin adds: %+v %v", g, err)
	}
	_, err = al.ChangeMembers(ctx, g.GroupID, wire.MembersRequest{Add: []string{"d1", "d2"}})
	wantCode(t, "over the member limit", err, wire.CodeTooManyMembers)
	_, err = owen.ChangeMembers(ctx, g.GroupID, wire.MembersRequest{Remove: []string{"owen"}})
	wantCode(t, "remove the owner", err, wire.CodeOwnerImmutable)
	_, err = al.ChangeMembers(ctx, g.GroupID, wire.MembersRequest{Add: []string{"bad id"}})
	wantCode(t, "bad member id", err, wire.CodeInvalidUserID)

	second, err := cy.Send(ctx, wire.SendRequest{GroupID: g.GroupID, Type: "text", Body: text("thanks")})
	if err != nil {
		t.Fatal(err)
	}
	if e := nextMessage(t, cy); e.MsgID != second.MsgID {
		t.Fatalf("cy's first message is %+v, want only what came after joining", e)
	}
	// The owner removes bea: she gets nothing more and can no longer send.
	if _, err := owen.ChangeMembers(ctx, g.GroupID, wire.MembersRequest{Remove: []string{"bea"}}); err != nil {
		t.Fatal(err)
	}
	third, err := owen.Send(ctx, wire.SendRequest{ConversationID: g.GroupID, Type: "text", Body: text("bye bea")})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []*client.Client{owen, al} {
		nextMessage(t, c) // "thanks"
		if e := nextMessage(t, c); e.MsgID != third.MsgID {
			t.Fatalf("member got %+v", e)
		}
	}
	if e := nextMessage(t, bea); e.MsgID != second.MsgID {
		t.Fatalf("bea got %+v", e)
	}
	select {
	case e := <-bea.Entries():
		if e.Kind == wire.KindMessage {
			t.Fatalf("removed member got %+v", e)
		}
	case <-time.After(300 * time.Millisecond):
	}
	_, err = bea.Send(ctx, wire.SendRequest{GroupID: g.GroupID, Type: "text", Body: text("wait")})
	wantCode(t, "removed member sends", err, wire.CodeNotParticipant)

	// Receipts list readers among the recipients (members other than the sender).
	if err := cy.MarkRead(ctx, g.GroupID, third.MsgID); err != nil {
		t.Fatal(err)
	}
	rc, err := owen.Receipts(ctx, third.MsgID)
	if err != nil || rc.MemberCount != 2 || rc.ReadCount != 1 || rc.Readers[0] != "cy" {
		t.Fatalf("receipts %+v %v", rc, err)
	}
	// Recall: the sender only within the window; the owner and admins at any time.
	testharness.WaitFor(t, time.Second, "the recall window to pass", func() bool { return time.Since(first.CreatedAt) > 5*time.Millisecond })
	wantCode(t, "plain member recalls their own, late", cy.Recall(ctx, second.MsgID), wire.CodeRecallWindowPassed)
	wantCode(t, "plain member recalls another's", cy.Recall(ctx, third.MsgID), wire.CodeNotSender)
	if err := owen.Recall(ctx, second.MsgID); err != nil {
		t.Fatalf("owner recalls a member's message late: %v", err)
	}
	if err := al.Recall(ctx, first.MsgID); err != nil {
		t.Fatalf("admin recalls late: %v", err)
	}
	page, _ := cy.History(ctx, g.GroupID, 0, 10)
	for _, m := range page.Messages {
		if m.MsgID == second.MsgID && (!m.Recalled || m.Body != nil) {
			t.Fatalf("recalled message in history: %+v", m)
		}
	}
}

// nextEvent returns the next group_event entry a device gets, skipping other kinds.
func nextEvent(t *testing.T, c *client.Client) (wire.Entry, wire.GroupEvent) {
	t.Helper()
	for {
		select {
		case e := <-c.Entries():
			if e.Kind != wire.KindGroupEvent {
				continue
			}
			var ev wire.GroupEvent
			if err := json.Unmarshal(e.Body, &ev); err != nil {
				t.Fatalf("group event body %s: %v", e.Body, err)
			}
			return e, ev
		case <-time.After(10 * time.Second):
			t.Fatal("no group event")
		}
	}
}

// TestGroupEvents: creation and every effective membership change reach the members'
// (and the removed members') timelines as group_event entries; a new member sees the
// group in their conversation list at once; events add no unread and cannot be
// recalled.
func TestGroupEvents(t *testing.T) {
	ts := startServer(t, nil)
	ctx := context.Background()
	owen, al, cy := connect(t, ts.URL, "owen"), connect(t, ts.URL, "al"), connect(t, ts.URL, "cy")
	g, err := owen.CreateGroup(ctx, "club", "al")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []*client.Client{owen, al} {
		e, ev := nextEvent(t, c)
		if e.Type != "created" || e.ConversationID != g.GroupID || ev.By != "owen" || ev.Name != "club" ||
			strings.Join(ev.Added, ",") != "al,owen" || ev.Version != 1 {
			t.Fatalf("created event %+v %+v", e, ev)
		}
	}
	if _, err := owen.ChangeMembers(ctx, g.GroupID, wire.MembersRequest{Add: []string{"cy"}, Promote: []string{"al"}}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*client.Client{owen, al, cy} {
		e, ev := nextEvent(t, c)
		if e.Type != "members_changed" || strings.Join(ev.Added, ",") != "cy" || strings.Join(ev.Promoted, ",") != "al" || ev.Version != 2 {
			t.Fatalf("change event %+v %+v", e, ev)
		}
	}
	list, err := cy.Conversations(ctx)
	if err != nil || len(list.Conversations) != 1 || list.Conversations[0].GroupID != g.GroupID ||
		list.Conversations[0].Unread != 0 || list.TotalUnread != 0 {
		t.Fatalf("cy's list right after joining: %+v %v", list, err)
	}
	// A change that changes nothing announces nothing; a removal reaches the removed.
	if _, err := owen.ChangeMembers(ctx, g.GroupID, wire.MembersRequest{Add: []string{"cy"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := al.ChangeMembers(ctx, g.GroupID, wire.MembersRequest{Remove: []string{"cy"}}); err != nil {
		t.Fatal(err)
	}
	e, ev := nextEvent(t, cy)
	if strings.Join(ev.Removed, ",") != "cy" || ev.By != "al" || ev.Version != 3 {
		t.Fatalf("removal event %+v %+v", e, ev)
	}
	// History and sync show the events in place; they are not messages.
	page, _ := owen.History(ctx, g.GroupID, 0, 10)
	if len(page.Messages) != 3 || page.Messages[0].Kind != wire.KindGroupEvent || page.Messages[0].Type != "members_changed" {
		t.Fatalf("history %+v", page.Messages)
	}
	wantCode(t, "recall an event", owen.Recall(ctx, page.Messages[0].MsgID), wire.CodeMessageMissing)
	_, err = owen.Receipts(ctx, page.Messages[0].MsgID)
	wantCode(t, "receipts of an event", err, wire.CodeMessageMissing)
	sync, _ := cy.SyncPage(ctx, "", 10)
	if len(sync.Entries) != 2 || sync.Entries[1].Kind != wire.KindGroupEvent || sync.Entries[1].Body == nil {
		t.Fatalf("cy's sync %+v", sync.Entries)
	}
}

// TestRetriedGroupCreate: a POST /v1/groups retried with the same client_group_id
// (its answer was lost) answers the group the first made, never a second group;
// without a key every call makes a group.
func TestRetriedGroupCreate(t *testing.T) {
	ts := startServer(t, nil)
	ctx := context.Background()
	ann := connect(t, ts.URL, "ann")
	tok := token(t, ts.URL, "ann")
	create := func(body string) wire.Group {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, ts.URL+"/v1/groups", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var g wire.Group
		if err := json.NewDecoder(resp.Body).Decode(&g); err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("create: %s %v", resp.Status, err)
		}
		return g
	}
	first := create(`{"name":"trip","members":["bob"],"client_group_id":"g-1"}`)
	if _, err := ann.ChangeMembers(ctx, first.GroupID, wire.MembersRequest{Add: []string{"carol"}}); err != nil {
		t.Fatal(err)
	}
	again := create(`{"name":"trip","members":["bob"],"client_group_id":"g-1"}`)
	if again.GroupID != first.GroupID || again.MemberCount != 3 {
		t.Fatalf("the retry answered %+v, want group %s with its 3 members (not reset)", again, first.GroupID)
	}
	other := create(`{"name":"trip","members":["bob"],"client_group_id":"g-2"}`)
	plain1, plain2 := create(`{"name":"x","members":["bob"]}`), create(`{"name":"x","members":["bob"]}`)
	if other.GroupID == first.GroupID || plain1.GroupID == plain2.GroupID {
		t.Fatalf("distinct creates shared a group: %s %s %s %s", first.GroupID, other.GroupID, plain1.GroupID, plain2.GroupID)
	}
	testharness.WaitFor(t, 10*time.Second, "ann's conversation list", func() bool {
		list, err := ann.Conversations(ctx)
		if err != nil {
			return false
		}
		groups := 0
		for _, c := range list.Conversations {
			if c.Kind == "group" {
				groups++
			}
		}
		return groups == 4
	})
	// The SDK sends a key of its own, so its retries are safe.
	g, err := ann.CreateGroup(ctx, "sdk", "bob")
	if err != nil || g.GroupID == 0 {
		t.Fatalf("sdk create: %+v %v", g, err)
	}
}
