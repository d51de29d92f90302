package groupstream

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/fanline/fanline/internal/kv"
)

// TestPebbleMembersNeverOlderThanTheirGroup: between a membership change's commit and
// its cache update, a reader that finds the conversation on disk (its cache entry
// evicted) must not pair it with the member list of the version before: Members and
// Member read past such a list.
func TestPebbleMembersNeverOlderThanTheirGroup(t *testing.T) {
	db, err := kv.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s := NewPebbleStore(db, Config{})
	ctx := context.Background()
	c, err := s.CreateGroup(ctx, 7, "g", "o", []string{"a", "b"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	before, err := s.Members(ctx, c.ID)
	if err != nil || len(before) != 3 {
		t.Fatalf("members %v %v", before, err)
	}
	if _, err := s.ChangeMembers(ctx, c.ID, MemberChange{Remove: []string{"b"}}, time.Now()); err != nil {
		t.Fatal(err)
	}
	// The window: the old list still cached, the conversation only on disk.
	s.cache.set(membersCacheKey(c.ID), cachedMembers{version: c.Version, list: before}, membersSize(before))
	s.cache.del(convCacheKey(c.ID))
	after, err := s.Members(ctx, c.ID)
	if err != nil || len(after) != 2 {
		t.Fatalf("members after removing b: %v %v", after, err)
	}
	s.cache.set(membersCacheKey(c.ID), cachedMembers{version: c.Version, list: before}, membersSize(before))
	if _, err := s.Member(ctx, c.ID, "b"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("b after the removal: %v", err)
	}
}
