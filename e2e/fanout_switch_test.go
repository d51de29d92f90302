package e2e

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/fanline/fanline/client"
	"github.com/fanline/fanline/internal/config"
	"github.com/fanline/fanline/internal/testharness"
	"github.com/fanline/fanline/internal/wire"
	"github.com/fanline/fanline/timeline"
)

// syncAll pages through a user's sync from cursor with pages of limit, checks that
// no cursor goes backwards, and returns the entries and the last cursor.
func syncAll(t *testing.T, c *client.Client, cursor string, limit int) ([]wire.Entry, string) {
	t.Helper()
	ctx := context.Background()
	prev, err := timeline.ParseCursor(cursor)
	if err != nil {
		t.Fatal(err)
	}
	var out []wire.Entry
	for {
		res, err := c.SyncPage(ctx, cursor, limit)
		if err != nil {
			t.Fatal(err)
		}
		next, err := timeline.ParseCursor(res.Cursor)
		if err != nil {
			t.Fatal(err)
		}
		if next.Seq < prev.Seq {
			t.Fatalf("cursor went back: seq %d -> %d", prev.Seq, next.Seq)
		}
		for g, pos := range prev.Groups {
			if p, ok := next.Groups[g]; ok && p < pos {
				t.Fatalf("cursor went back in group %d: %d -> %d", g, pos, p)
			}
		}
		out = append(out, res.Entries...)
		cursor, prev = res.Cursor, next
		if !res.HasMore {
			return out, cursor
		}
	}
}

// groupMessages returns the ids of the message entries of group g, in order.
func groupMessages(es []wire.Entry, g wire.ID) []wire.ID {
	var out []wire.ID
	for _, e := range es {
		if e.Kind == wire.KindMessage && e.ConversationID == g {
			out = append(out, e.MsgID)
		}
	}
	return out
}

// TestFanoutSwitch walks a group (write-fanout up to 4 members, back below 3) across
// both switches several times, with members joining, leaving and rejoining, and
// checks that every device gets exactly the messages of its membership, once, in
// order: online devices through pushes, fresh devices through paged syncs, and a
// device resuming from a cursor taken before the switches.
func TestFanoutSwitch(t *testing.T) {
	ts := startServer(t, func(c *config.Config) {
		c.Fanout.WriteMaxMembers, c.Fanout.WriteBackMembers = 4, 3
	})
	ctx := context.Background()
	online := map[string]*client.Client{}
	for _, u := range []string{"o", "a", "b", "c", "f"} {
		online[u] = connect(t, ts.URL, u)
	}
	g, err := online["o"].CreateGroup(ctx, "switching", "a", "b")
	if err != nil || g.Fanout != "write" {
		t.Fatalf("create: %+v %v", g, err)
	}
	members := map[string]bool{"o": true, "a": true, "b": true}
	expect := map[string][]wire.ID{}
	var all []wire.ID
	n := 0
	send := func(count int) {
		t.Helper()
		for range count {
			from := []string{"o", "b"}[n%2]
			n++
			res, err := online[from].Send(ctx, wire.SendRequest{GroupID: g.GroupID, Type: "text", Body: text(fmt.Sprint(n))})
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, res.MsgID)
			for u := range members {
				expect[u] = append(expect[u], res.MsgID)
			}
			// Stored and fanned out before the next membership change.
			testharness.WaitFor(t, 10*time.Second, "the owner to sync the message", func() bool {
				es, _ := syncAll(t, online["o"], "", 500)
				return slices.Contains(groupMessages(es, g.GroupID), res.MsgID)
			})
		}
	}
	change := func(add, remove []string, fanout string) {
		t.Helper()
		got, err := online["o"].ChangeMembers(ctx, g.GroupID, wire.MembersRequest{Add: add, Remove: remove})
		if err != nil || got.Fanout != fanout {
			t.Fatalf("change +%v -%v: %+v %v, want fanout %s", add, remove, got, err, fanout)
		}
		for _, u := range add {
			members[u] = true
		}
		for _, u := range remove {
			delete(members, u)
		}
	}
	send(3)
	_, early := syncAll(t, online["b"], "", 2)
	earlyCount := len(expect["b"])
	change([]string{"c", "d", "k"}, nil, "read")
	send(3)
	change(nil, []string{"a", "k"}, "read") // 4 members: not below 3
	send(2)
	change([]string{"e"}, nil, "read")
	send(2)
	change(nil, []string{"c", "d", "e"}, "write")
	send(2)
	change([]string{"f"}, nil, "write")
	send(2)
	change([]string{"a", "g", "h"}, nil, "read")
	send(3)
	recalled, recaller := all[len(all)-1], []string{"o", "b"}[(n-1)%2]
	if err := online[recaller].Recall(ctx, recalled); err != nil {
		t.Fatal(err)
	}

	// Online devices: pushes and syncs together give each message of the
	// membership once, in order.
	for u, c := range online {
		want := expect[u]
		var got []wire.ID
		events := map[wire.ID]int{} // group events, each to arrive once
		deadline := time.After(15 * time.Second)
		for len(got) < len(want) {
			select {
			case e := <-c.Entries():
				if e.Kind == wire.KindMessage && e.ConversationID == g.GroupID {
					got = append(got, e.MsgID)
				}
				if e.Kind == wire.KindGroupEvent {
					if events[e.MsgID]++; events[e.MsgID] > 1 {
						t.Fatalf("%s got group event %s twice", u, e.MsgID)
					}
				}
			case <-deadline:
				t.Fatalf("%s got %d of %d messages: %v", u, len(got), len(want), got)
			}
		}
		if !slices.Equal(got, want) {
			t.Fatalf("%s online got %v, want %v", u, got, want)
		}
	}
	// Fresh devices of members who never left: exactly from their join point.
	for _, u := range []string{"o", "b", "f", "g", "h"} {
		for _, limit := range []int{1, 3, 500} {
			es, _ := syncAll(t, connect(t, ts.URL, u), "", limit)
			if got := groupMessages(es, g.GroupID); !slices.Equal(got, expect[u]) {
				t.Fatalf("%s fresh sync (pages of %d): %v, want %v", u, limit, got, expect[u])
			}
		}
	}
	// k never had a device while a member: after leaving, a fresh one still gets
	// the messages of the membership (read-fanout: they are only in the stream).
	es, _ := syncAll(t, connect(t, ts.URL, "k"), "", 2)
	if got := groupMessages(es, g.GroupID); len(got) != 3 || !slices.Equal(got, expect["k"]) {
		t.Fatalf("k after leaving: %v, want %v", got, expect["k"])
	}
	// A device resuming from a cursor taken before any switch.
	es, _ = syncAll(t, online["b"], early, 2)
	if got := groupMessages(es, g.GroupID); !slices.Equal(got, expect["b"][earlyCount:]) {
		t.Fatalf("b from the early cursor: %v, want %v", got, expect["b"][earlyCount:])
	}
	// The recall made in read-fanout reaches a member's sync; the body is gone.
	es, _ = syncAll(t, connect(t, ts.URL, "g"), "", 500)
	sawRecall := false
	for _, e := range es {
		if e.MsgID == recalled && e.Kind == wire.KindRecall && e.From == recaller {
			sawRecall = true
		}
		if e.MsgID == recalled && e.Kind == wire.KindMessage && (!e.Recalled || e.Body != nil) {
			t.Fatalf("recalled message rendered %+v", e)
		}
	}
	if !sawRecall {
		t.Fatalf("no recall entry in g's sync: %+v", es)
	}
}
