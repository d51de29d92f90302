package csrouting_test

import (
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	csrouting "github.com/fanline/fanline/cs-routing"
	"github.com/fanline/fanline/internal/kv"
)

// restarts returns a function that opens a Router on one Pebble database at
// clock: each call is the node started again.
func restarts(t *testing.T, clock csrouting.Clock) func() *csrouting.Router {
	db, err := kv.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return func() *csrouting.Router {
		r, err := csrouting.NewRouter(csrouting.Config{Clock: clock, Store: csrouting.NewPebbleStore(db)})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
}

// TestPebbleStoreKeepsShops: rules (with hours) and agents survive a restart.
func TestPebbleStoreKeepsShops(t *testing.T) {
	clock := newManualClock(time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC))
	start := restarts(t, clock)
	r := start()
	agents := []csrouting.AgentConfig{{ID: "ann", Skills: []string{"pre_sales"}, Capacity: 3}}
	if ps, err := r.SetAgents("acme", agents); ps != nil || err != nil {
		t.Fatal(ps, err)
	}
	rules := csrouting.Rules{Skills: []csrouting.SkillGroup{{Name: "pre_sales"}},
		Hours: &csrouting.Hours{TimeZone: "UTC", Week: map[string][]string{"mon": {"09:00-12:00"}}}}
	for range 2 {
		if _, ps, err := r.SetRules("acme", rules); ps != nil || err != nil {
			t.Fatal(ps, err)
		}
	}
	again := start()
	got, err := again.Rules("acme")
	if err != nil || got.Version != 2 || got.Hours == nil {
		t.Fatalf("rules after restart: %+v %v", got, err)
	}
	if as := again.Agents("acme"); len(as) != 1 || as[0].ID != "ann" || as[0].Capacity != 3 || as[0].Status != csrouting.Offline {
		t.Fatalf("agents after restart: %+v", as)
	}
	// The hours work after the restart: 10:00 on a Monday is open.
	if l, _ := again.Live("acme"); !l.Open {
		t.Fatal("shop closed at 10:00 on Monday after a restart")
	}

	// Chats survive too: the one ann serves stays hers for the presence grace, the
	// waiting one keeps its place.
	again.SetStatus("acme", "ann", csrouting.Online)
	again.Presence("acme", "ann", true)
	for _, id := range []string{"c1", "c2", "c3"} {
		if _, err := again.Open("acme", csrouting.OpenRequest{Chat: id, Buyer: "b-" + id, Entry: "product"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := again.Close("acme", "c3", "ann"); err != nil { // ann had room for all three
		t.Fatal(err)
	}
	third := start()
	if d, _ := third.Chat("acme", "c1"); d.State != csrouting.Assigned || d.Agent != "ann" {
		t.Fatalf("c1 after a restart: %+v", d)
	}
	if as := third.Agents("acme"); as[0].Load != 2 || as[0].Connected {
		t.Fatalf("ann after a restart: %+v", as[0])
	}
	if d, _ := third.Chat("acme", "c3"); d.State != csrouting.Closed {
		t.Fatalf("c3 after a restart: %+v", d)
	}
	clock.Advance(31 * time.Second) // ann does not come back
	if d, _ := third.Chat("acme", "c1"); d.State != csrouting.Queued || d.Position != 1 {
		t.Fatalf("c1 after the grace: %+v", d)
	}
	if third.StoreErrors() != 0 {
		t.Fatalf("%d store errors", third.StoreErrors())
	}
}

// TestClosedChatsForgotten: closed chats and who served whom are kept a month, then
// dropped from memory and from the next restart.
func TestClosedChatsForgotten(t *testing.T) {
	clock := newManualClock(time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC))
	r, err := csrouting.NewRouter(csrouting.Config{Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	r.SetAgents("s", []csrouting.AgentConfig{{ID: "ann", Skills: []string{"x"}, Capacity: 1}})
	if _, ps, err := r.SetRules("s", csrouting.Rules{Skills: []csrouting.SkillGroup{{Name: "x"}}}); ps != nil || err != nil {
		t.Fatal(ps, err)
	}
	openClose := func(id string) {
		t.Helper()
		if _, err := r.Open("s", csrouting.OpenRequest{Chat: id, Buyer: "b" + id, Entry: "shop"}); err != nil {
			t.Fatal(err)
		}
		if _, err := r.Close("s", id, "ann"); err != nil {
			t.Fatal(err)
		}
	}
	openClose("old")
	clock.Advance(31 * 24 * time.Hour)
	for i := range 1023 {
		openClose(fmt.Sprint(i))
	}
	if _, err := r.Chat("s", "old"); err != csrouting.ErrUnknownChat {
		t.Fatalf("a chat closed 31 days ago: %v", err)
	}
	if d, err := r.Chat("s", "7"); err != nil || d.State != csrouting.Closed {
		t.Fatalf("a chat closed today: %+v %v", d, err)
	}
}

// TestClosedChatsDeletedFromStore: chats closed more than 30 days ago are deleted
// from Pebble by the next trim (a close, at most a day after the previous trim) and
// at a restart.
func TestClosedChatsDeletedFromStore(t *testing.T) {
	db, err := kv.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	clock := newManualClock(time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC))
	store := csrouting.NewPebbleStore(db)
	r, err := csrouting.NewRouter(csrouting.Config{Clock: clock, Store: store})
	if err != nil {
		t.Fatal(err)
	}
	r.SetAgents("s", []csrouting.AgentConfig{{ID: "ann", Skills: []string{"x"}, Capacity: 1}})
	if _, ps, err := r.SetRules("s", csrouting.Rules{Skills: []csrouting.SkillGroup{{Name: "x"}}}); ps != nil || err != nil {
		t.Fatal(ps, err)
	}
	r.SetStatus("s", "ann", csrouting.Online)
	r.Presence("s", "ann", true)
	openClose := func(id string) {
		t.Helper()
		if _, err := r.Open("s", csrouting.OpenRequest{Chat: id, Buyer: "b" + id, Entry: "shop"}); err != nil {
			t.Fatal(err)
		}
		if _, err := r.Close("s", id, "ann"); err != nil {
			t.Fatal(err)
		}
	}
	stored := func() string {
		t.Helper()
		all, err := store.All()
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, c := range all["s"].Chats {
			ids = append(ids, c.ID)
		}
		sort.Strings(ids)
		return strings.Join(ids, ",")
	}
	openClose("old1")
	openClose("old2")
	clock.Advance(20 * 24 * time.Hour)
	openClose("mid")
	if got := stored(); got != "mid,old1,old2" {
		t.Fatalf("stored after 20 days: %s", got)
	}
	clock.Advance(11 * 24 * time.Hour)
	openClose("new")
	if got := stored(); got != "mid,new" {
		t.Fatalf("stored 31 days after old1 and old2 closed: %s", got)
	}
	if _, err := r.Chat("s", "old1"); err != csrouting.ErrUnknownChat {
		t.Fatalf("old1 in memory: %v", err)
	}
	// A restart deletes what expired meanwhile.
	clock.Advance(25 * 24 * time.Hour)
	if _, err := csrouting.NewRouter(csrouting.Config{Clock: clock, Store: store}); err != nil {
		t.Fatal(err)
	}
	if got := stored(); got != "new" {
		t.Fatalf("stored after a restart 56 days after mid closed: %s", got)
	}
	if r.StoreErrors() != 0 {
		t.Fatalf("%d store errors", r.StoreErrors())
	}
}

// TestChatContextKept: where a chat was opened from (entry, product or order) is in
// its decisions, kept across a restart, and replaced by a reopening's.
func TestChatContextKept(t *testing.T) {
	open := restarts(t, newManualClock(time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)))
	r := open()
	if ps, err := r.SetAgents("acme", []csrouting.AgentConfig{{ID: "ann", Skills: []string{"sales"}, Capacity: 2}}); ps != nil || err != nil {
		t.Fatal(ps, err)
	}
	if _, ps, err := r.SetRules("acme", csrouting.Rules{Skills: []csrouting.SkillGroup{{Name: "sales"}}}); ps != nil || err != nil {
		t.Fatal(ps, err)
	}
	d, err := r.Open("acme", csrouting.OpenRequest{Chat: "c1", Buyer: "carla", Entry: "product", ProductID: "p-7"})
	if err != nil || d.Entry != "product" || d.ProductID != "p-7" || d.OrderID != "" {
		t.Fatalf("open: %+v %v", d, err)
	}
	again := open()
	if d, err := again.Chat("acme", "c1"); err != nil || d.Entry != "product" || d.ProductID != "p-7" {
		t.Fatalf("after a restart: %+v %v", d, err)
	}
	if _, err := again.Close("acme", "c1", "ann"); err != nil {
		t.Fatal(err)
	}
	d, err = again.Open("acme", csrouting.OpenRequest{Chat: "c1", Buyer: "carla", Entry: "order", OrderID: "o-9"})
	if err != nil || d.Entry != "order" || d.OrderID != "o-9" || d.ProductID != "" {
		t.Fatalf("reopened: %+v %v", d, err)
	}
}
