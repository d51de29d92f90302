package streamtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/fanline/fanline/groupstream"
	"github.com/fanline/fanline/internal/ids"
	"github.com/fanline/fanline/internal/tier"
	"github.com/fanline/fanline/internal/wire"
)

// heldArchive is an Archive that serves the records a test captured from
// Archiver.Run, held in memory by segment key, as a segment returns them: Messages
// by msg id, Before newest first, Stream in seq order. It is not the cold tier's
// segment reader (coldstore tests that one, with its encoding, blocks and object
// store); it lets the suite test the warm store's bookkeeping of a move (manifests,
// pointers, recall markers, the deletion of warm rows and the reads that fall
// through) on its own.
type heldArchive struct {
	mu   sync.Mutex
	segs map[string][]tier.Record
}

func (a *heldArchive) hold(key string, recs []tier.Record) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.segs[key] = recs
}

func (a *heldArchive) records(seg tier.Segment, kind uint8) []tier.Record {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []tier.Record
	for _, r := range a.segs[seg.Key] {
		if r.Kind == kind {
			out = append(out, r)
		}
	}
	return out
}

func (a *heldArchive) Messages(_ context.Context, seg tier.Segment, want []uint64) (map[uint64]tier.Record, error) {
	out := map[uint64]tier.Record{}
	for _, r := range a.records(seg, tier.RecordMessage) {
		if slices.Contains(want, r.MsgID) {
			out[r.MsgID] = r
		}
	}
	return out, nil
}

func (a *heldArchive) Before(_ context.Context, seg tier.Segment, before uint64, limit int) ([]tier.Record, error) {
	recs := a.records(seg, tier.RecordMessage)
	sort.Slice(recs, func(i, j int) bool { return recs[i].MsgID > recs[j].MsgID })
	var out []tier.Record
	for _, r := range recs {
		if (before == 0 || r.MsgID < before) && len(out) < limit {
			out = append(out, r)
		}
	}
	return out, nil
}

func (a *heldArchive) Stream(_ context.Context, seg tier.Segment, after uint64, limit int) ([]tier.Record, error) {
	recs := a.records(seg, tier.RecordStream)
	sort.Slice(recs, func(i, j int) bool { return recs[i].Seq < recs[j].Seq })
	var out []tier.Record
	for _, r := range recs {
		if r.Seq > after && len(out) < limit {
			out = append(out, r)
		}
	}
	return out, nil
}

// answers is what a store answers about a conversation's history.
type answers struct {
	messages map[uint64]groupstream.Message
	lookup   map[uint64]wire.Entry
	pages    [][]uint64 // history pages of 4, newest first
	stream   string
	unread   int64
}

func answersOf(t *testing.T, s groupstream.Store, conv uint64, msgIDs []uint64, group bool) answers {
	t.Helper()
	a := answers{messages: map[uint64]groupstream.Message{}}
	for _, id := range msgIDs {
		m, err := s.Message(ctx, id)
		if err != nil {
			t.Fatalf("message %d: %v", id, err)
		}
		a.messages[id] = m
	}
	var err error
	if a.lookup, err = s.LookupMessages(ctx, msgIDs); err != nil {
		t.Fatal(err)
	}
	var before uint64
	for {
		page, more, err := s.History(ctx, conv, before, 4)
		if err != nil {
			t.Fatal(err)
		}
		var p []uint64
		for _, m := range page {
			p = append(p, m.ID)
		}
		a.pages = append(a.pages, p)
		if !more || len(page) == 0 {
			break
		}
		before = page[len(page)-1].ID
	}
	if group {
		a.stream = streamSeqs(t, s, conv, 0)
		a.unread = unreadOf(t, s, conv, "b")
	}
	return a
}

func sameAnswers(t *testing.T, what string, got, want answers) {
	t.Helper()
	for id, w := range want.messages {
		if g := got.messages[id]; !reflect.DeepEqual(g.Entry(), w.Entry()) || g.Seq != w.Seq || g.Fanout != w.Fanout {
			t.Errorf("%s: message %d is %+v, was %+v", what, id, g, w)
		}
	}
	if !reflect.DeepEqual(got.lookup, want.lookup) {
		t.Errorf("%s: lookup\n got %v\nwant %v", what, got.lookup, want.lookup)
	}
	if !reflect.DeepEqual(got.pages, want.pages) {
		t.Errorf("%s: history pages %v, were %v", what, got.pages, want.pages)
	}
	if got.stream != want.stream || got.unread != want.unread {
		t.Errorf("%s: stream %q unread %d, were %q %d", what, got.stream, got.unread, want.stream, want.unread)
	}
}

// testArchive runs the Archiver steps of a move (Run, AddSegment, DeleteRun,
// RemoveSegment) on a direct conversation and a read-fanout group, with the records
// held by a heldArchive, and checks that every read answers as before the move.
func testArchive(t *testing.T, s groupstream.Store) {
	arch := &heldArchive{segs: map[string][]tier.Record{}}
	s.SetArchive(arch)
	now := time.Now()
	base := uint64(now.Sub(ids.Epoch).Milliseconds()) << 22
	d, err := s.DirectConversation(ctx, "al", "bea", func() uint64 { return 900 })
	if err != nil {
		t.Fatal(err)
	}
	const g = 901
	if _, err := s.CreateGroup(ctx, g, "g", "o", []string{"a", "b", "c"}, now); err != nil {
		t.Fatal(err)
	}
	var dIDs, gIDs []uint64
	for i := range uint64(10) {
		id := base + 2*i
		dIDs = append(dIDs, id)
		if _, err := s.PutMessages(ctx, []groupstream.Message{{ID: id, ConversationID: d.ID, From: "al", Type: "text",
			Body: json.RawMessage(fmt.Sprintf(`{"n":%d}`, i)), CreatedAt: now}}); err != nil {
			t.Fatal(err)
		}
		gIDs = append(gIDs, put(t, s, g, id+1, "a").ID)
	}
	if c, _ := s.Conversation(ctx, g); c.FanoutMode() != groupstream.FanoutRead {
		t.Fatalf("group of 4 in %s", c.FanoutMode())
	}
	// Recalled before the move (its marker comes from the warm row), read positions
	// inside the part moved.
	if _, err := s.Recall(ctx, dIDs[1], "al", now); err != nil {
		t.Fatal(err)
	}
	if err := s.SetReadSeq(ctx, g, "b", 3); err != nil {
		t.Fatal(err)
	}
	wantD, wantG := answersOf(t, s, d.ID, dIDs, false), answersOf(t, s, g, gIDs, true)

	// The oldest six of each (ids below dIDs[6]) are cold.
	before := dIDs[6]
	var cold []uint64
	err = s.ColdConversations(ctx, before, func(conv uint64, kind string) error {
		cold = append(cold, conv)
		return nil
	})
	if slices.Sort(cold); err != nil || !slices.Equal(cold, []uint64{d.ID, g}) {
		t.Fatalf("cold conversations %v %v", cold, err)
	}
	segs := map[uint64]tier.Segment{}
	runs := map[uint64][]tier.Record{}
	for _, conv := range []uint64{d.ID, g} {
		recs, err := s.Run(ctx, conv, before, 100)
		if err != nil {
			t.Fatal(err)
		}
		seg := tier.Segment{Conv: conv, Key: fmt.Sprintf("seg-%d", conv), Created: now}
		var got []string
		for _, r := range recs {
			got = append(got, fmt.Sprintf("%d:%d", r.Kind, r.Seq))
			switch r.Kind {
			case tier.RecordMessage:
				if seg.Messages == 0 {
					seg.FirstMsgID = r.MsgID
				}
				seg.LastMsgID = r.MsgID
				seg.Messages++
			case tier.RecordStream:
				if seg.Stream == 0 {
					seg.FirstSeq = r.Seq
				}
				seg.LastSeq = r.Seq
				seg.Stream++
			}
		}
		// Six messages in msg id order, then the group's stream entries up to the
		// sixth message's seq (the recall of dIDs[1] is the direct conversation's).
		want := "1:0 1:0 1:0 1:0 1:0 1:0"
		if conv == g {
			want = "1:1 1:2 1:3 1:4 1:5 1:6 2:1 2:2 2:3 2:4 2:5 2:6"
		}
		if fmt.Sprint(got) != "["+want+"]" {
			t.Fatalf("run of %d: %v, want [%s]", conv, got, want)
		}
		arch.hold(seg.Key, recs)
		for range 2 {
			if err := s.AddSegment(ctx, seg); err != nil {
				t.Fatal(err)
			}
		}
		m, err := s.Manifest(ctx, conv)
		if err != nil || len(m) != 1 || !m[0].Pending || m[0].FirstMsgID != seg.FirstMsgID {
			t.Fatalf("manifest of %d after AddSegment twice: %+v %v", conv, m, err)
		}
		if c, err := s.Conversation(ctx, conv); err != nil || c.Archived != seg.LastMsgID || c.ArchivedSeq != seg.LastSeq {
			t.Fatalf("conversation %d after AddSegment: %+v %v", conv, c, err)
		}
		// Pending, the warm rows answer: nothing changed.
		sameAnswers(t, fmt.Sprintf("%d pending", conv), answersOf(t, s, conv, map[uint64][]uint64{d.ID: dIDs, g: gIDs}[conv], conv == g),
			map[uint64]answers{d.ID: wantD, g: wantG}[conv])
		if err := s.DeleteRun(ctx, seg, recs); err != nil {
			t.Fatal(err)
		}
		if m, err := s.Manifest(ctx, conv); err != nil || len(m) != 1 || m[0].Pending {
			t.Fatalf("manifest of %d after DeleteRun: %+v %v", conv, m, err)
		}
		segs[conv], runs[conv] = seg, recs
	}
	if err := s.ColdConversations(ctx, before, func(conv uint64, _ string) error {
		return fmt.Errorf("conversation %d still has warm messages below %d", conv, before)
	}); err != nil {
		t.Fatal(err)
	}
	if recs, err := s.Run(ctx, d.ID, before, 100); err != nil || len(recs) != 0 {
		t.Fatalf("run after the move: %d records %v", len(recs), err)
	}
	sameAnswers(t, "direct, moved", answersOf(t, s, d.ID, dIDs, false), wantD)
	sameAnswers(t, "group, moved", answersOf(t, s, g, gIDs, true), wantG)

	// A recall of an archived message is a marker that wins over the segment's copy.
	at := now.Add(time.Minute).UTC().Truncate(time.Millisecond)
	if m, err := s.Recall(ctx, dIDs[2], "bea", at); err != nil || !m.RecalledAt.Equal(at) || m.RecalledBy != "bea" {
		t.Fatalf("recall of an archived message: %+v %v", m, err)
	}
	if m, err := s.Recall(ctx, dIDs[2], "al", at.Add(time.Minute)); err != nil || !m.RecalledAt.Equal(at) || m.RecalledBy != "bea" {
		t.Fatalf("second recall of an archived message: %+v %v", m, err)
	}
	if m, err := s.Message(ctx, dIDs[2]); err != nil || !m.Recalled() {
		t.Fatalf("archived message after its recall: %+v %v", m, err)
	}
	if e := mustLookup(t, s, dIDs[2]); !e.Recalled || e.Body != nil {
		t.Fatalf("lookup of a recalled archived message: %+v", e)
	}
	page, _, err := s.History(ctx, d.ID, dIDs[3], 1)
	if err != nil || len(page) != 1 || page[0].ID != dIDs[2] || !page[0].Recalled() {
		t.Fatalf("history of a recalled archived message: %+v %v", page, err)
	}

	// A redelivered send of an archived message answers it as stored and stores
	// nothing warm.
	again, err := s.PutMessages(ctx, []groupstream.Message{{ID: dIDs[0], ConversationID: d.ID, From: "al", Type: "text",
		Body: json.RawMessage(`{"n":0}`), CreatedAt: now}})
	if err != nil || len(again) != 1 || again[0].ID != dIDs[0] || string(again[0].Body) != `{"n":0}` {
		t.Fatalf("an archived message stored again: %+v %v", again, err)
	}
	gAgain := wantG.messages[gIDs[0]]
	gAgain.Seq, gAgain.Fanout = 0, ""
	if again, err := s.PutMessages(ctx, []groupstream.Message{gAgain}); err != nil || again[0].Seq != wantG.messages[gIDs[0]].Seq {
		t.Fatalf("an archived group message stored again: %+v %v", again, err)
	}
	if recs, err := s.Run(ctx, d.ID, before, 100); err != nil || len(recs) != 0 {
		t.Fatalf("run after storing an archived message again: %d records %v", len(recs), err)
	}
	if c, _ := s.Conversation(ctx, g); c.Head != 10 {
		t.Fatalf("storing an archived group message again moved the head to %d", c.Head)
	}
	sameAnswers(t, "group, stored again", answersOf(t, s, g, gIDs, true), wantG)

	// Retention: RemoveSegment makes them gone.
	for _, conv := range []uint64{d.ID, g} {
		if err := s.RemoveSegment(ctx, segs[conv], runs[conv]); err != nil {
			t.Fatal(err)
		}
		if m, err := s.Manifest(ctx, conv); err != nil || len(m) != 0 {
			t.Fatalf("manifest of %d after RemoveSegment: %+v %v", conv, m, err)
		}
	}
	for _, id := range slices.Concat(dIDs[:6], gIDs[:6]) {
		if _, err := s.Message(ctx, id); !errors.Is(err, groupstream.ErrNotFound) {
			t.Fatalf("message %d after RemoveSegment: %v", id, err)
		}
	}
	if got, err := s.LookupMessages(ctx, dIDs); err != nil || len(got) != 4 {
		t.Fatalf("lookup after RemoveSegment: %d found %v", len(got), err)
	}
	page, more, err := s.History(ctx, d.ID, 0, 10)
	if err != nil || more || len(page) != 4 || page[3].ID != dIDs[6] {
		t.Fatalf("history after RemoveSegment: %d more=%v %v", len(page), more, err)
	}
	if got := streamSeqs(t, s, g, 0); got != "7:message:"+fmt.Sprint(gIDs[6])+":a 8:message:"+fmt.Sprint(gIDs[7])+":a 9:message:"+
		fmt.Sprint(gIDs[8])+":a 10:message:"+fmt.Sprint(gIDs[9])+":a " {
		t.Fatalf("stream after RemoveSegment: %s", got)
	}
}

func mustLookup(t *testing.T, s groupstream.Store, id uint64) wire.Entry {
	t.Helper()
	got, err := s.LookupMessages(ctx, []uint64{id})
	if err != nil {
		t.Fatal(err)
	}
	return got[id]
}
