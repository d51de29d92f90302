package gateway

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fanline/fanline/internal/auth"
	"github.com/fanline/fanline/internal/ids"
	"github.com/fanline/fanline/internal/metrics"
	"github.com/fanline/fanline/internal/presence"
	"github.com/fanline/fanline/internal/testharness"
	"github.com/fanline/fanline/internal/wire"
	"github.com/gorilla/websocket"
)

// roster is the pipeline's side of group membership for the hub's checks: each
// group's members and version, changed by set. It answers CheckMembers as
// dispatch.Dispatcher does, and UserGroups; a lookup of a user in hold waits for
// the test (the connect race).
type roster struct {
	mu       sync.Mutex
	versions map[uint64]uint64
	members  map[uint64]map[string]bool
	checks   int   // CheckMembers calls
	fail     error // CheckMembers answers it when set
	hold     map[string]chan struct{}
	reading  chan string // a held lookup's user, once it has read the groups
}

func newRoster() *roster {
	return &roster{versions: map[uint64]uint64{}, members: map[uint64]map[string]bool{},
		hold: map[string]chan struct{}{}, reading: make(chan string, 1)}
}

// set makes users group g's members and returns the group's new version.
func (r *roster) set(g uint64, users ...string) uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.members[g] = map[string]bool{}
	for _, u := range users {
		r.members[g][u] = true
	}
	r.versions[g]++
	return r.versions[g]
}

func (r *roster) CheckMembers(_ context.Context, g uint64, users []string) (wire.MemberCheck, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.checks++
	if r.fail != nil {
		return wire.MemberCheck{}, r.fail
	}
	out := wire.MemberCheck{Version: r.versions[g], Members: []string{}}
	for _, u := range users {
		if r.members[g][u] {
			out.Members = append(out.Members, u)
		}
	}
	return out, nil
}

func (r *roster) checkCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.checks
}

func (r *roster) failWith(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fail = err
}

func (r *roster) UserGroups(ctx context.Context, user string) ([]wire.GroupVersion, error) {
	r.mu.Lock()
	var gs []wire.GroupVersion
	for g, m := range r.members {
		if m[user] {
			gs = append(gs, wire.GroupVersion{Group: g, Version: r.versions[g]})
		}
	}
	release := r.hold[user]
	r.mu.Unlock()
	if release != nil {
		r.reading <- user
		select {
		case <-release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return gs, nil
}

// TestGroupPushChecksMembership: a group push carries the group's membership version;
// a hub whose index is older checks its members with the service before delivering,
// so a member removed without the hub hearing of it (the GroupMembers hint lost: the
// relay's buffer full, the presence lookup failed) gets nothing from then on. The
// check runs once per version, older pushes are delivered by the newer index, and
// while checks fail the group's pushes are dropped rather than sent to anyone
// unchecked.
func TestGroupPushChecksMembership(t *testing.T) {
	r := newRoster()
	v1 := r.set(9, "ann", "bob")
	m := metrics.New()
	h := NewHub(m)
	h.checkWith(r.CheckMembers, quiet)
	ann, bob := testConn(h, "ann", "", 9), testConn(h, "bob", "", 9)
	push := func(version uint64) { h.PushGroup(9, version, wire.Entry{Kind: wire.KindMessage}, nil) }
	expect := func(what string, annWant, bobWant int) {
		t.Helper()
		if a, b := len(received(ann)), len(received(bob)); a != annWant || b != bobWant {
			t.Fatalf("%s: ann got %d, bob %d; want %d and %d", what, a, b, annWant, bobWant)
		}
	}
	push(v1)
	expect("a push at the first version", 1, 1)

	v2 := r.set(9, "ann") // bob removed; the hint never arrives
	push(v2)
	expect("a push after bob's removal", 1, 0)
	checks := r.checkCount()
	push(v2)
	push(v1) // stored before the removal, delivered by the newer index
	expect("two more pushes", 2, 0)
	if n := counter(t, m, "fanline_group_push_seconds"); n != 4 {
		t.Fatalf("%v group deliveries timed, want 4", n)
	}
	if n := r.checkCount(); n != checks {
		t.Fatalf("%d checks for pushes at versions the hub has checked", n-checks)
	}

	// A hint ahead of the checked version applies at once; the next push checks it.
	v3 := r.set(9, "ann", "bob")
	h.GroupMembers(9, v3, []string{"bob"}, nil)
	push(v3)
	expect("a push after bob's return", 1, 1)
	// A stale hint (older than the checked version) adds no one.
	h.GroupMembers(9, v1, []string{"bob"}, nil)
	v4 := r.set(9, "ann")
	h.GroupMembers(9, v3-1, []string{"bob"}, nil)
	push(v4)
	expect("a push after bob's second removal", 1, 0)

	// The service unreachable: the push is dropped for everyone, and counted.
	v5 := r.set(9, "ann", "bob")
	h.GroupMembers(9, v5, []string{"bob"}, nil)
	r.failWith(wire.Errorf(wire.CodeUnavailable, "the dispatch node is unreachable; retry"))
	v6 := r.set(9, "ann")
	push(v6)
	expect("a push while checks fail", 0, 0)
	if n := counter(t, m, "fanline_group_pushes_unchecked_total"); n != 1 {
		t.Fatalf("%v unchecked pushes counted, want 1", n)
	}
	if n := counter(t, m, "fanline_group_member_checks_total", "failed"); n != 1 {
		t.Fatalf("%v failed checks counted, want 1", n)
	}
	r.failWith(nil)
	testharness.WaitFor(t, 10*time.Second, "a push once checks work again", func() bool {
		push(v6)
		return len(received(ann)) > 0
	})
	expect("the pushes after", 0, 0)
	if len(received(bob)) != 0 {
		t.Fatal("bob got a push after his removal")
	}

	// A check at bob's return that runs before the return's hint arrives (the
	// index holds no bob to ask about), then the hint, no newer than the index: bob
	// is checked at the next push, not left out.
	v7 := r.set(9, "ann", "bob")
	push(v7)
	expect("a push checked at bob's return", 1, 0)
	h.GroupMembers(9, v7, []string{"bob"}, nil)
	checks = r.checkCount()
	push(v7)
	expect("a push after the late hint", 1, 1)
	if n := r.checkCount() - checks; n != 1 {
		t.Fatalf("%d checks of bob, want 1", n)
	}
}

// TestConnectRaceWithRemoval: a user removed from a group between the gateway's
// lookup of their groups and the registration of their connection (the removal's
// hint arriving in between, when there is no connection to apply it to, and the
// group's pushes checked meanwhile) gets none of the group's later pushes.
func TestConnectRaceWithRemoval(t *testing.T) {
	r := newRoster()
	v1 := r.set(9, "ann", "bob")
	srv := newRosterGateway(t, r)
	h, dial := srv.hub, srv.dial
	next := func(who string, ws *websocket.Conn) string { return nextCmid(t, who, ws) }
	push := func(version uint64, cmid string) {
		h.PushGroup(9, version, wire.Entry{Kind: wire.KindMessage, ConversationID: 9, ClientMsgID: cmid}, nil)
	}
	ann, err := dial("ann")
	if err != nil {
		t.Fatal(err)
	}
	defer ann.Close()
	testharness.WaitFor(t, 10*time.Second, "ann's connection", func() bool { return h.connected("ann") })
	push(v1, "g1")
	if got := next("ann", ann); got != "g1" {
		t.Fatalf("ann got %s", got)
	}

	release := make(chan struct{})
	r.mu.Lock()
	r.hold["bob"] = release
	r.mu.Unlock()
	type dialed struct {
		ws  *websocket.Conn
		err error
	}
	bobCh := make(chan dialed, 1)
	go func() {
		ws, err := dial("bob")
		bobCh <- dialed{ws, err}
	}()
	<-r.reading // bob's groups are read: group 9
	v2 := r.set(9, "ann")
	h.GroupMembers(9, v2, nil, []string{"bob"})
	push(v2, "g2")
	if got := next("ann", ann); got != "g2" {
		t.Fatalf("ann got %s", got)
	}
	close(release)
	d := <-bobCh
	if d.err != nil {
		t.Fatal(d.err)
	}
	defer d.ws.Close()
	testharness.WaitFor(t, 10*time.Second, "bob's connection", func() bool { return h.connected("bob") })
	push(v2, "g3")
	h.Push("bob", wire.Entry{Kind: wire.KindMessage, ConversationID: 5, ClientMsgID: "marker"}, "")
	if got := next("ann", ann); got != "g3" {
		t.Fatalf("ann got %s", got)
	}
	if got := next("bob", d.ws); got != "marker" {
		t.Fatalf("bob, removed before his connection registered, got group push %s", got)
	}
}

// rosterGateway is a Gateway answering group lookups from a roster, served over a
// test server until the test ends.
type rosterGateway struct {
	hub    *Hub
	issuer *auth.Issuer
	url    string
}

func newRosterGateway(t *testing.T, r *roster) *rosterGateway {
	t.Helper()
	issuer, err := auth.NewIssuer(strings.Repeat("s", auth.MinSecretBytes), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	h := NewHub(metrics.New())
	g := New(Config{Logger: quiet, RatePerSecond: -1}, rosterService{r: r}, issuer, presence.NewMemoryRegistry(), h, metrics.New())
	srv := httptest.NewServer(g.Handler())
	t.Cleanup(func() {
		g.Close()
		srv.Close()
	})
	return &rosterGateway{hub: h, issuer: issuer, url: srv.URL}
}

// dial opens a WebSocket of buyer user.
func (s *rosterGateway) dial(user string) (*websocket.Conn, error) {
	tok, err := s.issuer.Issue(auth.User{ID: user, Role: wire.RoleBuyer})
	if err != nil {
		return nil, err
	}
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(s.url, "http")+wsPath+"?token="+tok, nil)
	return ws, err
}

// nextCmid returns the client_msg_id of the next frame ws gets.
func nextCmid(t *testing.T, who string, ws *websocket.Conn) string {
	t.Helper()
	ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, b, err := ws.ReadMessage()
	if err != nil {
		t.Fatalf("%s: %v", who, err)
	}
	var f wire.ServerFrame
	if err := json.Unmarshal(b, &f); err != nil || f.Entry == nil {
		t.Fatalf("%s: frame %s (%v)", who, b, err)
	}
	return f.Entry.ClientMsgID
}

// rosterService is a Service answering group lookups from a roster; any other call
// panics (the embedded nil interface).
type rosterService struct {
	Service
	r *roster
}

func (s rosterService) UserGroups(ctx context.Context, user string) ([]wire.GroupVersion, error) {
	return s.r.UserGroups(ctx, user)
}

func (s rosterService) CheckMembers(ctx context.Context, g uint64, users []string) (wire.MemberCheck, error) {
	return s.r.CheckMembers(ctx, g, users)
}

// counter reads a counter of m (a histogram's count of observations): name, with
// the label value if it has one.
func counter(t *testing.T, m *metrics.Metrics, name string, label ...string) float64 {
	t.Helper()
	families, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, mt := range f.GetMetric() {
			if len(label) == 0 || (len(mt.GetLabel()) == 1 && mt.GetLabel()[0].GetValue() == label[0]) {
				if h := mt.GetHistogram(); h != nil {
					return float64(h.GetSampleCount())
				}
				return mt.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// connected reports whether user has a connection registered here.
func (h *Hub) connected(user string) bool {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return len(h.users[user]) > 0
}

// TestAddedMemberGetsNoOlderPush: a member added at version v gets the group's pushes
// of version v and later, not a push of a message stored before they joined that
// reaches the node after their addition's hint.
func TestAddedMemberGetsNoOlderPush(t *testing.T) {
	r := newRoster()
	v1 := r.set(9, "ann")
	h := NewHub(metrics.New())
	h.checkWith(r.CheckMembers, quiet)
	ann, bob := testConn(h, "ann", "", 9), testConn(h, "bob", "")
	push := func(version uint64) { h.PushGroup(9, version, wire.Entry{Kind: wire.KindMessage}, nil) }
	push(v1)
	v2 := r.set(9, "ann", "bob")
	h.GroupMembers(9, v2, []string{"bob"}, nil)
	push(v1) // stored before bob joined, arriving after the hint
	if a, b := len(received(ann)), len(received(bob)); a != 2 || b != 0 {
		t.Fatalf("pushes of version %d: ann got %d, bob %d; want 2 and 0", v1, a, b)
	}
	push(v2)
	if a, b := len(received(ann)), len(received(bob)); a != 1 || b != 1 {
		t.Fatalf("a push of version %d: ann got %d, bob %d; want 1 each", v2, a, b)
	}
}

// TestConnectAfterJoiningGetsNoOlderPush: a user who connects after being added to a
// group (their groups read at the new version, the addition's hint not yet here)
// gets none of the group's pushes of an older version, however new the message's id
// looks: after a restart msg_ids run up to the id lease ahead of the clock, so a
// message stored before the user joined can carry a time after their connection.
func TestConnectAfterJoiningGetsNoOlderPush(t *testing.T) {
	r := newRoster()
	v1 := r.set(9, "ann")
	srv := newRosterGateway(t, r)
	h := srv.hub
	dial := func(user string) *websocket.Conn {
		t.Helper()
		ws, err := srv.dial(user)
		if err != nil {
			t.Fatal(err)
		}
		testharness.WaitFor(t, 10*time.Second, user+"'s connection", func() bool { return h.connected(user) })
		return ws
	}
	next := func(who string, ws *websocket.Conn) string { return nextCmid(t, who, ws) }
	ahead := wire.ID(ids.Before(time.Now().Add(2 * time.Second))) // an id of a lease after a restart
	push := func(version uint64, cmid string) {
		h.PushGroup(9, version, wire.Entry{Kind: wire.KindMessage, ConversationID: 9, MsgID: ahead, ClientMsgID: cmid}, nil)
	}
	ann := dial("ann")
	defer ann.Close()
	push(v1, "g1")
	if got := next("ann", ann); got != "g1" {
		t.Fatalf("ann got %s", got)
	}
	v2 := r.set(9, "ann", "bob")
	bob := dial("bob") // the groups read at v2; the hint of bob's addition comes later
	defer bob.Close()
	push(v1, "stored before bob joined")
	push(v2, "g2")
	for _, want := range []string{"stored before bob joined", "g2"} {
		if got := next("ann", ann); got != want {
			t.Fatalf("ann got %s, want %s", got, want)
		}
	}
	if got := next("bob", bob); got != "g2" {
		t.Fatalf("bob, who joined at version %d, got %q (a push of version %d)", v2, got, v1)
	}
}
