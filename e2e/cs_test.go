package e2e

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/fanline/fanline/client"
	"github.com/fanline/fanline/internal/testharness"
	"github.com/fanline/fanline/internal/wire"
)

// connectAs connects a user with a role in a shop.
func connectAs(t *testing.T, url, user, role, shop string) *client.Client {
	t.Helper()
	tok, err := client.DevToken(context.Background(), url, user, role, shop)
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.Connect(context.Background(), client.Config{URL: url, Token: tok, BackstopSync: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// messagesOf collects the message entries of conv a device has received so far.
func messagesOf(c *client.Client, conv wire.ID, into *[]wire.Entry) {
	for {
		select {
		case e := <-c.Entries():
			if e.Kind == wire.KindMessage && e.ConversationID == conv {
				*into = append(*into, e)
			}
		default:
			return
		}
	}
}

// TestCustomerServiceChat: a buyer opens a chat from an order page; the after-sales
// agent gets it; they exchange messages (the buyer sees the shop as the sender, with
// the agent's id); the agent goes offline and, after the presence grace, the chat
// moves to another agent who reads the whole history and answers.
func TestCustomerServiceChat(t *testing.T) {
	ts := startServer(t, nil)
	customerServiceChat(t, ts.URL, ts.URL)
}

// customerServiceChat runs the scenario with the admin and the buyer on the server
// at front and the agents on the one at back (the same server, or two gateway nodes).
func customerServiceChat(t *testing.T, front, back string) {
	ctx := context.Background()
	adminTok, err := client.DevToken(ctx, front, "boss", wire.RoleAdmin, "acme")
	if err != nil {
		t.Fatal(err)
	}
	admin := client.NewAdmin(front, "acme", adminTok)
	if err := admin.PutAgents(ctx, map[string]any{"agents": []map[string]any{
		{"agent_id": "ann", "skills": []string{"after_sales"}, "capacity": 2},
		{"agent_id": "bob", "skills": []string{"after_sales"}, "capacity": 2},
		{"agent_id": "pat", "skills": []string{"pre_sales"}, "capacity": 2},
	}}, nil); err != nil {
		t.Fatal(err)
	}
	// A bad document answers every problem and changes nothing.
	err = admin.PutRouting(ctx, map[string]any{"skills": []map[string]any{{"name": "pre_sales", "strategy": "fastest"}},
		"entries": map[string]any{"order": map[string]any{"skill": "aftersales"}}}, nil)
	if we, ok := err.(*wire.Error); !ok || we.Code != wire.CodeInvalidRules || len(we.Problems) != 2 {
		t.Fatalf("bad rules: %v", err)
	}
	var rules struct {
		Version int `json:"version"`
	}
	if err := admin.PutRouting(ctx, map[string]any{
		"skills":         []map[string]any{{"name": "pre_sales"}, {"name": "after_sales"}},
		"entries":        map[string]any{"product": map[string]any{"skill": "pre_sales"}, "order": map[string]any{"skill": "after_sales"}},
		"presence_grace": "1s",
	}, &rules); err != nil || rules.Version != 1 {
		t.Fatalf("rules: %+v %v", rules, err)
	}
	// Authorisation: only the shop's own admin configures it.
	otherTok, _ := client.DevToken(ctx, front, "boss2", wire.RoleAdmin, "zeta")
	err = client.NewAdmin(front, "acme", otherTok).PutRouting(ctx, map[string]any{}, nil)
	wantCode(t, "another shop's admin", err, wire.CodeForbidden)

	ann := connectAs(t, back, "ann", wire.RoleAgent, "acme")
	if err := ann.SetStatus(ctx, "online"); err != nil {
		t.Fatal(err)
	}
	buyer := connectAs(t, front, "carla", "", "")
	chat, err := buyer.OpenChat(ctx, "acme", wire.OpenChatRequest{Entry: "order", OrderID: "o-17", Text: "my parcel is late"})
	if err != nil || chat.State != "assigned" || chat.AgentID != "ann" || chat.Reason != "" {
		t.Fatalf("open: %+v %v", chat, err)
	}
	if mine, err := ann.AgentChats(ctx); err != nil || len(mine) != 1 || mine[0].Skill != "after_sales" ||
		mine[0].BuyerID != "carla" {
		t.Fatalf("ann's chats: %+v %v", mine, err)
	}
	conv := chat.ConversationID
	wantCode(t, "a buyer sets an agent status", buyer.SetStatus(ctx, "online"), wire.CodeForbidden)

	var annGot, buyerGot []wire.Entry
	testharness.WaitFor(t, 10*time.Second, "ann to get the buyer's message", func() bool {
		messagesOf(ann, conv, &annGot)
		return len(annGot) == 1
	})
	if annGot[0].From != "carla" {
		t.Fatalf("ann got %+v", annGot[0])
	}
	if _, err := ann.Send(ctx, wire.SendRequest{ConversationID: conv, Type: "text", Body: text("sorry, checking now")}); err != nil {
		t.Fatal(err)
	}
	if _, err := buyer.Send(ctx, wire.SendRequest{ConversationID: conv, Type: "text", Body: text("thanks")}); err != nil {
		t.Fatal(err)
	}
	testharness.WaitFor(t, 10*time.Second, "the exchange", func() bool {
		messagesOf(ann, conv, &annGot)
		messagesOf(buyer, conv, &buyerGot)
		return len(annGot) == 3 && len(buyerGot) == 3
	})
	if e := buyerGot[1]; e.From != "acme" || e.AgentID != "ann" {
		t.Fatalf("the buyer sees the agent's reply as %+v", e)
	}
	// An agent of the shop who does not serve the chat cannot write in it.
	bob := connectAs(t, back, "bob", wire.RoleAgent, "acme")
	_, err = bob.SendHTTP(ctx, wire.SendRequest{ClientMsgID: "x", ConversationID: conv, Type: "text", Body: text("hi")})
	wantCode(t, "bob writes in ann's chat", err, wire.CodeNotParticipant)
	if err := bob.SetStatus(ctx, "online"); err != nil {
		t.Fatal(err)
	}

	// ann goes away: after the grace the chat moves to bob, history intact.
	ann.Close()
	testharness.WaitFor(t, 10*time.Second, "the chat to move to bob", func() bool {
		chats, err := bob.AgentChats(ctx)
		return err == nil && len(chats) == 1 && chats[0].ConversationID == conv
	})
	hist, err := bob.History(ctx, conv, 0, 50)
	if err != nil || len(hist.Messages) != 3 {
		t.Fatalf("bob reads the history: %+v %v", hist, err)
	}
	var texts []string
	for _, m := range hist.Messages {
		texts = append(texts, string(m.Body))
	}
	slices.Reverse(texts)
	if want := []string{`{"text":"my parcel is late"}`, `{"text":"sorry, checking now"}`, `{"text":"thanks"}`}; !slices.Equal(texts, want) {
		t.Fatalf("history %v", texts)
	}
	if _, err := bob.Send(ctx, wire.SendRequest{ConversationID: conv, Type: "text", Body: text("bob here, it ships today")}); err != nil {
		t.Fatal(err)
	}
	testharness.WaitFor(t, 10*time.Second, "the buyer to get bob's reply", func() bool {
		messagesOf(buyer, conv, &buyerGot)
		return len(buyerGot) == 4
	})
	if e := buyerGot[3]; e.From != "acme" || e.AgentID != "bob" {
		t.Fatalf("bob's reply reached the buyer as %+v", e)
	}
	// The buyer was told about the move over the WebSocket, without routing reasons.
	testharness.WaitFor(t, 5*time.Second, "the buyer's cs event", func() bool {
		for {
			select {
			case ev := <-buyer.CSEvents():
				if ev.Chat != nil && ev.Chat.AgentID == "bob" {
					if ev.Chat.Reason != "" {
						t.Fatalf("the buyer saw the routing reason %q", ev.Chat.Reason)
					}
					return true
				}
			default:
				return false
			}
		}
	})
	var audit struct {
		Entries []struct {
			Action string `json:"action"`
			Agent  string `json:"agent_id"`
			Reason string `json:"reason"`
		} `json:"entries"`
	}
	if err := admin.Audit(ctx, 10, &audit); err != nil || len(audit.Entries) < 3 {
		t.Fatalf("audit %+v %v", audit, err)
	}
	for _, e := range audit.Entries {
		if e.Reason == "" {
			t.Fatalf("audit entry without a reason: %+v", e)
		}
	}
	if st, err := bob.CloseChat(ctx, conv); err != nil || st.State != "closed" {
		t.Fatalf("close: %+v %v", st, err)
	}
}
