package e2e

import (
	"context"
	"slices"
	"testing"

	"github.com/fanline/fanline/client"
	"github.com/fanline/fanline/internal/wire"
)

// TestCannedResponses: a shop's admin sets its canned responses; the shop's agents
// read them (through another node in the cluster test), other shops' staff cannot;
// a bad list answers every problem by field and changes nothing.
func TestCannedResponses(t *testing.T) {
	ts := startServer(t, nil)
	cannedResponses(t, ts.URL, ts.URL)
}

func cannedResponses(t *testing.T, front, back string) {
	ctx := context.Background()
	adminTok, err := client.DevToken(ctx, front, "cr-boss", wire.RoleAdmin, "crshop")
	if err != nil {
		t.Fatal(err)
	}
	admin := client.NewAdmin(front, "crshop", adminTok)
	if got, err := admin.Canned(ctx); err != nil || len(got) != 0 {
		t.Fatalf("canned of a new shop: %+v %v", got, err)
	}
	list := []wire.CannedResponse{{Shortcut: "hi", Text: "Hello! How can I help?"}, {Shortcut: "ship", Text: "Orders ship within 24 hours."}}
	if got, err := admin.PutCanned(ctx, list); err != nil || !slices.Equal(got, list) {
		t.Fatalf("put canned: %+v %v", got, err)
	}
	_, err = admin.PutCanned(ctx, []wire.CannedResponse{{Shortcut: "hi", Text: "again"}, {Shortcut: "hi", Text: ""}})
	we, ok := err.(*wire.Error)
	if !ok || we.Code != wire.CodeInvalidRules || len(we.Problems) != 2 ||
		we.Problems[0].Field != "responses[1].shortcut" || we.Problems[1].Field != "responses[1].text" {
		t.Fatalf("bad canned list: %v", err)
	}
	if err := admin.PutAgents(ctx, map[string]any{"agents": []map[string]any{{"agent_id": "cr-ann", "skills": []string{"sales"}, "capacity": 1}}}, nil); err != nil {
		t.Fatal(err)
	}
	ann := connectAs(t, back, "cr-ann", wire.RoleAgent, "crshop")
	if got, err := ann.Canned(ctx, "crshop"); err != nil || !slices.Equal(got, list) {
		t.Fatalf("the agent reads: %+v %v", got, err)
	}
	_, err = ann.Canned(ctx, "othershop")
	wantCode(t, "an agent reads another shop's canned responses", err, wire.CodeForbidden)
	buyer := connectAs(t, back, "cr-carla", "", "")
	_, err = buyer.Canned(ctx, "crshop")
	wantCode(t, "a buyer reads canned responses", err, wire.CodeForbidden)
}
