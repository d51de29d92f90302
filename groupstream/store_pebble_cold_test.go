package groupstream_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/fanline/fanline/groupstream"
	"github.com/fanline/fanline/internal/kv"
)

// TestPebbleMembersFromDisk reads a group's members through a store whose cache is
// empty (as after a restart): user ids of different lengths, which the keys order by
// length first, are each found, and the list comes sorted by user.
func TestPebbleMembersFromDisk(t *testing.T) {
	db, err := kv.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	users := []string{"alice", "bob", "carol", "al", "dave-with-a-long-id", "x"}
	if _, err := groupstream.NewPebbleStore(db, groupstream.Config{}).CreateGroup(ctx, 7, "g", "alice", users[1:], time.Now()); err != nil {
		t.Fatal(err)
	}
	for _, read := range []string{"Member first", "Members first"} {
		cold := groupstream.NewPebbleStore(db, groupstream.Config{})
		if read == "Members first" {
			if _, err := cold.Members(ctx, 7); err != nil {
				t.Fatal(err)
			}
		}
		for _, u := range users {
			if _, err := cold.Member(ctx, 7, u); err != nil {
				t.Errorf("%s: member %q: %v", read, u, err)
			}
		}
		list, err := cold.Members(ctx, 7)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, m := range list {
			got = append(got, m.User)
		}
		if want := slices.Sorted(slices.Values(users)); !slices.Equal(got, want) {
			t.Errorf("%s: members %v, want %v", read, got, want)
		}
	}
}
