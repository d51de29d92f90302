package cqltest

import (
	"context"
	"errors"
	"reflect"
	"testing"

	"github.com/fanline/fanline/internal/cql"
)

var schema = cql.Schema{Name: "t", Statements: []string{
	`CREATE TABLE IF NOT EXISTS t (k text, c bigint, s bigint STATIC, v blob, PRIMARY KEY ((k), c))`,
}}

func TestRecorder(t *testing.T) {
	ctx := context.Background()
	r := NewRecorder(t, schema)
	steps := []error{
		r.Exec(ctx, cql.Q(`INSERT INTO t (k, c, v) VALUES (?, ?, ?)`, "a", int64(1), []byte("x"))),
		r.Batch(ctx, []cql.Stmt{
			cql.Q(`UPDATE t SET v = ? WHERE k = ? AND c = ?`, []byte("y"), "a", int64(2)),
			cql.Q(`INSERT INTO t (k, s) VALUES (?, 0) IF NOT EXISTS`, "a"),
		}),
	}
	applied, err := r.CAS(ctx, []cql.Stmt{cql.Q(`UPDATE t SET s = ? WHERE k = ? IF s = ?`, int64(5), "a", int64(0))})
	steps = append(steps, err, r.Exec(ctx, cql.Q(`DELETE FROM t WHERE k = ? AND c = ?`, "a", int64(1))))
	for i, err := range steps {
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	want := map[string]Row{
		Key("a"):           {"s": int64(5)},
		Key("a", int64(2)): {"v": []byte("y")},
	}
	if !applied || !reflect.DeepEqual(r.Rows("t"), want) || r.Written() != 5 || len(r.Calls) != 4 {
		t.Fatalf("rows %v (want %v), %d written, %d calls", r.Rows("t"), want, r.Written(), len(r.Calls))
	}

	// One batch, one timestamp: the deletion wins whatever the order.
	if err := r.Batch(ctx, []cql.Stmt{
		cql.Q(`DELETE FROM t WHERE k = ? AND c = ?`, "a", int64(2)),
		cql.Q(`UPDATE t SET v = ? WHERE k = ? AND c = ?`, []byte("z"), "a", int64(2)),
	}); err != nil || r.Rows("t")[Key("a", int64(2))] != nil {
		t.Fatalf("a row deleted and written in one batch: %v %v", r.Rows("t"), err)
	}

	// A crash at statement 2 fails the batch holding it, whole, and every call
	// after it until Restart.
	r = NewRecorder(t, schema)
	r.FailAt = 2
	one := cql.Q(`INSERT INTO t (k, c) VALUES (?, ?)`, "b", int64(1))
	two := cql.Q(`INSERT INTO t (k, c) VALUES (?, ?)`, "b", int64(2))
	if err := r.Exec(ctx, one); err != nil {
		t.Fatal(err)
	}
	if err := r.Batch(ctx, []cql.Stmt{two, two}); !errors.Is(err, ErrCrashed) {
		t.Fatalf("batch across the crash: %v", err)
	}
	if err := r.Exec(ctx, two); !errors.Is(err, ErrCrashed) {
		t.Fatalf("after the crash: %v", err)
	}
	if len(r.Rows("t")) != 1 {
		t.Fatalf("rows after the crash: %v", r.Rows("t"))
	}
	r.Restart()
	if err := r.Exec(ctx, two); err != nil || len(r.Rows("t")) != 2 {
		t.Fatalf("after Restart: %v, rows %v", err, r.Rows("t"))
	}
}

// TestRecorderConditions: with Conditions, a CAS whose conditions fail on the rows
// recorded writes nothing and reports false; without, every CAS applies.
func TestRecorderConditions(t *testing.T) {
	ctx := context.Background()
	newRow := cql.Q(`INSERT INTO t (k, s) VALUES (?, 1) IF NOT EXISTS`, "a")
	bump := func(from, to int64) cql.Stmt { return cql.Q(`UPDATE t SET s = ? WHERE k = ? IF s = ?`, to, "a", from) }
	drop := cql.Q(`DELETE FROM t WHERE k = ? AND c = ? IF EXISTS`, "a", int64(1))
	put := cql.Q(`INSERT INTO t (k, c, v) VALUES (?, ?, ?)`, "a", int64(1), []byte("x"))
	r := NewRecorder(t, schema)
	r.Conditions = true
	for i, step := range []struct {
		sts  []cql.Stmt
		want bool
	}{
		{[]cql.Stmt{newRow}, true},
		{[]cql.Stmt{newRow}, false},           // the static row exists
		{[]cql.Stmt{bump(1, 2), put}, true},   // the literal 1 as written
		{[]cql.Stmt{bump(1, 3), put}, false},  // s is 2
		{[]cql.Stmt{drop}, true},              // the row c = 1 exists
		{[]cql.Stmt{drop}, false},             // and is gone
		{[]cql.Stmt{bump(2, 4), drop}, false}, // one condition fails: nothing applies
	} {
		applied, err := r.CAS(ctx, step.sts)
		if err != nil || applied != step.want {
			t.Fatalf("step %d: applied %v %v, want %v", i, applied, err, step.want)
		}
		if r.Calls[len(r.Calls)-1].NotApplied == step.want {
			t.Fatalf("step %d: call recorded as %+v", i, r.Calls[len(r.Calls)-1])
		}
	}
	want := map[string]Row{Key("a"): {"s": int64(2)}}
	if !reflect.DeepEqual(r.Rows("t"), want) || r.Written() != 10 {
		t.Fatalf("rows %v (want %v), %d written", r.Rows("t"), want, r.Written())
	}
	r = NewRecorder(t, schema)
	if applied, err := r.CAS(ctx, []cql.Stmt{bump(7, 8)}); !applied || err != nil {
		t.Fatalf("without Conditions: %v %v", applied, err)
	}
}
