package groupstream

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/fanline/fanline/internal/kv"
	"github.com/fanline/fanline/internal/tier"
)

// Keys of archived history: c s <conv> <first msg id> -> manifest entry (a
// tier.Segment); s a <msg id> -> conversation id (the message is in a segment of
// it); s k <msg id> -> recallMark.
func manifestPrefix(conv uint64) kv.Key { return kv.NewKey(kv.PrefixConversation, 's').U64(conv) }
func pointerKey(id uint64) kv.Key       { return kv.NewKey(kv.PrefixStream, 'a').U64(id) }
func markKey(id uint64) kv.Key          { return kv.NewKey(kv.PrefixStream, 'k').U64(id) }

// SetArchive implements Archiver.
func (s *PebbleStore) SetArchive(a Archive) { s.tiers = tiers{idx: s, archive: a} }

// ColdConversations implements Archiver.
func (s *PebbleStore) ColdConversations(ctx context.Context, before uint64, f func(conv uint64, kind string) error) error {
	var found []Conversation
	err := s.scan(kv.NewKey(kv.PrefixConversation, 'c'), func(rest, v []byte) error {
		var c Conversation
		if err := json.Unmarshal(v, &c); err != nil {
			return fmt.Errorf("groupstream: conversation: %w", err)
		}
		found = append(found, c)
		return ctx.Err()
	})
	if err != nil {
		return err
	}
	for _, c := range found {
		prefix := histPrefix(c.ID)
		it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: append(kv.Key(nil), prefix...).U64(before)})
		if err != nil {
			return fmt.Errorf("groupstream: %w", err)
		}
		old := it.First()
		if err := it.Close(); err != nil {
			return fmt.Errorf("groupstream: %w", err)
		}
		if old {
			if err := f(c.ID, c.Kind); err != nil {
				return err
			}
		}
	}
	return nil
}

// ArchivedConversations implements Archiver.
func (s *PebbleStore) ArchivedConversations(ctx context.Context, f func(conv uint64, kind string) error) error {
	var convs []uint64
	err := s.scan(kv.NewKey(kv.PrefixConversation, 's'), func(rest, _ []byte) error {
		if id := kvU64(rest); len(convs) == 0 || convs[len(convs)-1] != id {
			convs = append(convs, id)
		}
		return ctx.Err()
	})
	if err != nil {
		return err
	}
	for _, id := range convs {
		c, err := s.Conversation(ctx, id)
		if err != nil {
			return err
		}
		if err := f(id, c.Kind); err != nil {
			return err
		}
	}
	return nil
}

// Run implements Archiver.
func (s *PebbleStore) Run(ctx context.Context, conv, before uint64, limit int) ([]tier.Record, error) {
	c, err := s.Conversation(ctx, conv)
	if err != nil {
		return nil, err
	}
	snap := s.db.NewSnapshot()
	defer snap.Close()
	prefix := histPrefix(conv)
	it, err := snap.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: append(kv.Key(nil), prefix...).U64(before)})
	if err != nil {
		return nil, fmt.Errorf("groupstream: %w", err)
	}
	defer it.Close()
	var out []tier.Record
	var maxSeq uint64
	rows := 0
	for it.First(); it.Valid() && len(out) < limit; it.Next() {
		if rows++; rows%tier.PaceRows == 0 {
			if err := tier.Pace(ctx); err != nil {
				return nil, err
			}
		}
		id := kvU64(it.Key()[len(prefix):])
		v, ok, err := kv.Get(snap, msgKey(id))
		if err != nil {
			return nil, fmt.Errorf("groupstream: %w", err)
		}
		if !ok {
			continue
		}
		var m Message
		if err := json.Unmarshal(v, &m); err != nil {
			return nil, fmt.Errorf("groupstream: message %d: %w", id, err)
		}
		r, err := messageRecord(m)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
		maxSeq = max(maxSeq, m.Seq)
	}
	if err := it.Error(); err != nil {
		return nil, fmt.Errorf("groupstream: %w", err)
	}
	if maxSeq <= c.ArchivedSeq {
		return out, nil
	}
	sp := streamPrefix(conv)
	st, err := snap.NewIter(&pebble.IterOptions{
		LowerBound: append(kv.Key(nil), sp...).U64(c.ArchivedSeq + 1),
		UpperBound: append(kv.Key(nil), sp...).U64(maxSeq + 1),
	})
	if err != nil {
		return nil, fmt.Errorf("groupstream: %w", err)
	}
	defer st.Close()
	for st.First(); st.Valid(); st.Next() {
		seq := binary.BigEndian.Uint64(st.Key()[len(sp):])
		e, _, err := decodeStreamEntry(seq, st.Value())
		if err != nil {
			return nil, err
		}
		out = append(out, tier.Record{Kind: tier.RecordStream, MsgID: e.MsgID, Seq: seq, At: e.At,
			Data: append([]byte(nil), st.Value()...)})
	}
	return out, st.Error()
}

// Manifest implements Archiver.
func (s *PebbleStore) Manifest(ctx context.Context, conv uint64) ([]tier.Segment, error) {
	var out []tier.Segment
	err := s.scan(manifestPrefix(conv), func(_, v []byte) error {
		var seg tier.Segment
		if err := json.Unmarshal(v, &seg); err != nil {
			return fmt.Errorf("groupstream: manifest of %d: %w", conv, err)
		}
		out = append(out, seg)
		return nil
	})
	return out, err
}

// AddSegment implements Archiver.
func (s *PebbleStore) AddSegment(ctx context.Context, seg tier.Segment) error {
	defer lockConvs(s.locks, []uint64{seg.Conv})()
	key := manifestPrefix(seg.Conv).U64(seg.FirstMsgID)
	if _, ok, err := kv.Get(s.db, key); err != nil || ok {
		return err
	}
	c, err := s.Conversation(ctx, seg.Conv)
	if err != nil {
		return err
	}
	if seg.Stream > 0 {
		entries, ranks, err := s.streamRange(seg.Conv, seg.FirstSeq, seg.LastSeq)
		if err != nil {
			return err
		}
		seg.RankBefore, seg.Counted = rankRuns(entries, ranks)
	}
	seg.Pending = true
	v, _ := json.Marshal(seg)
	c.Archived, c.ArchivedSeq = max(c.Archived, seg.LastMsgID), max(c.ArchivedSeq, seg.LastSeq)
	cv, _ := json.Marshal(c)
	batch := s.db.NewBatch()
	defer batch.Close()
	_ = batch.Set(key, v, nil)
	_ = batch.Set(convKey(c.ID), cv, nil)
	if err := batch.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("groupstream: add segment: %w", err)
	}
	s.cached(c)
	return nil
}

// streamRange returns the warm stream entries of conv with seq in [from, to] and
// the rank after each.
func (s *PebbleStore) streamRange(conv, from, to uint64) ([]StreamEntry, []uint64, error) {
	sp := streamPrefix(conv)
	it, err := s.db.NewIter(&pebble.IterOptions{
		LowerBound: append(kv.Key(nil), sp...).U64(from),
		UpperBound: append(kv.Key(nil), sp...).U64(to + 1),
	})
	if err != nil {
		return nil, nil, fmt.Errorf("groupstream: %w", err)
	}
	defer it.Close()
	var entries []StreamEntry
	var ranks []uint64
	for it.First(); it.Valid(); it.Next() {
		e, rank, err := decodeStreamEntry(binary.BigEndian.Uint64(it.Key()[len(sp):]), it.Value())
		if err != nil {
			return nil, nil, err
		}
		entries, ranks = append(entries, e), append(ranks, rank)
	}
	return entries, ranks, it.Error()
}

// DeleteRun implements Archiver.
func (s *PebbleStore) DeleteRun(ctx context.Context, seg tier.Segment, recs []tier.Record) error {
	return s.dropRun(ctx, seg, recs, false)
}

// RemoveSegment implements Archiver.
func (s *PebbleStore) RemoveSegment(ctx context.Context, seg tier.Segment, recs []tier.Record) error {
	return s.dropRun(ctx, seg, recs, true)
}

// dropChunk is how many records of a run one batch of dropRun deletes.
const dropChunk = 128

// dropRun deletes the warm rows of recs; with remove it also deletes every trace of
// them (pointers, markers, the manifest entry), else it keeps pointers and recall
// markers and marks seg done.
//
// It deletes a chunk of rows at a time, each under the conversation's lock (which a
// recall of one of them takes too) and committed without waiting for the disk; the
// last chunk changes the manifest entry and is synced, which makes the earlier ones
// durable too. So a live write sharing the conversation's lock stripe, and every
// batch of the send stage that holds one of them, waits for one chunk at most, not
// for a whole segment; between chunks it calls tier.Pace. Safe to cut short anywhere: the manifest entry changes only
// with the last chunk, and a retried run deletes what is left (what is gone already
// is skipped).
func (s *PebbleStore) dropRun(ctx context.Context, seg tier.Segment, recs []tier.Record, remove bool) error {
	key := manifestPrefix(seg.Conv).U64(seg.FirstMsgID)
	if !remove {
		if _, ok, err := kv.Get(s.db, key); err != nil || !ok {
			if err == nil {
				err = fmt.Errorf("groupstream: segment %s of %d is not in the manifest", seg.Key, seg.Conv)
			}
			return err
		}
	}
	for from := 0; ; from += dropChunk {
		to := min(from+dropChunk, len(recs))
		last := to == len(recs)
		if err := s.dropPart(seg.Conv, key, recs[from:to], remove, last); err != nil {
			return err
		}
		if last {
			return nil
		}
		if err := tier.Pace(ctx); err != nil {
			return err
		}
	}
}

// dropPart deletes the warm rows of recs, one chunk of dropRun's run of conv whose
// manifest entry is at key; with last it also removes the entry (remove) or marks
// it done.
func (s *PebbleStore) dropPart(conv uint64, key kv.Key, recs []tier.Record, remove, last bool) error {
	defer lockConvs(s.locks, []uint64{conv})()
	batch := s.db.NewBatch()
	defer batch.Close()
	for _, r := range recs {
		switch r.Kind {
		case tier.RecordMessage:
			doc, ok, err := kv.Get(s.db, msgKey(r.MsgID))
			if err != nil {
				return fmt.Errorf("groupstream: %w", err)
			}
			if ok {
				_ = batch.Delete(msgKey(r.MsgID), nil)
				_ = batch.Delete(histPrefix(conv).U64(r.MsgID), nil)
			}
			if remove {
				_ = batch.Delete(pointerKey(r.MsgID), nil)
				_ = batch.Delete(markKey(r.MsgID), nil)
				continue
			}
			_ = batch.Set(pointerKey(r.MsgID), kv.U64Value(conv), nil)
			if !ok {
				continue
			}
			// Only the recall's fields are decoded: the rest of the document is
			// in the segment.
			var rc struct {
				At        time.Time `json:"recalled_at"`
				By        string    `json:"recalled_by"`
				RecallSeq uint64    `json:"recall_seq"`
			}
			if err := json.Unmarshal(doc, &rc); err != nil {
				return fmt.Errorf("groupstream: message %d: %w", r.MsgID, err)
			}
			if !rc.At.IsZero() {
				v, _ := json.Marshal(recallMark(rc))
				_ = batch.Set(markKey(r.MsgID), v, nil)
			}
		case tier.RecordStream:
			_ = batch.Delete(streamPrefix(conv).U64(r.Seq), nil)
		}
	}
	if !last {
		if err := batch.Commit(pebble.NoSync); err != nil {
			return fmt.Errorf("groupstream: delete archived run: %w", err)
		}
		return nil
	}
	if remove {
		_ = batch.Delete(key, nil)
	} else {
		// The entry as AddSegment recorded it (with its rank runs), no longer pending.
		v, ok, err := kv.Get(s.db, key)
		if err != nil || !ok {
			if err == nil {
				err = fmt.Errorf("groupstream: segment of %d at %x is not in the manifest", conv, key)
			}
			return err
		}
		var stored tier.Segment
		if err := json.Unmarshal(v, &stored); err != nil {
			return fmt.Errorf("groupstream: manifest of %d: %w", conv, err)
		}
		stored.Pending = false
		v, _ = json.Marshal(stored)
		_ = batch.Set(key, v, nil)
	}
	if err := batch.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("groupstream: delete archived run: %w", err)
	}
	return nil
}

func (s *PebbleStore) archivedIn(ctx context.Context, ids []uint64) (map[uint64]uint64, error) {
	out := map[uint64]uint64{}
	for _, id := range ids {
		conv, err := kv.GetU64(s.db, pointerKey(id))
		if err != nil {
			return nil, fmt.Errorf("groupstream: %w", err)
		}
		if conv != 0 {
			out[id] = conv
		}
	}
	return out, nil
}

func (s *PebbleStore) recallMarks(ctx context.Context, ids []uint64) (map[uint64]recallMark, error) {
	out := map[uint64]recallMark{}
	for _, id := range ids {
		v, ok, err := kv.Get(s.db, markKey(id))
		if err != nil {
			return nil, fmt.Errorf("groupstream: %w", err)
		}
		if !ok {
			continue
		}
		var r recallMark
		if err := json.Unmarshal(v, &r); err != nil {
			return nil, fmt.Errorf("groupstream: recall marker %d: %w", id, err)
		}
		out[id] = r
	}
	return out, nil
}
