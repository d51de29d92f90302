package csrouting

import (
	"fmt"
	"testing"
)

// TestPresenceAllocatesNoShop: presence for any number of unknown shops allocates
// no shop and remembers at most Config.PendingPresence connections; refused
// configurations allocate no shop either.
func TestPresenceAllocatesNoShop(t *testing.T) {
	r, err := NewRouter(Config{PendingPresence: 100})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10000 {
		r.Presence(fmt.Sprint("shop-", i), fmt.Sprint("agent-", i%7), true)
		if i%3 == 0 {
			r.Presence(fmt.Sprint("shop-", i), fmt.Sprint("agent-", i%7), false)
		}
		r.Configured(fmt.Sprint("shop-", i))
		r.IsAgent(fmt.Sprint("shop-", i), "agent-1")
		r.Agents(fmt.Sprint("shop-", i))
		r.Audit(fmt.Sprint("shop-", i), 10)
	}
	r.SetAgents("refused", []AgentConfig{{ID: "a", Capacity: 0}})
	r.SetRules("refused", Rules{})
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.shops) != 0 {
		t.Fatalf("%d shops allocated", len(r.shops))
	}
	// The last disconnect (shop-9999) left 99 of the 100 newest connections.
	if n := r.pending.order.Len(); n != 99 || len(r.pending.at) != n {
		t.Fatalf("%d pending connections (%d indexed), want 99", n, len(r.pending.at))
	}
	if got := r.pending.take("shop-9998"); len(got) != 1 || got[0] != "agent-2" {
		t.Fatalf("pending agents of shop-9998: %v", got)
	}
	if got := r.pending.take("shop-9999"); len(got) != 0 {
		t.Fatalf("pending agents of shop-9999, who disconnected: %v", got)
	}
}
