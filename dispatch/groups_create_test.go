package dispatch

import (
	"context"
	"testing"

	"github.com/fanline/fanline/internal/wire"
)

// TestCreateGroupAfterReservedOnly: a creation whose key was reserved but whose
// group was never made (the call failed between the two) is finished by the retry,
// under the reserved id; the retry after that answers the same group.
func TestCreateGroupAfterReservedOnly(t *testing.T) {
	d, _ := newTestDispatcher(t, nil)
	ctx := context.Background()
	reserved := nextID(t, d)
	if _, _, err := d.dedup.Reserve(ctx, "ann", "group/k1", reserved, d.cfg.DedupTTL); err != nil {
		t.Fatal(err)
	}
	ann := wire.Principal{ID: "ann", Role: wire.RoleBuyer}
	req := wire.CreateGroupRequest{Name: "trip", Members: []string{"bob"}, ClientGroupID: "k1"}
	g, err := d.CreateGroup(ctx, ann, req)
	if err != nil || uint64(g.GroupID) != reserved || g.MemberCount != 2 {
		t.Fatalf("retry after a reservation alone: %+v %v, want group %d of 2", g, err, reserved)
	}
	again, err := d.CreateGroup(ctx, ann, req)
	if err != nil || again.GroupID != g.GroupID {
		t.Fatalf("a second retry: %+v %v", again, err)
	}
	// A client_msg_id cannot hold a '/', so no message's key is a group's.
	if _, err := d.CreateGroup(ctx, ann, wire.CreateGroupRequest{Name: "x", Members: []string{"bob"}, ClientGroupID: "a/b"}); wire.AsError(err).Code != wire.CodeInvalidField {
		t.Fatalf("a key with a slash: %v", err)
	}
}
