// Package large holds the end-to-end tests that need thousands of connections. They
// run against a fanline binary in a child process and without the race detector
// (which caps a process at 8,128 live goroutines); make test runs them on their own.
package large

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/fanline/fanline/client"
	"github.com/fanline/fanline/internal/testharness"
	"github.com/fanline/fanline/internal/wire"
)

// device is one online SDK connection whose entries are collected as they come.
type device struct {
	c *client.Client

	mu  sync.Mutex // guards got
	got []wire.Entry
}

// messages returns the ids of the message entries of conversation g so far.
func (d *device) messages(g wire.ID) []wire.ID {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []wire.ID
	for _, e := range d.got {
		if e.Kind == wire.KindMessage && e.ConversationID == g {
			out = append(out, e.MsgID)
		}
	}
	return out
}

// fleet connects users in parallel and collects their entries until the test ends.
type fleet struct {
	t       *testing.T
	url     string
	mu      sync.Mutex // guards devices
	devices map[string]*device
	wg      sync.WaitGroup
	done    chan struct{}
}

func newFleet(t *testing.T, url string) *fleet {
	f := &fleet{t: t, url: url, devices: map[string]*device{}, done: make(chan struct{})}
	t.Cleanup(func() {
		close(f.done)
		f.wg.Wait()
		for _, d := range f.devices {
			d.c.Close()
		}
	})
	return f
}

func (f *fleet) connect(users []string) {
	f.t.Helper()
	ctx := context.Background()
	work := make(chan string)
	errs := make(chan error, len(users))
	var wg sync.WaitGroup
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for u := range work {
				tok, err := client.DevToken(ctx, f.url, u, "", "")
				if err != nil {
					errs <- err
					continue
				}
				c, err := client.Connect(ctx, client.Config{URL: f.url, Token: tok, EntryBuffer: 256,
					BackstopSync: 5 * time.Second})
				if err != nil {
					errs <- fmt.Errorf("%s: %w", u, err)
					continue
				}
				d := &device{c: c}
				f.mu.Lock()
				f.devices[u] = d
				f.mu.Unlock()
				f.wg.Add(1)
				go f.collect(d)
			}
		}()
	}
	for _, u := range users {
		work <- u
	}
	close(work)
	wg.Wait()
	close(errs)
	for err := range errs {
		f.t.Fatal(err)
	}
}

func (f *fleet) collect(d *device) {
	defer f.wg.Done()
	for {
		select {
		case e := <-d.c.Entries():
			d.mu.Lock()
			d.got = append(d.got, e)
			d.mu.Unlock()
		case <-f.done:
			return
		}
	}
}

func (f *fleet) device(u string) *device {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.devices[u]
}

func names(prefix string, from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, fmt.Sprintf("%s%05d", prefix, i))
	}
	return out
}

func text(s string) []byte { return []byte(`{"text":"` + s + `"}`) }

// TestLargeGroup: a real group grows from 300 members (write-fanout) to 10,000
// (read-fanout) and back to 301 (write-fanout again) while it receives 200 messages.
// 9,500 members are online through SDK connections (a process may hold 20,000 files;
// the server holds as many again), the rest offline. Every online device gets exactly
// the messages of its membership, once, in order; every final member's sync from an
// empty cursor yields exactly the messages from their join point. Then, while a second
// 10,000-member group is flooded, a 1:1 chat keeps delivering.
func TestLargeGroup(t *testing.T) {
	if testing.Short() {
		t.Skip("needs thousands of connections")
	}
	data := filepath.Join(t.TempDir(), "data")
	srv := testharness.StartServer(t, testharness.FreeAddr(t), data,
		"FANLINE_LIMITS_RATE_PER_SECOND=-1", "FANLINE_LOG_LEVEL=warn")
	ctx := context.Background()
	originals := names("u", 0, 299)     // with the owner: 300 members
	joiners := names("n", 0, 9700)      // join in phase 2
	stayingOriginals := originals[:150] // members to the end
	stayingJoiners := joiners[:150]     // members to the end
	online := append(slices.Clone(originals), joiners[:9200]...)
	online = append(online, "owner")
	f := newFleet(t, srv.URL())
	start := time.Now()
	f.connect(online)
	t.Logf("%d devices online in %s", len(online), time.Since(start).Round(time.Millisecond))

	owner := f.device("owner").c
	g, err := owner.CreateGroup(ctx, "flash sale", originals...)
	if err != nil || g.Fanout != "write" || g.MemberCount != 300 {
		t.Fatalf("create: %+v %v", g, err)
	}
	members := map[string]bool{"owner": true}
	for _, u := range originals {
		members[u] = true
	}
	expect := map[string][]wire.ID{}
	sent := 0
	phase := func(n int, fanout string) {
		t.Helper()
		var lags []time.Duration
		for range n {
			from := []string{"owner", "u00000"}[sent%2]
			sent++
			res, err := f.device(from).c.Send(ctx, wire.SendRequest{GroupID: g.GroupID, Type: "text", Body: text(fmt.Sprint(sent))})
			if err != nil {
				t.Fatal(err)
			}
			acked := time.Now()
			for u := range members {
				expect[u] = append(expect[u], res.MsgID)
			}
			// The last online member to get it (a sample of them, to keep it cheap).
			testharness.WaitFor(t, 30*time.Second, "the message to reach the members", func() bool {
				for _, u := range []string{"owner", "u00298", online[len(online)-2]} {
					if members[u] && !slices.Contains(f.device(u).messages(g.GroupID), res.MsgID) {
						return false
					}
				}
				return true
			})
			lags = append(lags, time.Since(acked))
		}
		sort.Slice(lags, func(i, j int) bool { return lags[i] < lags[j] })
		t.Logf("%d messages in %s-fanout: ack -> sampled members p50 %s, max %s", n, fanout,
			lags[len(lags)/2].Round(time.Millisecond), lags[len(lags)-1].Round(time.Millisecond))
		if got, err := owner.Group(ctx, g.GroupID); err != nil || got.Fanout != fanout {
			t.Fatalf("group after the phase: %+v %v, want %s", got, err, fanout)
		}
	}
	change := func(req wire.MembersRequest, fanout string, size int) {
		t.Helper()
		got, err := owner.ChangeMembers(ctx, g.GroupID, req)
		if err != nil || got.Fanout != fanout || got.MemberCount != size {
			t.Fatalf("change: %+v %v, want %s with %d", got, err, fanout, size)
		}
		for _, u := range req.Add {
			members[u] = true
		}
		for _, u := range req.Remove {
			delete(members, u)
		}
	}

	phase(70, "write")
	change(wire.MembersRequest{Add: joiners}, "read", 10000)
	phase(70, "read")
	remove := append(slices.Clone(originals[150:]), joiners[150:]...)
	change(wire.MembersRequest{Remove: remove}, "write", 10000-len(remove))
	phase(60, "write")

	// Every online device: its membership's messages, once, in order.
	for _, u := range online {
		d := f.device(u)
		want := expect[u]
		testharness.WaitFor(t, 60*time.Second, u+"'s messages", func() bool { return len(d.messages(g.GroupID)) >= len(want) })
		if got := d.messages(g.GroupID); !slices.Equal(got, want) {
			t.Fatalf("%s online: %d messages, want %d (first difference at %d)", u, len(got), len(want), firstDiff(got, want))
		}
	}
	// Every final member from an empty cursor: from their join point.
	final := append([]string{"owner"}, stayingOriginals...)
	final = append(final, stayingJoiners...)
	for _, u := range final {
		es := syncAll(t, f.device(u).c)
		var got []wire.ID
		for _, e := range es {
			if e.Kind == wire.KindMessage && e.ConversationID == g.GroupID {
				got = append(got, e.MsgID)
			}
		}
		if want := expect[u]; !slices.Equal(got, want) {
			t.Fatalf("%s fresh sync: %d messages, want %d (first difference at %d)", u, len(got), len(want), firstDiff(got, want))
		}
	}
	if n := len(expect["n00000"]); n != 130 || len(expect["owner"]) != 200 || len(expect["n09000"]) != 70 {
		t.Fatalf("scenario: joiner %d, owner %d, removed joiner %d", n, len(expect["owner"]), len(expect["n09000"]))
	}

	t.Run("Isolation", func(t *testing.T) { isolation(t, f, srv.URL()) })
}

func firstDiff(a, b []wire.ID) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

func syncAll(t *testing.T, c *client.Client) []wire.Entry {
	t.Helper()
	var out []wire.Entry
	cursor := ""
	for {
		res, err := c.SyncPage(context.Background(), cursor, 500)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, res.Entries...)
		cursor = res.Cursor
		if !res.HasMore {
			return out
		}
	}
}

// isolation floods a 10,000-member group (read-fanout, members mostly offline) from
// four senders while a 1:1 chat sends 50 messages one at a time; each must reach its
// recipient within a generous bound.
func isolation(t *testing.T, f *fleet, url string) {
	ctx := context.Background()
	senders := []string{"owner", "u00000", "u00001", "u00002"}
	members := append(slices.Clone(senders[1:]), names("x", 0, 9996)...)
	big, err := f.device("owner").c.CreateGroup(ctx, "megasale", members...)
	if err != nil || big.Fanout != "read" || big.MemberCount != 10000 {
		t.Fatalf("create: %+v %v", big, err)
	}
	f.connect([]string{"p1", "p2"})
	p1, p2 := f.device("p1"), f.device("p2")

	flood, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var floodMu sync.Mutex
	flooded := 0
	for _, s := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; flood.Err() == nil; i++ {
				_, err := f.device(s).c.Send(flood, wire.SendRequest{GroupID: big.GroupID, Type: "text", Body: text(fmt.Sprint(i))})
				if err != nil {
					return
				}
				floodMu.Lock()
				flooded++
				floodMu.Unlock()
			}
		}()
	}
	var worst time.Duration
	for i := range 50 {
		res, err := p1.c.Send(ctx, wire.SendRequest{To: "p2", Type: "text", Body: text(fmt.Sprint(i))})
		if err != nil {
			t.Fatal(err)
		}
		sent := time.Now()
		testharness.WaitFor(t, 5*time.Second, "the 1:1 message during the flood", func() bool {
			return slices.Contains(p2.messages(res.ConversationID), res.MsgID)
		})
		worst = max(worst, time.Since(sent))
	}
	cancel()
	wg.Wait()
	floodMu.Lock()
	defer floodMu.Unlock()
	if flooded < 100 {
		t.Fatalf("only %d flood messages were sent: the flood did not happen", flooded)
	}
	t.Logf("1:1 delivery during a flood of %d large-group messages: worst %s", flooded, worst.Round(time.Millisecond))
}
