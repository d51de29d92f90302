package groupstream

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/fanline/fanline/internal/tier"
	"github.com/fanline/fanline/internal/wire"
)

// Archive reads records of cold segments; the cold tier's reader (coldstore) is
// one. A store with an Archive answers Message, LookupMessages, History, Stream and
// Recall from the segments of its manifests where the warm rows are gone, so no
// caller sees where a message lives. Errors of the object store pass through.
type Archive interface {
	// Messages returns the message records among ids that segment seg holds.
	Messages(ctx context.Context, seg tier.Segment, ids []uint64) (map[uint64]tier.Record, error)
	// Before returns up to limit message records of seg with msg id < before (0:
	// no bound), newest first.
	Before(ctx context.Context, seg tier.Segment, before uint64, limit int) ([]tier.Record, error)
	// Stream returns up to limit stream records of seg with seq > after, in seq
	// order.
	Stream(ctx context.Context, seg tier.Segment, after uint64, limit int) ([]tier.Record, error)
}

// Archiver is the warm store's side of moving history to the cold tier: what the
// scheduler (coldstore) reads, records and deletes. Every Store is one.
//
// A move is: Run -> write and verify the segment -> AddSegment (the manifest entry,
// pending) -> DeleteRun (the warm rows go, the entry stops pending). Each step is
// idempotent, and until DeleteRun commits the warm rows still answer, so a crash
// between any two loses and duplicates nothing: the scheduler finishes a pending
// entry's DeleteRun before it moves anything else of that conversation.
type Archiver interface {
	// ColdConversations calls f for every conversation with warm messages whose
	// msg id is below before.
	ColdConversations(ctx context.Context, before uint64, f func(conv uint64, kind string) error) error
	// Run returns up to limit of conv's oldest warm messages with msg id below
	// before, in msg id order, followed by its warm stream entries up to the
	// highest seq among them, in seq order.
	Run(ctx context.Context, conv, before uint64, limit int) ([]tier.Record, error)
	// Manifest returns conv's segments, by first msg id.
	Manifest(ctx context.Context, conv uint64) ([]tier.Segment, error)
	// AddSegment records seg in its conversation's manifest as pending, with the
	// rank runs of its stream entries (taken from the warm rows, which are still
	// there). Adding a segment recorded already changes nothing.
	AddSegment(ctx context.Context, seg tier.Segment) error
	// DeleteRun deletes the warm rows of recs (seg's records), keeping for each
	// message a pointer to its conversation and, for a message recalled meanwhile,
	// a recall marker that wins over the segment's copy; then seg stops pending.
	// seg must be in the manifest (AddSegment): its entry there, with the rank
	// runs AddSegment took, is the one kept.
	DeleteRun(ctx context.Context, seg tier.Segment, recs []tier.Record) error
	// RemoveSegment deletes seg (retention) from the manifest with the pointers
	// and recall markers of its records recs, and any warm rows left of them.
	RemoveSegment(ctx context.Context, seg tier.Segment, recs []tier.Record) error
	// ArchivedConversations calls f for every conversation with segments.
	ArchivedConversations(ctx context.Context, f func(conv uint64, kind string) error) error
	// SetArchive gives the store the reader of its segments; call it before use.
	SetArchive(a Archive)
}

// recallMark is the recall of a message whose body lives in a cold segment.
type recallMark struct {
	At        time.Time `json:"at"`
	By        string    `json:"by"`
	RecallSeq uint64    `json:"recall_seq,omitempty"`
}

func (r recallMark) apply(m *Message) {
	m.RecalledAt, m.RecalledBy, m.RecallSeq = r.At, r.By, r.RecallSeq
}

// coldIndex is what a store keeps warm about its archived history.
type coldIndex interface {
	Conversation(ctx context.Context, id uint64) (Conversation, error)
	Manifest(ctx context.Context, conv uint64) ([]tier.Segment, error)
	// archivedIn returns the conversation of each archived message among ids.
	archivedIn(ctx context.Context, ids []uint64) (map[uint64]uint64, error)
	// recallMarks returns the recall markers among ids.
	recallMarks(ctx context.Context, ids []uint64) (map[uint64]recallMark, error)
}

// tiers is the read path through a store's manifests into its cold segments.
type tiers struct {
	idx     coldIndex
	archive Archive // nil: nothing has been archived by this process's wiring
}

// decode turns message records into messages with their recall markers applied.
func (t tiers) decode(ctx context.Context, recs []tier.Record) ([]Message, error) {
	out := make([]Message, 0, len(recs))
	ids := make([]uint64, 0, len(recs))
	for _, r := range recs {
		var m Message
		if err := json.Unmarshal(r.Data, &m); err != nil {
			return nil, fmt.Errorf("groupstream: archived message %d: %w", r.MsgID, err)
		}
		if m.ID == 0 { // an archivedDoc
			m.ID, m.CreatedAt, m.Seq = r.MsgID, r.At, r.Seq
		}
		out = append(out, m)
		ids = append(ids, m.ID)
	}
	marks, err := t.idx.recallMarks(ctx, ids)
	if err != nil {
		return nil, err
	}
	for i := range out {
		if r, ok := marks[out[i].ID]; ok && !out[i].Recalled() {
			r.apply(&out[i])
		}
	}
	return out, nil
}

// messages returns the archived messages among ids.
func (t tiers) messages(ctx context.Context, ids []uint64) (map[uint64]Message, error) {
	if t.archive == nil || len(ids) == 0 {
		return nil, nil
	}
	convOf, err := t.idx.archivedIn(ctx, ids)
	if err != nil || len(convOf) == 0 {
		return nil, err
	}
	byConv := map[uint64][]uint64{}
	for id, c := range convOf {
		byConv[c] = append(byConv[c], id)
	}
	out := make(map[uint64]Message, len(convOf))
	for conv, want := range byConv {
		segs, err := t.idx.Manifest(ctx, conv)
		if err != nil {
			return nil, err
		}
		for _, seg := range segs {
			var in []uint64
			for _, id := range want {
				if id >= seg.FirstMsgID && id <= seg.LastMsgID {
					in = append(in, id)
				}
			}
			if len(in) == 0 {
				continue
			}
			found, err := t.archive.Messages(ctx, seg, in)
			if err != nil {
				return nil, err
			}
			recs := make([]tier.Record, 0, len(found))
			for _, r := range found {
				recs = append(recs, r)
			}
			msgs, err := t.decode(ctx, recs)
			if err != nil {
				return nil, err
			}
			for _, m := range msgs {
				out[m.ID] = m
			}
		}
	}
	return out, nil
}

// history returns up to limit archived messages of c older than before (0: the
// newest), newest first, and whether older archived ones remain. Segments may
// overlap in msg id (a message stored late joins a later segment), so they are
// merged.
func (t tiers) history(ctx context.Context, c Conversation, before uint64, limit int) ([]Message, bool, error) {
	if t.archive == nil || c.Archived == 0 {
		return nil, false, nil
	}
	segs, err := t.idx.Manifest(ctx, c.ID)
	if err != nil {
		return nil, false, err
	}
	sort.Slice(segs, func(i, j int) bool { return segs[i].LastMsgID > segs[j].LastMsgID })
	var recs []tier.Record
	more := false
	for _, seg := range segs {
		if before != 0 && seg.FirstMsgID >= before {
			continue
		}
		// Enough already, and no later segment can hold anything newer than the
		// oldest kept.
		if len(recs) >= limit {
			sort.Slice(recs, func(a, b int) bool { return recs[a].MsgID > recs[b].MsgID })
			if seg.LastMsgID < recs[limit-1].MsgID {
				more = true
				break
			}
		}
		page, err := t.archive.Before(ctx, seg, before, limit+1)
		if err != nil {
			return nil, false, err
		}
		recs = append(recs, page...)
	}
	sort.Slice(recs, func(a, b int) bool { return recs[a].MsgID > recs[b].MsgID })
	if len(recs) > limit {
		recs, more = recs[:limit], true
	}
	msgs, err := t.decode(ctx, recs)
	return msgs, more, err
}

// stream returns up to limit archived stream entries of group c with seq > after,
// in seq order (all at or below c.ArchivedSeq).
func (t tiers) stream(ctx context.Context, c Conversation, after uint64, limit int) ([]StreamEntry, error) {
	if t.archive == nil || after >= c.ArchivedSeq {
		return nil, nil
	}
	segs, err := t.idx.Manifest(ctx, c.ID)
	if err != nil {
		return nil, err
	}
	sort.Slice(segs, func(i, j int) bool { return segs[i].FirstSeq < segs[j].FirstSeq })
	var out []StreamEntry
	for _, seg := range segs {
		if seg.LastSeq <= after || len(out) >= limit {
			continue
		}
		recs, err := t.archive.Stream(ctx, seg, after, limit-len(out))
		if err != nil {
			return nil, err
		}
		for _, r := range recs {
			e, _, err := decodeStreamEntry(r.Seq, r.Data)
			if err != nil {
				return nil, err
			}
			out = append(out, e)
			after = r.Seq
		}
	}
	return out, nil
}

// rankBelow returns the rank at seq from the manifest of group c, for a seq with no
// warm stream entry at or before it.
func (t tiers) rankBelow(ctx context.Context, c Conversation, seq uint64) (uint64, error) {
	if c.ArchivedSeq == 0 {
		return 0, nil
	}
	segs, err := t.idx.Manifest(ctx, c.ID)
	if err != nil {
		return 0, err
	}
	var rank uint64
	best := uint64(0)
	for _, seg := range segs {
		if seg.Stream > 0 && seg.FirstSeq <= seq && seg.FirstSeq >= best {
			best, rank = seg.FirstSeq, seg.RankAt(seq)
		}
	}
	return rank, nil
}

// withCold completes a warm history page of c (newest first, older than before)
// with its archived messages where the page reaches below c.Archived.
func (t tiers) withCold(ctx context.Context, c Conversation, warm []Message, more bool, before uint64, limit int) ([]Message, bool, error) {
	if c.Archived == 0 {
		return warm, more, nil
	}
	if len(warm) == limit && warm[limit-1].ID > c.Archived {
		return warm, true, nil // archived ones are older
	}
	cold, coldMore, err := t.history(ctx, c, before, limit)
	if err != nil {
		return nil, false, err
	}
	msgs, more := mergeHistory(warm, more, cold, coldMore, limit)
	return msgs, more, nil
}

// mergeHistory merges a warm page with an archived one (both newest first; the
// warm copy wins for an id in both), cut at limit.
func mergeHistory(warm []Message, warmMore bool, cold []Message, coldMore bool, limit int) ([]Message, bool) {
	out := make([]Message, 0, min(limit, len(warm)+len(cold)))
	i, j := 0, 0
	for len(out) < limit && (i < len(warm) || j < len(cold)) {
		switch {
		case j == len(cold) || (i < len(warm) && warm[i].ID >= cold[j].ID):
			if j < len(cold) && warm[i].ID == cold[j].ID {
				j++
			}
			out = append(out, warm[i])
			i++
		default:
			out = append(out, cold[j])
			j++
		}
	}
	return out, warmMore || coldMore || i < len(warm) || j < len(cold)
}

// rankRuns returns the runs of message entries among a segment's warm stream
// entries (in seq order), and the group's rank before the first.
func rankRuns(entries []StreamEntry, ranks []uint64) (before uint64, runs [][2]uint64) {
	for i, e := range entries {
		if e.Kind != wire.KindMessage {
			continue
		}
		if len(runs) == 0 {
			before = ranks[i] - 1
		}
		if n := len(runs); n > 0 && runs[n-1][1]+1 == e.Seq {
			runs[n-1][1] = e.Seq
			continue
		}
		runs = append(runs, [2]uint64{e.Seq, e.Seq})
	}
	if len(runs) == 0 && len(entries) > 0 {
		before = ranks[0]
	}
	return before, runs
}

// messageRecord is the segment record of a stored message. Its data is the
// message's document without what the record holds already (see archivedDoc).
func messageRecord(m Message) (tier.Record, error) {
	data, err := json.Marshal(archivedDoc{Message: m})
	if err != nil {
		return tier.Record{}, fmt.Errorf("groupstream: encode message %d for a segment: %w", m.ID, err)
	}
	return tier.Record{Kind: tier.RecordMessage, MsgID: m.ID, Seq: m.Seq, At: m.CreatedAt, Data: data}, nil
}

// archivedDoc is a message's document in a segment record: the Message's JSON
// without its id, time and seq, which the record holds (varints the segment
// delta-compresses well; in the document they were a third of a text message's
// compressed bytes). Its zero fields shadow the Message's; decode puts them back.
// Segments written before it hold the whole document, which decodes as it is.
type archivedDoc struct {
	Message
	ID        uint64    `json:"id,omitempty"`
	CreatedAt time.Time `json:"at,omitzero"`
	Seq       uint64    `json:"seq,omitempty"`
}

// streamValue encodes a stream entry: kind byte ('m' message, 'x' recall), msg id,
// the group's rank after the entry, time in unix nanoseconds, then the sender. It is
// the Pebble value and the segment record's data on every backend.
func streamValue(e StreamEntry, rank uint64) []byte {
	kind := byte('m')
	if e.Kind == wire.KindRecall {
		kind = 'x'
	}
	v := make([]byte, 0, 25+len(e.From))
	v = append(v, kind)
	v = binary.BigEndian.AppendUint64(v, e.MsgID)
	v = binary.BigEndian.AppendUint64(v, rank)
	v = binary.BigEndian.AppendUint64(v, uint64(e.At.UnixNano()))
	return append(v, e.From...)
}

func decodeStreamEntry(seq uint64, v []byte) (StreamEntry, uint64, error) {
	if len(v) < 25 {
		return StreamEntry{}, 0, fmt.Errorf("groupstream: stream entry %d is %d bytes", seq, len(v))
	}
	e := StreamEntry{Seq: seq, Kind: wire.KindMessage, MsgID: binary.BigEndian.Uint64(v[1:]),
		At: time.Unix(0, int64(binary.BigEndian.Uint64(v[17:]))).UTC(), From: string(v[25:])}
	if v[0] == 'x' {
		e.Kind = wire.KindRecall
	}
	return e, binary.BigEndian.Uint64(v[9:]), nil
}
