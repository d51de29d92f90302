package groupstream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/fanline/fanline/internal/cql"
	"github.com/fanline/fanline/internal/tier"
	"github.com/gocql/gocql"
)

// The Cassandra store's archived history (Archiver), in three tables: manifests
// (conv, first_msg) -> a tier.Segment; archived_messages (id) -> the conversation
// whose segment holds the message; recall_marks (id) -> the recallMark of an
// archived message. A conversation's record (its document) carries Archived and
// ArchivedSeq, raised by a conditional write on its revision like every change of
// it.
//
// Cassandra has no transaction across partitions, so every step orders its writes
// so that each prefix of them answers reads as before and a retry finishes it:
//
//   - AddSegment raises the record's Archived before it writes the manifest row, so
//     a manifest row (which makes a retry stop) implies the record covers it.
//   - DeleteRun writes the pointers and recall markers before deleting any message
//     row, deletes each message row conditionally, on the document it read (IF doc
//     = ?), then the history and stream rows, and marks the segment done last.
//   - RemoveSegment deletes the manifest row last.
//
// DeleteRun against a concurrent Recall: in one process the conversation's lock
// (keylock, the one Recall takes) serialises them, as in the Pebble store. Another
// node's Recall is not under that lock, so both sides are conditional writes on the
// message row: a recall (IF doc = <read>) that applies before the move's delete
// makes the delete's condition fail, and DeleteRun reads the row again, writes its
// recall marker and deletes it as it now is; a move that applies first makes the
// recall's condition fail, and Recall finds the row gone and recalls the archived
// copy with a marker (IF NOT EXISTS, so the first recall stands). Either way the
// recall survives. The cost is one lightweight transaction per message moved.

const (
	cqlConvScan    = `SELECT DISTINCT id, doc FROM conversations`
	cqlOldHistory  = `SELECT msg FROM history WHERE conv = ? AND bucket = ? AND msg > ? AND msg < ? ORDER BY msg ASC LIMIT ?`
	cqlManifest    = `SELECT doc FROM manifests WHERE conv = ?`
	cqlPutSegment  = `INSERT INTO manifests (conv, first_msg, doc) VALUES (?, ?, ?)`
	cqlDelSegment  = `DELETE FROM manifests WHERE conv = ? AND first_msg = ?`
	cqlPointer     = `SELECT conv FROM archived_messages WHERE id = ?`
	cqlPutPointer  = `INSERT INTO archived_messages (id, conv) VALUES (?, ?)`
	cqlDelPointer  = `DELETE FROM archived_messages WHERE id = ?`
	cqlMark        = `SELECT doc FROM recall_marks WHERE id = ?`
	cqlPutMark     = `INSERT INTO recall_marks (id, doc) VALUES (?, ?)`
	cqlNewMark     = `INSERT INTO recall_marks (id, doc) VALUES (?, ?) IF NOT EXISTS`
	cqlDelMark     = `DELETE FROM recall_marks WHERE id = ?`
	cqlMoveMessage = `DELETE FROM messages WHERE id = ? IF doc = ?`
	cqlDelMessage  = `DELETE FROM messages WHERE id = ?`
	cqlDelHistory  = `DELETE FROM history WHERE conv = ? AND bucket = ? AND msg = ?`
	cqlDelStream   = `DELETE FROM stream WHERE conv = ? AND bucket = ? AND seq = ?`
)

// scanPageSize is how many conversation records ColdConversations reads per page.
const scanPageSize = 1000

// moveAttempts bounds the retries of a step that lost a condition to a concurrent
// change (a send claiming the group's record, a recall of the message).
const moveAttempts = 3

// SetArchive implements Archiver.
func (s *CassandraStore) SetArchive(a Archive) { s.tiers = tiers{idx: s, archive: a} }

// ColdConversations implements Archiver by a full, paged scan of the conversations
// table (token order) with, for each record, LIMIT 1 reads of its history buckets,
// oldest first, stopping at the first row. A table of the conversations with warm
// history would cost a write per message sent (and a backfill of existing data);
// the scan costs nothing on the write path and, per run (coldstore.interval), one
// read per conversation and one per history bucket (~25 days) it looks into.
//
// The reads start past the record's Archived (from its bucket, msg > Archived), so
// they never walk the tombstones of rows moved earlier: a message stored warm
// after a later one of its conversation was moved (a send delayed past
// coldstore.after) is not moved; it stays warm and History still returns it.
func (s *CassandraStore) ColdConversations(ctx context.Context, before uint64, f func(conv uint64, kind string) error) error {
	return s.rows.conversations(ctx, func(c Conversation) error {
		old, err := s.warmBelow(ctx, c, before, 1)
		if err != nil || len(old) == 0 {
			return err
		}
		return f(c.ID, c.Kind)
	})
}

// ArchivedConversations implements Archiver: the conversations whose record says
// they have (or had) segments, by the same scan as ColdConversations.
func (s *CassandraStore) ArchivedConversations(ctx context.Context, f func(conv uint64, kind string) error) error {
	return s.rows.conversations(ctx, func(c Conversation) error {
		if c.Archived == 0 {
			return nil
		}
		return f(c.ID, c.Kind)
	})
}

// warmBelow returns up to limit of c's oldest warm history ids above c.Archived and
// below before, oldest first.
func (s *CassandraStore) warmBelow(ctx context.Context, c Conversation, before uint64, limit int) ([]uint64, error) {
	if before <= c.Archived+1 {
		return nil, nil
	}
	from := max(0, idBucketAt(c.CreatedAt)-1)
	if c.Archived > 0 {
		from = historyBucket(c.Archived)
	}
	var out []uint64
	for b := from; b <= historyBucket(before-1) && len(out) < limit; b++ {
		ids, err := s.rows.history(ctx, c.ID, b, c.Archived, before, limit-len(out), true)
		if err != nil {
			return nil, err
		}
		out = append(out, ids...)
	}
	return out, nil
}

// Run implements Archiver, from the oldest warm message past the record's
// Archived (see ColdConversations). A message's record holds its archivedDoc.
func (s *CassandraStore) Run(ctx context.Context, conv, before uint64, limit int) ([]tier.Record, error) {
	c, _, err := s.load(ctx, conv)
	if err != nil {
		return nil, err
	}
	ids, err := s.warmBelow(ctx, c, before, limit)
	if err != nil {
		return nil, err
	}
	var out []tier.Record
	var maxSeq uint64
	for i, id := range ids {
		if i%tier.PaceRows == tier.PaceRows-1 {
			if err := tier.Pace(ctx); err != nil {
				return nil, err
			}
		}
		sm, _, err := s.message(ctx, id)
		if errors.Is(err, ErrNotFound) {
			continue // a history row left by a move cut short
		}
		if err != nil {
			return nil, err
		}
		r, err := messageRecord(sm.Message)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
		maxSeq = max(maxSeq, sm.Seq)
	}
	if maxSeq <= c.ArchivedSeq {
		return out, nil
	}
	entries, ranks, err := s.streamRange(ctx, conv, c.ArchivedSeq+1, maxSeq)
	if err != nil {
		return nil, err
	}
	for i, e := range entries {
		out = append(out, tier.Record{Kind: tier.RecordStream, MsgID: e.MsgID, Seq: e.Seq, At: e.At, Data: streamValue(e, ranks[i])})
	}
	return out, nil
}

// streamRange returns the warm stream entries of conv with seq in [from, to] and
// the rank after each.
func (s *CassandraStore) streamRange(ctx context.Context, conv, from, to uint64) ([]StreamEntry, []uint64, error) {
	var entries []StreamEntry
	var ranks []uint64
	for b := streamBucket(from); b <= streamBucket(to); b++ {
		es, rs, err := s.rows.stream(ctx, conv, b, from-1, to, math.MaxInt32)
		if err != nil {
			return nil, nil, err
		}
		entries, ranks = append(entries, es...), append(ranks, rs...)
	}
	return entries, ranks, nil
}

// Manifest implements Archiver.
func (s *CassandraStore) Manifest(ctx context.Context, conv uint64) ([]tier.Segment, error) {
	return s.rows.segments(ctx, conv)
}

// AddSegment implements Archiver: the record's Archived first, then the manifest
// row (see above).
func (s *CassandraStore) AddSegment(ctx context.Context, seg tier.Segment) error {
	defer lockConvs(s.locks, []uint64{seg.Conv})()
	segs, err := s.Manifest(ctx, seg.Conv)
	if err != nil {
		return err
	}
	for _, old := range segs {
		if old.FirstMsgID == seg.FirstMsgID {
			return nil
		}
	}
	if seg.Stream > 0 {
		entries, ranks, err := s.streamRange(ctx, seg.Conv, seg.FirstSeq, seg.LastSeq)
		if err != nil {
			return err
		}
		seg.RankBefore, seg.Counted = rankRuns(entries, ranks)
	}
	if err := s.raiseArchived(ctx, seg); err != nil {
		return err
	}
	seg.Pending = true
	return s.putSegment(ctx, seg)
}

// recorded returns seg as AddSegment recorded it (with its rank runs).
func (s *CassandraStore) recorded(ctx context.Context, seg tier.Segment) (tier.Segment, error) {
	segs, err := s.Manifest(ctx, seg.Conv)
	if err != nil {
		return seg, err
	}
	for _, old := range segs {
		if old.FirstMsgID == seg.FirstMsgID {
			return old, nil
		}
	}
	return seg, fmt.Errorf("groupstream: segment %s of %d is not in the manifest", seg.Key, seg.Conv)
}

func (s *CassandraStore) putSegment(ctx context.Context, seg tier.Segment) error {
	doc, _ := json.Marshal(seg)
	if err := s.w.Exec(ctx, cql.Q(cqlPutSegment, int64(seg.Conv), int64(seg.FirstMsgID), doc)); err != nil {
		return cassErr(err)
	}
	return nil
}

// raiseArchived raises the record of seg's conversation to cover seg, by a
// conditional write on its revision, read again when a send changed it meanwhile.
func (s *CassandraStore) raiseArchived(ctx context.Context, seg tier.Segment) error {
	for attempt := 1; ; attempt++ {
		c, rev, err := s.load(ctx, seg.Conv)
		if err != nil {
			return err
		}
		if c.Archived >= seg.LastMsgID && c.ArchivedSeq >= seg.LastSeq {
			s.cached(c)
			return nil
		}
		c.Archived, c.ArchivedSeq = max(c.Archived, seg.LastMsgID), max(c.ArchivedSeq, seg.LastSeq)
		err = s.claim(ctx, c, rev, nil)
		if err == nil {
			s.cached(c)
			return nil
		}
		if !errors.Is(err, ErrConflict) || attempt == moveAttempts {
			return err
		}
	}
}

// DeleteRun implements Archiver (see above for the order and the race with Recall).
// Like the Pebble store's it works a chunk of the run at a time under the
// conversation's lock, so live writes to the conversation's lock stripe wait for one
// chunk at most; each chunk keeps the order above for its messages, and the segment
// is marked done after the last.
func (s *CassandraStore) DeleteRun(ctx context.Context, seg tier.Segment, recs []tier.Record) error {
	seg, err := s.recorded(ctx, seg)
	if err != nil {
		return err
	}
	for from := 0; from < len(recs); from += dropChunk {
		if from > 0 {
			if err := tier.Pace(ctx); err != nil {
				return err
			}
		}
		if err := s.dropPart(ctx, seg.Conv, recs[from:min(from+dropChunk, len(recs))]); err != nil {
			return err
		}
	}
	seg.Pending = false
	return s.putSegment(ctx, seg)
}

// dropPart deletes the warm rows of recs, one chunk of DeleteRun's run of conv,
// keeping their pointers and recall markers.
func (s *CassandraStore) dropPart(ctx context.Context, conv uint64, recs []tier.Record) error {
	defer lockConvs(s.locks, []uint64{conv})()
	type row struct {
		id  uint64
		doc []byte
	}
	var keep []cql.Stmt
	var rows []row
	for _, r := range recs {
		if r.Kind != tier.RecordMessage {
			continue
		}
		sm, doc, err := s.message(ctx, r.MsgID)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
		keep = append(keep, cql.Q(cqlPutPointer, int64(r.MsgID), int64(conv)))
		if err == nil {
			if sm.Recalled() {
				keep = append(keep, markRow(cqlPutMark, sm.Message))
			}
			rows = append(rows, row{r.MsgID, doc})
		}
	}
	if err := cql.WriteBatches(ctx, s.w, s.cfg.Batch, keep); err != nil {
		return cassErr(err)
	}
	for _, r := range rows {
		if err := s.moveMessage(ctx, r.id, r.doc); err != nil {
			return err
		}
	}
	if err := cql.WriteBatches(ctx, s.w, s.cfg.Batch, warmRows(conv, recs, false)); err != nil {
		return cassErr(err)
	}
	return nil
}

// moveMessage deletes message id's row if it is still doc. A row changed meanwhile
// (recalled by another node) gets its recall marker and is deleted as it now is.
func (s *CassandraStore) moveMessage(ctx context.Context, id uint64, doc []byte) error {
	for attempt := 1; ; attempt++ {
		applied, err := s.w.CAS(ctx, []cql.Stmt{cql.Q(cqlMoveMessage, int64(id), doc)})
		if err != nil {
			return cassErr(err)
		}
		if applied {
			return nil
		}
		sm, now, err := s.message(ctx, id)
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if attempt == moveAttempts {
			return fmt.Errorf("%w: message %d", ErrConflict, id)
		}
		if sm.Recalled() {
			if err := s.w.Exec(ctx, markRow(cqlPutMark, sm.Message)); err != nil {
				return cassErr(err)
			}
		}
		doc = now
	}
}

// markRow writes the recall marker of m with statement st (cqlPutMark, cqlNewMark).
func markRow(st string, m Message) cql.Stmt {
	v, _ := json.Marshal(recallMark{At: m.RecalledAt, By: m.RecalledBy, RecallSeq: m.RecallSeq})
	return cql.Q(st, int64(m.ID), v)
}

// warmRows deletes the history and stream rows of recs in conv; with remove also
// the message rows, pointers and recall markers.
func warmRows(conv uint64, recs []tier.Record, remove bool) []cql.Stmt {
	var sts []cql.Stmt
	for _, r := range recs {
		switch r.Kind {
		case tier.RecordMessage:
			sts = append(sts, cql.Q(cqlDelHistory, int64(conv), historyBucket(r.MsgID), int64(r.MsgID)))
			if remove {
				sts = append(sts, cql.Q(cqlDelMessage, int64(r.MsgID)), cql.Q(cqlDelPointer, int64(r.MsgID)),
					cql.Q(cqlDelMark, int64(r.MsgID)))
			}
		case tier.RecordStream:
			sts = append(sts, cql.Q(cqlDelStream, int64(conv), streamBucket(r.Seq), int64(r.Seq)))
		}
	}
	return sts
}

// RemoveSegment implements Archiver: every row of recs, then the manifest row.
func (s *CassandraStore) RemoveSegment(ctx context.Context, seg tier.Segment, recs []tier.Record) error {
	defer lockConvs(s.locks, []uint64{seg.Conv})()
	if err := cql.WriteBatches(ctx, s.w, s.cfg.Batch, warmRows(seg.Conv, recs, true)); err != nil {
		return cassErr(err)
	}
	if err := s.w.Exec(ctx, cql.Q(cqlDelSegment, int64(seg.Conv), int64(seg.FirstMsgID))); err != nil {
		return cassErr(err)
	}
	return nil
}

func (s *CassandraStore) archivedIn(ctx context.Context, ids []uint64) (map[uint64]uint64, error) {
	out := map[uint64]uint64{}
	for _, id := range ids {
		conv, ok, err := s.rows.pointer(ctx, id)
		if err != nil {
			return nil, err
		}
		if ok {
			out[id] = conv
		}
	}
	return out, nil
}

func (s *CassandraStore) recallMarks(ctx context.Context, ids []uint64) (map[uint64]recallMark, error) {
	out := map[uint64]recallMark{}
	for _, id := range ids {
		r, ok, err := s.rows.mark(ctx, id)
		if err != nil {
			return nil, err
		}
		if ok {
			out[id] = r
		}
	}
	return out, nil
}

// storeReads are the store's reads of conversations, messages, history, streams
// and archived history: Cassandra's (sessionReads); the statement-level tests read
// a recorder's rows.
type storeReads interface {
	// conversation returns conversation id and its revision.
	conversation(ctx context.Context, id uint64) (Conversation, int64, error)
	// conversations calls f with every conversation record.
	conversations(ctx context.Context, f func(Conversation) error) error
	// message returns message id and its row's document.
	message(ctx context.Context, id uint64) (storedMessage, []byte, error)
	// history returns up to limit msg ids of conv's history bucket in (above,
	// below), newest first or, with oldestFirst, oldest first.
	history(ctx context.Context, conv uint64, bucket int64, above, below uint64, limit int, oldestFirst bool) ([]uint64, error)
	// stream returns up to limit entries of conv's stream bucket with seq in
	// (after, upTo], in seq order, and the rank after each.
	stream(ctx context.Context, conv uint64, bucket int64, after, upTo uint64, limit int) ([]StreamEntry, []uint64, error)
	// rankAt returns the rank of the last entry of conv's stream bucket at or before
	// seq, if there is one.
	rankAt(ctx context.Context, conv uint64, bucket int64, seq uint64) (uint64, bool, error)
	// segments returns conv's manifest, by first msg id.
	segments(ctx context.Context, conv uint64) ([]tier.Segment, error)
	// pointer returns the conversation of archived message id.
	pointer(ctx context.Context, id uint64) (uint64, bool, error)
	// mark returns the recall marker of archived message id.
	mark(ctx context.Context, id uint64) (recallMark, bool, error)
}

var _ storeReads = sessionReads{}

func (r sessionReads) conversation(ctx context.Context, id uint64) (Conversation, int64, error) {
	var blob []byte
	var rev int64
	err := r.s.Query(cqlConv, int64(id)).WithContext(ctx).Scan(&blob, &rev)
	if errors.Is(err, gocql.ErrNotFound) || (err == nil && len(blob) == 0) {
		return Conversation{}, 0, ErrNotFound
	}
	if err != nil {
		return Conversation{}, 0, cassErr(err)
	}
	c, err := decodeConversation(id, blob)
	return c, rev, err
}

func decodeConversation(id uint64, doc []byte) (Conversation, error) {
	var c Conversation
	if err := json.Unmarshal(doc, &c); err != nil {
		return c, fmt.Errorf("groupstream: conversation %d: %w", id, err)
	}
	return c, nil
}

func (r sessionReads) conversations(ctx context.Context, f func(Conversation) error) error {
	it := r.s.Query(cqlConvScan).WithContext(ctx).PageSize(scanPageSize).Iter()
	var id int64
	var blob []byte
	for it.Scan(&id, &blob) {
		if len(blob) == 0 {
			continue // a fence's empty record (announce_cassandra.go)
		}
		c, err := decodeConversation(uint64(id), blob)
		if err == nil {
			err = f(c)
		}
		if err != nil {
			it.Close()
			return err
		}
	}
	if err := it.Close(); err != nil {
		return cassErr(err)
	}
	return nil
}

func (r sessionReads) message(ctx context.Context, id uint64) (storedMessage, []byte, error) {
	var blob []byte
	err := r.s.Query(cqlMessage, int64(id)).WithContext(ctx).Scan(&blob)
	if errors.Is(err, gocql.ErrNotFound) {
		return storedMessage{}, nil, ErrNotFound
	}
	if err != nil {
		return storedMessage{}, nil, cassErr(err)
	}
	sm, err := decodeStored(id, blob)
	return sm, blob, err
}

func decodeStored(id uint64, doc []byte) (storedMessage, error) {
	var sm storedMessage
	if err := json.Unmarshal(doc, &sm); err != nil {
		return sm, fmt.Errorf("groupstream: message %d: %w", id, err)
	}
	return sm, nil
}

func (r sessionReads) history(ctx context.Context, conv uint64, bucket int64, above, below uint64, limit int, oldestFirst bool) ([]uint64, error) {
	upper := int64(math.MaxInt64)
	if below != 0 {
		upper = int64(below)
	}
	q := r.s.Query(cqlHistory, int64(conv), bucket, upper, limit)
	if oldestFirst {
		q = r.s.Query(cqlOldHistory, int64(conv), bucket, int64(above), upper, limit)
	}
	it := q.WithContext(ctx).Iter()
	var out []uint64
	var id int64
	for it.Scan(&id) {
		if uint64(id) > above {
			out = append(out, uint64(id))
		}
	}
	if err := it.Close(); err != nil {
		return nil, cassErr(err)
	}
	return out, nil
}

func (r sessionReads) stream(ctx context.Context, conv uint64, bucket int64, after, upTo uint64, limit int) ([]StreamEntry, []uint64, error) {
	it := r.s.Query(cqlStream, int64(conv), bucket, int64(after), int64(upTo), limit).WithContext(ctx).Iter()
	var out []StreamEntry
	var ranks []uint64
	var seq, msg, rank int64
	var kind, from string
	var at time.Time
	for it.Scan(&seq, &kind, &msg, &rank, &at, &from) {
		out = append(out, StreamEntry{Seq: uint64(seq), Kind: kind, MsgID: uint64(msg), From: from, At: at.UTC()})
		ranks = append(ranks, uint64(rank))
	}
	if err := it.Close(); err != nil {
		return nil, nil, cassErr(err)
	}
	return out, ranks, nil
}

func (r sessionReads) rankAt(ctx context.Context, conv uint64, bucket int64, seq uint64) (uint64, bool, error) {
	var rank int64
	err := r.s.Query(cqlRankAt, int64(conv), bucket, int64(seq)).WithContext(ctx).Scan(&rank)
	if errors.Is(err, gocql.ErrNotFound) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, cassErr(err)
	}
	return uint64(rank), true, nil
}

func (r sessionReads) segments(ctx context.Context, conv uint64) ([]tier.Segment, error) {
	it := r.s.Query(cqlManifest, int64(conv)).WithContext(ctx).Iter()
	var out []tier.Segment
	var blob []byte
	for it.Scan(&blob) {
		seg, err := decodeSegment(conv, blob)
		if err != nil {
			it.Close()
			return nil, err
		}
		out = append(out, seg)
	}
	if err := it.Close(); err != nil {
		return nil, cassErr(err)
	}
	return out, nil
}

func decodeSegment(conv uint64, doc []byte) (tier.Segment, error) {
	var seg tier.Segment
	if err := json.Unmarshal(doc, &seg); err != nil {
		return seg, fmt.Errorf("groupstream: manifest of %d: %w", conv, err)
	}
	return seg, nil
}

func (r sessionReads) pointer(ctx context.Context, id uint64) (uint64, bool, error) {
	var conv int64
	err := r.s.Query(cqlPointer, int64(id)).WithContext(ctx).Scan(&conv)
	if errors.Is(err, gocql.ErrNotFound) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, cassErr(err)
	}
	return uint64(conv), true, nil
}

func (r sessionReads) mark(ctx context.Context, id uint64) (recallMark, bool, error) {
	var blob []byte
	err := r.s.Query(cqlMark, int64(id)).WithContext(ctx).Scan(&blob)
	if errors.Is(err, gocql.ErrNotFound) {
		return recallMark{}, false, nil
	}
	if err != nil {
		return recallMark{}, false, cassErr(err)
	}
	m, err := decodeMark(id, blob)
	return m, true, err
}

func decodeMark(id uint64, doc []byte) (recallMark, error) {
	var m recallMark
	if err := json.Unmarshal(doc, &m); err != nil {
		return m, fmt.Errorf("groupstream: recall marker %d: %w", id, err)
	}
	return m, nil
}
