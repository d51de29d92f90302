package timeline

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/fanline/fanline/internal/cql"
	"github.com/fanline/fanline/internal/cql/cqltest"
)

// emptyStore is the reads of a Cassandra store in which nothing is committed yet
// (every head 0), in front of a CassandraStore writing to a cqltest.Recorder: what a
// first write reads, and what its retry reads after a crash before its claim (the
// claim moves the head; until it does, nothing of the write is committed).
type emptyStore struct{ *CassandraStore }

func (emptyStore) loadHead(context.Context, string) (uint64, error) { return 0, nil }
func (emptyStore) loadTotal(context.Context, string) (int64, error) { return 0, nil }
func (emptyStore) loadState(context.Context, string, uint64) (ConvState, bool, error) {
	return ConvState{}, false, nil
}
func (emptyStore) indexed(context.Context, Item, uint64) (bool, error) { return false, nil }
func (emptyStore) othersAfter(context.Context, string, uint64, uint64, uint64) (int64, error) {
	return 0, nil
}

func recordedAppend(t *testing.T, l cql.BatchLimits, items []Item, failAt int) (*cqltest.Recorder, error) {
	rec := cqltest.NewRecorder(t, CassandraSchema)
	rec.FailAt = failAt
	e := emptyStore{newCassandraStore(nil, rec, CassandraStoreConfig{Batch: l})}
	_, err := appendItems(context.Background(), e, items)
	if failAt > 0 {
		rec.Restart()
		if !errors.Is(err, cqltest.ErrCrashed) {
			t.Fatalf("crash at %d: %v", failAt, err)
		}
		_, err = appendItems(context.Background(), e, items)
	}
	return rec, err
}

// TestCassandraAppendBatches: an append of 512 entries, to one user or to 512, writes
// its rows in batches within the limits, and each user's claim (one partition) after
// all of their rows. Before, one user's 512 entries were one batch of ~140 KB, which
// Cassandra refuses every time (batch_size_fail_threshold, 50 KiB), so the fanout
// stage retried it for ever.
func TestCassandraAppendBatches(t *testing.T) {
	at := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	var oneUser, users []Item
	for i := range 512 {
		msg := uint64(1<<40 + i)
		oneUser = append(oneUser, Item{User: "u-0001", Kind: KindMessage, ConversationID: uint64(100 + i%64), ConvKind: "group",
			MsgID: msg, From: fmt.Sprintf("sender-%04d", i%7), At: at, GroupSeq: uint64(i + 1)})
		users = append(users, Item{User: fmt.Sprintf("u-%04d", i), Kind: KindMessage, ConversationID: 100, ConvKind: "group",
			MsgID: msg, From: "sender", At: at, GroupSeq: 1})
	}
	for _, l := range []cql.BatchLimits{{}, {Bytes: 5 << 10, Statements: 20}} {
		for name, items := range map[string][]Item{"one user": oneUser, "512 users": users} {
			rec, err := recordedAppend(t, l, items, 0)
			if err != nil {
				t.Fatal(err)
			}
			if n := len(rec.Rows("timeline_entries")); n != 512 {
				t.Errorf("%s: %d entries", name, n)
			}
			bytes, stmts := l.Bytes, l.Statements
			if bytes == 0 {
				bytes, stmts = cql.DefaultBatchBytes, cql.DefaultBatchStatements
			}
			claimed := map[string]bool{}
			total := 0
			for _, call := range rec.Calls {
				size := 0
				for _, st := range call.Stmts {
					size += st.Size()
				}
				if call.Kind == "cas" {
					for _, st := range call.Stmts {
						if u := userOf(st); u != userOf(call.Stmts[0]) {
							t.Errorf("%s: a conditional batch writes users %s and %s", name, userOf(call.Stmts[0]), u)
						}
					}
					if call.Stmts[0].CQL != cqlUserRow {
						claimed[userOf(call.Stmts[0])] = true
					}
					continue
				}
				total += size
				if size > bytes || len(call.Stmts) > stmts {
					t.Errorf("%s: a batch of %d statements, %d bytes, past %d statements, %d bytes", name, len(call.Stmts), size, stmts, bytes)
				}
				for _, st := range call.Stmts {
					if u := userOf(st); claimed[u] {
						t.Errorf("%s: %s's rows written after their claim", name, u)
					}
				}
			}
			if name == "one user" && l.Bytes == 0 {
				t.Logf("one user's 512 entries: %d bytes of entry and index rows", total)
			}
		}
	}
	// A crash at any call of one user's append, then its retry, leaves the rows of an
	// append that did not crash: the retry writes the same seqs.
	l := cql.BatchLimits{Bytes: 5 << 10}
	clean, err := recordedAppend(t, l, oneUser, 0)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, call := range clean.Calls {
		rec, err := recordedAppend(t, l, oneUser, n+1)
		if err != nil {
			t.Fatal(err)
		}
		for _, tb := range []string{"timeline_entries", "timeline_index", "timeline_users"} {
			if !reflect.DeepEqual(rec.Rows(tb), clean.Rows(tb)) {
				t.Errorf("crash at statement %d, then the append again: %s differs", n+1, tb)
			}
		}
		n += len(call.Stmts)
	}
}

// userOf is the user whose partition a statement of commit writes.
func userOf(st cql.Stmt) string {
	switch st.CQL {
	case cqlClaim, cqlSetState:
		return st.Args[1].(string)
	case cqlClaimTotal:
		return st.Args[2].(string)
	}
	return st.Args[0].(string) // cqlUserRow, cqlPutEntry, cqlPutIndex
}
