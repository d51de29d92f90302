package timeline

import (
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
		cqlPutEntry, cqlEntry, cqlEntries, cqlPutIndex, cqlIndexed, cqlIndexAfter, cqlIndexBucket)
}
