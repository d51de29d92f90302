package gateway

import (
	"encoding/json"
	"sync"

	"github.com/fanline/fanline/internal/metrics"
	"github.com/fanline/fanline/internal/wire"
)

// Hub is this node's index of user -> open connections. It delivers pushes; a
// connection whose send queue is full is closed rather than allowed to stall the
// fanout worker that pushes to it (its device resyncs from its cursor on reconnect).
type Hub struct {
	m *metrics.Metrics

	mu    sync.RWMutex // guards users
	users map[string]map[*conn]struct{}
}

// NewHub returns an empty hub.
func NewHub(m *metrics.Metrics) *Hub {
	return &Hub{m: m, users: map[string]map[*conn]struct{}{}}
}

func (h *Hub) add(c *conn) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.users[c.user] == nil {
		h.users[c.user] = map[*conn]struct{}{}
	}
	h.users[c.user][c] = struct{}{}
}

func (h *Hub) remove(c *conn) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.users[c.user], c)
	if len(h.users[c.user]) == 0 {
		delete(h.users, c.user)
	}
}

// Push implements dispatch.Pusher: it never blocks.
func (h *Hub) Push(user string, e wire.Entry, cursor string) {
	h.mu.RLock()
	conns := h.users[user]
	if len(conns) == 0 {
		h.mu.RUnlock()
		return
	}
	b, err := json.Marshal(wire.ServerFrame{Type: wire.FrameMessage, Entry: &e, Cursor: cursor})
	if err != nil {
		h.mu.RUnlock()
		return
	}
	var slow []*conn
	for c := range conns {
		if !c.offer(b) {
			slow = append(slow, c)
		}
	}
	h.mu.RUnlock()
	for _, c := range slow {
		h.m.PushesDropped.Inc()
		c.close(closeSlow)
	}
}

// all returns every open connection.
func (h *Hub) all() []*conn {
	h.mu.RLock()
	defer h.mu.RUnlock()
	var out []*conn
	for _, cs := range h.users {
		for c := range cs {
			out = append(out, c)
		}
	}
	return out
}
