package csrouting

import (
	"container/list"
	"fmt"
	"time"
)

// Presence tells the router whether an agent has a live connection. A disconnected
// agent takes no new chats; after the rules' presence grace their chats go to others
// and their status becomes offline.
//
// Presence allocates no per-shop state: for a shop nobody configured, the
// connection is remembered in one structure bounded for all shops
// (Config.PendingPresence), consulted when the shop is configured.
func (r *Router) Presence(shopID, agentID string, connected bool) {
	r.mu.Lock()
	s := r.shops[shopID]
	if s == nil {
		r.pending.set(shopID, agentID, connected)
		r.mu.Unlock()
		return
	}
	r.mu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	// Remembered for agents not configured yet (or a shop without rules yet).
	if connected {
		s.present[agentID] = true
	} else {
		delete(s.present, agentID)
	}
	a := s.agents[agentID]
	if a == nil || a.connected == connected || s.rules == nil {
		if a != nil {
			a.connected = connected
		}
		return
	}
	a.connected = connected
	if a.graceStop != nil {
		a.graceStop()
		a.graceStop = nil
	}
	if connected {
		s.drain()
		return
	}
	s.armGrace(a)
}

// armGrace hands a's chats to others unless a connects within the presence grace.
func (s *shop) armGrace(a *agent) {
	grace := time.Duration(s.rules.PresenceGrace)
	if grace <= 0 {
		grace = 30 * time.Second
	}
	a.graceStop = s.after(grace, func() {
		if a.connected || s.agents[a.ID] != a {
			return
		}
		a.graceStop = nil
		a.status = Offline
		s.requeueAll(a, fmt.Sprintf("%s disconnected for %s", a.ID, grace))
		s.drain()
	})
}

// pendingPresence is the connected agents of shops that are not configured yet, at
// most max (shop, agent) pairs in all: a new connection beyond that forgets the
// oldest. It is not safe for concurrent use (Router.mu guards it).
type pendingPresence struct {
	max   int
	order *list.List // of pendingAgent, oldest connection first
	at    map[pendingAgent]*list.Element
}

type pendingAgent struct{ shop, agent string }

func newPendingPresence(max int) *pendingPresence {
	return &pendingPresence{max: max, order: list.New(), at: map[pendingAgent]*list.Element{}}
}

// set records that agent of shop connected or disconnected.
func (p *pendingPresence) set(shop, agent string, connected bool) {
	k := pendingAgent{shop, agent}
	if e := p.at[k]; e != nil {
		p.order.Remove(e)
		delete(p.at, k)
	}
	if !connected {
		return
	}
	p.at[k] = p.order.PushBack(k)
	for p.order.Len() > p.max {
		oldest := p.order.Front()
		p.order.Remove(oldest)
		delete(p.at, oldest.Value.(pendingAgent))
	}
}

// take returns and forgets the connected agents of shop.
func (p *pendingPresence) take(shop string) []string {
	var out []string
	for e := p.order.Front(); e != nil; {
		next := e.Next()
		if k := e.Value.(pendingAgent); k.shop == shop {
			out = append(out, k.agent)
			p.order.Remove(e)
			delete(p.at, k)
		}
		e = next
	}
	return out
}
