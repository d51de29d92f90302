package dispatch

import (
	"context"
	"errors"
	"sort"

	"github.com/fanline/fanline/groupstream"
	"github.com/fanline/fanline/internal/wire"
)

// CheckMembers reports which of users are members of group, and the membership
// version the answer holds at: a gateway checks its group index with it before it
// delivers an entry stored at a newer version than the index knows. It is a node's
// call (the internal API's key authorises it), like UserGroups.
//
// The version is read before the members, so the members are as of that version or
// newer: a user removed at the version or before is never reported a member. (The
// embedded store publishes a change's member list before its conversation record;
// the Cassandra store reads both from the database.)
func (d *Dispatcher) CheckMembers(ctx context.Context, group uint64, users []string) (wire.MemberCheck, error) {
	c, err := d.streams.Conversation(ctx, group)
	if errors.Is(err, groupstream.ErrNotFound) || (err == nil && c.Kind != groupstream.KindGroup) {
		return wire.MemberCheck{}, wire.Errorf(wire.CodeGroupMissing, "group %d does not exist", group)
	}
	if err != nil {
		return wire.MemberCheck{}, err
	}
	members, err := d.streams.Members(ctx, group)
	if err != nil {
		return wire.MemberCheck{}, err
	}
	out := wire.MemberCheck{Version: c.Version, Members: []string{}}
	for _, u := range users {
		i := sort.Search(len(members), func(i int) bool { return members[i].User >= u })
		if i < len(members) && members[i].User == u {
			out.Members = append(out.Members, u)
		}
	}
	return out, nil
}
