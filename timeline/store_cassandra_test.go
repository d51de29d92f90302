package timeline

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

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

// table is a CREATE TABLE statement's columns and keys.
type table struct {
	columns   map[string]bool
	partition []string
	cluster   []string
}

var (
	createRe = regexp.MustCompile(`(?s)CREATE TABLE IF NOT EXISTS (\w+) \((.*), PRIMARY KEY \(\(([^)]*)\)(?:, ([^)]*))?\)\)`)
	wordRe   = regexp.MustCompile(`\w+`)
)

func parseSchema(t *testing.T, stmts []string) map[string]table {
	t.Helper()
	out := map[string]table{}
	for _, s := range stmts {
		s = strings.Join(strings.Fields(s), " ")
		m := createRe.FindStringSubmatch(s)
		if m == nil {
			t.Fatalf("not a CREATE TABLE IF NOT EXISTS with a PRIMARY KEY: %s", s)
		}
		tb := table{columns: map[string]bool{}}
		for _, col := range strings.Split(m[2], ",") {
			tb.columns[wordRe.FindString(col)] = true
		}
		tb.partition = wordRe.FindAllString(m[3], -1)
		tb.cluster = wordRe.FindAllString(m[4], -1)
		for _, k := range append(append([]string{}, tb.partition...), tb.cluster...) {
			if !tb.columns[k] {
				t.Fatalf("%s: key column %s is not declared", m[1], k)
			}
		}
		out[m[1]] = tb
	}
	return out
}

var (
	tableRe = regexp.MustCompile(`(?:FROM|INTO|UPDATE) (\w+)`)
	whereRe = regexp.MustCompile(`(\w+) (?:=|>|<=|>=|<) \?`)
)

// TestCassandraStatements checks every statement against the schema: the table
// exists, every named column is declared, every SELECT and UPDATE restricts the whole
// partition key by equality (no scans across partitions), and the bound values
// match the markers.
func TestCassandraStatements(t *testing.T) {
	tables := parseSchema(t, CassandraSchema.Statements)
	stmts := []string{cqlHead, cqlState, cqlStates, cqlUserRow, cqlClaim, cqlClaimTotal, cqlSetState, cqlPutEntry,
		cqlEntry, cqlEntries, cqlPutIndex, cqlIndexed, cqlIndexAfter, cqlIndexBucket}
	keywords := map[string]bool{"SELECT": true, "FROM": true, "WHERE": true, "AND": true, "LIMIT": true, "INSERT": true,
		"INTO": true, "VALUES": true, "IF": true, "NOT": true, "EXISTS": true, "UPDATE": true, "SET": true}
	for _, s := range stmts {
		m := tableRe.FindStringSubmatch(s)
		if m == nil {
			t.Fatalf("no table in %q", s)
		}
		tb, ok := tables[m[1]]
		if !ok {
			t.Fatalf("%q names table %s, not in the schema", s, m[1])
		}
		for _, w := range wordRe.FindAllString(strings.ReplaceAll(s, m[1], ""), -1) {
			if !keywords[w] && !tb.columns[w] && !regexp.MustCompile(`^\d+$`).MatchString(w) {
				t.Errorf("%q: %s is not a column of %s", s, w, m[1])
			}
		}
		if strings.HasPrefix(s, "SELECT") || strings.HasPrefix(s, "UPDATE") {
			restricted := map[string]bool{}
			for _, w := range whereRe.FindAllStringSubmatch(s[strings.Index(s, "WHERE"):], -1) {
				restricted[w[1]] = true
			}
			for _, k := range tb.partition {
				if !restricted[k] || !strings.Contains(s, k+" = ?") {
					t.Errorf("%q does not fix partition key column %s", s, k)
				}
			}
		}
		if strings.HasPrefix(s, "INSERT") {
			cols := strings.Count(s[:strings.Index(s, "VALUES")], ",") + 1
			vals := strings.Count(s[strings.Index(s, "VALUES"):], ",") + 1
			if cols != vals {
				t.Errorf("%q: %d columns, %d values", s, cols, vals)
			}
		}
	}
}
