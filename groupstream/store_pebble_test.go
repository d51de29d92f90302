package groupstream_test

import (
	"context"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/fanline/fanline/groupstream"
	"github.com/fanline/fanline/groupstream/streamtest"
	"github.com/fanline/fanline/internal/kv"
)

func TestPebbleStoreConformance(t *testing.T) {
	streamtest.Run(t, func(t *testing.T, cfg groupstream.Config) groupstream.Store {
		db, err := kv.Open(t.TempDir(), nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return groupstream.NewPebbleStore(db, cfg)
	})
}

func TestPebbleStoreGroupsFromDisk(t *testing.T) {
	db, err := kv.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	if _, err := groupstream.NewPebbleStore(db, groupstream.Config{}).CreateGroup(ctx, 9, "g", "o", []string{"a", "b"}, time.Now()); err != nil {
		t.Fatal(err)
	}
	cold := groupstream.NewPebbleStore(db, groupstream.Config{})
	if m, err := cold.Member(ctx, 9, "o"); err != nil || m.Role != groupstream.RoleOwner {
		t.Fatalf("owner from disk: %+v %v", m, err)
	}
	if _, err := cold.Member(ctx, 9, "z"); err != groupstream.ErrNotFound {
		t.Fatalf("non-member from disk: %v", err)
	}
	if ms, err := cold.Members(ctx, 9); err != nil || len(ms) != 3 || ms[0].User != "a" {
		t.Fatalf("members from disk: %+v %v", ms, err)
	}
}

// TestPebbleStoreTrimsPastMemberships: past memberships older than 30 days are
// deleted from Pebble when listed and by SweepLeft; newer ones stay.
func TestPebbleStoreTrimsPastMemberships(t *testing.T) {
	db, err := kv.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	s := groupstream.NewPebbleStore(db, groupstream.Config{WriteMaxMembers: 2})
	now := time.Now()
	old := now.Add(-31 * 24 * time.Hour)
	onDisk := func() int {
		t.Helper()
		prefix := kv.NewKey(kv.PrefixConversation, 'x')
		it, err := db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: kv.PrefixEnd(prefix)})
		if err != nil {
			t.Fatal(err)
		}
		defer it.Close()
		n := 0
		for it.First(); it.Valid(); it.Next() {
			n++
		}
		return n
	}
	// Groups 1..3 are read-fanout (more than 2 members): removals leave records.
	for g := uint64(1); g <= 3; g++ {
		if _, err := s.CreateGroup(ctx, g, "g", "o", []string{"a", "b", "c"}, old); err != nil {
			t.Fatal(err)
		}
	}
	remove := func(g uint64, u string, at time.Time) {
		t.Helper()
		if _, err := s.ChangeMembers(ctx, g, groupstream.MemberChange{Remove: []string{u}}, at); err != nil {
			t.Fatal(err)
		}
	}
	remove(1, "a", old)
	remove(2, "a", now)
	remove(1, "b", old)
	remove(3, "b", old)
	remove(3, "c", now)
	if n := onDisk(); n != 5 {
		t.Fatalf("%d past memberships on disk, want 5", n)
	}
	// Listing a's: the expired one goes.
	if ls, err := s.LeftGroups(ctx, "a"); err != nil || len(ls) != 1 || ls[0].Conv != 2 {
		t.Fatalf("a's past memberships: %+v %v", ls, err)
	}
	if n := onDisk(); n != 4 {
		t.Fatalf("%d past memberships on disk after listing a's, want 4", n)
	}
	// The sweep deletes b's two, keeps a's and c's recent ones.
	if n, err := s.SweepLeft(ctx, now); err != nil || n != 2 {
		t.Fatalf("sweep: %d %v, want 2", n, err)
	}
	if n, err := s.SweepLeft(ctx, now); err != nil || n != 0 || onDisk() != 2 {
		t.Fatalf("second sweep: %d %v, %d left on disk", n, err, onDisk())
	}
	if ls, err := s.LeftGroups(ctx, "c"); err != nil || len(ls) != 1 || ls[0].Conv != 3 {
		t.Fatalf("c's past memberships: %+v %v", ls, err)
	}
	// A month later, everything goes.
	if n, err := s.SweepLeft(ctx, now.Add(31*24*time.Hour)); err != nil || n != 2 || onDisk() != 0 {
		t.Fatalf("sweep a month later: %d %v, %d left on disk", n, err, onDisk())
	}
}
