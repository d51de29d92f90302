package groupstream_test

import (
	"context"
	"testing"
	"time"

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
