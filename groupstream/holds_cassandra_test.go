package groupstream

import (
	"context"
	"encoding/json"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fanline/fanline/internal/cql/cqltest"
)

func TestCassandraHoldStatements(t *testing.T) {
	cqltest.Check(t, CassandraSchema, cqlPutHold, cqlDelHold, cqlHolds, cqlListHolds)
}

// holds reads the holds table from the recorder's rows as cqlHolds and
// cqlListHolds read it from Cassandra.
func (r recorderReads) holds(_ context.Context, bucket int, conv, after uint64, limit int) ([]Hold, error) {
	var out []Hold
	for k, row := range r.rec.Rows("holds") {
		parts := strings.SplitN(k, "/", 3)
		c, _ := strconv.ParseInt(parts[1], 10, 64)
		if parts[0] != strconv.Itoa(bucket) || (conv != 0 && uint64(c) != conv) || (conv == 0 && uint64(c) <= after) {
			continue
		}
		var h Hold
		if err := json.Unmarshal(row["doc"].([]byte), &h); err != nil {
			r.t.Fatal(err)
		}
		if h.Conv != uint64(c) || h.Scope != parts[2] {
			r.t.Fatalf("row %s holds %+v", k, h)
		}
		out = append(out, h)
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].Conv < out[j].Conv || (out[i].Conv == out[j].Conv && out[i].Scope < out[j].Scope)
	})
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// TestCassandraHolds runs the holds part of the conformance suite on the
// statements the store writes, read back as Cassandra would answer: the listing's
// cut at a bucket that filled its limit is exercised with every page size.
func TestCassandraHolds(t *testing.T) {
	s, rec := recorded(t, CassandraStoreConfig{})
	s.reads = recorderReads{t, rec}
	ctx := context.Background()
	at := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	// Conversations 16 apart share a bucket: 3, 19 and 35 fill bucket 3 first.
	want := ""
	for _, c := range []uint64{3, 19, 35, 4, 20, 5} {
		for _, scope := range []string{HoldScopeOps, HoldScopeShop("acme")} {
			if err := s.PutHold(ctx, Hold{Conv: c, Scope: scope, By: "x", At: at}); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, c := range []uint64{3, 4, 5, 19, 20, 35} {
		want += strconv.FormatUint(c, 10) + " " + strconv.FormatUint(c, 10) + " "
	}
	for limit := 1; limit <= 7; limit++ {
		got, after := "", uint64(0)
		for pages := 0; pages < 20; pages++ {
			page, err := s.ListHolds(ctx, after, limit)
			if err != nil {
				t.Fatal(err)
			}
			if len(page) == 0 {
				break
			}
			for _, h := range page {
				got += strconv.FormatUint(h.Conv, 10) + " "
			}
			after = page[len(page)-1].Conv
		}
		if got != want {
			t.Errorf("limit %d: listed %q, want %q", limit, got, want)
		}
	}
	if err := s.DeleteHold(ctx, 19, HoldScopeOps); err != nil {
		t.Fatal(err)
	}
	if hs, err := s.Holds(ctx, 19); err != nil || len(hs) != 1 || hs[0].Scope != "shop:acme" {
		t.Fatalf("after delete: %+v %v", hs, err)
	}
	if len(rec.Rows("holds")) != 11 {
		t.Errorf("%d hold rows, want 11", len(rec.Rows("holds")))
	}
}
