package dispatch

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/fanline/fanline/groupstream"
	"github.com/fanline/fanline/internal/ids"
	"github.com/fanline/fanline/internal/queue"
	"github.com/fanline/fanline/internal/wire"
	"github.com/fanline/fanline/timeline"
)

// maxGroupName bounds a group's name, in characters.
const maxGroupName = 100

// groupMember returns group id and the user's membership of it.
func (d *Dispatcher) groupMember(ctx context.Context, user string, id uint64) (groupstream.Conversation, groupstream.Member, error) {
	c, err := d.streams.Conversation(ctx, id)
	if errors.Is(err, groupstream.ErrNotFound) || (err == nil && c.Kind != groupstream.KindGroup) {
		return c, groupstream.Member{}, wire.Errorf(wire.CodeGroupMissing, "group %d does not exist", id)
	}
	if err != nil {
		return c, groupstream.Member{}, err
	}
	m, err := d.streams.Member(ctx, id, user)
	if errors.Is(err, groupstream.ErrNotFound) {
		return c, m, wire.Errorf(wire.CodeNotParticipant, "you are not a member of group %d", id)
	}
	return c, m, err
}

func groupInfo(c groupstream.Conversation, role string) wire.Group {
	return wire.Group{GroupID: wire.ID(c.ID), Name: c.Name, Owner: c.Owner, MemberCount: c.MemberCount,
		Fanout: c.FanoutMode(), Version: c.Version, Role: role}
}

func checkUsers(field string, users []string) *wire.Error {
	for _, u := range users {
		if !wire.ValidUserID(u) {
			return wire.Errorf(wire.CodeInvalidUserID, "%s: %q is not a valid user id", field, u)
		}
	}
	return nil
}

// CreateGroup creates a group owned by who (a buyer: staff tokens act for their shop)
// with the given members.
func (d *Dispatcher) CreateGroup(ctx context.Context, who wire.Principal, req wire.CreateGroupRequest) (wire.Group, error) {
	if who.Role != wire.RoleBuyer {
		return wire.Group{}, wire.Errorf(wire.CodeForbidden, "groups are for users' own chats; a %s token acts for its shop", who.Role)
	}
	user := who.ID
	name := strings.TrimSpace(req.Name)
	if name == "" || utf8.RuneCountInString(name) > maxGroupName {
		return wire.Group{}, wire.Errorf(wire.CodeInvalidField, "name must be 1-%d characters", maxGroupName)
	}
	if e := checkUsers("members", req.Members); e != nil {
		return wire.Group{}, e
	}
	distinct := map[string]bool{user: true}
	for _, u := range req.Members {
		distinct[u] = true
	}
	if len(distinct) > d.cfg.MaxGroupMembers {
		return wire.Group{}, wire.Errorf(wire.CodeTooManyMembers, "a group has at most %d members", d.cfg.MaxGroupMembers)
	}
	if req.ClientGroupID != "" && !wire.ValidClientMsgID(req.ClientGroupID) {
		return wire.Group{}, wire.Errorf(wire.CodeInvalidField, "client_group_id must be 1-64 characters of [A-Za-z0-9_.:@-]")
	}
	if err := d.writable(); err != nil {
		return wire.Group{}, err
	}
	gid, err := d.newID()
	if err != nil {
		return wire.Group{}, err
	}
	if req.ClientGroupID != "" {
		// One creation per (user, key) at a time: a retry waits for the first, then
		// finds its group. The key's namespace has a '/', which no client_msg_id
		// holds, so it never meets a message's.
		key := "group/" + req.ClientGroupID
		unlock := d.groupKeys.Lock(user + "\x00" + key)
		defer unlock()
		held, existed, err := d.dedup.Reserve(ctx, user, key, gid, d.cfg.DedupTTL)
		if err != nil {
			return wire.Group{}, err
		}
		gid = held
		if existed {
			c, mem, err := d.groupMember(ctx, user, gid)
			if err == nil {
				return groupInfo(c, mem.Role), nil
			}
			if we := wire.AsError(err); we.Code != wire.CodeGroupMissing {
				return wire.Group{}, err
			}
			// Reserved by a call that failed before the group was made: make it now.
		}
	}
	c, err := d.streams.CreateGroup(ctx, gid, name, user, req.Members, time.Now())
	if err != nil {
		return wire.Group{}, err
	}
	if err := d.announcePending(ctx, c.ID); err != nil {
		return wire.Group{}, err
	}
	return groupInfo(c, groupstream.RoleOwner), nil
}

// announcePending makes the effects of group's pending membership announcements
// (the store keeps one with each change), in version order, and deletes each once
// they are queued.
func (d *Dispatcher) announcePending(ctx context.Context, group uint64) error {
	pending, err := d.streams.Announcements(ctx, group, 0)
	if err != nil {
		return err
	}
	return d.announceAll(ctx, pending, time.Time{})
}

// announceAll announces each of pending made before cutoff (zero: all) and deletes it.
func (d *Dispatcher) announceAll(ctx context.Context, pending []groupstream.Announcement, cutoff time.Time) error {
	for _, a := range pending {
		if !cutoff.IsZero() && a.At.After(cutoff) {
			continue
		}
		if err := d.announce(ctx, a); err != nil {
			return err
		}
		if err := d.streams.Announced(ctx, a.Group, a.Version); err != nil {
			return err
		}
	}
	return nil
}

// Announcements left pending by a failure or a crash between a membership change and
// its effects are drained every announceEvery, once older than Dispatcher.announceGrace
// (defaultAnnounceGrace: a younger one is likely being announced by its own call;
// announcing twice is harmless, only wasted).
const (
	announceEvery        = 5 * time.Second
	defaultAnnounceGrace = 5 * time.Second
)

// drainAnnouncements announces what membership changes left pending, at start and
// every announceEvery, until ctx is done.
func (d *Dispatcher) drainAnnouncements(ctx context.Context) error {
	t := time.NewTicker(announceEvery)
	defer t.Stop()
	for {
		pending, err := d.streams.Announcements(ctx, 0, 1000)
		if err == nil {
			err = d.announceAll(ctx, pending, time.Now().Add(-d.announceGrace))
		}
		if err != nil && ctx.Err() == nil {
			d.log.Warn("dispatch: announcing pending membership changes failed; retrying", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// announce makes the effects of one membership change: its group event, the
// members' entries and the gateways' index. Each is idempotent (the event's id is
// fixed by the announcement), so announcing again changes nothing.
func (d *Dispatcher) announce(ctx context.Context, a groupstream.Announcement) error {
	c, err := d.streams.Conversation(ctx, a.Group)
	if err != nil {
		return err
	}
	ev := wire.GroupEvent{By: a.Actor, Version: a.Version, Added: a.Added, Removed: a.Removed, Promoted: a.Promoted, Demoted: a.Demoted}
	var changed []string
	if a.Type == "created" {
		ev.Name = c.Name
	} else {
		changed = append(append(changed, a.Added...), a.Removed...)
	}
	return d.groupEvent(ctx, c, a.Event, a.Actor, a.Type, ev, changed)
}

// groupEvent stores a membership change once in the group's log, as message id, and
// tells the gateways. A write-fanout group puts a group_event entry in the timelines
// of its members and of the removed. A read-fanout group is not fanned out: the entry
// goes to the timelines of the actor and of changed (the users added or removed), and
// the other members get it as a push only (a hint to refresh the group by its
// version).
func (d *Dispatcher) groupEvent(ctx context.Context, c groupstream.Conversation, id uint64, actor, typ string, ev wire.GroupEvent, changed []string) error {
	// Every recipient's job carries the body: keep it small however many changed.
	body, err := json.Marshal(ev.Summary())
	if err != nil {
		return err
	}
	at := ids.Time(id)
	msg := groupstream.Message{ID: id, Kind: wire.KindGroupEvent, ConversationID: c.ID, From: actor, Type: typ,
		Body: body, CreatedAt: at}
	if _, err := d.streams.PutMessages(ctx, []groupstream.Message{msg}); err != nil {
		return err
	}
	d.push.GroupMembers(c.ID, ev.Version, ev.Added, ev.Removed)
	users := append([]string{actor}, changed...)
	if c.FanoutMode() == groupstream.FanoutRead {
		// A hint to the other members; the users above get the timeline entry.
		skip := make(map[string]bool, len(users))
		for _, u := range users {
			skip[u] = true
		}
		d.push.PushGroup(c.ID, ev.Version, msg.Entry(), skip)
	} else {
		members, err := d.streams.Members(ctx, c.ID)
		if err != nil {
			return err
		}
		users = append([]string(nil), ev.Removed...)
		for _, m := range members {
			users = append(users, m.User)
		}
	}
	recs := make([]queue.Record, len(users))
	for i, u := range users {
		j := fanoutJob{User: u, Kind: timeline.KindGroupEvent, Conv: c.ID, ConvKind: groupstream.KindGroup,
			MsgID: id, From: actor, At: at, Type: typ, Body: body}
		recs[i] = queue.Record{Key: []byte(u), Value: j.marshal()}
	}
	return d.q.Produce(ctx, TopicControl, recs...)
}

// Group describes a group to one of its members.
func (d *Dispatcher) Group(ctx context.Context, who wire.Principal, id uint64) (wire.Group, error) {
	c, m, err := d.groupMember(ctx, who.Inbox(), id)
	if err != nil {
		return wire.Group{}, err
	}
	return groupInfo(c, m.Role), nil
}

// ChangeMembers adds and removes members (owner and admins) and promotes or demotes
// admins (owner only).
func (d *Dispatcher) ChangeMembers(ctx context.Context, who wire.Principal, id uint64, req wire.MembersRequest) (wire.Group, error) {
	if err := d.writable(); err != nil {
		return wire.Group{}, err
	}
	user := who.Inbox()
	_, me, err := d.groupMember(ctx, user, id)
	if err != nil {
		return wire.Group{}, err
	}
	for field, list := range map[string][]string{"add": req.Add, "remove": req.Remove, "promote": req.Promote, "demote": req.Demote} {
		if e := checkUsers(field, list); e != nil {
			return wire.Group{}, e
		}
	}
	if me.Role != groupstream.RoleOwner && me.Role != groupstream.RoleAdmin {
		return wire.Group{}, wire.Errorf(wire.CodeNotGroupAdmin, "only the group's owner and admins can change its members")
	}
	if me.Role != groupstream.RoleOwner && (len(req.Promote) > 0 || len(req.Demote) > 0) {
		return wire.Group{}, wire.Errorf(wire.CodeNotGroupAdmin, "only the group's owner can promote or demote admins")
	}
	if me.Role == groupstream.RoleAdmin {
		// Admins manage members, not other admins.
		for _, u := range req.Remove {
			if m, err := d.streams.Member(ctx, id, u); err == nil && m.Role != groupstream.RoleMember {
				return wire.Group{}, wire.Errorf(wire.CodeNotGroupAdmin, "only the group's owner can remove %s", u)
			}
		}
	}
	event, err := d.newID()
	if err != nil {
		return wire.Group{}, err
	}
	// The store records what changed, as the announcement, with the change itself.
	c, err := d.streams.ChangeMembers(ctx, id, groupstream.MemberChange{
		Add: req.Add, Remove: req.Remove, Promote: req.Promote, Demote: req.Demote, Max: d.cfg.MaxGroupMembers,
		Event: event, Actor: user,
	}, time.Now())
	switch {
	case errors.Is(err, groupstream.ErrTooManyMembers):
		return wire.Group{}, wire.Errorf(wire.CodeTooManyMembers, "a group has at most %d members", d.cfg.MaxGroupMembers)
	case errors.Is(err, groupstream.ErrOwner):
		return wire.Group{}, wire.Errorf(wire.CodeOwnerImmutable, "the owner cannot be removed or demoted")
	case errors.Is(err, groupstream.ErrNotFound):
		return wire.Group{}, wire.Errorf(wire.CodeInvalidField, "promote and demote name members only: %v", err)
	case err != nil:
		return wire.Group{}, err
	}
	// Pending announcements are made even when this call changed nothing: a retry
	// after a failure between the change and its effects finds the change done and
	// its announcement still pending.
	if err := d.announcePending(ctx, id); err != nil {
		return wire.Group{}, err
	}
	return groupInfo(c, me.Role), nil
}
