package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/fanline/fanline/client"
	"github.com/fanline/fanline/internal/wire"
)

// TestTyping: typing frames reach the other participants of a direct chat, a small
// group and a shop chat (the buyer sees the shop typing, the serving agent the
// buyer), at most one per 2 s per connection and conversation; nobody outside a
// conversation can say they type in it, nor an agent who does not serve the chat.
func TestTyping(t *testing.T) {
	ts := startServer(t, nil)
	typing(t, ts.URL, ts.URL)
}

// salesShop sets up shop's customer service through its admin's SDK: agents (two
// chats each) of one skill, sales, which chats from product pages go to.
func salesShop(t *testing.T, url, shop string, agents ...string) {
	t.Helper()
	ctx := context.Background()
	tok, err := client.DevToken(ctx, url, shop+"-boss", wire.RoleAdmin, shop)
	if err != nil {
		t.Fatal(err)
	}
	admin := client.NewAdmin(url, shop, tok)
	var list []map[string]any
	for _, a := range agents {
		list = append(list, map[string]any{"agent_id": a, "skills": []string{"sales"}, "capacity": 2})
	}
	if err := admin.PutAgents(ctx, map[string]any{"agents": list}, nil); err != nil {
		t.Fatal(err)
	}
	if err := admin.PutRouting(ctx, map[string]any{"skills": []map[string]any{{"name": "sales"}},
		"entries": map[string]any{"product": map[string]any{"skill": "sales"}}}, nil); err != nil {
		t.Fatal(err)
	}
}

// nextTyping waits for c's next typing frame; ok false when none came within wait.
func nextTyping(c *client.Client, wait time.Duration) (client.Typing, bool) {
	select {
	case ty := <-c.TypingEvents():
		return ty, true
	case <-time.After(wait):
		return client.Typing{}, false
	}
}

// typing runs the scenario with the senders on the server at front and the
// receivers (and agents) on the one at back.
func typing(t *testing.T, front, back string) {
	ctx := context.Background()
	al := connectAs(t, front, "ty-al", "", "")
	bea := connectAs(t, back, "ty-bea", "", "")
	cy := connectAs(t, back, "ty-cy", "", "")
	sent, err := al.Send(ctx, wire.SendRequest{To: "ty-bea", Type: "text", Body: text("hi")})
	if err != nil {
		t.Fatal(err)
	}
	direct := sent.ConversationID
	if err := al.Typing(ctx, direct); err != nil {
		t.Fatal(err)
	}
	if ty, ok := nextTyping(bea, 10*time.Second); !ok || ty.ConversationID != direct || ty.From != "ty-al" {
		t.Fatalf("bea's typing frame: %+v %v", ty, ok)
	}
	// Again at once: acknowledged, not passed on.
	if err := al.Typing(ctx, direct); err != nil {
		t.Fatal(err)
	}
	if ty, ok := nextTyping(bea, 500*time.Millisecond); ok {
		t.Fatalf("a second typing frame within 2 s was passed on: %+v", ty)
	}
	if ty, ok := nextTyping(al, 100*time.Millisecond); ok {
		t.Fatalf("al got his own typing: %+v", ty)
	}
	wantCode(t, "typing in someone else's chat", cy.Typing(ctx, direct), wire.CodeNotParticipant)
	wantCode(t, "typing in no conversation", cy.Typing(ctx, 12345), wire.CodeConversationMissing)

	// A group of two (small in every deployment the tests run).
	g, err := al.CreateGroup(ctx, "ty", "ty-bea")
	if err != nil {
		t.Fatal(err)
	}
	if err := bea.Typing(ctx, g.GroupID); err != nil {
		t.Fatal(err)
	}
	if ty, ok := nextTyping(al, 10*time.Second); !ok || ty.ConversationID != g.GroupID || ty.From != "ty-bea" {
		t.Fatalf("a group member's typing frame: %+v %v", ty, ok)
	}
	wantCode(t, "typing in a group one is not in", cy.Typing(ctx, g.GroupID), wire.CodeNotParticipant)

	salesShop(t, front, "tyshop", "ty-ann", "ty-bob")
	ann := connectAs(t, back, "ty-ann", wire.RoleAgent, "tyshop")
	if err := ann.SetStatus(ctx, "online"); err != nil {
		t.Fatal(err)
	}
	buyer := connectAs(t, front, "ty-carla", "", "")
	chat, err := buyer.OpenChat(ctx, "tyshop", wire.OpenChatRequest{Entry: "product", ProductID: "p-1", Text: "hello"})
	if err != nil || chat.AgentID != "ty-ann" {
		t.Fatalf("open: %+v %v", chat, err)
	}
	if err := buyer.Typing(ctx, chat.ConversationID); err != nil {
		t.Fatal(err)
	}
	if ty, ok := nextTyping(ann, 10*time.Second); !ok || ty.ConversationID != chat.ConversationID || ty.From != "ty-carla" {
		t.Fatalf("the agent's typing frame: %+v %v", ty, ok)
	}
	if err := ann.Typing(ctx, chat.ConversationID); err != nil {
		t.Fatal(err)
	}
	if ty, ok := nextTyping(buyer, 10*time.Second); !ok || ty.ConversationID != chat.ConversationID || ty.From != "tyshop" {
		t.Fatalf("the buyer's typing frame: %+v %v", ty, ok)
	}
	bob := connectAs(t, back, "ty-bob", wire.RoleAgent, "tyshop")
	wantCode(t, "an agent types in a chat another serves", bob.Typing(ctx, chat.ConversationID), wire.CodeNotParticipant)
}
