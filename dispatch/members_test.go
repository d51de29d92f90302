package dispatch

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/fanline/fanline/groupstream"
	"github.com/fanline/fanline/internal/queue"
	"github.com/fanline/fanline/internal/wire"
)

// versionRecorder records the membership versions the group pushes carry.
type versionRecorder struct {
	nopPusher
	mu  sync.Mutex
	log []string
}

func (r *versionRecorder) PushGroup(group, version uint64, e wire.Entry, _ map[string]bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.log = append(r.log, fmt.Sprintf("push %s v%d", e.Kind, version))
}

func (r *versionRecorder) GroupMembers(group, version uint64, added, removed []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.log = append(r.log, fmt.Sprintf("members v%d +%v -%v", version, added, removed))
}

// TestGroupPushesCarryTheMembershipVersion: every push of a read-fanout group and
// every membership hint carries the group's version after what it reports (a
// message's, the version once it is stored), and CheckMembers answers the members
// among the users asked about at that version.
func TestGroupPushesCarryTheMembershipVersion(t *testing.T) {
	d, db := newTestDispatcher(t, nil)
	d.streams = groupstream.NewPebbleStore(db, groupstream.Config{WriteMaxMembers: 2, WriteBackMembers: 1})
	rec := &versionRecorder{}
	d.push = rec
	ctx := context.Background()
	al := wire.Principal{ID: "al", Role: wire.RoleBuyer}
	g, err := d.CreateGroup(ctx, al, wire.CreateGroupRequest{Name: "g", Members: []string{"bea", "cy"}})
	if err != nil || g.Fanout != groupstream.FanoutRead {
		t.Fatalf("create: %+v %v", g, err)
	}
	if _, err := d.ChangeMembers(ctx, al, uint64(g.GroupID), wire.MembersRequest{Remove: []string{"bea"}, Add: []string{"dan"}}); err != nil {
		t.Fatal(err)
	}
	job := sendJob{MsgID: nextID(t, d), Conv: uint64(g.GroupID), ConvKind: groupstream.KindGroup, From: "al",
		ClientMsgID: "c1", Type: "text", Body: []byte(`{"text":"x"}`)}
	if err := d.handleSend(ctx, TopicSend, 0, []queue.Record{{Key: []byte(g.GroupID.String()), Value: job.marshal()}}); err != nil {
		t.Fatal(err)
	}
	// The send stage's batch redelivered after a member joined: the push keeps the
	// version the message was stored at, so the newcomer's gateway does not hand it
	// a message from before they joined.
	if _, err := d.ChangeMembers(ctx, al, uint64(g.GroupID), wire.MembersRequest{Add: []string{"eve"}}); err != nil {
		t.Fatal(err)
	}
	if err := d.handleSend(ctx, TopicSend, 0, []queue.Record{{Key: []byte(g.GroupID.String()), Value: job.marshal()}}); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"members v1 +[al bea cy] -[]", "push group_event v1",
		"members v2 +[dan] -[bea]", "push group_event v2",
		"push message v2",
		"members v3 +[eve] -[]", "push group_event v3",
		"push message v2",
	}
	if !slices.Equal(rec.log, want) {
		t.Fatalf("pushes\n%q\nwant\n%q", rec.log, want)
	}
	got, err := d.CheckMembers(ctx, uint64(g.GroupID), []string{"zed", "bea", "al", "dan"})
	if err != nil || got.Version != 3 || !slices.Equal(got.Members, []string{"al", "dan"}) {
		t.Fatalf("check: %+v %v", got, err)
	}
	if _, err := d.CheckMembers(ctx, 12345, []string{"al"}); wire.AsError(err).Code != wire.CodeGroupMissing {
		t.Fatalf("a missing group's check: %v", err)
	}
	// A connecting member's groups come with the version they are at, at least the
	// one that added them (eve: v3), so the gateway pushes eve nothing older.
	groups, err := d.UserGroups(ctx, "eve")
	if err != nil || !slices.Equal(groups, []wire.GroupVersion{{Group: uint64(g.GroupID), Version: 3}}) {
		t.Fatalf("eve's groups: %+v %v", groups, err)
	}
}
