package csrouting_test

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"sync"
	"testing"
	"time"

	csrouting "github.com/fanline/fanline/cs-routing"
)

// lineModel follows the queue from the Router's events and checks first come, first
// served within each line (skill and priority): no chat is assigned while an earlier
// chat of its line waits.
type lineModel struct {
	mu     sync.Mutex // guards queued, errs
	order  map[string]int
	queued map[string]csrouting.Decision // chat -> its line while queued
	errs   []string
	events int
}

func (m *lineModel) Notify(e csrouting.Event) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.events++
	switch e.Type {
	case "queued":
		m.queued[e.Chat] = e.Decision
	case "assigned", "reassigned":
		for other, d := range m.queued {
			if other != e.Chat && d.Skill == e.Decision.Skill && d.Priority == e.Decision.Priority &&
				m.order[other] < m.order[e.Chat] {
				m.errs = append(m.errs, fmt.Sprintf("%s assigned while %s (earlier, same line %s/%d) waits",
					e.Chat, other, d.Skill, d.Priority))
			}
		}
		delete(m.queued, e.Chat)
	case "closed":
		delete(m.queued, e.Chat)
	}
}

// TestSimulation: one shop, 50 agents of mixed skills and capacities, 2,000 buyers
// arriving in bursts over two simulated hours, agents connecting, dropping and
// changing status at random, chats closing. Checked after
// every simulated second: no agent above capacity; no chat held by an agent
// disconnected past the grace period; no chat waiting while an agent of its skill has
// room for the head of its line; first come first served within a line; every
// decision in the audit log has a reason. It also measures the decision latency.
func TestSimulation(t *testing.T) {
	rng := rand.New(rand.NewPCG(42, 7))
	clock := newManualClock(time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC))
	model := &lineModel{order: map[string]int{}, queued: map[string]csrouting.Decision{}}
	r, err := csrouting.NewRouter(csrouting.Config{Clock: clock, Notifier: model, AuditSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	const grace = 30 * time.Second
	if _, ps, err := r.SetRules("shop", csrouting.Rules{
		Skills: []csrouting.SkillGroup{
			{Name: "pre_sales", Strategy: csrouting.LeastLoaded, StickyDays: 3},
			{Name: "after_sales", Strategy: csrouting.RoundRobin, FallbackAfter: csrouting.Duration(2 * time.Minute)},
		},
		Entries: map[string]csrouting.Class{
			"product": {Skill: "pre_sales"}, "order": {Skill: "after_sales"}, "refund": {Skill: "after_sales", Weight: 2},
		},
		VIP:           csrouting.VIP{Tiers: map[string]int{"gold": 2, "silver": 1}, Buyers: map[string]string{}},
		PresenceGrace: csrouting.Duration(grace),
		ReplyTimeout:  csrouting.Duration(-1),
	}); len(ps) > 0 || err != nil {
		t.Fatal(ps, err)
	}
	var agents []csrouting.AgentConfig
	for i := range 50 {
		skills := [][]string{{"pre_sales"}, {"after_sales"}, {"pre_sales", "after_sales"}}[i%3]
		agents = append(agents, csrouting.AgentConfig{ID: fmt.Sprintf("a%02d", i), Skills: skills, Capacity: 1 + rng.IntN(6)})
	}
	if ps, err := r.SetAgents("shop", agents); len(ps) > 0 || err != nil {
		t.Fatal(ps, err)
	}
	dropped := map[string]time.Time{} // agent -> when their connection went
	for _, a := range agents {
		if rng.IntN(3) > 0 {
			r.SetStatus("shop", a.ID, csrouting.Online)
			r.Presence("shop", a.ID, true)
		} else {
			dropped[a.ID] = clock.Now()
		}
	}

	var latencies []time.Duration
	opened, buyers := 0, 2000
	simStart := clock.Now()
	open := map[string]bool{}
	entries := []string{"product", "product", "order", "refund", "shop"}
	for second := 0; opened < buyers || len(open) > 0; second++ {
		if second > 4*3600 {
			t.Fatalf("not done after 4 simulated hours: %d open", len(open))
		}
		// Bursts of buyers.
		if opened < buyers && rng.IntN(20) == 0 {
			for range min(buyers-opened, 10+rng.IntN(60)) {
				id := fmt.Sprintf("c%04d", opened)
				buyer := fmt.Sprintf("b%04d", rng.IntN(1500))
				model.mu.Lock()
				model.order[id] = opened
				model.mu.Unlock()
				start := time.Now()
				if _, err := r.Open("shop", csrouting.OpenRequest{Chat: id, Buyer: buyer, Entry: entries[rng.IntN(len(entries))]}); err != nil {
					t.Fatal(err)
				}
				latencies = append(latencies, time.Since(start))
				open[id] = true
				opened++
			}
		}
		// Agents come and go.
		for _, a := range agents {
			switch rng.IntN(400) {
			case 0:
				r.Presence("shop", a.ID, false)
				if _, ok := dropped[a.ID]; !ok {
					dropped[a.ID] = clock.Now()
				}
			case 1:
				r.Presence("shop", a.ID, true)
				delete(dropped, a.ID)
			case 2:
				r.SetStatus("shop", a.ID, []string{csrouting.Online, csrouting.Busy, csrouting.Away, csrouting.Offline}[rng.IntN(4)])
			case 3:
				r.SetStatus("shop", a.ID, csrouting.Online)
			}
		}
		// Chats end. (Reply timeouts are in testdata/reassign.txt: a chat an agent
		// timed out on may wait while that agent has room.)
		for _, id := range sortedChats(open) {
			d, err := r.Chat("shop", id)
			if err != nil {
				t.Fatal(err)
			}
			if d.State != csrouting.Assigned {
				continue
			}
			if rng.IntN(45) == 0 {
				if _, err := r.Close("shop", id, d.Agent); err != nil {
					t.Fatal(err)
				}
				delete(open, id)
			}
		}
		// Late in the run everyone comes back, so every chat can finish.
		if opened == buyers && second%60 == 0 {
			for _, a := range agents {
				r.SetStatus("shop", a.ID, csrouting.Online)
				r.Presence("shop", a.ID, true)
				delete(dropped, a.ID)
			}
		}
		clock.Advance(time.Second)
		checkInvariants(t, r, clock.Now(), dropped, grace, model.heads())
	}
	model.mu.Lock()
	defer model.mu.Unlock()
	if len(model.errs) > 0 {
		t.Fatalf("%d FIFO violations, first: %s", len(model.errs), model.errs[0])
	}
	audit := r.Audit("shop", 1<<20)
	assigned := 0
	for _, e := range audit {
		if e.Reason == "" {
			t.Fatalf("decision without a reason: %+v", e)
		}
		if e.Action == "assigned" {
			assigned++
		}
	}
	if assigned < buyers {
		t.Fatalf("%d assignments for %d buyers", assigned, buyers)
	}
	sort.Slice(latencies, func(i, j int) bool { return latencies[i] < latencies[j] })
	p99 := latencies[len(latencies)*99/100]
	simulated := clock.Now().Sub(simStart)
	t.Logf("%d chats over %s simulated (%.1f assignments per simulated second), %d decisions in the audit log, "+
		"%d events; Open latency p50 %s p99 %s max %s", buyers, simulated, float64(assigned)/simulated.Seconds(),
		len(audit), model.events, latencies[len(latencies)/2], p99, latencies[len(latencies)-1])
	if p99 > 50*time.Millisecond {
		t.Errorf("Open p99 %s: far above the 5 ms goal", p99)
	}
}

func sortedChats(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for id := range m {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

// heads returns the first chat waiting in each line (skill and priority).
func (m *lineModel) heads() []csrouting.Decision {
	m.mu.Lock()
	defer m.mu.Unlock()
	first := map[string]string{}
	for chat, d := range m.queued {
		line := fmt.Sprintf("%s/%d", d.Skill, d.Priority)
		if f, ok := first[line]; !ok || m.order[chat] < m.order[f] {
			first[line] = chat
		}
	}
	var out []csrouting.Decision
	for _, chat := range first {
		out = append(out, m.queued[chat])
	}
	return out
}

func checkInvariants(t *testing.T, r *csrouting.Router, now time.Time, dropped map[string]time.Time, grace time.Duration, heads []csrouting.Decision) {
	t.Helper()
	live, err := r.Live("shop")
	if err != nil {
		t.Fatal(err)
	}
	room := map[string]int{} // skill -> the most free capacity of an available agent
	for _, a := range live.Agents {
		if a.Load > a.Capacity || a.Load < 0 {
			t.Fatalf("%s at %d/%d", a.ID, a.Load, a.Capacity)
		}
		chats, err := r.AgentChats("shop", a.ID)
		if err != nil {
			t.Fatal(err)
		}
		if since, ok := dropped[a.ID]; ok && !a.Connected && now.Sub(since) > grace && len(chats) > 0 {
			t.Fatalf("%s disconnected %s ago still holds %d chats", a.ID, now.Sub(since), len(chats))
		}
		if a.Status == csrouting.Offline && len(chats) > 0 {
			t.Fatalf("%s is offline and holds %d chats", a.ID, len(chats))
		}
		if a.Status == csrouting.Online && a.Connected {
			for _, s := range a.Skills {
				room[s] = max(room[s], a.Capacity-a.Load)
			}
		}
	}
	// Every chat is assigned while capacity exists: no line's first chat fits an
	// available agent of its skill.
	for _, h := range heads {
		if room[h.Skill] >= h.Weight {
			t.Fatalf("%s (weight %d) waits for %s while an agent there has room for %d", h.Chat, h.Weight, h.Skill, room[h.Skill])
		}
	}
}
