package streamtest

import (
	"fmt"
	"testing"
	"time"

	"github.com/fanline/fanline/groupstream"
)

// holdList renders holds as conv/scope/by/reason, in order.
func holdList(hs []groupstream.Hold) string {
	out := ""
	for _, h := range hs {
		out += fmt.Sprintf("%d/%s/%s/%s ", h.Conv, h.Scope, h.By, h.Reason)
	}
	return out
}

// testHolds: a conversation has a hold per scope, replaced by a second put and
// gone after its delete; listing pages by conversation and returns each one's
// holds whole.
func testHolds(t *testing.T, s groupstream.Store) {
	at := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	shop := groupstream.HoldScopeShop("acme")
	if hs, err := s.Holds(ctx, 7); err != nil || len(hs) != 0 {
		t.Fatalf("holds of an unheld conversation: %v %v", hs, err)
	}
	put := func(h groupstream.Hold) {
		t.Helper()
		if err := s.PutHold(ctx, h); err != nil {
			t.Fatal(err)
		}
	}
	put(groupstream.Hold{Conv: 7, Scope: shop, By: "boss", Reason: "dispute", At: at})
	put(groupstream.Hold{Conv: 7, Scope: groupstream.HoldScopeOps, By: "ops", At: at})
	put(groupstream.Hold{Conv: 7, Scope: shop, By: "boss2", Reason: "court order", At: at.Add(time.Second)})
	hs, err := s.Holds(ctx, 7)
	if err != nil || holdList(hs) != "7/ops/ops/ 7/shop:acme/boss2/court order " || !hs[1].At.Equal(at.Add(time.Second)) {
		t.Fatalf("holds: %q %v", holdList(hs), err)
	}
	if err := s.PutHold(ctx, groupstream.Hold{Conv: 7, Scope: "nobody"}); err == nil {
		t.Error("a hold of scope \"nobody\" was stored")
	}
	// Conversations 1..40 in every bucket, a few with two holds.
	want := ""
	for c := uint64(1); c <= 40; c++ {
		if c == 7 {
			want += "7/ops/ops/ 7/shop:acme/boss2/court order "
			continue
		}
		put(groupstream.Hold{Conv: c, Scope: groupstream.HoldScopeOps, By: "ops", At: at})
		want += fmt.Sprintf("%d/ops/ops/ ", c)
		if c%5 == 0 {
			put(groupstream.Hold{Conv: c, Scope: shop, By: "boss", At: at})
			want += fmt.Sprintf("%d/shop:acme/boss/ ", c)
		}
	}
	for _, limit := range []int{1, 2, 3, 16, 100} {
		got, after := "", uint64(0)
		for pages := 0; ; pages++ {
			page, err := s.ListHolds(ctx, after, limit)
			if err != nil {
				t.Fatal(err)
			}
			if len(page) == 0 {
				break
			}
			convs := map[uint64]bool{}
			for _, h := range page {
				convs[h.Conv] = true
			}
			if len(convs) > limit || pages > 40 {
				t.Fatalf("limit %d: a page of %d conversations, page %d", limit, len(convs), pages)
			}
			got += holdList(page)
			after = page[len(page)-1].Conv
		}
		if got != want {
			t.Fatalf("limit %d: listed\n%s\nwant\n%s", limit, got, want)
		}
	}
	if err := s.DeleteHold(ctx, 7, shop); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteHold(ctx, 7, shop); err != nil {
		t.Fatalf("deleting a deleted hold: %v", err)
	}
	if hs, err := s.Holds(ctx, 7); err != nil || holdList(hs) != "7/ops/ops/ " {
		t.Fatalf("after delete: %q %v", holdList(hs), err)
	}
}
