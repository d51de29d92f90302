package dispatch

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/fanline/fanline/groupstream"
	"github.com/fanline/fanline/internal/wire"
	"github.com/fanline/fanline/timeline"
)

// Sync merges the user's timeline with the streams of their read-fanout groups.
//
// The cursor holds the timeline seq and, per read-fanout group, the stream seq up to
// which the device has every entry of the group (its position). Every group message
// has one mode, so it comes from exactly one source: write-fanout messages from the
// timeline, read-fanout ones (and recalls made in read-fanout) from the stream.
// Entries of one group keep stream order across a switch of mode:
//
//   - before a timeline entry of group g with stream seq t, the stream entries of g
//     below t come first (they were stored before t, so they are all there);
//   - after the timeline is read to its end, a group's stream entries follow from
//     its position, but an entry whose predecessor is a write-fanout message the
//     device has not had yet waits for that message to reach the timeline (it was
//     queued before and will). holdBackLimit bounds the wait, so a lost fanout job
//     delays a group, never stops it.
//
// A cursor into the part of the timeline already dropped (timeline.Trimmer), the
// empty cursor included, answers cursor_expired with the cursor the kept part
// continues from.
func (d *Dispatcher) Sync(ctx context.Context, who wire.Principal, req wire.SyncRequest) (wire.SyncResult, error) {
	user := who.Inbox()
	start := time.Now()
	defer func() { d.m.SyncLatency.Observe(time.Since(start).Seconds()) }()
	c, err := timeline.ParseCursor(req.Cursor)
	if err != nil {
		return wire.SyncResult{}, wire.Errorf(wire.CodeInvalidCursor, "cursor was not made by this server")
	}
	// The device's own positions (from entries it applied since the cursor) win.
	if len(req.GroupSeqs) > maxGroupSeqs {
		return wire.SyncResult{}, wire.Errorf(wire.CodeInvalidField, "group_seqs has more than %d groups", maxGroupSeqs)
	}
	for id, seq := range req.GroupSeqs {
		g, err := strconv.ParseUint(id, 10, 64)
		if err != nil || g == 0 {
			return wire.SyncResult{}, wire.Errorf(wire.CodeInvalidField, "group_seqs: %q is not a group id", id)
		}
		if c.Groups == nil {
			c.Groups = map[uint64]uint64{}
		}
		c.Groups[g] = max(c.Groups[g], seq)
	}
	limit := req.Limit
	if limit <= 0 || limit > d.cfg.SyncMaxLimit {
		limit = d.cfg.SyncMaxLimit
	}
	groups, err := d.readGroups(ctx, user, c)
	if err != nil {
		return wire.SyncResult{}, err
	}
	es, err := d.timelines.Read(ctx, user, c.Seq, limit+1)
	var expired *timeline.CursorExpiredError
	if errors.As(err, &expired) {
		// The device's cursor points into what the timeline dropped: it rebuilds
		// from the conversation list and history, then continues from here.
		resume := timeline.Cursor{Seq: expired.Resume, Groups: c.Groups}
		return wire.SyncResult{}, &wire.Error{Code: wire.CodeCursorExpired, Cursor: resume.String(),
			Message: "the timeline no longer holds entries this old: list conversations, page their history, then sync from cursor"}
	}
	if err != nil {
		return wire.SyncResult{}, err
	}
	m := merge{d: d, limit: limit, out: []wire.Entry{}, groups: groups}
	more := len(es) > limit
	if more {
		es = es[:limit]
	}
	if err := m.timeline(ctx, es); err != nil {
		return wire.SyncResult{}, err
	}
	more = more || m.full
	if !more {
		for _, id := range slices.Sorted(maps.Keys(groups)) {
			if err := m.drain(ctx, groups[id], 0, true); err != nil {
				return wire.SyncResult{}, err
			}
		}
		more = m.full
	}
	next := timeline.Cursor{Seq: m.seq, Groups: map[uint64]uint64{}}
	if next.Seq == 0 {
		next.Seq = c.Seq
	}
	res := wire.SyncResult{Entries: m.out, HasMore: more}
	if len(groups) > 0 {
		res.GroupSeqs = make(map[string]uint64, len(groups))
	}
	for id, g := range groups {
		next.Groups[id] = g.pos
		res.GroupSeqs[strconv.FormatUint(id, 10)] = g.pos
	}
	res.Cursor = next.String()
	return res, nil
}

// maxGroupSeqs bounds the positions a sync request may carry.
const maxGroupSeqs = 10000

// holdBackLimit is how long a stream entry waits for the write-fanout message before
// it to reach the user's timeline.
const holdBackLimit = 30 * time.Second

// syncGroup is where a device stands in one read-fanout group.
type syncGroup struct {
	id   uint64
	join uint64 // the member's first seq
	pos  uint64 // every entry up to here is delivered
	upto uint64 // a past member's last seq (0: a member)
}

// readGroups returns the user's groups that have used read-fanout, with the
// device's position in each: from the cursor, else from what the device already has
// of the group through its timeline, and never before the member's join point.
func (d *Dispatcher) readGroups(ctx context.Context, user string, c timeline.Cursor) (map[uint64]*syncGroup, error) {
	convs, err := d.readFanoutGroups(ctx, user)
	if err != nil {
		return nil, err
	}
	out := map[uint64]*syncGroup{}
	for _, conv := range convs {
		mem, err := d.streams.Member(ctx, conv.ID, user)
		if err == groupstream.ErrNotFound {
			continue // removed since UserGroups
		}
		if err != nil {
			return nil, err
		}
		g := &syncGroup{id: conv.ID, join: max(mem.JoinSeq, 1)}
		if g.pos, err = d.startPos(ctx, user, c, g.id, g.join, conv.Head); err != nil {
			return nil, err
		}
		out[g.id] = g
	}
	// Groups the user left: their devices still get the entries of the membership.
	left, err := d.streams.LeftGroups(ctx, user)
	if err != nil {
		return nil, err
	}
	for _, l := range left {
		if out[l.Conv] != nil {
			continue
		}
		g := &syncGroup{id: l.Conv, join: l.JoinSeq, upto: l.LeftSeq}
		if g.pos, err = d.startPos(ctx, user, c, g.id, g.join, l.LeftSeq); err != nil {
			return nil, err
		}
		out[g.id] = g
	}
	return out, nil
}

// startPos is the device's position in group id: the cursor's, else the highest
// group seq the device already has through its timeline, never before the join
// point nor past limit (a claim past it is nonsense).
func (d *Dispatcher) startPos(ctx context.Context, user string, c timeline.Cursor, id, join, limit uint64) (uint64, error) {
	pos, ok := c.Groups[id]
	if !ok {
		st, err := d.timelines.ConvState(ctx, user, id)
		if err != nil && err != timeline.ErrNotFound {
			return 0, err
		}
		if st.GroupSeqAt != 0 && st.GroupSeqAt <= c.Seq {
			pos = st.GroupSeq
		}
	}
	return min(max(pos, join-1), limit), nil
}

// readFanoutGroups returns the user's groups that have used read-fanout.
func (d *Dispatcher) readFanoutGroups(ctx context.Context, user string) ([]groupstream.Conversation, error) {
	ids, err := d.streams.UserGroups(ctx, user)
	if err != nil {
		return nil, err
	}
	var out []groupstream.Conversation
	for _, id := range ids {
		conv, err := d.streams.Conversation(ctx, id)
		if err != nil {
			return nil, err
		}
		if conv.ReadHead > 0 || conv.FanoutMode() == groupstream.FanoutRead {
			out = append(out, conv)
		}
	}
	return out, nil
}

// merge builds one sync page.
type merge struct {
	d      *Dispatcher
	limit  int
	out    []wire.Entry
	groups map[uint64]*syncGroup
	seq    uint64 // the last timeline seq taken
	full   bool   // the page is full; more remains
}

func (m *merge) room() int { return m.limit - len(m.out) }

// timeline takes timeline entries in order, each group's earlier stream entries
// first.
func (m *merge) timeline(ctx context.Context, es []timeline.Entry) error {
	var want []uint64
	for _, e := range es {
		if hasContent(e.Kind) {
			want = append(want, e.MsgID)
		}
	}
	msgs, err := m.d.streams.LookupMessages(ctx, want)
	if err != nil {
		return err
	}
	for _, e := range es {
		we := entryOf(e)
		if c, ok := msgs[e.MsgID]; ok && hasContent(e.Kind) {
			we = c
			we.Seq = e.Seq
		}
		if g := m.groups[e.ConversationID]; g != nil && e.Kind == timeline.KindMessage && we.GroupSeq > 0 {
			if we.GroupSeq > g.pos+1 {
				if err := m.drain(ctx, g, we.GroupSeq-1, false); err != nil || m.full {
					return err
				}
			}
			g.pos = max(g.pos, we.GroupSeq)
		}
		if m.room() == 0 {
			m.full = true
			return nil
		}
		m.out = append(m.out, we)
		m.seq = e.Seq
	}
	return nil
}

// drain takes g's stream entries after its position, up to upto (0: to the end).
// With holdBack, it stops at an entry whose predecessor the device has not had.
func (m *merge) drain(ctx context.Context, g *syncGroup, upto uint64, holdBack bool) error {
	for {
		if m.room() == 0 {
			m.full = true
			return nil
		}
		page, err := m.d.streams.Stream(ctx, g.id, g.pos, m.room()+1)
		if err != nil {
			return err
		}
		var ids []uint64
		for _, e := range page {
			if e.Kind == wire.KindMessage {
				ids = append(ids, e.MsgID)
			}
		}
		msgs, err := m.d.streams.LookupMessages(ctx, ids)
		if err != nil {
			return err
		}
		for _, e := range page {
			if (upto != 0 && e.Seq > upto) || (g.upto != 0 && e.Seq > g.upto) {
				return nil
			}
			if holdBack && e.Seq > g.pos+1 && time.Since(e.At) < holdBackLimit {
				return nil
			}
			if m.room() == 0 {
				m.full = true
				return nil
			}
			m.out = append(m.out, streamEntry(g.id, e, msgs))
			g.pos = e.Seq
		}
		if len(page) == 0 || (upto != 0 && g.pos >= upto) {
			return nil
		}
	}
}

// streamEntry renders a stream entry for clients.
func streamEntry(conv uint64, e groupstream.StreamEntry, msgs map[uint64]wire.Entry) wire.Entry {
	if c, ok := msgs[e.MsgID]; ok && e.Kind == wire.KindMessage {
		c.GroupSeq = e.Seq
		return c
	}
	return wire.Entry{Kind: e.Kind, ConversationID: wire.ID(conv), MsgID: wire.ID(e.MsgID), From: e.From,
		CreatedAt: e.At, GroupSeq: e.Seq}
}
