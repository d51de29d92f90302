package csrouting_test

import (
	"testing"
	"time"

	csrouting "github.com/fanline/fanline/cs-routing"
)

func connected(r *csrouting.Router, shop string) map[string]bool {
	out := map[string]bool{}
	for _, a := range r.Agents(shop) {
		out[a.ID] = a.Connected
	}
	return out
}

// TestPresenceBeforeConfiguration: agents who connect before their shop is
// configured are remembered (up to Config.PendingPresence in all, oldest forgotten
// first) and present once it is; agents who connect to a configured shop before
// they are listed are too.
func TestPresenceBeforeConfiguration(t *testing.T) {
	clock := newManualClock(time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC))
	r, err := csrouting.NewRouter(csrouting.Config{Clock: clock, PendingPresence: 3})
	if err != nil {
		t.Fatal(err)
	}
	agents := []csrouting.AgentConfig{{ID: "ann", Skills: []string{"x"}, Capacity: 1},
		{ID: "bob", Skills: []string{"x"}, Capacity: 1}, {ID: "cat", Skills: []string{"x"}, Capacity: 1}}
	rules := csrouting.Rules{Skills: []csrouting.SkillGroup{{Name: "x"}}}

	r.Presence("late", "ann", true) // forgotten: the oldest of four
	r.Presence("late", "bob", true)
	r.Presence("late", "cat", true)
	r.Presence("other", "zed", true)
	r.Presence("late", "cat", false)
	r.Presence("late", "cat", true) // bob is now the oldest
	if r.Configured("late") || len(r.Agents("late")) != 0 {
		t.Fatal("presence configured a shop")
	}
	if ps, err := r.SetAgents("late", agents); ps != nil || err != nil {
		t.Fatal(ps, err)
	}
	if r.Configured("late") {
		t.Fatal("a shop with agents and no rules is configured")
	}
	if got := connected(r, "late"); got["ann"] || !got["bob"] || !got["cat"] {
		t.Fatalf("presence remembered before configuration: %v", got)
	}
	if _, ps, err := r.SetRules("late", rules); ps != nil || err != nil {
		t.Fatal(ps, err)
	}
	if !r.Configured("late") {
		t.Fatal("a shop with rules is not configured")
	}

	// A configured shop remembers agents not listed yet.
	if _, ps, err := r.SetRules("now", rules); ps != nil || err != nil {
		t.Fatal(ps, err)
	}
	r.Presence("now", "ann", true)
	r.Presence("now", "bob", true)
	r.Presence("now", "bob", false)
	if ps, err := r.SetAgents("now", agents); ps != nil || err != nil {
		t.Fatal(ps, err)
	}
	if got := connected(r, "now"); !got["ann"] || got["bob"] || got["cat"] {
		t.Fatalf("presence in a configured shop: %v", got)
	}
	// Refused configurations create nothing.
	if ps, _ := r.SetAgents("bad", []csrouting.AgentConfig{{ID: ""}}); len(ps) == 0 {
		t.Fatal("an agent without an id was accepted")
	}
	if _, ps, _ := r.SetRules("bad", csrouting.Rules{}); len(ps) == 0 {
		t.Fatal("rules without skills were accepted")
	}
	if r.Configured("bad") || len(r.Agents("bad")) != 0 {
		t.Fatal("a refused configuration created the shop")
	}
}

// TestWaitingAndWaited: Waiting counts the chats queued in every shop, and Waited
// hears how long each waited once an agent gets it (0 for one assigned at once).
func TestWaitingAndWaited(t *testing.T) {
	clock := newManualClock(time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC))
	var waits []time.Duration
	r, err := csrouting.NewRouter(csrouting.Config{Clock: clock, Waited: func(d time.Duration) { waits = append(waits, d) }})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Stop()
	rules := csrouting.Rules{Skills: []csrouting.SkillGroup{{Name: "x"}}}
	if _, ps, err := r.SetRules("s", rules); ps != nil || err != nil {
		t.Fatal(ps, err)
	}
	if ps, err := r.SetAgents("s", []csrouting.AgentConfig{{ID: "ann", Skills: []string{"x"}, Capacity: 1}}); ps != nil || err != nil {
		t.Fatal(ps, err)
	}
	r.Presence("s", "ann", true)
	if err := r.SetStatus("s", "ann", csrouting.Online); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"c1", "c2"} {
		if _, err := r.Open("s", csrouting.OpenRequest{Chat: id, Buyer: "b-" + id, Entry: "shop"}); err != nil {
			t.Fatal(err)
		}
	}
	if n := r.Waiting(); n != 1 {
		t.Fatalf("waiting %d, want 1 (c2 behind ann's one chat)", n)
	}
	clock.Advance(90 * time.Second)
	if _, err := r.Close("s", "c1", "ann"); err != nil {
		t.Fatal(err)
	}
	if n := r.Waiting(); n != 0 || len(waits) != 2 || waits[0] != 0 || waits[1] != 90*time.Second {
		t.Fatalf("waiting %d, waits %v; want 0 and [0s 1m30s]", n, waits)
	}
}
