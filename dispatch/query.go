package dispatch

import (
	"context"
	"errors"
	"sort"
	"time"

	"github.com/fanline/fanline/groupstream"
	"github.com/fanline/fanline/internal/queue"
	"github.com/fanline/fanline/internal/wire"
	"github.com/fanline/fanline/timeline"
)

// Sync returns the user's timeline entries after cursor, message content filled in.
func (d *Dispatcher) Sync(ctx context.Context, user, cursor string, limit int) (wire.SyncResult, error) {
	start := time.Now()
	defer func() { d.m.SyncLatency.Observe(time.Since(start).Seconds()) }()
	c, err := timeline.ParseCursor(cursor)
	if err != nil {
		return wire.SyncResult{}, wire.Errorf(wire.CodeInvalidCursor, "cursor was not made by this server")
	}
	if limit <= 0 || limit > d.cfg.SyncMaxLimit {
		limit = d.cfg.SyncMaxLimit
	}
	es, err := d.timelines.Read(ctx, user, c.Seq, limit+1)
	if err != nil {
		return wire.SyncResult{}, err
	}
	res := wire.SyncResult{Entries: []wire.Entry{}, Cursor: c.String()}
	if len(es) > limit {
		es, res.HasMore = es[:limit], true
	}
	var want []uint64
	for _, e := range es {
		if hasContent(e.Kind) {
			want = append(want, e.MsgID)
		}
	}
	msgs, err := d.streams.LookupMessages(ctx, want)
	if err != nil {
		return wire.SyncResult{}, err
	}
	for _, e := range es {
		we := entryOf(e)
		if m, ok := msgs[e.MsgID]; ok && hasContent(e.Kind) {
			we = m
			we.Seq = e.Seq
		}
		res.Entries = append(res.Entries, we)
	}
	if len(es) > 0 {
		res.Cursor = timeline.Cursor{Seq: es[len(es)-1].Seq}.String()
	}
	return res, nil
}

// hasContent reports whether entries of a kind are rendered from the message log.
func hasContent(kind string) bool {
	return kind == timeline.KindMessage || kind == timeline.KindGroupEvent
}

// Conversations lists the user's conversations, most recently active first.
func (d *Dispatcher) Conversations(ctx context.Context, user string) (wire.ConversationList, error) {
	states, total, err := d.timelines.Conversations(ctx, user)
	if err != nil {
		return wire.ConversationList{}, err
	}
	sort.Slice(states, func(i, j int) bool { return states[i].LastMsgID > states[j].LastMsgID })
	last := make([]uint64, len(states))
	for i, st := range states {
		last[i] = st.LastMsgID
	}
	msgs, err := d.streams.LookupMessages(ctx, last)
	if err != nil {
		return wire.ConversationList{}, err
	}
	out := wire.ConversationList{Conversations: make([]wire.Conversation, 0, len(states)), TotalUnread: total}
	for _, st := range states {
		c := wire.Conversation{ConversationID: wire.ID(st.ConversationID), Kind: st.Kind, Peer: st.Peer,
			Unread: st.Unread, ReadMsgID: wire.ID(st.ReadMsgID)}
		if st.Kind == groupstream.KindGroup {
			c.GroupID = c.ConversationID
		}
		if m, ok := msgs[st.LastMsgID]; ok {
			c.LastMessage = &m
		}
		out.Conversations = append(out.Conversations, c)
	}
	return out, nil
}

// History returns messages of a conversation older than before, newest first.
func (d *Dispatcher) History(ctx context.Context, user string, conv, before uint64, limit int) (wire.HistoryResult, error) {
	if _, err := d.member(ctx, user, conv); err != nil {
		return wire.HistoryResult{}, err
	}
	if limit <= 0 || limit > d.cfg.SyncMaxLimit {
		limit = 50
	}
	msgs, more, err := d.streams.History(ctx, conv, before, limit)
	if err != nil {
		return wire.HistoryResult{}, err
	}
	out := wire.HistoryResult{Messages: make([]wire.Entry, len(msgs)), HasMore: more}
	for i, m := range msgs {
		out.Messages[i] = m.Entry()
	}
	return out, nil
}

// message returns a message the user may see.
func (d *Dispatcher) message(ctx context.Context, user string, msgID uint64) (groupstream.Message, groupstream.Conversation, error) {
	m, err := d.streams.Message(ctx, msgID)
	if errors.Is(err, groupstream.ErrNotFound) {
		return m, groupstream.Conversation{}, wire.Errorf(wire.CodeMessageMissing, "message %d does not exist", msgID)
	}
	if err != nil {
		return m, groupstream.Conversation{}, err
	}
	c, err := d.streams.Conversation(ctx, m.ConversationID)
	if err != nil {
		return m, c, err
	}
	if _, err := d.streams.Member(ctx, c.ID, user); errors.Is(err, groupstream.ErrNotFound) {
		// Do not reveal that the message exists.
		return m, c, wire.Errorf(wire.CodeMessageMissing, "message %d does not exist", msgID)
	} else if err != nil {
		return m, c, err
	}
	return m, c, nil
}

// MarkRead moves the user's read position in conv up to msgID. The user's other
// devices get a read entry; the other members get a receipt entry.
func (d *Dispatcher) MarkRead(ctx context.Context, user string, conv, msgID uint64) error {
	c, err := d.member(ctx, user, conv)
	if err != nil {
		return err
	}
	m, _, err := d.message(ctx, user, msgID)
	if err != nil {
		return err
	}
	if m.ConversationID != conv {
		return wire.Errorf(wire.CodeMessageMissing, "message %d is not in conversation %d", msgID, conv)
	}
	now := time.Now().UTC()
	e, _, err := d.timelines.MarkRead(ctx, user, conv, msgID, now)
	if errors.Is(err, timeline.ErrNotFound) {
		return wire.Errorf(wire.CodeMessageMissing, "message %d has not reached your timeline yet", msgID)
	}
	if err != nil || e == nil {
		return err
	}
	d.push.Push(user, entryOf(*e), timeline.Cursor{Seq: e.Seq}.String())
	return d.fanout(ctx, c, user, timeline.KindRead, msgID, now, false)
}

// fanout queues one entry of kind about msgID for the members of c (without the actor
// when self is false).
func (d *Dispatcher) fanout(ctx context.Context, c groupstream.Conversation, actor, kind string, msgID uint64, at time.Time, self bool) error {
	members, err := d.streams.Members(ctx, c.ID)
	if err != nil {
		return err
	}
	var recs []queue.Record
	for _, m := range members {
		if m.User == actor && !self {
			continue
		}
		j := fanoutJob{User: m.User, Kind: kind, Conv: c.ID, MsgID: msgID, From: actor, At: at}
		recs = append(recs, queue.Record{Key: []byte(m.User), Value: j.marshal()})
	}
	return d.q.Produce(ctx, TopicFanout, recs...)
}

// Recall marks the user's own message recalled, within the recall window, and tells
// every member. Recalling again is harmless.
func (d *Dispatcher) Recall(ctx context.Context, user string, msgID uint64) error {
	m, c, err := d.message(ctx, user, msgID)
	if err != nil {
		return err
	}
	// The sender may recall within the window; a group's owner and admins at any time.
	moderator := false
	if c.Kind == groupstream.KindGroup {
		mem, err := d.streams.Member(ctx, c.ID, user)
		if err != nil {
			return err
		}
		moderator = mem.Role == groupstream.RoleOwner || mem.Role == groupstream.RoleAdmin
	}
	if !m.IsMessage() {
		return wire.Errorf(wire.CodeMessageMissing, "%d is a group event, not a message", msgID)
	}
	if m.From != user && !moderator {
		return wire.Errorf(wire.CodeNotSender, "only the sender (or a group's owner and admins) can recall a message")
	}
	now := time.Now().UTC()
	if !m.Recalled() && !moderator && now.Sub(m.CreatedAt) > d.cfg.RecallWindow {
		return wire.Errorf(wire.CodeRecallWindowPassed, "messages can be recalled for %s after sending", d.cfg.RecallWindow)
	}
	if m, err = d.streams.Recall(ctx, msgID, now); err != nil {
		return err
	}
	return d.fanout(ctx, c, user, timeline.KindRecall, msgID, m.RecalledAt, true)
}

// Receipts tells who of a message's recipients has read it.
func (d *Dispatcher) Receipts(ctx context.Context, user string, msgID uint64) (wire.Receipts, error) {
	m, c, err := d.message(ctx, user, msgID)
	if err != nil {
		return wire.Receipts{}, err
	}
	if !m.IsMessage() {
		return wire.Receipts{}, wire.Errorf(wire.CodeMessageMissing, "%d is a group event, not a message", msgID)
	}
	members, err := d.streams.Members(ctx, c.ID)
	if err != nil {
		return wire.Receipts{}, err
	}
	out := wire.Receipts{Readers: []string{}}
	for _, mem := range members {
		member := mem.User
		if member == m.From {
			continue
		}
		out.MemberCount++
		st, err := d.timelines.ConvState(ctx, member, c.ID)
		if errors.Is(err, timeline.ErrNotFound) {
			continue
		}
		if err != nil {
			return wire.Receipts{}, err
		}
		if st.ReadMsgID >= msgID {
			out.ReadCount++
			out.Readers = append(out.Readers, member)
		}
	}
	return out, nil
}
