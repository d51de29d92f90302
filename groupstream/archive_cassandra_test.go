package groupstream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fanline/fanline/internal/cql"
	"github.com/fanline/fanline/internal/cql/cqltest"
	"github.com/fanline/fanline/internal/ids"
	"github.com/fanline/fanline/internal/tier"
	"github.com/fanline/fanline/internal/wire"
)

// The archive steps of the Cassandra store, on a cqltest.Recorder with conditions
// checked, reading the recorder's rows as its statements read Cassandra's
// (recorderReads implements storeReads).

var _ storeReads = recorderReads{}

// keyInts parses a Rows key of bigint columns.
func keyInts(t *testing.T, k string) []uint64 {
	var out []uint64
	for _, p := range strings.Split(k, "/") {
		v, err := strconv.ParseInt(p, 10, 64)
		if err != nil {
			t.Fatalf("key %q: %v", k, err)
		}
		out = append(out, uint64(v))
	}
	return out
}

func (r recorderReads) conversation(_ context.Context, id uint64) (Conversation, int64, error) {
	row, ok := r.rec.Rows("conversations")[cqltest.Key(int64(id))]
	doc, _ := row["doc"].([]byte)
	if !ok || len(doc) == 0 {
		return Conversation{}, 0, ErrNotFound
	}
	rev, _, _ := r.rev(context.Background(), id)
	c, err := decodeConversation(id, doc)
	return c, rev, err
}

func (r recorderReads) conversations(_ context.Context, f func(Conversation) error) error {
	var keys []uint64
	for k := range r.rec.Rows("conversations") {
		if !strings.Contains(k, "/") {
			keys = append(keys, keyInts(r.t, k)[0])
		}
	}
	slices.Sort(keys)
	for _, id := range keys {
		doc, _ := r.rec.Rows("conversations")[cqltest.Key(int64(id))]["doc"].([]byte)
		if len(doc) == 0 {
			continue
		}
		c, err := decodeConversation(id, doc)
		if err == nil {
			err = f(c)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (r recorderReads) message(_ context.Context, id uint64) (storedMessage, []byte, error) {
	row, ok := r.rec.Rows("messages")[cqltest.Key(int64(id))]
	if !ok {
		return storedMessage{}, nil, ErrNotFound
	}
	doc := row["doc"].([]byte)
	sm, err := decodeStored(id, doc)
	return sm, doc, err
}

func (r recorderReads) history(_ context.Context, conv uint64, bucket int64, above, below uint64, limit int, oldestFirst bool) ([]uint64, error) {
	var out []uint64
	for k := range r.rec.Rows("history") {
		v := keyInts(r.t, k)
		if v[0] == conv && int64(v[1]) == bucket && v[2] > above && (below == 0 || v[2] < below) {
			out = append(out, v[2])
		}
	}
	sort.Slice(out, func(i, j int) bool { return (out[i] < out[j]) == oldestFirst })
	return out[:min(limit, len(out))], nil
}

func (r recorderReads) streamRows(conv uint64, bucket int64) ([]uint64, map[uint64]cqltest.Row) {
	rows := map[uint64]cqltest.Row{}
	var seqs []uint64
	for k, row := range r.rec.Rows("stream") {
		if v := keyInts(r.t, k); v[0] == conv && int64(v[1]) == bucket {
			seqs, rows[v[2]] = append(seqs, v[2]), row
		}
	}
	slices.Sort(seqs)
	return seqs, rows
}

func (r recorderReads) stream(_ context.Context, conv uint64, bucket int64, after, upTo uint64, limit int) ([]StreamEntry, []uint64, error) {
	seqs, rows := r.streamRows(conv, bucket)
	var out []StreamEntry
	var ranks []uint64
	for _, seq := range seqs {
		if row := rows[seq]; seq > after && seq <= upTo && len(out) < limit {
			out = append(out, StreamEntry{Seq: seq, Kind: row["kind"].(string), MsgID: uint64(row["msg"].(int64)),
				From: row["sender"].(string), At: row["at"].(time.Time).UTC()})
			ranks = append(ranks, uint64(row["rank"].(int64)))
		}
	}
	return out, ranks, nil
}

func (r recorderReads) rankAt(_ context.Context, conv uint64, bucket int64, seq uint64) (uint64, bool, error) {
	seqs, rows := r.streamRows(conv, bucket)
	for i := len(seqs) - 1; i >= 0; i-- {
		if seqs[i] <= seq {
			return uint64(rows[seqs[i]]["rank"].(int64)), true, nil
		}
	}
	return 0, false, nil
}

func (r recorderReads) segments(_ context.Context, conv uint64) ([]tier.Segment, error) {
	var firsts []uint64
	for k := range r.rec.Rows("manifests") {
		if v := keyInts(r.t, k); v[0] == conv {
			firsts = append(firsts, v[1])
		}
	}
	slices.Sort(firsts)
	var out []tier.Segment
	for _, f := range firsts {
		seg, err := decodeSegment(conv, r.rec.Rows("manifests")[cqltest.Key(int64(conv), int64(f))]["doc"].([]byte))
		if err != nil {
			return nil, err
		}
		out = append(out, seg)
	}
	return out, nil
}

func (r recorderReads) pointer(_ context.Context, id uint64) (uint64, bool, error) {
	row, ok := r.rec.Rows("archived_messages")[cqltest.Key(int64(id))]
	if !ok {
		return 0, false, nil
	}
	return uint64(row["conv"].(int64)), true, nil
}

func (r recorderReads) mark(_ context.Context, id uint64) (recallMark, bool, error) {
	row, ok := r.rec.Rows("recall_marks")[cqltest.Key(int64(id))]
	if !ok {
		return recallMark{}, false, nil
	}
	m, err := decodeMark(id, row["doc"].([]byte))
	return m, true, err
}

// heldSegments is an Archive serving records captured from Run, by segment key, as
// a segment returns them (the segment reader itself is coldstore's).
type heldSegments map[string][]tier.Record

func (h heldSegments) of(seg tier.Segment, kind uint8) []tier.Record {
	var out []tier.Record
	for _, r := range h[seg.Key] {
		if r.Kind == kind {
			out = append(out, r)
		}
	}
	return out
}

func (h heldSegments) Messages(_ context.Context, seg tier.Segment, want []uint64) (map[uint64]tier.Record, error) {
	out := map[uint64]tier.Record{}
	for _, r := range h.of(seg, tier.RecordMessage) {
		if slices.Contains(want, r.MsgID) {
			out[r.MsgID] = r
		}
	}
	return out, nil
}

func (h heldSegments) Before(_ context.Context, seg tier.Segment, before uint64, limit int) ([]tier.Record, error) {
	recs := h.of(seg, tier.RecordMessage)
	slices.Reverse(recs) // Run returns them in msg id order
	var out []tier.Record
	for _, r := range recs {
		if (before == 0 || r.MsgID < before) && len(out) < limit {
			out = append(out, r)
		}
	}
	return out, nil
}

func (h heldSegments) Stream(_ context.Context, seg tier.Segment, after uint64, limit int) ([]tier.Record, error) {
	var out []tier.Record
	for _, r := range h.of(seg, tier.RecordStream) {
		if r.Seq > after && len(out) < limit {
			out = append(out, r)
		}
	}
	return out, nil
}

// archiveNode is one node's store on a shared recorder, reading its rows, with the
// segments of held.
func archiveNode(t *testing.T, rec *cqltest.Recorder, w cql.Writer, held heldSegments) *CassandraStore {
	s := newCassandraStore(nil, w, CassandraStoreConfig{})
	reads := recorderReads{t, rec}
	s.reads, s.rows = reads, reads
	s.SetArchive(held)
	return s
}

// archiveFixture is a direct conversation and a read-fanout group with ten
// messages each, written by the store's statements.
type archiveFixture struct {
	direct, group Conversation
	dIDs, gIDs    []uint64
}

const (
	fixDirect = 900
	fixGroup  = 901
)

func seedArchive(t *testing.T, rec *cqltest.Recorder, s *CassandraStore, at time.Time) archiveFixture {
	ctx := context.Background()
	base := uint64(at.Sub(ids.Epoch).Milliseconds()) << 22
	f := archiveFixture{
		direct: Conversation{ID: fixDirect, Kind: KindDirect, Members: []string{"al", "bea"}, CreatedAt: at},
		group: Conversation{ID: fixGroup, Kind: KindGroup, CreatedAt: at, Owner: "o", MemberCount: 4, Version: 1,
			Fanout: FanoutRead, FanoutSince: 1, Head: 10, ReadHead: 10, Rank: 10},
	}
	for _, c := range []Conversation{f.direct, f.group} {
		doc, _ := json.Marshal(c)
		if err := rec.Exec(ctx, cql.Q(cqlNewConv, int64(c.ID), doc)); err != nil {
			t.Fatal(err)
		}
	}
	for i := range uint64(10) {
		d := storedMessage{Message: Message{ID: base + 2*i, ConversationID: fixDirect, From: "al", Type: "text",
			Body: json.RawMessage(fmt.Sprintf(`{"n":%d}`, i)), CreatedAt: at}}
		g := storedMessage{Message: Message{ID: base + 2*i + 1, ConversationID: fixGroup, From: "a", Type: "text",
			Body: json.RawMessage(`{"g":1}`), CreatedAt: at, Seq: i + 1, Fanout: FanoutRead}, Rank: i + 1}
		for _, sm := range []storedMessage{d, g} {
			if err := s.writeMessage(ctx, sm, false, 0, false); err != nil {
				t.Fatal(err)
			}
		}
		f.dIDs, f.gIDs = append(f.dIDs, d.ID), append(f.gIDs, g.ID)
	}
	return f
}

// moveOldest runs a move of the six oldest messages of each conversation: Run,
// AddSegment, DeleteRun (step stops after the step named, if not "").
func moveOldest(t *testing.T, s *CassandraStore, held heldSegments, f archiveFixture, stop string) map[uint64][]tier.Record {
	ctx := context.Background()
	runs := map[uint64][]tier.Record{}
	for _, conv := range []uint64{fixDirect, fixGroup} {
		recs, err := s.Run(ctx, conv, f.dIDs[6], 100)
		if err != nil {
			t.Fatal(err)
		}
		seg := segmentOf(conv, recs)
		held[seg.Key] = recs
		runs[conv] = recs
		if err := s.AddSegment(ctx, seg); err != nil || stop == "add" {
			if err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := s.DeleteRun(ctx, seg, recs); err != nil {
			t.Fatal(err)
		}
	}
	return runs
}

// segmentOf is the manifest entry of a segment of recs (what the scheduler writes).
func segmentOf(conv uint64, recs []tier.Record) tier.Segment {
	seg := tier.Segment{Conv: conv, Key: fmt.Sprintf("seg-%d", conv)}
	for _, r := range recs {
		switch {
		case r.Kind == tier.RecordMessage && seg.Messages == 0:
			seg.FirstMsgID = r.MsgID
		case r.Kind == tier.RecordStream && seg.Stream == 0:
			seg.FirstSeq = r.Seq
		}
		if r.Kind == tier.RecordMessage {
			seg.LastMsgID = r.MsgID
			seg.Messages++
		} else {
			seg.LastSeq = r.Seq
			seg.Stream++
		}
	}
	return seg
}

func TestCassandraArchiveStatements(t *testing.T) {
	cqltest.Check(t, CassandraSchema, cqlConvScan, cqlOldHistory, cqlManifest, cqlPutSegment, cqlDelSegment, cqlPointer,
		cqlPutPointer, cqlDelPointer, cqlMark, cqlPutMark, cqlNewMark, cqlDelMark, cqlMoveMessage, cqlDelMessage,
		cqlDelHistory, cqlDelStream)
}

// TestCassandraArchiveMove: the statements of each step of a move, and every read
// answering after it as before.
func TestCassandraArchiveMove(t *testing.T) {
	ctx := context.Background()
	at := time.Now().UTC().Truncate(time.Millisecond)
	rec := cqltest.NewRecorder(t, CassandraSchema)
	rec.Conditions = true
	held := heldSegments{}
	s := archiveNode(t, rec, rec, held)
	f := seedArchive(t, rec, s, at)
	if _, err := s.Recall(ctx, f.dIDs[1], "al", at); err != nil {
		t.Fatal(err)
	}
	type view struct {
		msgs   map[uint64]wire.Entry
		pages  [][]uint64
		stream []StreamEntry
		rank   uint64
	}
	look := func() view {
		var v view
		var err error
		all := slices.Concat(f.dIDs, f.gIDs)
		if v.msgs, err = s.LookupMessages(ctx, all); err != nil || len(v.msgs) != 20 {
			t.Fatalf("lookup: %d %v", len(v.msgs), err)
		}
		for _, id := range all {
			if m, err := s.Message(ctx, id); err != nil || !reflect.DeepEqual(m.Entry(), v.msgs[id]) {
				t.Fatalf("message %d: %+v %v", id, m, err)
			}
		}
		for _, conv := range []uint64{fixDirect, fixGroup} {
			var before uint64
			for more := true; more; {
				page, m, err := s.History(ctx, conv, before, 4)
				if err != nil {
					t.Fatal(err)
				}
				var p []uint64
				for _, msg := range page {
					p = append(p, msg.ID)
				}
				v.pages, more = append(v.pages, p), m && len(page) > 0
				if len(page) > 0 {
					before = page[len(page)-1].ID
				}
			}
		}
		if v.stream, err = s.Stream(ctx, fixGroup, 0, 100); err != nil {
			t.Fatal(err)
		}
		if v.rank, err = s.rankAt(ctx, fixGroup, 3); err != nil {
			t.Fatal(err)
		}
		return v
	}
	want := look()
	if len(want.stream) != 10 || want.rank != 3 {
		t.Fatalf("before the move: %d stream entries, rank at 3 %d", len(want.stream), want.rank)
	}

	var cold []uint64
	if err := s.ColdConversations(ctx, f.dIDs[6], func(conv uint64, _ string) error {
		cold = append(cold, conv)
		return nil
	}); err != nil || !slices.Equal(cold, []uint64{fixDirect, fixGroup}) {
		t.Fatalf("cold conversations %v %v", cold, err)
	}
	rec.Calls = nil
	runs := moveOldest(t, s, held, f, "add")
	if g := runs[fixGroup]; len(g) != 12 || g[6].Kind != tier.RecordStream || g[11].Seq != 6 {
		t.Fatalf("the group's run: %+v", g)
	}
	// AddSegment: the record's Archived by a conditional write on its revision, then
	// the manifest row, pending, with the group's rank runs.
	var sts []string
	for _, c := range rec.Calls {
		sts = append(sts, c.Stmts[0].CQL)
	}
	if !slices.Equal(sts, []string{cqlClaimConv, cqlPutSegment, cqlClaimConv, cqlPutSegment}) {
		t.Fatalf("AddSegment wrote %q", sts)
	}
	segs, _ := s.Manifest(ctx, fixGroup)
	if len(segs) != 1 || !segs[0].Pending || segs[0].RankBefore != 0 || !reflect.DeepEqual(segs[0].Counted, [][2]uint64{{1, 6}}) {
		t.Fatalf("the group's manifest: %+v", segs)
	}
	if c, _, _ := s.load(ctx, fixGroup); c.Archived != f.gIDs[5] || c.ArchivedSeq != 6 || c.Head != 10 {
		t.Fatalf("the group's record: %+v", c)
	}
	rec.Calls = nil
	for _, conv := range []uint64{fixDirect, fixGroup} { // again: nothing
		if err := s.AddSegment(ctx, segmentOf(conv, runs[conv])); err != nil {
			t.Fatal(err)
		}
	}
	if len(rec.Calls) != 0 {
		t.Fatalf("AddSegment again wrote %+v", rec.Calls)
	}
	if got := look(); !reflect.DeepEqual(got, want) {
		t.Fatalf("pending: %+v, want %+v", got, want)
	}
	for _, conv := range []uint64{fixDirect, fixGroup} {
		if err := s.DeleteRun(ctx, segmentOf(conv, runs[conv]), runs[conv]); err != nil {
			t.Fatal(err)
		}
	}
	if n, h, st := len(rec.Rows("messages")), len(rec.Rows("history")), len(rec.Rows("stream")); n != 8 || h != 8 || st != 4 {
		t.Fatalf("warm rows left: %d messages, %d history, %d stream", n, h, st)
	}
	if p, m := len(rec.Rows("archived_messages")), rec.Rows("recall_marks"); p != 12 || len(m) != 1 || m[cqltest.Key(int64(f.dIDs[1]))] == nil {
		t.Fatalf("%d pointers, recall marks %v", p, m)
	}
	if segs, _ := s.Manifest(ctx, fixGroup); len(segs) != 1 || segs[0].Pending || len(segs[0].Counted) != 1 {
		t.Fatalf("the group's manifest after DeleteRun: %+v", segs)
	}
	if got := look(); !reflect.DeepEqual(got, want) {
		t.Fatalf("moved:\n got %+v\nwant %+v", got, want)
	}
	if err := s.ColdConversations(ctx, f.dIDs[6], func(conv uint64, _ string) error {
		return fmt.Errorf("%d still listed", conv)
	}); err != nil {
		t.Fatal(err)
	}

	// Recall of an archived message: a marker IF NOT EXISTS, the first one stands.
	rec.Calls = nil
	if m, err := s.Recall(ctx, f.dIDs[2], "bea", at); err != nil || !m.Recalled() {
		t.Fatalf("recall: %+v %v", m, err)
	}
	if m, err := s.Recall(ctx, f.dIDs[2], "al", at.Add(time.Hour)); err != nil || m.RecalledBy != "bea" {
		t.Fatalf("recall again: %+v %v", m, err)
	}
	if len(rec.Calls) != 1 || rec.Calls[0].Stmts[0].CQL != cqlNewMark {
		t.Fatalf("recalls wrote %+v", rec.Calls)
	}
	if e := mustEntry(t, s, f.dIDs[2]); !e.Recalled || e.Body != nil {
		t.Fatalf("recalled archived message: %+v", e)
	}
	// A redelivery of an archived message writes nothing.
	rec.Calls = nil
	again, err := s.PutMessages(ctx, []Message{{ID: f.dIDs[0], ConversationID: fixDirect, From: "al", Type: "text",
		Body: json.RawMessage(`{"n":0}`), CreatedAt: at}})
	if err != nil || string(again[0].Body) != `{"n":0}` || len(rec.Calls) != 0 {
		t.Fatalf("stored again: %+v %v, wrote %+v", again, err, rec.Calls)
	}

	// Retention.
	for _, conv := range []uint64{fixDirect, fixGroup} {
		if err := s.RemoveSegment(ctx, segmentOf(conv, runs[conv]), runs[conv]); err != nil {
			t.Fatal(err)
		}
	}
	for _, tb := range []string{"manifests", "archived_messages", "recall_marks"} {
		if n := len(rec.Rows(tb)); n != 0 {
			t.Errorf("%s: %d rows after RemoveSegment", tb, n)
		}
	}
	if _, err := s.Message(ctx, f.dIDs[0]); !errors.Is(err, ErrNotFound) {
		t.Fatalf("removed message: %v", err)
	}
	if es, err := s.Stream(ctx, fixGroup, 0, 100); err != nil || len(es) != 4 || es[0].Seq != 7 {
		t.Fatalf("stream after RemoveSegment: %+v %v", es, err)
	}
}

func mustEntry(t *testing.T, s *CassandraStore, id uint64) wire.Entry {
	t.Helper()
	got, err := s.LookupMessages(context.Background(), []uint64{id})
	if err != nil {
		t.Fatal(err)
	}
	return got[id]
}

// TestCassandraArchiveCrash: a crash at every statement of AddSegment and
// DeleteRun, then both again (as the scheduler finishes a pending move), leaves the
// rows of a move that did not crash, and every message readable throughout.
func TestCassandraArchiveCrash(t *testing.T) {
	at := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	setup := func() (*CassandraStore, *cqltest.Recorder, archiveFixture, heldSegments) {
		rec := cqltest.NewRecorder(t, CassandraSchema)
		rec.Conditions = true
		held := heldSegments{}
		s := archiveNode(t, rec, rec, held)
		f := seedArchive(t, rec, s, at)
		if _, err := s.Recall(context.Background(), f.dIDs[1], "al", at); err != nil {
			t.Fatal(err)
		}
		rec.Calls = nil
		return s, rec, f, held
	}
	s, clean, f, held := setup()
	seeded := clean.Written()
	moveOldest(t, s, held, f, "")
	tables := []string{"conversations", "messages", "history", "stream", "manifests", "archived_messages", "recall_marks"}
	for _, n := range crashPoints(clean) {
		s, rec, f, held := setup()
		rec.FailAt = seeded + n
		ctx := context.Background()
		var runs = map[uint64][]tier.Record{}
		crashed := false
		for _, conv := range []uint64{fixDirect, fixGroup} {
			recs, err := s.Run(ctx, conv, f.dIDs[6], 100)
			if err != nil {
				t.Fatal(err)
			}
			runs[conv] = recs
			held[segmentOf(conv, recs).Key] = recs
			if !crashed {
				err := s.AddSegment(ctx, segmentOf(conv, recs))
				if err == nil {
					err = s.DeleteRun(ctx, segmentOf(conv, recs), recs)
				}
				crashed = errors.Is(err, cqltest.ErrCrashed)
				if err != nil && !crashed {
					t.Fatal(err)
				}
			}
		}
		rec.Restart()
		for _, id := range slices.Concat(f.dIDs, f.gIDs) {
			if _, err := s.Message(ctx, id); err != nil {
				t.Fatalf("crash at %d: message %d: %v", n, id, err)
			}
		}
		for _, conv := range []uint64{fixDirect, fixGroup} {
			if err := s.AddSegment(ctx, segmentOf(conv, runs[conv])); err != nil {
				t.Fatal(err)
			}
			if err := s.DeleteRun(ctx, segmentOf(conv, runs[conv]), runs[conv]); err != nil {
				t.Fatal(err)
			}
		}
		sameRows(t, fmt.Sprintf("crash at statement %d, then the move again", n), rec, clean, tables...)
	}
}

// raceWriter runs a hook before the first conditional write of a statement: what
// another node does between a step's read and its write.
type raceWriter struct {
	*cqltest.Recorder
	before map[string]func()
}

func (w *raceWriter) CAS(ctx context.Context, sts []cql.Stmt) (bool, error) {
	if f := w.before[sts[0].CQL]; f != nil {
		delete(w.before, sts[0].CQL)
		f()
	}
	return w.Recorder.CAS(ctx, sts)
}

// TestCassandraArchiveRecallRace: a recall on one node and the move of its message
// on another, each between the other's read and write, both orders: the recall
// stands, and the message is archived once (the group's ten stay warm).
func TestCassandraArchiveRecallRace(t *testing.T) {
	ctx := context.Background()
	at := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	for _, first := range []string{"recall", "move"} {
		rec := cqltest.NewRecorder(t, CassandraSchema)
		rec.Conditions = true
		w := &raceWriter{Recorder: rec, before: map[string]func(){}}
		held := heldSegments{}
		mover, recaller := archiveNode(t, rec, w, held), archiveNode(t, rec, w, held)
		f := seedArchive(t, rec, mover, at)
		id := f.dIDs[3]
		recs, err := mover.Run(ctx, fixDirect, f.dIDs[6], 100)
		if err != nil {
			t.Fatal(err)
		}
		seg := segmentOf(fixDirect, recs)
		held[seg.Key] = recs
		if err := mover.AddSegment(ctx, seg); err != nil {
			t.Fatal(err)
		}
		var recalled Message
		recall := func() {
			if recalled, err = recaller.Recall(ctx, id, "bea", at); err != nil {
				t.Fatal(err)
			}
		}
		move := func() {
			if err := mover.DeleteRun(ctx, seg, recs); err != nil {
				t.Fatal(err)
			}
		}
		if first == "recall" {
			// The recall applies after DeleteRun read the row, before its delete.
			w.before[cqlMoveMessage] = recall
			move()
		} else {
			// The move applies after Recall read the row, before its write.
			w.before[cqlRecall] = move
			recall()
		}
		m, err := mover.Message(ctx, id)
		if err != nil || !recalled.Recalled() || !m.Recalled() || m.RecalledBy != "bea" {
			t.Errorf("%s first: recall returned %+v, the message is %+v %v", first, recalled, m, err)
		}
		if len(rec.Rows("messages")) != 14 || rec.Rows("recall_marks")[cqltest.Key(int64(id))] == nil {
			t.Errorf("%s first: %d message rows, marks %v", first, len(rec.Rows("messages")), rec.Rows("recall_marks"))
		}
	}
}
