package groupstream

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/fanline/fanline/internal/keylock"
	"github.com/fanline/fanline/internal/wire"
)

// convStripes is how many lock stripes serialise, within one process,
// read-modify-writes of one key of a store (a pair's allocation, a group's record,
// membership, stream and read positions, a message's recall).
const convStripes = 64

// convLockKey is the lock key of a conversation's record.
func convLockKey(id uint64) string { return "c" + strconv.FormatUint(id, 10) }

// lockConvs locks conversations ids and returns the unlock.
func lockConvs(l *keylock.Set, ids []uint64) func() {
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = convLockKey(id)
	}
	return l.Lock(keys...)
}

// readIndex is one group's members' read positions, sorted for counting.
type readIndex struct {
	mu     sync.RWMutex      // guards both fields
	byUser map[string]uint64 // members with a read position
	sorted []uint64          // the values of byUser, ascending
}

// set moves user's position up to seq (never back); it reports whether user is new
// to x.
func (x *readIndex) set(user string, seq uint64) (added bool) {
	return x.update(user, seq, false)
}

// put sets user's position to seq, as a write stored it (a sender's position moves
// to their message even from past it); it reports whether user is new to x.
func (x *readIndex) put(user string, seq uint64) (added bool) {
	return x.update(user, seq, true)
}

func (x *readIndex) update(user string, seq uint64, back bool) (added bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	old, ok := x.byUser[user]
	if ok {
		if seq == old || (seq < old && !back) {
			return false
		}
		i := sort.Search(len(x.sorted), func(i int) bool { return x.sorted[i] >= old })
		x.sorted = append(x.sorted[:i], x.sorted[i+1:]...)
	}
	x.byUser[user] = seq
	i := sort.Search(len(x.sorted), func(i int) bool { return x.sorted[i] >= seq })
	x.sorted = append(x.sorted, 0)
	copy(x.sorted[i+1:], x.sorted[i:])
	x.sorted[i] = seq
	return !ok
}

// remove drops user's position; it reports whether x had one.
func (x *readIndex) remove(user string) bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	old, ok := x.byUser[user]
	if !ok {
		return false
	}
	delete(x.byUser, user)
	i := sort.Search(len(x.sorted), func(i int) bool { return x.sorted[i] >= old })
	x.sorted = append(x.sorted[:i], x.sorted[i+1:]...)
	return true
}

// count returns how many members' positions are at seq or past it.
func (x *readIndex) count(seq uint64) int {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return len(x.sorted) - sort.Search(len(x.sorted), func(i int) bool { return x.sorted[i] >= seq })
}

// readers returns up to limit of members (sorted by user id), after the user id
// after, whose position is at seq or past it.
func (x *readIndex) readers(members []Member, seq uint64, after string, limit int) []string {
	x.mu.RLock()
	defer x.mu.RUnlock()
	var out []string
	i := sort.Search(len(members), func(i int) bool { return members[i].User > after })
	for ; i < len(members) && len(out) < limit; i++ {
		if x.byUser[members[i].User] >= seq {
			out = append(out, members[i].User)
		}
	}
	return out
}

// sequence gives m group g's next stream seq and its fanout mode, switching the
// group's mode at this seq when its size calls for it. For a read-fanout message it
// returns the stream entry to store with the group's rank after it.
func (c Config) sequence(g *Conversation, m *Message) (e StreamEntry, rank uint64, read bool) {
	g.Head++
	m.Seq, m.GroupVersion = g.Head, g.Version
	if mode := c.mode(g.Fanout, g.MemberCount); mode != g.FanoutMode() {
		g.Fanout, g.FanoutSince = mode, m.Seq
	}
	m.Fanout = g.FanoutMode()
	if m.ID > g.LastMsgID {
		g.LastMsgID = m.ID
	}
	if m.Fanout != FanoutRead {
		return StreamEntry{}, 0, false
	}
	g.Rank++
	g.ReadHead = m.Seq
	return StreamEntry{Seq: m.Seq, Kind: wire.KindMessage, MsgID: m.ID, From: m.From, At: m.CreatedAt}, g.Rank, true
}

// recallEntry appends the recall of m by by to read-fanout group g's stream and
// returns the entry to store (with the group's unchanged rank).
func recallEntry(g *Conversation, m *Message, by string) StreamEntry {
	g.Head++
	g.ReadHead = g.Head
	m.RecallSeq = g.Head
	return StreamEntry{Seq: g.Head, Kind: wire.KindRecall, MsgID: m.ID, From: by, At: m.RecalledAt}
}

// memberPlan is what a membership change writes.
type memberPlan struct {
	put               []Member // added members and changed roles
	added             []string // users of put who were not members
	promoted, demoted []string
	removed           []string
	left              []Left // past memberships of removed members, by removed[i]'s user
	members           []Member
}

// planChange applies ch to group c with members list: it updates c (count, version,
// fanout mode) and returns what to write, or changed false when nothing changes.
func (cfg Config) planChange(c *Conversation, list []Member, ch MemberChange, at time.Time) (p memberPlan, changed bool, err error) {
	byUser := make(map[string]Member, len(list))
	for _, m := range list {
		byUser[m.User] = m
	}
	for _, u := range ch.Remove {
		m, ok := byUser[u]
		if !ok {
			continue
		}
		if u == c.Owner {
			return p, false, ErrOwner
		}
		delete(byUser, u)
		p.removed = append(p.removed, u)
		if c.ReadHead > 0 || c.FanoutMode() == FanoutRead {
			// Stream entries up to here were the member's: their devices may still
			// need to sync them.
			p.left = append(p.left, Left{Conv: c.ID, JoinSeq: max(m.JoinSeq, 1), LeftSeq: c.Head, At: at.UTC()})
		} else {
			p.left = append(p.left, Left{})
		}
	}
	for _, u := range ch.Add {
		if _, ok := byUser[u]; ok {
			continue
		}
		// A member receives the messages stored after they join (an earlier
		// membership's unsynced stream entries are given up).
		m := Member{User: u, Role: RoleMember, JoinedAt: at.UTC(), JoinSeq: c.Head + 1}
		byUser[u] = m
		p.put = append(p.put, m)
		p.added = append(p.added, u)
	}
	for _, step := range []struct {
		users []string
		role  string
	}{{ch.Promote, RoleAdmin}, {ch.Demote, RoleMember}} {
		for _, u := range step.users {
			m, ok := byUser[u]
			if !ok {
				return p, false, fmt.Errorf("%w: %s is not a member", ErrNotFound, u)
			}
			if u == c.Owner {
				return p, false, ErrOwner
			}
			if m.Role != step.role {
				m.Role = step.role
				byUser[u] = m
				p.put = append(p.put, m)
				if step.role == RoleAdmin {
					p.promoted = append(p.promoted, u)
				} else {
					p.demoted = append(p.demoted, u)
				}
			}
		}
	}
	if len(p.put) == 0 && len(p.removed) == 0 {
		return p, false, nil
	}
	if ch.Max > 0 && len(byUser) > ch.Max {
		return p, false, ErrTooManyMembers
	}
	c.MemberCount = len(byUser)
	c.Version++
	if mode := cfg.mode(c.Fanout, c.MemberCount); mode != c.FanoutMode() {
		c.Fanout, c.FanoutSince = mode, c.Head+1
	}
	// A new slice: the old one may be held by callers of Members.
	p.members = make([]Member, 0, len(byUser))
	for _, m := range byUser {
		p.members = append(p.members, m)
	}
	sortMembers(p.members)
	return p, true, nil
}

// groupChange checks that c is a group and plans ch against its members, read with
// members: next is c after the change.
func (cfg Config) groupChange(ctx context.Context, members func(context.Context, uint64) ([]Member, error), c Conversation,
	ch MemberChange, at time.Time) (next Conversation, p memberPlan, changed bool, err error) {
	if c.Kind != KindGroup {
		return c, p, false, ErrNotFound
	}
	list, err := members(ctx, c.ID)
	if err != nil {
		return c, p, false, err
	}
	next = c
	p, changed, err = cfg.planChange(&next, list, ch, at)
	return next, p, changed, err
}

// announcement is the pending announcement of a change planned by planChange, taking
// c to next (nil when ch has no Event: the caller announces nothing).
func (p memberPlan) announcement(next Conversation, ch MemberChange, at time.Time) *Announcement {
	if ch.Event == 0 {
		return nil
	}
	removed := append([]string(nil), p.removed...)
	sort.Strings(removed)
	return &Announcement{Group: next.ID, Version: next.Version, Event: ch.Event, Type: "members_changed", Actor: ch.Actor,
		At: at.UTC(), Added: p.added, Removed: removed, Promoted: p.promoted, Demoted: p.demoted}
}

// creation is the announcement of group c's creation with members list.
func creation(c Conversation, list []Member) Announcement {
	a := Announcement{Group: c.ID, Version: c.Version, Event: c.ID, Type: "created", Actor: c.Owner, At: c.CreatedAt}
	for _, m := range list {
		a.Added = append(a.Added, m.User)
	}
	return a
}

// newGroup builds group id's record and member list.
func (cfg Config) newGroup(id uint64, name, owner string, members []string, at time.Time) (Conversation, []Member) {
	at = at.UTC()
	c := Conversation{ID: id, Kind: KindGroup, CreatedAt: at, Name: name, Owner: owner, Version: 1}
	seen := map[string]bool{}
	var list []Member
	for _, u := range append([]string{owner}, members...) {
		if seen[u] {
			continue
		}
		seen[u] = true
		m := Member{User: u, Role: RoleMember, JoinedAt: at, JoinSeq: 1}
		if u == owner {
			m.Role = RoleOwner
		}
		list = append(list, m)
	}
	c.MemberCount = len(list)
	c.Fanout = cfg.mode("", c.MemberCount)
	c.FanoutSince = 1
	sortMembers(list)
	return c, list
}

func sortMembers(list []Member) {
	sort.Slice(list, func(i, j int) bool { return list[i].User < list[j].User })
}

// unreadFrom is the stream seq after which a member's read-fanout messages are
// unread: their read position, or the seq before they joined.
func unreadFrom(m Member, read uint64) uint64 { return max(read, m.JoinSeq-min(m.JoinSeq, 1)) }

// decodeMember decodes user's stored membership of conv.
func decodeMember(conv uint64, user string, v []byte) (Member, error) {
	m := Member{User: user}
	if err := json.Unmarshal(v, &m); err != nil {
		return Member{}, fmt.Errorf("groupstream: member %s of %d: %w", user, conv, err)
	}
	return m, nil
}

// pairMembers is the membership of a direct or shop conversation, which has no
// member rows.
func pairMembers(c Conversation) []Member {
	out := make([]Member, len(c.Members))
	for i, u := range c.Members {
		out[i] = Member{User: u, Role: RoleMember, JoinedAt: c.CreatedAt}
	}
	return out
}

// pairMember is user's membership of a direct or shop conversation.
func pairMember(c Conversation, user string) (Member, error) {
	if !c.HasMember(user) {
		return Member{}, ErrNotFound
	}
	return Member{User: user, Role: RoleMember, JoinedAt: c.CreatedAt}, nil
}

// ranked is what unread needs from a backend.
type ranked interface {
	Conversation(ctx context.Context, id uint64) (Conversation, error)
	Member(ctx context.Context, conv uint64, user string) (Member, error)
	ReadSeq(ctx context.Context, conv uint64, user string) (uint64, error)
	// rankAt returns the group's rank after its last stream entry at or before seq.
	rankAt(ctx context.Context, conv, seq uint64) (uint64, error)
}

// unread is Store.Unread on any backend: the group's rank now minus its rank at the
// member's read position (or join point).
func unread(ctx context.Context, s ranked, conv uint64, user string) (int64, error) {
	c, err := s.Conversation(ctx, conv)
	if err != nil || c.ReadHead == 0 {
		return 0, err
	}
	m, err := s.Member(ctx, conv, user)
	if err != nil {
		return 0, err
	}
	read, err := s.ReadSeq(ctx, conv, user)
	if err != nil {
		return 0, err
	}
	from := unreadFrom(m, read)
	if from >= c.ReadHead {
		return 0, nil
	}
	rank, err := s.rankAt(ctx, conv, from)
	return int64(c.Rank - rank), err
}

// putOnce stores a batch in which one message may come more than once (a send retried
// before its first copy was stored can land in the same batch): put sees each
// message once, its first copy, so it gets one seq, and every copy answers with the
// message as stored. Two different messages under one id fail the whole batch
// (sameSend).
func putOnce(msgs []Message, put func([]Message) ([]Message, error)) ([]Message, error) {
	first := make(map[uint64]int, len(msgs))
	at := make([]int, len(msgs))
	uniq := msgs[:0:0]
	for i, m := range msgs {
		j, ok := first[m.ID]
		if !ok {
			j = len(uniq)
			first[m.ID] = j
			uniq = append(uniq, m)
		} else if err := sameSend(uniq[j], m); err != nil {
			return nil, err
		}
		at[i] = j
	}
	if len(uniq) == len(msgs) {
		return put(msgs)
	}
	stored, err := put(uniq)
	if err != nil {
		return nil, err
	}
	out := make([]Message, len(msgs))
	for i, j := range at {
		out[i] = stored[j]
	}
	return out, nil
}

// sameSend returns nil if m, found under the id of stored (in the store, or earlier in
// a batch), is the same send: a redelivery, or a retry of the same client_msg_id,
// whose body may even differ (the first one stored wins). Anything else is two
// messages that were given one id, which a healthy node never does (ids.Generator
// persists its high-water mark, node ids differ): storing neither silently is the
// point, as answering the stored one would acknowledge the other and lose it. The
// error (ErrIDReused) fails the batch, so the send stage retries it and logs each
// try: nothing is dropped, and the partition waits until an operator deals with it.
func sameSend(stored, m Message) error {
	if stored.Kind == m.Kind && stored.ConversationID == m.ConversationID && stored.From == m.From &&
		stored.ClientMsgID == m.ClientMsgID {
		return nil
	}
	return fmt.Errorf("%w: id %d is conversation %d, from %q, client_msg_id %q; refused: conversation %d, from %q, client_msg_id %q",
		ErrIDReused, m.ID, stored.ConversationID, stored.From, stored.ClientMsgID, m.ConversationID, m.From, m.ClientMsgID)
}
