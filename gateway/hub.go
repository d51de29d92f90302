package gateway

import (
	"encoding/json"
	"sync"

	"github.com/fanline/fanline/internal/metrics"
	"github.com/fanline/fanline/internal/wire"
	"github.com/gorilla/websocket"
)

// Hub is this node's index of user -> open connections, and of group -> the users
// with connections here, so a large group's message is one event per node and no
// member is looked up on the send path. It delivers pushes; a connection whose send
// queue is full is closed rather than allowed to stall the worker that pushes to it
// (its device resyncs from its cursor on reconnect).
type Hub struct {
	m *metrics.Metrics

	mu         sync.RWMutex // guards users, groups, userGroups and staff
	users      map[string]map[*conn]struct{}
	staff      map[string]map[*conn]struct{}  // shop -> its agents' and admins' connections
	groups     map[uint64]map[string]struct{} // group -> members connected here
	userGroups map[string][]uint64            // connected user -> their groups
}

// NewHub returns an empty hub.
func NewHub(m *metrics.Metrics) *Hub {
	return &Hub{m: m, users: map[string]map[*conn]struct{}{}, groups: map[uint64]map[string]struct{}{},
		userGroups: map[string][]uint64{}, staff: map[string]map[*conn]struct{}{}}
}

// add registers c; groups are its user's groups, indexed when the user's first
// connection here arrives.
func (h *Hub) add(c *conn, groups []uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.users[c.user] == nil {
		h.users[c.user] = map[*conn]struct{}{}
		for _, g := range groups {
			h.join(g, c.user)
		}
	}
	h.users[c.user][c] = struct{}{}
	if c.shop != "" {
		if h.staff[c.shop] == nil {
			h.staff[c.shop] = map[*conn]struct{}{}
		}
		h.staff[c.shop][c] = struct{}{}
	}
}

// remove unregisters c and reports whether it was its user's last connection here.
func (h *Hub) remove(c *conn) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if c.shop != "" {
		delete(h.staff[c.shop], c)
		if len(h.staff[c.shop]) == 0 {
			delete(h.staff, c.shop)
		}
	}
	delete(h.users[c.user], c)
	last := len(h.users[c.user]) == 0
	if last {
		delete(h.users, c.user)
		for _, g := range h.userGroups[c.user] {
			delete(h.groups[g], c.user)
			if len(h.groups[g]) == 0 {
				delete(h.groups, g)
			}
		}
		delete(h.userGroups, c.user)
	}
	return last
}

// join indexes user as a member of group g; the caller holds h.mu.
func (h *Hub) join(g uint64, user string) {
	if h.groups[g] == nil {
		h.groups[g] = map[string]struct{}{}
	}
	if _, ok := h.groups[g][user]; !ok {
		h.groups[g][user] = struct{}{}
		h.userGroups[user] = append(h.userGroups[user], g)
	}
}

// leave drops user from group g's index; the caller holds h.mu.
func (h *Hub) leave(g uint64, user string) {
	if _, ok := h.groups[g][user]; !ok {
		return
	}
	delete(h.groups[g], user)
	if len(h.groups[g]) == 0 {
		delete(h.groups, g)
	}
	gs := h.userGroups[user]
	for i, id := range gs {
		if id == g {
			h.userGroups[user] = append(gs[:i:i], gs[i+1:]...)
			break
		}
	}
}

// GroupMembers implements dispatch.Pusher: it updates the index for the users
// connected here.
func (h *Hub) GroupMembers(group uint64, added, removed []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, u := range added {
		if h.users[u] != nil {
			h.join(group, u)
		}
	}
	for _, u := range removed {
		h.leave(group, u)
	}
}

// Push implements dispatch.Pusher: it never blocks.
func (h *Hub) Push(user string, e wire.Entry, cursor string) {
	h.PushFrame(user, wire.ServerFrame{Type: wire.FrameMessage, Entry: &e, Cursor: cursor})
}

// PushFrame offers a frame to a user's connections here; it never blocks.
func (h *Hub) PushFrame(user string, f wire.ServerFrame) {
	if b, err := json.Marshal(f); err == nil {
		h.pushUser(user, b)
	}
}

// PushShop offers a frame to the connections here of a shop's agents and admins; it
// never blocks.
func (h *Hub) PushShop(shop string, f wire.ServerFrame) {
	if b, err := json.Marshal(f); err == nil {
		h.pushShop(shop, b)
	}
}

// pushUser offers an encoded frame to a user's connections here.
func (h *Hub) pushUser(user string, b []byte) {
	h.pushTo(b, func() map[*conn]struct{} { return h.users[user] })
}

// pushShop offers an encoded frame to a shop's staff connections here.
func (h *Hub) pushShop(shop string, b []byte) {
	h.pushTo(b, func() map[*conn]struct{} { return h.staff[shop] })
}

// pushTo offers encoded frame b to the connections conns returns (called under
// h.mu).
func (h *Hub) pushTo(b []byte, conns func() map[*conn]struct{}) {
	h.mu.RLock()
	slow := offerAll(conns(), outFrame{data: b}, nil)
	h.mu.RUnlock()
	h.dropSlow(slow)
}

// PushGroup implements dispatch.Pusher: one encoding and one WebSocket frame,
// offered to every connection here of the group's members but those in skip. It never
// blocks.
func (h *Hub) PushGroup(group uint64, e wire.Entry, skip map[string]bool) {
	if b, err := json.Marshal(wire.ServerFrame{Type: wire.FrameMessage, Entry: &e}); err == nil {
		h.pushGroup(group, b, skip)
	}
}

// pushGroup is PushGroup with the frame encoded.
func (h *Hub) pushGroup(group uint64, b []byte, skip map[string]bool) {
	pm, err := websocket.NewPreparedMessage(websocket.TextMessage, b)
	if err != nil {
		return
	}
	f := outFrame{prepared: pm}
	var slow []*conn
	h.mu.RLock()
	for u := range h.groups[group] {
		if !skip[u] {
			slow = offerAll(h.users[u], f, slow)
		}
	}
	h.mu.RUnlock()
	h.dropSlow(slow)
}

// offerAll queues frame b on conns and appends the ones that are full to slow.
func offerAll(conns map[*conn]struct{}, b outFrame, slow []*conn) []*conn {
	for c := range conns {
		if !c.offer(b) {
			slow = append(slow, c)
		}
	}
	return slow
}

func (h *Hub) dropSlow(slow []*conn) {
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
