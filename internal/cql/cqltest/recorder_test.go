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
