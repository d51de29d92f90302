package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/fanline/fanline/internal/kv"
	"github.com/fanline/fanline/internal/metrics"
	"github.com/fanline/fanline/internal/presence"
	"github.com/fanline/fanline/internal/queue"
	"github.com/fanline/fanline/internal/wire"
)

// testConn is a connection without a socket, indexed in groups as read at version 0
// (every push of them is its): the test reads what the hub queues.
func testConn(h *Hub, user, shop string, groups ...uint64) *conn {
	c := &conn{user: user, shop: shop, out: make(chan outFrame, 64), done: make(chan struct{})}
	list := make([]wire.GroupVersion, len(groups))
	for i, g := range groups {
		list[i] = wire.GroupVersion{Group: g}
	}
	h.add(c, list, h.stamp())
	return c
}

// received drains what c was offered: the message entries' client_msg_ids, and
// "group" for a prepared (large-group) frame.
func received(c *conn) []string {
	var out []string
	for {
		select {
		case f := <-c.out:
			if f.prepared != nil {
				out = append(out, "group")
				continue
			}
			var sf struct {
				Type, Event string
				Entry       *struct {
					ClientMsgID string `json:"client_msg_id"`
				}
			}
			if err := json.Unmarshal(f.data, &sf); err != nil {
				out = append(out, err.Error())
				continue
			}
			switch {
			case sf.Entry != nil:
				out = append(out, sf.Entry.ClientMsgID)
			default:
				out = append(out, sf.Type+":"+sf.Event)
			}
		default:
			return out
		}
	}
}

// TestRelayRoutesToNodes: two gateway nodes read the push topic; a user's push
// reaches the nodes holding the user's connections and no other, broadcasts reach
// every node, and each node filters them by its own index.
func TestRelayRoutesToNodes(t *testing.T) {
	const parts = 4
	db, err := kv.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	q, err := queue.NewPebbleQueue(db, queue.PebbleQueueConfig{Topics: map[string]int{TopicPush: parts}})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	reg := presence.NewMemoryRegistry()
	relay, err := NewRelay(q, reg, metrics.New(), RelayConfig{Partitions: parts})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 3)
	go func() { relay.Run(ctx); done <- nil }()
	nodes := map[string]*Hub{"node-a": NewHub(metrics.New()), "node-b": NewHub(metrics.New())}
	members := newRoster()
	for _, h := range nodes {
		h.checkWith(members.CheckMembers, quiet)
	}
	for name, h := range nodes {
		go func() { done <- h.Receive(ctx, q, name, parts, slog.Default()) }()
	}
	defer func() {
		cancel()
		for range 3 {
			if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
				t.Error(err)
			}
		}
	}()
	connect := func(node, user, shop string, groups ...uint64) *conn {
		if err := reg.Connect(ctx, user, node); err != nil {
			t.Fatal(err)
		}
		return testConn(nodes[node], user, shop, groups...)
	}
	ann := connect("node-a", "ann", "", 9)
	bob := connect("node-b", "bob", "acme", 9)
	cat := connect("node-a", "cat", "")
	catB := connect("node-b", "cat", "")
	push := func(user, cmid string) { relay.Push(user, wire.Entry{ClientMsgID: cmid}, "") }

	// The tails start at the end of their partitions: probe until both nodes get
	// pushes.
	deadline := time.Now().Add(30 * time.Second)
	for a, b := false, false; !a || !b; {
		if time.Now().After(deadline) {
			t.Fatal("the nodes never got a push")
		}
		push("ann", "probe")
		push("bob", "probe")
		time.Sleep(20 * time.Millisecond)
		a = a || len(received(ann)) > 0
		b = b || len(received(bob)) > 0
	}
	// Drain the probes: a marker pushed after them ends each connection's backlog
	// (one per user: both of cat's connections get cat's).
	for _, u := range []string{"ann", "bob", "cat"} {
		push(u, "mark")
	}
	for _, c := range []*conn{ann, bob, cat, catB} {
		for seen := false; !seen; {
			if time.Now().After(deadline) {
				t.Fatal("the markers never arrived")
			}
			for _, m := range received(c) {
				seen = seen || m == "mark"
			}
		}
	}

	push("ann", "to-ann")
	push("cat", "to-cat")
	v1 := members.set(9, "ann", "bob")
	relay.PushGroup(9, v1, wire.Entry{ClientMsgID: "g1"}, map[string]bool{"bob": true})
	v2 := members.set(9, "ann", "bob", "cat")
	relay.GroupMembers(9, v2, []string{"cat"}, nil)
	relay.PushShop("acme", wire.ServerFrame{Type: wire.FrameCS, Event: "live"})
	relay.PushGroup(9, v2, wire.Entry{ClientMsgID: "g2"}, nil)
	want := map[*conn]string{
		ann:  "[to-ann group group]",
		bob:  "[cs:live group]",
		cat:  "[to-cat group]",
		catB: "[to-cat group]",
	}
	names := map[*conn]string{ann: "ann@a", bob: "bob@b", cat: "cat@a", catB: "cat@b"}
	got := map[*conn][]string{}
	deadline = time.Now().Add(10 * time.Second)
	for {
		ok := true
		for c, w := range want {
			got[c] = append(got[c], received(c)...)
			if fmt.Sprint(got[c]) != w {
				ok = false
			}
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			for c, w := range want {
				t.Errorf("%s got %v, want %s", names[c], got[c], w)
			}
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}
