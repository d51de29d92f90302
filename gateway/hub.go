package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/fanline/fanline/internal/ids"
	"github.com/fanline/fanline/internal/metrics"
	"github.com/fanline/fanline/internal/wire"
	"github.com/gorilla/websocket"
)

// Hub is this node's index of user -> open connections, and of group -> the users
// with connections here, so a large group's message is one event per node and no
// member is looked up on the send path. It delivers pushes; a connection whose send
// queue is full is closed rather than allowed to stall the worker that pushes to it
// (its device resyncs from its cursor on reconnect).
//
// The group index is made right at delivery instead of trusting every membership
// hint (GroupMembers) to arrive: a group push carries the group's membership
// version, and when the index has not been checked at that version or a newer one,
// the hub asks the service which of the group's users here are still members (one
// CheckMembers call) before anything goes out. A member removed while a hint was
// lost (the relay's buffer full, its presence lookup failed) or while their device
// connected (groups read before the removal, connection registered after it) gets
// nothing of the group stored after the removal. Checks happen once per version
// per node; while one fails, the group's pushes that need it are dropped (pushes
// are hints: devices resync).
//
// Additions are made right by version too: every indexed user carries the version
// they were indexed at (since), their addition's for a hint and the group's as read
// for their connection, and gets no push of an older version. Such a push is of a
// message stored before they joined, or before they connected (which their device's
// sync on connecting returns).
//
// h.mu is never held across a check's service call.
type Hub struct {
	m *metrics.Metrics

	mu         sync.RWMutex // guards every field below
	users      map[string]map[*conn]struct{}
	staff      map[string]map[*conn]struct{} // shop -> its agents' and admins' connections
	groups     map[uint64]*groupIndex        // group -> its members connected here
	userGroups map[string][]uint64           // connected user -> their groups
	// epoch counts the checks completed; a connection notes it (stamp) before its
	// groups are read.
	epoch uint64
	check memberCheck // nil until a Gateway attaches its Service
	log   *slog.Logger

	recalls *recentRecalls // safe for concurrent use
}

// memberCheck is Service.CheckMembers.
type memberCheck func(ctx context.Context, group uint64, users []string) (wire.MemberCheck, error)

// groupIndex is one group's members connected here.
type groupIndex struct {
	// users maps each member connected here to the join that indexed them (a
	// number from joins), so a check can tell who was indexed while it ran.
	users map[string]uint64
	joins uint64
	// since holds each user's membership version when indexed: their addition's
	// (a hint) or the group's as read when they connected. A push of an older
	// version is of a message stored before they joined, or before they connected
	// and so in their device's sync: not pushed to them.
	since map[string]uint64
	// version is the membership version the index was checked at (0: never).
	// INVARIANT: every user in users but those pending is a member at version, or
	// was indexed later by a hint of a newer version or from groups read after the
	// check; so with none pending, a push at version or below goes out without
	// another check.
	version uint64
	// pending are users indexed on information that may predate the check (a hint
	// of its version or older, groups read before it): the next push checks them.
	pending map[string]bool
	// checkedAt is the hub's epoch just after the check that set version.
	checkedAt uint64
	// checking, when set, is closed as the check running ends.
	checking chan struct{}
	// retryAt is when a failed check may be tried again.
	retryAt time.Time
}

const (
	// checkTimeout bounds one membership check (every round of it).
	checkTimeout = 5 * time.Second
	// checkRetry is how long after a failed check the group's pushes that need one
	// are dropped without asking the service again.
	checkRetry = time.Second
	// checkRounds bounds the service calls of one check: a round asks about the
	// users indexed since the previous one.
	checkRounds = 3
	// pushAttempts bounds the checks one push waits for (a user made pending just
	// after a check needs another).
	pushAttempts = 3
)

// NewHub returns an empty hub. Until a Gateway attaches its Service, the hub cannot
// check group memberships and drops the group pushes that need a check.
func NewHub(m *metrics.Metrics) *Hub {
	return &Hub{m: m, users: map[string]map[*conn]struct{}{}, groups: map[uint64]*groupIndex{},
		userGroups: map[string][]uint64{}, staff: map[string]map[*conn]struct{}{}, log: slog.Default(),
		recalls: newRecentRecalls()}
}

// checkWith makes check the hub's membership check.
func (h *Hub) checkWith(check memberCheck, log *slog.Logger) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.check, h.log = check, log
}

// stamp is taken before a connection's groups are read and handed to add with them.
func (h *Hub) stamp() uint64 {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.epoch
}

// add registers c with its user's groups, read after stamp was taken. A group
// checked since then may have seen a removal the groups predate: the user is
// checked at the group's next push.
func (h *Hub) add(c *conn, groups []wire.GroupVersion, stamp uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.users[c.user] == nil {
		h.users[c.user] = map[*conn]struct{}{}
	}
	h.users[c.user][c] = struct{}{}
	for _, g := range groups {
		gi, joined := h.join(g.Group, c.user)
		if !joined {
			continue // indexed already, at the version of an earlier connection or hint
		}
		gi.since[c.user] = g.Version
		if gi.checkedAt > stamp {
			gi.pending[c.user] = true
		}
	}
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
			if gi := h.groups[g]; gi != nil {
				delete(gi.users, c.user)
				delete(gi.pending, c.user)
				delete(gi.since, c.user)
				if len(gi.users) == 0 {
					delete(h.groups, g)
				}
			}
		}
		delete(h.userGroups, c.user)
	}
	return last
}

// join indexes user as a member of group g and reports whether they were not
// already; the caller holds h.mu.
func (h *Hub) join(g uint64, user string) (*groupIndex, bool) {
	gi := h.groups[g]
	if gi == nil {
		gi = &groupIndex{users: map[string]uint64{}, pending: map[string]bool{}, since: map[string]uint64{}}
		h.groups[g] = gi
	}
	if _, ok := gi.users[user]; ok {
		return gi, false
	}
	gi.joins++
	gi.users[user] = gi.joins
	h.userGroups[user] = append(h.userGroups[user], g)
	return gi, true
}

// leave drops user from group g's index; the caller holds h.mu.
func (h *Hub) leave(g uint64, user string) {
	gi := h.groups[g]
	if gi == nil {
		return
	}
	if _, ok := gi.users[user]; !ok {
		return
	}
	delete(gi.users, user)
	delete(gi.pending, user)
	delete(gi.since, user)
	if len(gi.users) == 0 {
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
// connected here. Removals apply whatever their version. An addition of a version
// the index was checked at or before may have been overtaken by a removal the check
// saw: its users are checked at the next push.
func (h *Hub) GroupMembers(group, version uint64, added, removed []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, u := range removed {
		h.leave(group, u)
	}
	for _, u := range added {
		if h.users[u] == nil {
			continue
		}
		gi, joined := h.join(group, u)
		if !joined {
			continue
		}
		gi.since[u] = version
		if gi.version != 0 && version <= gi.version {
			gi.pending[u] = true
		}
	}
}

// Push implements dispatch.Pusher: it never blocks.
func (h *Hub) Push(user string, e wire.Entry, cursor string) {
	e = h.recalls.entry(e)
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
// offered to every connection here of the group's members but those in skip. It
// never blocks on a connection; it waits only for a check of the group's index when
// version is newer than the index (once per version, at most checkTimeout).
func (h *Hub) PushGroup(group, version uint64, e wire.Entry, skip map[string]bool) {
	e = h.recalls.entry(e)
	if b, err := json.Marshal(wire.ServerFrame{Type: wire.FrameMessage, Entry: &e}); err == nil {
		h.pushGroup(context.Background(), group, version, createdAt(uint64(e.MsgID)), b, skip)
	}
}

// pushGroup is PushGroup with the frame encoded.
func (h *Hub) pushGroup(ctx context.Context, group, version uint64, created time.Time, b []byte, skip map[string]bool) {
	pm, err := websocket.NewPreparedMessage(websocket.TextMessage, b)
	if err != nil {
		return
	}
	f := outFrame{prepared: pm}
	// Delivered under the lock that shows the index ready for version: a user
	// indexed after the check that made it so is trusted or pending (Hub.add,
	// GroupMembers), never taken unchecked on stale information.
	for attempt := 0; attempt < pushAttempts; attempt++ {
		h.mu.RLock()
		gi := h.groups[group]
		if gi == nil {
			h.mu.RUnlock()
			return
		}
		if gi.ready(version) {
			var slow []*conn
			for u := range gi.users {
				if !skip[u] && gi.since[u] <= version {
					slow = offerAll(h.users[u], f, slow)
				}
			}
			h.mu.RUnlock()
			h.dropSlow(slow)
			h.m.GroupPush.Observe(time.Since(created).Seconds())
			return
		}
		h.mu.RUnlock()
		if !h.checkGroup(ctx, group, version) {
			break
		}
	}
	h.m.GroupPushesUnchecked.Inc()
}

// checkGroup brings group's index to version or newer by a check, or waits for the
// check running; false means it cannot now (the service failed, recently failed, or
// none is attached).
func (h *Hub) checkGroup(ctx context.Context, group, version uint64) bool {
	h.mu.Lock()
	gi := h.groups[group]
	switch {
	case gi == nil || gi.ready(version):
		h.mu.Unlock()
		return true
	case gi.checking != nil:
		running := gi.checking
		h.mu.Unlock()
		select {
		case <-running:
			return true // the caller looks at the index again
		case <-ctx.Done():
			return false
		}
	case h.check == nil || time.Now().Before(gi.retryAt):
		h.mu.Unlock()
		return false
	}
	done := make(chan struct{})
	gi.checking = done
	full := gi.version == 0 || gi.version < version
	check, log := h.check, h.log
	h.mu.Unlock()
	err := h.runCheck(ctx, group, gi, version, full, check)
	h.mu.Lock()
	gi.checking = nil
	if err != nil {
		gi.retryAt = time.Now().Add(checkRetry)
	}
	h.mu.Unlock()
	close(done)
	h.m.GroupChecks.WithLabelValues(checkResult(err)).Inc()
	if err != nil && ctx.Err() == nil {
		log.Warn("gateway: group membership check failed; the group's pushes are dropped until one succeeds (devices resync)",
			"group", group, "version", version, "err", err)
	}
	return err == nil
}

func checkResult(err error) string {
	if err != nil {
		return "failed"
	}
	return "ok"
}

// ready reports whether a push at version may go out from the index as it is.
func (gi *groupIndex) ready(version uint64) bool {
	return gi.version != 0 && gi.version >= version && len(gi.pending) == 0
}

// runCheck asks check about gi's users and drops the non-members. A full check asks
// about every user, then, in further rounds, those indexed while the previous round
// ran, and sets the index's version to the oldest the answers hold at (at least
// want). Otherwise it asks about the pending users (and those made pending
// meanwhile) and keeps the version.
func (h *Hub) runCheck(ctx context.Context, group uint64, gi *groupIndex, want uint64, full bool, check memberCheck) error {
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	checked := map[string]uint64{} // user -> the join checked
	var at uint64
	for range checkRounds {
		h.mu.RLock()
		if h.groups[group] != gi { // everyone left: a new index starts unchecked
			h.mu.RUnlock()
			return nil
		}
		var users []string
		joins := map[string]uint64{}
		for u, j := range gi.users {
			if checked[u] != j && (full || gi.pending[u]) {
				users = append(users, u)
				joins[u] = j
			}
		}
		h.mu.RUnlock()
		members := map[string]bool{}
		if len(users) > 0 { // none when they left meanwhile (a full check's first round has some)
			ans, err := check(ctx, group, users)
			if err != nil {
				return err
			}
			if ans.Version < want {
				return fmt.Errorf("gateway: group %d checked at version %d, older than its push's %d", group, ans.Version, want)
			}
			for _, u := range ans.Members {
				members[u] = true
			}
			if at == 0 || ans.Version < at {
				at = ans.Version
			}
		}
		h.mu.Lock()
		for _, u := range users {
			if gi.users[u] != joins[u] {
				continue // left, or indexed again since: a later round asks
			}
			checked[u] = joins[u]
			delete(gi.pending, u)
			if !members[u] {
				h.leave(group, u)
			}
		}
		settled := len(gi.pending) == 0
		if full {
			for u, j := range gi.users {
				settled = settled && checked[u] == j
			}
		}
		if settled && full {
			h.epoch++
			gi.version, gi.checkedAt = at, h.epoch
		}
		h.mu.Unlock()
		if settled {
			return nil
		}
	}
	return fmt.Errorf("gateway: group %d's members here kept changing during %d checks", group, checkRounds)
}

// createdAt is when message msg was created (zero for no message).
func createdAt(msg uint64) time.Time {
	if msg == 0 {
		return time.Time{}
	}
	return ids.Time(msg)
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
