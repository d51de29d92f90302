package dispatch

import (
	"context"
	"errors"
	"sort"
	"strconv"
	"time"

	"github.com/fanline/fanline/groupstream"
	"github.com/fanline/fanline/internal/queue"
	"github.com/fanline/fanline/internal/wire"
	"github.com/fanline/fanline/timeline"
)

// hasContent reports whether entries of a kind are rendered from the message log.
func hasContent(kind string) bool {
	return kind == timeline.KindMessage || kind == timeline.KindGroupEvent
}

// Conversations lists the user's conversations, most recently active first.
func (d *Dispatcher) Conversations(ctx context.Context, who wire.Principal) (wire.ConversationList, error) {
	user := who.Inbox()
	states, total, err := d.timelines.Conversations(ctx, user)
	if err != nil {
		return wire.ConversationList{}, err
	}
	if states, total, err = d.withReadGroups(ctx, user, states, total); err != nil {
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
		switch st.Kind {
		case groupstream.KindGroup:
			c.GroupID = c.ConversationID
		case groupstream.KindShop:
			// The buyer's row names the shop; an agent's names the buyer.
			if conv, err := d.streams.Conversation(ctx, st.ConversationID); err == nil && conv.HasMember(user) {
				c.ShopID, c.Peer = conv.Shop, ""
			}
		}
		if m, ok := msgs[st.LastMsgID]; ok {
			c.LastMessage = &m
		}
		out.Conversations = append(out.Conversations, c)
	}
	return out, nil
}

// withReadGroups adds what the user's read-fanout groups hold beyond the timeline:
// their derived unread (stream head minus the member's read position), their newest
// message, and a row for a group the timeline has no entry of.
func (d *Dispatcher) withReadGroups(ctx context.Context, user string, states []timeline.ConvState, total int64) ([]timeline.ConvState, int64, error) {
	at := make(map[uint64]int, len(states))
	for i, st := range states {
		at[st.ConversationID] = i
	}
	err := d.readGroupsUnread(ctx, user, func(c groupstream.Conversation, unread int64) {
		i, ok := at[c.ID]
		if !ok {
			i = len(states)
			states = append(states, timeline.ConvState{ConversationID: c.ID, Kind: groupstream.KindGroup})
		}
		st := &states[i]
		st.Unread += unread
		total += unread
		st.LastMsgID = max(st.LastMsgID, c.LastMsgID)
	})
	return states, total, err
}

// readGroupsUnread calls f with each of user's read-fanout groups and its derived
// unread count.
func (d *Dispatcher) readGroupsUnread(ctx context.Context, user string, f func(c groupstream.Conversation, unread int64)) error {
	groups, err := d.readFanoutGroups(ctx, user)
	if err != nil {
		return err
	}
	for _, c := range groups {
		unread, err := d.streams.Unread(ctx, c.ID, user)
		if errors.Is(err, groupstream.ErrNotFound) {
			continue // removed meanwhile
		}
		if err != nil {
			return err
		}
		f(c, unread)
	}
	return nil
}

// Unread returns the user's unread counts: the badge, without the conversation list.
func (d *Dispatcher) Unread(ctx context.Context, who wire.Principal) (wire.UnreadCounts, error) {
	user := who.Inbox()
	c, err := d.timelines.Unread(ctx, user)
	if err != nil {
		return wire.UnreadCounts{}, err
	}
	out := wire.UnreadCounts{TotalUnread: c.Total, Conversations: make(map[string]int64, len(c.Convs))}
	for conv, n := range c.Convs {
		out.Conversations[strconv.FormatUint(conv, 10)] = n
	}
	err = d.readGroupsUnread(ctx, user, func(g groupstream.Conversation, unread int64) {
		if unread > 0 {
			out.Conversations[strconv.FormatUint(g.ID, 10)] += unread
			out.TotalUnread += unread
		}
	})
	return out, err
}

// History returns messages of a conversation older than before, newest first. A
// group's history starts where the member joined, as their sync does (group events,
// which have no stream seq, stay: they say who is in the group).
func (d *Dispatcher) History(ctx context.Context, who wire.Principal, conv, before uint64, limit int) (wire.HistoryResult, error) {
	_, mem, err := d.member(ctx, who, conv)
	if err != nil {
		return wire.HistoryResult{}, err
	}
	if limit <= 0 || limit > d.cfg.SyncMaxLimit {
		limit = 50
	}
	msgs, more, err := d.streams.History(ctx, conv, before, limit)
	if err != nil {
		return wire.HistoryResult{}, err
	}
	out := wire.HistoryResult{Messages: make([]wire.Entry, 0, len(msgs)), HasMore: more}
	for _, m := range msgs {
		if !visible(m, mem) {
			out.HasMore = false // newest first: the rest is older still
			break
		}
		out.Messages = append(out.Messages, m.Entry())
	}
	return out, nil
}

// visible reports whether a member of m's conversation sees m: a group's messages
// from the member's join seq on (group events have no seq and are seen by all).
func visible(m groupstream.Message, mem groupstream.Member) bool {
	return m.Seq == 0 || m.Seq >= mem.JoinSeq
}

// message returns a message who may see (in a conversation they may read, and for a
// group not before they joined), its conversation and who's membership of it.
func (d *Dispatcher) message(ctx context.Context, who wire.Principal, msgID uint64) (groupstream.Message, groupstream.Conversation, groupstream.Member, error) {
	m, err := d.streams.Message(ctx, msgID)
	if errors.Is(err, groupstream.ErrNotFound) {
		return m, groupstream.Conversation{}, groupstream.Member{}, wire.Errorf(wire.CodeMessageMissing, "message %d does not exist", msgID)
	}
	if err != nil {
		return m, groupstream.Conversation{}, groupstream.Member{}, err
	}
	c, mem, err := d.member(ctx, who, m.ConversationID)
	if we, ok := err.(*wire.Error); (ok && we.Code == wire.CodeNotParticipant) || (err == nil && !visible(m, mem)) {
		// Do not reveal that the message exists.
		return m, c, mem, wire.Errorf(wire.CodeMessageMissing, "message %d does not exist", msgID)
	}
	return m, c, mem, err
}

// MarkRead moves the user's read position in conv up to msgID. The user's other
// devices get a read entry; the other members get a receipt entry. It returns the
// number of receipts queued (the call's cost grows with it).
func (d *Dispatcher) MarkRead(ctx context.Context, who wire.Principal, conv, msgID uint64) (int, error) {
	if err := d.writable(); err != nil {
		return 0, err
	}
	c, mem, err := d.member(ctx, who, conv)
	if err != nil {
		return 0, err
	}
	user := who.Inbox()
	m, err := d.streams.Message(ctx, msgID)
	if errors.Is(err, groupstream.ErrNotFound) || (err == nil && (m.ConversationID != conv || !visible(m, mem))) {
		return 0, wire.Errorf(wire.CodeMessageMissing, "message %d is not in conversation %d", msgID, conv)
	}
	if err != nil {
		return 0, err
	}
	now := time.Now().UTC()
	// A read-fanout message is in no timeline: the user's state in the group is
	// created if need be, and the group's read position is what counts.
	kind := ""
	if m.Fanout == groupstream.FanoutRead {
		kind = groupstream.KindGroup
	}
	if m.Seq != 0 {
		if err := d.streams.SetReadSeq(ctx, conv, user, m.Seq); err != nil {
			return 0, err
		}
	}
	e, _, err := d.timelines.MarkRead(ctx, user, conv, msgID, kind, now)
	if errors.Is(err, timeline.ErrNotFound) {
		return 0, wire.Errorf(wire.CodeMessageMissing, "message %d has not reached your timeline yet", msgID)
	}
	if err != nil {
		return 0, err
	}
	if e != nil { // the position moved: the user's other devices learn it
		d.push.Push(user, entryOf(*e), timeline.Cursor{Seq: e.Seq}.String())
	}
	if c.FanoutMode() == groupstream.FanoutRead {
		return 0, nil // large groups answer receipts from read positions, on demand
	}
	// The buyer sees the shop read their message, not which of its staff.
	from := user
	if c.Kind == groupstream.KindShop && who.Staff() {
		from = c.Shop
	}
	// The receipts are queued even when the position had moved already: a retry after
	// the queue write failed finds the read committed and must still send them (a
	// timeline skips a receipt it holds, so a repeated one changes nothing).
	return d.fanout(ctx, c, from, user, timeline.KindRead, msgID, now)
}

// fanout queues one entry of kind about msgID, from from, for the members of c
// except skip ("" skips nobody).
func (d *Dispatcher) fanout(ctx context.Context, c groupstream.Conversation, from, skip, kind string, msgID uint64, at time.Time) (int, error) {
	var users []string
	if c.Kind == groupstream.KindShop {
		users = d.shopRecipients(c, groupstream.Message{})
	} else {
		members, err := d.streams.Members(ctx, c.ID)
		if err != nil {
			return 0, err
		}
		for _, m := range members {
			users = append(users, m.User)
		}
	}
	var recs []queue.Record
	for _, u := range users {
		if u == skip {
			continue
		}
		j := fanoutJob{User: u, Kind: kind, Conv: c.ID, MsgID: msgID, From: from, At: at}
		recs = append(recs, queue.Record{Key: []byte(u), Value: j.marshal()})
	}
	return len(recs), d.q.Produce(ctx, TopicControl, recs...)
}

// Recall marks who's own message recalled, within the recall window, and tells every
// member. Recalling again is harmless.
func (d *Dispatcher) Recall(ctx context.Context, who wire.Principal, msgID uint64) error {
	if err := d.writable(); err != nil {
		return err
	}
	m, c, mem, err := d.message(ctx, who, msgID)
	if err != nil {
		return err
	}
	// The sender may recall within the window; a group's owner and admins at any time.
	moderator := c.Kind == groupstream.KindGroup && (mem.Role == groupstream.RoleOwner || mem.Role == groupstream.RoleAdmin)
	if !m.IsMessage() {
		return wire.Errorf(wire.CodeMessageMissing, "%d is a group event, not a message", msgID)
	}
	// In a shop conversation the buyer's token recalls the buyer's messages, the
	// writing agent's token (of that shop) the agent's.
	sender := m.From == who.ID && m.AgentID == "" && !who.Staff()
	if m.AgentID != "" {
		sender = m.AgentID == who.ID && who.Staff() && who.Shop == c.Shop
	}
	if !sender && !moderator {
		return wire.Errorf(wire.CodeNotSender, "only the sender (or a group's owner and admins) can recall a message")
	}
	now := time.Now().UTC()
	if !m.Recalled() && !moderator && now.Sub(m.CreatedAt) > d.cfg.RecallWindow {
		return wire.Errorf(wire.CodeRecallWindowPassed, "messages can be recalled for %s after sending", d.cfg.RecallWindow)
	}
	if m, err = d.streams.Recall(ctx, msgID, who.ID, now); err != nil {
		return err
	}
	if m.RecallSeq != 0 { // recalled in read-fanout: the group's stream has it
		d.push.PushGroup(c.ID, c.Version, wire.Entry{Kind: wire.KindRecall, ConversationID: wire.ID(c.ID), MsgID: wire.ID(msgID),
			From: m.RecalledBy, CreatedAt: m.RecalledAt, GroupSeq: m.RecallSeq}, nil)
		return nil
	}
	_, err = d.fanout(ctx, c, m.RecalledBy, "", timeline.KindRecall, msgID, m.RecalledAt)
	return err
}

// Receipts tells who of a message's recipients has read it.
func (d *Dispatcher) Receipts(ctx context.Context, who wire.Principal, msgID uint64, q wire.ReceiptsQuery) (wire.Receipts, error) {
	m, c, _, err := d.message(ctx, who, msgID)
	if err != nil {
		return wire.Receipts{}, err
	}
	if !m.IsMessage() {
		return wire.Receipts{}, wire.Errorf(wire.CodeMessageMissing, "%d is a group event, not a message", msgID)
	}
	if m.Fanout == groupstream.FanoutRead {
		return d.streamReceipts(ctx, m, c, q)
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

// maxReadersPage bounds one page of a read-fanout message's readers.
const maxReadersPage = 1000

// streamReceipts answers "read by N of M" for a read-fanout message from the members'
// read positions, and a page of readers when asked.
func (d *Dispatcher) streamReceipts(ctx context.Context, m groupstream.Message, c groupstream.Conversation, q wire.ReceiptsQuery) (wire.Receipts, error) {
	n, err := d.streams.ReadCount(ctx, c.ID, m.Seq)
	if err != nil {
		return wire.Receipts{}, err
	}
	out := wire.Receipts{ReadCount: n, MemberCount: c.MemberCount}
	// The sender read their own message when sending it.
	if _, err := d.streams.Member(ctx, c.ID, m.From); err == nil {
		out.ReadCount, out.MemberCount = max(0, n-1), c.MemberCount-1
	}
	if !q.Readers {
		return out, nil
	}
	limit := q.Limit
	if limit <= 0 || limit > maxReadersPage {
		limit = 100
	}
	// One extra for the sender, who is skipped, and one to tell whether more remain.
	page, err := d.streams.Readers(ctx, c.ID, m.Seq, q.After, limit+2)
	if err != nil {
		return wire.Receipts{}, err
	}
	out.Readers = []string{}
	for _, u := range page {
		if u != m.From {
			out.Readers = append(out.Readers, u)
		}
	}
	if len(out.Readers) > limit {
		out.Readers = out.Readers[:limit]
		out.NextAfter = out.Readers[limit-1]
	}
	return out, nil
}

// UserGroups lists the groups user belongs to, each with its membership version
// read after the list: the version that added user or a newer one. A group user
// left meanwhile keeps the version it is at; the gateway's membership check drops it.
func (d *Dispatcher) UserGroups(ctx context.Context, user string) ([]wire.GroupVersion, error) {
	ids, err := d.streams.UserGroups(ctx, user)
	if err != nil {
		return nil, err
	}
	out := make([]wire.GroupVersion, 0, len(ids))
	for _, id := range ids {
		c, err := d.streams.Conversation(ctx, id)
		if errors.Is(err, groupstream.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, wire.GroupVersion{Group: id, Version: c.Version})
	}
	return out, nil
}
