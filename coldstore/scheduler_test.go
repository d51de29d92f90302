package coldstore_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fanline/fanline/coldstore"
	"github.com/fanline/fanline/groupstream"
	"github.com/fanline/fanline/internal/ids"
	"github.com/fanline/fanline/internal/kv"
	"github.com/fanline/fanline/internal/metrics"
	"github.com/fanline/fanline/internal/tier"
)

// world is a Pebble groupstream store with a directory object store and a
// scheduler between them, on a clock the test moves.
type world struct {
	t     *testing.T
	store *groupstream.PebbleStore
	objs  *flaky
	sched *coldstore.Scheduler
	now   atomic.Int64 // unix nanos
	m     *metrics.Metrics

	mu      sync.Mutex
	expired map[uint64]time.Time // conversation -> the newest upTo retention reported
}

func newWorld(t *testing.T, segment int, retention coldstore.RetentionPolicy, held func(context.Context, uint64) (bool, error)) *world {
	t.Helper()
	db, err := kv.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	dir, err := coldstore.OpenDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	w := &world{t: t, store: groupstream.NewPebbleStore(db, groupstream.Config{WriteMaxMembers: 3, WriteBackMembers: 3}),
		objs: &flaky{Objects: dir}, m: metrics.New(), expired: map[uint64]time.Time{}}
	w.now.Store(time.Now().UnixNano())
	cache := coldstore.NewBlockCache(1 << 20)
	w.store.SetArchive(coldstore.NewReader(w.objs, cache, w.m))
	w.sched = coldstore.NewScheduler(w.objs, w.store, cache, coldstore.SchedulerConfig{
		After: time.Hour, Interval: time.Hour, SegmentMessages: segment, Retention: retention, Held: held,
		Now: func() time.Time { return time.Unix(0, w.now.Load()) },
		Expired: func(_ context.Context, conv uint64, upTo time.Time) error {
			w.mu.Lock()
			defer w.mu.Unlock()
			if upTo.After(w.expired[conv]) {
				w.expired[conv] = upTo
			}
			return nil
		},
	}, w.m, slog.New(slog.NewTextHandler(io.Discard, nil)))
	return w
}

// flaky is a real object store that fails the operations the test asks it to.
type flaky struct {
	coldstore.Objects
	down atomic.Bool
}

func (f *flaky) err() error {
	if f.down.Load() {
		return fmt.Errorf("%w: test outage", coldstore.ErrUnavailable)
	}
	return nil
}

func (f *flaky) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	if err := f.err(); err != nil {
		return err
	}
	return f.Objects.Put(ctx, key, r, size)
}

func (f *flaky) Get(ctx context.Context, key string, off, n int64) (io.ReadCloser, error) {
	if err := f.err(); err != nil {
		return nil, err
	}
	return f.Objects.Get(ctx, key, off, n)
}

// history reads conv's whole history through the store, newest first, in pages.
func (w *world) history(conv uint64) []groupstream.Message {
	w.t.Helper()
	var out []groupstream.Message
	var before uint64
	for {
		page, more, err := w.store.History(context.Background(), conv, before, 7)
		if err != nil {
			w.t.Fatal(err)
		}
		out = append(out, page...)
		if !more || len(page) == 0 {
			return out
		}
		before = page[len(page)-1].ID
	}
}

func (w *world) stream(conv uint64) []groupstream.StreamEntry {
	w.t.Helper()
	var out []groupstream.StreamEntry
	var after uint64
	for {
		page, err := w.store.Stream(context.Background(), conv, after, 5)
		if err != nil {
			w.t.Fatal(err)
		}
		if len(page) == 0 {
			return out
		}
		out = append(out, page...)
		after = page[len(page)-1].Seq
	}
}

// fill stores n messages an hour and more old in a direct conversation and a
// read-fanout group, recalls one of each, and returns the two conversations.
func (w *world) fill(n int) (direct, group uint64) {
	w.t.Helper()
	ctx := context.Background()
	old := time.Unix(0, w.now.Load()).Add(-2 * time.Hour)
	next := ids.Before(old)
	newID := func() uint64 { next += 1 << 22; return next }
	d, err := w.store.DirectConversation(ctx, "alice", "bob", newID)
	if err != nil {
		w.t.Fatal(err)
	}
	g, err := w.store.CreateGroup(ctx, newID(), "g", "alice", []string{"bob", "carol", "dave", "erin"}, old)
	if err != nil {
		w.t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		for _, conv := range []uint64{d.ID, g.ID} {
			m := groupstream.Message{ID: newID(), ConversationID: conv, From: "alice", ClientMsgID: fmt.Sprintf("c%d-%d", conv, i),
				Type: "text", Body: []byte(fmt.Sprintf(`{"text":"m%d"}`, i)), CreatedAt: ids.Time(next)}
			if _, err := w.store.PutMessages(ctx, []groupstream.Message{m}); err != nil {
				w.t.Fatal(err)
			}
			if i == n/3 {
				if _, err := w.store.Recall(ctx, m.ID, "alice", ids.Time(next)); err != nil {
					w.t.Fatal(err)
				}
			}
		}
	}
	return d.ID, g.ID
}

func (w *world) pass() (coldstore.PassStats, error) {
	return w.sched.Pass(context.Background())
}

// warmCount counts conv's warm messages.
func (w *world) warmCount(conv uint64) int {
	recs, err := w.store.Run(context.Background(), conv, ^uint64(0), 1<<20)
	if err != nil {
		w.t.Fatal(err)
	}
	n := 0
	for _, r := range recs {
		if r.Kind == tier.RecordMessage {
			n++
		}
	}
	return n
}

// TestMoveKeepsEveryRead: after a pass, the warm store holds none of the old
// messages, and history, stream, lookups and unread answer exactly as before.
func TestMoveKeepsEveryRead(t *testing.T) {
	w := newWorld(t, 30, coldstore.RetentionPolicy{}, nil)
	ctx := context.Background()
	direct, group := w.fill(100)
	beforeD, beforeG, beforeS := w.history(direct), w.history(group), w.stream(group)
	// bob has read into what will be archived: his unread needs the manifest's ranks.
	if err := w.store.SetReadSeq(ctx, group, "bob", 47); err != nil {
		t.Fatal(err)
	}
	unread, err := w.store.Unread(ctx, group, "bob")
	if err != nil {
		t.Fatal(err)
	}
	st, err := w.pass()
	if err != nil {
		t.Fatal(err)
	}
	if st.Messages != 200 || st.Segments < 7 {
		t.Fatalf("pass moved %+v, want 200 messages in at least 7 segments", st)
	}
	if n := w.warmCount(direct) + w.warmCount(group); n != 0 {
		t.Fatalf("%d messages still warm", n)
	}
	for name, pair := range map[string][2]any{
		"direct history": {beforeD, w.history(direct)}, "group history": {beforeG, w.history(group)},
		"stream": {beforeS, w.stream(group)},
	} {
		if !reflect.DeepEqual(pair[0], pair[1]) {
			t.Fatalf("%s changed by the move:\nbefore %v\nafter  %v", name, pair[0], pair[1])
		}
	}
	if got, _ := w.store.Unread(ctx, group, "bob"); got != unread {
		t.Fatalf("unread %d after the move, %d before", got, unread)
	}
	m := beforeD[10]
	if got, err := w.store.Message(ctx, m.ID); err != nil || !reflect.DeepEqual(got, m) {
		t.Fatalf("Message of an archived id: %+v %v", got, err)
	}
	// Recall of an archived message wins over the segment.
	if _, err := w.store.Recall(ctx, m.ID, "alice", time.Now()); err != nil {
		t.Fatal(err)
	}
	if got, _ := w.store.LookupMessages(ctx, []uint64{m.ID}); !got[m.ID].Recalled || got[m.ID].Body != nil {
		t.Fatalf("recalled archived message reads %+v", got[m.ID])
	}
	// A redelivered send of an archived message changes nothing.
	again := beforeG[5]
	again.RecalledAt, again.RecalledBy = time.Time{}, ""
	if _, err := w.store.PutMessages(ctx, []groupstream.Message{again}); err != nil || w.warmCount(group) != 0 {
		t.Fatalf("re-put of an archived message: err %v, warm %d", err, w.warmCount(group))
	}
	// A second pass has nothing to do.
	if st, err := w.pass(); err != nil || st.Messages != 0 {
		t.Fatalf("second pass %+v %v", st, err)
	}
}

// failingWarm fails DeleteRun once, as a crash between recording a segment and
// deleting its warm rows would.
type failingWarm struct {
	coldstore.Warm
	fail atomic.Bool
}

func (f *failingWarm) DeleteRun(ctx context.Context, seg tier.Segment, recs []tier.Record) error {
	if f.fail.CompareAndSwap(true, false) {
		return errors.New("test: crash before the delete")
	}
	return f.Warm.DeleteRun(ctx, seg, recs)
}

// TestMoveResumes: an object-store outage, and a failure between recording a
// segment and deleting the warm rows, lose and duplicate nothing: the next pass
// finishes the move.
func TestMoveResumes(t *testing.T) {
	w := newWorld(t, 25, coldstore.RetentionPolicy{}, nil)
	direct, group := w.fill(60)
	before := w.history(direct)
	w.objs.down.Store(true)
	if _, err := w.pass(); !errors.Is(err, coldstore.ErrUnavailable) {
		t.Fatalf("pass during an outage: %v", err)
	}
	if got := w.history(direct); !reflect.DeepEqual(got, before) {
		t.Fatal("history changed by a failed pass")
	}
	w.objs.down.Store(false)

	fw := &failingWarm{Warm: w.store}
	fw.fail.Store(true)
	sched := coldstore.NewScheduler(w.objs, fw, nil, coldstore.SchedulerConfig{After: time.Hour, Interval: time.Hour, SegmentMessages: 25,
		Now: func() time.Time { return time.Unix(0, w.now.Load()) }}, w.m, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if _, err := sched.Pass(context.Background()); err == nil {
		t.Fatal("the failing delete did not fail the pass")
	}
	if got := w.history(direct); !reflect.DeepEqual(got, before) {
		t.Fatal("history changed while a segment was pending")
	}
	if _, err := w.pass(); err != nil {
		t.Fatal(err)
	}
	if n := w.warmCount(direct) + w.warmCount(group); n != 0 {
		t.Fatalf("%d messages still warm", n)
	}
	if got := w.history(direct); !reflect.DeepEqual(got, before) {
		t.Fatal("history changed by the resumed move")
	}
	for _, conv := range []uint64{direct, group} {
		segs, _ := w.store.Manifest(context.Background(), conv)
		seen := map[uint64]bool{}
		for _, seg := range segs {
			if seg.Pending {
				t.Fatalf("segment %s still pending", seg.Key)
			}
			r, err := coldstore.OpenSegment(context.Background(), w.objs, seg.Key, nil)
			if err != nil {
				t.Fatal(err)
			}
			_ = r.All(context.Background(), func(rec tier.Record) error {
				if rec.Kind == tier.RecordMessage && seen[rec.MsgID] {
					t.Fatalf("message %d in two segments", rec.MsgID)
				}
				seen[rec.MsgID] = true
				return nil
			})
		}
	}
	// Cold pages answer unavailable during an outage (past the block cache);
	// nothing is lost after it.
	w.store.SetArchive(coldstore.NewReader(w.objs, nil, w.m))
	w.objs.down.Store(true)
	if _, _, err := w.store.History(context.Background(), direct, 0, 10); !errors.Is(err, coldstore.ErrUnavailable) {
		t.Fatalf("cold history during an outage: %v", err)
	}
	w.objs.down.Store(false)
	if got := w.history(direct); !reflect.DeepEqual(got, before) {
		t.Fatal("history changed by the outage")
	}
}

// TestRetentionDeletesOnlyUnheld: past retention, segments of an unheld
// conversation go; a held one keeps everything.
func TestRetentionDeletesOnlyUnheld(t *testing.T) {
	var heldConv atomic.Uint64
	w := newWorld(t, 50, coldstore.RetentionPolicy{Direct: 24 * time.Hour},
		func(_ context.Context, conv uint64) (bool, error) { return conv == heldConv.Load(), nil })
	direct, group := w.fill(40)
	if _, err := w.pass(); err != nil {
		t.Fatal(err)
	}
	if st, err := w.pass(); err != nil || st.Deleted != 0 {
		t.Fatalf("deleted %d segments inside retention (%v)", st.Deleted, err)
	}
	heldConv.Store(direct)
	w.now.Add(int64(48 * time.Hour))
	if st, err := w.pass(); err != nil || st.Deleted != 0 {
		t.Fatalf("deleted %d segments of a held conversation (%v)", st.Deleted, err)
	}
	heldConv.Store(0)
	st, err := w.pass()
	if err != nil || st.Deleted == 0 {
		t.Fatalf("pass past retention: %+v %v", st, err)
	}
	if h := w.history(direct); len(h) != 0 {
		t.Fatalf("%d messages left past retention", len(h))
	}
	w.mu.Lock()
	upTo, others := w.expired[direct], len(w.expired)
	w.mu.Unlock()
	if upTo.IsZero() || others != 1 || upTo.After(time.Unix(0, w.now.Load())) {
		t.Fatalf("retention reported %v of %d conversations, want the deleted direct chat's history", upTo, others)
	}
	if h := w.history(group); len(h) != 40 {
		t.Fatalf("group (no retention) has %d messages, want 40", len(h))
	}
	if n := 0; w.objs.List(context.Background(), fmt.Sprintf("segments/%d/", direct), func(coldstore.ObjectInfo) error { n++; return nil }) != nil || n != 0 {
		t.Fatalf("objects of deleted segments remain")
	}
}

// TestSweepStraySegments: a segment object of a moved conversation that its
// manifest does not name (a move cut short between writing and recording it, then
// redone under another key) is deleted by the conversation's next move. One of a
// conversation that never moves again (its warm history gone) is deleted by the
// daily sweep of every conversation once it is an hour old, not before; recorded
// segments stay.
func TestSweepStraySegments(t *testing.T) {
	w := newWorld(t, 25, coldstore.RetentionPolicy{}, nil)
	ctx := context.Background()
	direct, group := w.fill(40)
	stray := coldstore.SegmentKey(direct, 7)
	other := coldstore.SegmentKey(direct+group+1000, 7) // a conversation nothing moves
	for _, k := range []string{stray, other} {
		if err := w.objs.Put(ctx, k, strings.NewReader("left over"), 9); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := w.pass(); err != nil {
		t.Fatal(err)
	}
	if _, err := w.objs.Head(ctx, stray); !errors.Is(err, coldstore.ErrNotExist) {
		t.Fatalf("the stray segment object is still there: %v", err)
	}
	if _, err := w.objs.Head(ctx, other); err != nil {
		t.Fatalf("a stray object younger than an hour went: %v", err)
	}
	w.now.Add(int64(2 * time.Hour))
	if _, err := w.pass(); err != nil {
		t.Fatal(err)
	}
	if _, err := w.objs.Head(ctx, other); err != nil {
		t.Fatalf("swept all conversations again within a day: %v", err)
	}
	w.now.Add(int64(24 * time.Hour))
	if _, err := w.pass(); err != nil {
		t.Fatal(err)
	}
	if _, err := w.objs.Head(ctx, other); !errors.Is(err, coldstore.ErrNotExist) {
		t.Fatalf("the stray object of a conversation that never moves again is still there: %v", err)
	}
	segs, err := w.store.Manifest(ctx, direct)
	if err != nil || len(segs) == 0 {
		t.Fatalf("manifest: %v %v", segs, err)
	}
	for _, seg := range segs {
		if _, err := w.objs.Head(ctx, seg.Key); err != nil {
			t.Fatalf("recorded segment %s: %v", seg.Key, err)
		}
	}
	if got := len(w.history(direct)); got != 40 {
		t.Fatalf("history has %d messages, want 40", got)
	}
}

// TestBusyFraction: with a busy fraction f the mover rests after every slice of
// work (here as short as can be), and at least once a segment, (1-f)/f times as
// long as the slice took; with 1 it never rests.
func TestBusyFraction(t *testing.T) {
	for _, f := range []float64{0.2, 1} {
		w := newWorld(t, 10, coldstore.RetentionPolicy{}, nil)
		direct, group := w.fill(40)
		var rests []time.Duration
		cache := coldstore.NewBlockCache(1 << 20)
		sched := coldstore.NewScheduler(w.objs, w.store, cache, coldstore.SchedulerConfig{
			After: time.Hour, Interval: time.Hour, SegmentMessages: 10, BusyFraction: f, PaceSlice: time.Nanosecond,
			Now:  func() time.Time { return time.Unix(0, w.now.Load()) },
			Rest: func(_ context.Context, d time.Duration) error { rests = append(rests, d); return nil },
		}, w.m, slog.New(slog.NewTextHandler(io.Discard, nil)))
		start := time.Now()
		st, err := sched.Pass(context.Background())
		took := time.Since(start)
		if err != nil || st.Segments < 8 {
			t.Fatalf("f=%v: pass %+v %v", f, st, err)
		}
		var total time.Duration
		for _, d := range rests {
			if d <= 0 {
				t.Fatalf("f=%v: a rest of %v", f, d)
			}
			total += d
		}
		switch {
		case f == 1 && len(rests) != 0:
			t.Fatalf("f=1 rested %d times", len(rests))
		case f < 1 && (len(rests) < 2*st.Segments || total > 4*took):
			t.Fatalf("f=%v: %d rests (%v in all) for %d segments moved in %v; want two a segment at least (in the write and after it), 4x the work at most",
				f, len(rests), total, st.Segments, took)
		}
		if len(w.history(direct)) != 40 || len(w.history(group)) != 40 {
			t.Fatalf("f=%v: history lost", f)
		}
	}
}
