package timeline

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/fanline/fanline/internal/cql/cqltest"
	"github.com/fanline/fanline/internal/ids"
)

func TestCassandraBuckets(t *testing.T) {
	for _, tc := range []struct {
		seq  uint64
		want int64
	}{{1, 0}, {65535, 0}, {65536, 1}, {65537, 1}, {1 << 20, 16}} {
		if got := entryBucket(tc.seq); got != tc.want {
			t.Errorf("entryBucket(%d) = %d, want %d", tc.seq, got, tc.want)
		}
	}
	// An entry row: a 64-byte sender, the JSON of the entry, the keys.
	e := Entry{Kind: KindGroupEvent, ConversationID: 1<<63 - 1, MsgID: 1<<63 - 1, From: strings.Repeat("x", 64), At: time.Now()}
	blob, _ := json.Marshal(e)
	row := len(blob) + 64 + 8 + 8 + 64 // blob + partition key + seq + overhead
	if size := row << entryBucketBits; size > 100<<20 {
		t.Errorf("a full entry bucket holds %d MB", size>>20)
	}
	// msg ids minted 24 days apart share a bucket or are in adjacent ones; a bucket
	// covers about 25 days.
	at := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	idAt := func(t time.Time) uint64 { return uint64(t.Sub(ids.Epoch).Milliseconds()) << 22 }
	b0, b1 := indexBucket(idAt(at)), indexBucket(idAt(at.Add(24*time.Hour)))
	if b1-b0 > 1 {
		t.Errorf("one day apart: buckets %d and %d", b0, b1)
	}
	span := time.Duration(1<<(indexBucketBits-22)) * time.Millisecond
	if span < 20*24*time.Hour || span > 30*24*time.Hour {
		t.Errorf("an index bucket spans %v", span)
	}
	if nb := nowBucket(); nb < indexBucket(idAt(time.Now())) {
		t.Errorf("nowBucket %d is before the bucket of an id minted now", nb)
	}
}

// TestCassandraStatements checks every statement against the schema.
func TestCassandraStatements(t *testing.T) {
	cqltest.Check(t, CassandraSchema, cqlHead, cqlState, cqlStates, cqlUserRow, cqlClaim, cqlClaimTotal, cqlSetState,
		cqlPutEntry, cqlEntry, cqlEntries, cqlFirstEntry, cqlPutIndex, cqlIndexed, cqlIndexAfter, cqlIndexBucket)
}

// TestCassandraEntryTTL: with an EntryTTL, entry rows are written USING TTL of it
// (in whole seconds, within what Cassandra takes) and index rows and the claim
// without one; without, no row has a TTL.
func TestCassandraEntryTTL(t *testing.T) {
	for _, tc := range []struct {
		ttl  time.Duration
		want string
	}{
		{0, cqlPutEntry},
		{720 * time.Hour, cqlPutEntry + " USING TTL 2592000"},
		{1500 * time.Millisecond, cqlPutEntry + " USING TTL 1"},
		{time.Millisecond, cqlPutEntry + " USING TTL 1"},
		{100 * 365 * 24 * time.Hour, cqlPutEntry + " USING TTL 630720000"},
	} {
		if got := putEntryCQL(tc.ttl); got != tc.want {
			t.Errorf("putEntryCQL(%v) = %q, want %q", tc.ttl, got, tc.want)
		}
	}
	cqltest.Check(t, CassandraSchema, putEntryCQL(720*time.Hour))
	for _, ttl := range []time.Duration{0, 720 * time.Hour} {
		rec := cqltest.NewRecorder(t, CassandraSchema)
		e := emptyStore{newCassandraStore(nil, rec, CassandraStoreConfig{EntryTTL: ttl})}
		at := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
		items := []Item{{User: "u", Kind: KindMessage, ConversationID: 7, ConvKind: "direct", Peer: "p", MsgID: 1 << 40, From: "p", At: at},
			{User: "u", Kind: KindMessage, ConversationID: 7, ConvKind: "direct", Peer: "p", MsgID: 1<<40 + 1, From: "p", At: at}}
		if _, err := appendItems(context.Background(), e, items); err != nil {
			t.Fatal(err)
		}
		if n := len(rec.Rows("timeline_entries")); n != 2 {
			t.Fatalf("ttl %v: %d entry rows", ttl, n)
		}
		entries := 0
		for _, call := range rec.Calls {
			for _, st := range call.Stmts {
				hasTTL := strings.Contains(st.CQL, "USING TTL")
				switch {
				case strings.HasPrefix(st.CQL, "INSERT INTO timeline_entries"):
					entries++
					if st.CQL != putEntryCQL(ttl) {
						t.Errorf("ttl %v: entry written with %q", ttl, st.CQL)
					}
				case hasTTL:
					t.Errorf("ttl %v: %q has a TTL", ttl, st.CQL)
				}
			}
		}
		if entries != 2 {
			t.Errorf("ttl %v: %d entry inserts", ttl, entries)
		}
	}
}
