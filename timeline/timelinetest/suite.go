// Package timelinetest is the conformance suite every timeline.Store backend runs.
package timelinetest

import (
	"context"
	"fmt"
	"math/rand"
	"sync"
	"testing"
	"time"

	"github.com/fanline/fanline/timeline"
)

// Factory returns a fresh, empty store for one test.
type Factory func(t *testing.T) timeline.Store

// Run runs the whole suite.
func Run(t *testing.T, f Factory) {
	t.Run("ContinuousSeqAndIdempotence", func(t *testing.T) { testSeq(t, f(t)) })
	t.Run("UnreadAndRead", func(t *testing.T) { testUnread(t, f(t)) })
	t.Run("UnreadMatchesOracle", func(t *testing.T) { testOracle(t, f(t)) })
	t.Run("ConcurrentWritersOneUser", func(t *testing.T) { testConcurrent(t, f(t)) })
}

var ctx = context.Background()

func msg(user, from string, conv, id uint64) timeline.Item {
	peer := "peer"
	return timeline.Item{User: user, Kind: timeline.KindMessage, ConversationID: conv, ConvKind: "direct",
		Peer: peer, MsgID: id, From: from, At: time.Unix(int64(id), 0)}
}

func checkSeqs(t *testing.T, s timeline.Store, user string, want int) []timeline.Entry {
	t.Helper()
	es, err := s.Read(ctx, user, 0, want+10)
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != want {
		t.Fatalf("%s has %d entries, want %d", user, len(es), want)
	}
	for i, e := range es {
		if e.Seq != uint64(i+1) {
			t.Fatalf("%s entry %d has seq %d", user, i, e.Seq)
		}
	}
	if h, err := s.Head(ctx, user); err != nil || h != uint64(want) {
		t.Fatalf("head of %s = %d, %v; want %d", user, h, err, want)
	}
	return es
}

func testSeq(t *testing.T, s timeline.Store) {
	added, err := s.Append(ctx, []timeline.Item{msg("a", "b", 1, 10), msg("b", "b", 1, 10), msg("a", "b", 1, 11)})
	if err != nil || len(added) != 3 {
		t.Fatalf("Append: %v, %d added", err, len(added))
	}
	// Redelivery of the same items adds nothing.
	added, err = s.Append(ctx, []timeline.Item{msg("a", "b", 1, 10), msg("a", "b", 1, 11)})
	if err != nil || len(added) != 0 {
		t.Fatalf("re-Append: %v, %d added", err, len(added))
	}
	// A recall of a message is a different entry from the message.
	added, err = s.Append(ctx, []timeline.Item{{User: "a", Kind: timeline.KindRecall, ConversationID: 1, MsgID: 10, From: "b", At: time.Now()}})
	if err != nil || len(added) != 1 || added[0].Seq != 3 {
		t.Fatalf("recall Append: %v, %+v", err, added)
	}
	es := checkSeqs(t, s, "a", 3)
	if es[0].MsgID != 10 || es[1].MsgID != 11 || es[2].Kind != timeline.KindRecall || es[0].From != "b" {
		t.Fatalf("entries: %+v", es)
	}
	checkSeqs(t, s, "b", 1)
	if part, _ := s.Read(ctx, "a", 1, 1); len(part) != 1 || part[0].Seq != 2 {
		t.Fatalf("Read after 1 limit 1: %+v", part)
	}
	if _, err := s.ConvState(ctx, "a", 99); err != timeline.ErrNotFound {
		t.Fatalf("ConvState of unknown conversation: %v", err)
	}
	if _, _, err := s.MarkRead(ctx, "a", 99, 1, "", time.Now()); err != timeline.ErrNotFound {
		t.Fatalf("MarkRead of unknown conversation: %v", err)
	}
	// A read-fanout group the user never had an entry of: the state is created.
	e, st, err := s.MarkRead(ctx, "a", 98, 5, "group", time.Now())
	if err != nil || e == nil || st.Kind != "group" || st.ReadMsgID != 5 || st.Unread != 0 {
		t.Fatalf("MarkRead creating a group state: %+v %+v %v", e, st, err)
	}
	// Group messages record the highest stream seq and where it landed.
	if _, err := s.Append(ctx, []timeline.Item{
		{User: "g", Kind: timeline.KindMessage, ConversationID: 50, ConvKind: "group", MsgID: 1, From: "x", At: time.Now(), GroupSeq: 7},
		{User: "g", Kind: timeline.KindMessage, ConversationID: 50, ConvKind: "group", MsgID: 2, From: "x", At: time.Now(), GroupSeq: 8},
	}); err != nil {
		t.Fatal(err)
	}
	if st, err := s.ConvState(ctx, "g", 50); err != nil || st.GroupSeq != 8 || st.GroupSeqAt != 2 {
		t.Fatalf("group seq in state: %+v %v", st, err)
	}
}

func unread(t *testing.T, s timeline.Store, user string) (map[uint64]int64, int64) {
	t.Helper()
	states, total, err := s.Conversations(ctx, user)
	if err != nil {
		t.Fatal(err)
	}
	m := map[uint64]int64{}
	var sum int64
	for _, st := range states {
		m[st.ConversationID] = st.Unread
		sum += st.Unread
	}
	if sum != total {
		t.Fatalf("%s: total unread %d but conversations add up to %d", user, total, sum)
	}
	return m, total
}

func testUnread(t *testing.T, s timeline.Store) {
	for id := uint64(1); id <= 5; id++ {
		if _, err := s.Append(ctx, []timeline.Item{msg("a", "b", 7, id)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Append(ctx, []timeline.Item{msg("a", "c", 8, 6)}); err != nil {
		t.Fatal(err)
	}
	if m, total := unread(t, s, "a"); m[7] != 5 || m[8] != 1 || total != 6 {
		t.Fatalf("unread %v total %d", m, total)
	}
	e, st, err := s.MarkRead(ctx, "a", 7, 3, "", time.Now())
	if err != nil || e == nil || st.Unread != 2 || st.ReadMsgID != 3 {
		t.Fatalf("MarkRead to 3: %v %+v %+v", err, e, st)
	}
	if e.Kind != timeline.KindRead || e.Seq != 7 {
		t.Fatalf("read entry %+v", e)
	}
	if e, _, _ := s.MarkRead(ctx, "a", 7, 2, "", time.Now()); e != nil {
		t.Fatalf("MarkRead backwards appended %+v", e)
	}
	// Own message reads everything before it.
	if _, err := s.Append(ctx, []timeline.Item{msg("a", "a", 7, 9)}); err != nil {
		t.Fatal(err)
	}
	if m, total := unread(t, s, "a"); m[7] != 0 || total != 1 {
		t.Fatalf("after own message: unread %v total %d", m, total)
	}
	st, err = s.ConvState(ctx, "a", 7)
	if err != nil || st.LastMsgID != 9 || st.Peer != "peer" || st.Kind != "direct" {
		t.Fatalf("state %+v %v", st, err)
	}
	// A group event makes the conversation exist for the user without unread.
	ev := timeline.Item{User: "a", Kind: timeline.KindGroupEvent, ConversationID: 30, ConvKind: "group", MsgID: 40, From: "o", At: time.Now()}
	if added, err := s.Append(ctx, []timeline.Item{ev, ev}); err != nil || len(added) != 1 {
		t.Fatalf("group event: %v %+v", err, added)
	}
	st, err = s.ConvState(ctx, "a", 30)
	if err != nil || st.Kind != "group" || st.Unread != 0 || st.LastMsgID != 0 {
		t.Fatalf("state after a group event: %+v %v", st, err)
	}
	if _, total := unread(t, s, "a"); total != 1 {
		t.Fatalf("a group event changed total unread to %d", total)
	}
}

// testOracle compares unread counts with a brute-force model after random appends,
// redeliveries and reads.
func testOracle(t *testing.T, s timeline.Store) {
	r := rand.New(rand.NewSource(1))
	users := []string{"u1", "u2", "u3"}
	type key struct {
		user string
		conv uint64
	}
	msgs := map[key][]timeline.Item{}
	read := map[key]uint64{}
	var next uint64 = 100
	oracle := func(user string) map[uint64]int64 {
		out := map[uint64]int64{}
		for conv := uint64(1); conv <= 4; conv++ {
			for _, it := range msgs[key{user, conv}] {
				if it.From != user && it.MsgID > read[key{user, conv}] {
					out[conv]++
				}
			}
			if out[conv] == 0 {
				delete(out, conv)
			}
		}
		return out
	}
	// Unread (the badge) agrees with the oracle whenever it is asked, with or without
	// a copy of the counts.
	checkBadge := func(step int) {
		for _, user := range users {
			c, err := s.Unread(ctx, user)
			if err != nil {
				t.Fatal(err)
			}
			want := oracle(user)
			var total int64
			for _, n := range want {
				total += n
			}
			head, _ := s.Head(ctx, user)
			if fmt.Sprint(c.Convs) != fmt.Sprint(want) || c.Total != total || c.Head != head {
				t.Fatalf("step %d, %s: Unread = %+v, want %v (total %d) at head %d", step, user, c, want, total, head)
			}
		}
	}
	for step := 0; step < 600; step++ {
		if step%40 == 0 || step%40 == 1 {
			checkBadge(step)
		}
		user := users[r.Intn(len(users))]
		conv := uint64(r.Intn(4) + 1)
		k := key{user, conv}
		switch op := r.Intn(10); {
		case op < 6:
			next += uint64(r.Intn(3) + 1)
			from := users[r.Intn(len(users))]
			it := msg(user, from, conv, next)
			if _, err := s.Append(ctx, []timeline.Item{it}); err != nil {
				t.Fatal(err)
			}
			msgs[k] = append(msgs[k], it)
			if from == user && next > read[k] {
				read[k] = next
			}
		case op < 8 && len(msgs[k]) > 0:
			it := msgs[k][r.Intn(len(msgs[k]))]
			if _, err := s.Append(ctx, []timeline.Item{it}); err != nil {
				t.Fatal(err)
			}
		case len(msgs[k]) > 0:
			upto := msgs[k][r.Intn(len(msgs[k]))].MsgID
			if _, _, err := s.MarkRead(ctx, user, conv, upto, "", time.Now()); err != nil {
				t.Fatal(err)
			}
			if upto > read[k] {
				read[k] = upto
			}
		}
	}
	for _, user := range users {
		got, _ := unread(t, s, user)
		want := oracle(user)
		for conv := uint64(1); conv <= 4; conv++ {
			if got[conv] != want[conv] {
				t.Errorf("%s conv %d: unread %d, oracle %d", user, conv, got[conv], want[conv])
			}
		}
	}
	checkBadge(600)
}

func testConcurrent(t *testing.T, s timeline.Store) {
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				id := uint64(w*1000 + i + 1)
				if _, err := s.Append(ctx, []timeline.Item{msg("hot", fmt.Sprintf("s%d", w), 1, id), msg("hot", fmt.Sprintf("s%d", w), 1, id)}); err != nil {
					t.Error(err)
					return
				}
			}
		}(w)
	}
	wg.Wait()
	checkSeqs(t, s, "hot", 400)
	if m, _ := unread(t, s, "hot"); m[1] != 400 {
		t.Fatalf("unread %d after 400 messages", m[1])
	}
}

// CacheFactory returns a fresh, empty entry cache keeping the newest keep entries.
type CacheFactory func(t *testing.T, keep int) timeline.EntryCache

// RunCache runs the suite every timeline.EntryCache backend runs.
func RunCache(t *testing.T, f CacheFactory) {
	entries := func(from, to uint64) []timeline.Entry {
		var out []timeline.Entry
		for s := from; s <= to; s++ {
			out = append(out, timeline.Entry{User: "u", Seq: s, Kind: timeline.KindMessage, ConversationID: 7, MsgID: 100 + s,
				From: "v", At: time.Unix(int64(s), 0).UTC()})
		}
		return out
	}
	rangeOf := func(t *testing.T, c timeline.EntryCache, after, upto uint64) ([]timeline.Entry, bool) {
		t.Helper()
		es, ok, err := c.Range(ctx, "u", after, upto)
		if err != nil {
			t.Fatal(err)
		}
		return es, ok
	}
	t.Run("WholeRangesOnly", func(t *testing.T) {
		c := f(t, 100)
		if _, ok := rangeOf(t, c, 0, 3); ok {
			t.Fatal("empty cache claims a range")
		}
		if err := c.Add(ctx, "u", entries(1, 5)); err != nil {
			t.Fatal(err)
		}
		if err := c.Add(ctx, "u", entries(3, 4)); err != nil { // repeats are harmless
			t.Fatal(err)
		}
		es, ok := rangeOf(t, c, 1, 5)
		if !ok || fmt.Sprint(es) != fmt.Sprint(entries(2, 5)) {
			t.Fatalf("range 1..5: %v %v", ok, es)
		}
		if _, ok := rangeOf(t, c, 3, 7); ok {
			t.Fatal("range past the cached entries claimed")
		}
		if err := c.Add(ctx, "u", entries(7, 8)); err != nil { // 6 is missing
			t.Fatal(err)
		}
		if _, ok := rangeOf(t, c, 4, 8); ok {
			t.Fatal("range with a hole claimed")
		}
		if es, ok := rangeOf(t, c, 6, 8); !ok || len(es) != 2 {
			t.Fatalf("range after the hole: %v %v", ok, es)
		}
		if es, ok, err := c.Range(ctx, "other", 0, 0); err != nil || !ok || len(es) != 0 {
			t.Fatalf("empty range: %v %v %v", es, ok, err)
		}
	})
	t.Run("KeepsNewest", func(t *testing.T) {
		c := f(t, 10)
		for s := uint64(1); s <= 30; s += 5 {
			if err := c.Add(ctx, "u", entries(s, s+4)); err != nil {
				t.Fatal(err)
			}
		}
		if _, ok := rangeOf(t, c, 19, 30); ok {
			t.Fatal("trimmed entries still served")
		}
		if es, ok := rangeOf(t, c, 20, 30); !ok || es[0].Seq != 21 || es[9].Seq != 30 {
			t.Fatalf("newest 10: %v %v", ok, es)
		}
	})
}

// CountersFactory returns fresh, empty unread counters.
type CountersFactory func(t *testing.T) timeline.UnreadCounters

// RunCounters runs the suite every timeline.UnreadCounters backend runs.
func RunCounters(t *testing.T, f CountersFactory) {
	get := func(t *testing.T, c timeline.UnreadCounters) (timeline.Counts, bool) {
		t.Helper()
		got, ok, err := c.Get(ctx, "u")
		if err != nil {
			t.Fatal(err)
		}
		return got, ok
	}
	must := func(t *testing.T, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	total := func(n int64) *int64 { return &n }
	t.Run("SeedThenChanges", func(t *testing.T) {
		c := f(t)
		if _, ok := get(t, c); ok {
			t.Fatal("empty counters claim a copy")
		}
		// A change before any seed is not a copy, but its head refuses older seeds.
		must(t, c.Set(ctx, "u", 5, map[uint64]int64{1: 1}, total(1)))
		if _, ok := get(t, c); ok {
			t.Fatal("a change alone made a complete copy")
		}
		must(t, c.Seed(ctx, "u", timeline.Counts{Head: 4, Total: 9, Convs: map[uint64]int64{1: 9}}))
		if _, ok := get(t, c); ok {
			t.Fatal("a seed older than a recorded change was taken")
		}
		must(t, c.Seed(ctx, "u", timeline.Counts{Head: 5, Total: 3, Convs: map[uint64]int64{1: 1, 2: 2, 4: 0}}))
		got, ok := get(t, c)
		if !ok || got.Head != 5 || got.Total != 3 || fmt.Sprint(got.Convs) != "map[1:1 2:2]" {
			t.Fatalf("seeded: %+v %v", got, ok)
		}
		must(t, c.Set(ctx, "u", 6, map[uint64]int64{1: 0, 3: 4}, total(6)))
		must(t, c.Set(ctx, "u", 6, map[uint64]int64{1: 7}, total(7))) // replayed head
		must(t, c.Set(ctx, "u", 2, map[uint64]int64{1: 7}, total(7))) // late
		must(t, c.Set(ctx, "u", 7, map[uint64]int64{2: 1}, nil))      // total unchanged
		must(t, c.Seed(ctx, "u", timeline.Counts{Head: 6, Total: 0}))
		got, ok = get(t, c)
		if !ok || got.Head != 7 || got.Total != 6 || fmt.Sprint(got.Convs) != "map[2:1 3:4]" {
			t.Fatalf("after changes: %+v %v", got, ok)
		}
		if _, ok, err := c.Get(ctx, "other"); err != nil || ok {
			t.Fatalf("another user: %v %v", ok, err)
		}
	})
	t.Run("ConcurrentChangesKeepTheNewest", func(t *testing.T) {
		c := f(t)
		must(t, c.Seed(ctx, "u", timeline.Counts{Head: 1, Convs: map[uint64]int64{}}))
		heads := rand.New(rand.NewSource(3)).Perm(200)
		var wg sync.WaitGroup
		for w := 0; w < 8; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				for i := w; i < len(heads); i += 8 {
					h := int64(heads[i] + 2)
					if err := c.Set(ctx, "u", uint64(h), map[uint64]int64{1: h, uint64(h): 1}, &h); err != nil {
						t.Error(err)
						return
					}
				}
			}(w)
		}
		wg.Wait()
		got, ok := get(t, c)
		if !ok || got.Head != 201 || got.Total != 201 || got.Convs[1] != 201 {
			t.Fatalf("after concurrent changes: head %d total %d conv 1 = %d (%v)", got.Head, got.Total, got.Convs[1], ok)
		}
	})
}
