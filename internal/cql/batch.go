package cql

import (
	"context"
	"fmt"

	"github.com/gocql/gocql"
)

// Stmt is a statement with its bound values.
type Stmt struct {
	CQL  string
	Args []any
}

// Q binds args to statement cql.
func Q(cql string, args ...any) Stmt { return Stmt{CQL: cql, Args: args} }

// Per-statement overheads of Size: a row's clustering and liveness, and each cell's
// write timestamp and length.
const (
	stmtOverhead = 16
	valueBytes   = 8
)

// Size estimates the bytes st adds to a batch as Cassandra measures it against
// batch_size_warn_threshold and batch_size_fail_threshold (the data size of the
// mutations): every bound value (strings and blobs at their length, numbers and
// timestamps at 8 bytes) with 8 bytes of timestamp, and 16 bytes for the row. It
// counts partition key values too, which Cassandra does not: an over-estimate.
func (st Stmt) Size() int {
	n := stmtOverhead
	for _, a := range st.Args {
		n += valueBytes
		switch v := a.(type) {
		case string:
			n += len(v)
		case []byte:
			n += len(v)
		default:
			n += 8
		}
	}
	return n
}

// BatchLimits bound a batch of writes to several partitions.
//
// Cassandra refuses a batch that writes more than one partition when its size passes
// batch_size_fail_threshold (50 KiB by default; it logs a warning past
// batch_size_warn_threshold, 5 KiB), and a refused batch fails however often it is
// retried. Batches of one partition are not checked (CASSANDRA-10876); gocql refuses
// any batch of more than 65,535 statements.
type BatchLimits struct {
	// Bytes bounds a batch's estimated size (Stmt.Size). Zero means 32 KiB.
	Bytes int
	// Statements bounds a batch's statements. Zero means 500.
	Statements int
}

// Defaults of BatchLimits.
const (
	DefaultBatchBytes      = 32 << 10
	DefaultBatchStatements = 500
)

func (l BatchLimits) fill() BatchLimits {
	if l.Bytes <= 0 {
		l.Bytes = DefaultBatchBytes
	}
	if l.Statements <= 0 {
		l.Statements = DefaultBatchStatements
	}
	l.Statements = min(l.Statements, gocql.BatchSizeMaximum)
	return l
}

// Chunk splits sts, in order, into batches within l (zero fields take the
// defaults). A statement larger than l.Bytes alone is a batch of its own: it writes
// one partition, which Cassandra does not check.
func (l BatchLimits) Chunk(sts []Stmt) [][]Stmt {
	l = l.fill()
	var out [][]Stmt
	start, size := 0, 0
	for i, st := range sts {
		n := st.Size()
		if i > start && (size+n > l.Bytes || i-start >= l.Statements) {
			out = append(out, sts[start:i:i])
			start, size = i, 0
		}
		size += n
	}
	if start < len(sts) {
		out = append(out, sts[start:])
	}
	return out
}

// Writer runs writes: SessionWriter on a gocql session, a recorder in tests
// (cqltest.Recorder).
type Writer interface {
	// Exec runs one statement.
	Exec(ctx context.Context, st Stmt) error
	// Batch runs sts as one logged batch: all of them or, if it fails, possibly
	// none.
	Batch(ctx context.Context, sts []Stmt) error
	// CAS runs sts, conditional statements on one partition, as one batch and
	// reports whether its conditions held (then every statement applied).
	CAS(ctx context.Context, sts []Stmt) (applied bool, err error)
}

// SessionWriter returns the Writer of session s.
func SessionWriter(s *gocql.Session) Writer { return sessionWriter{s} }

type sessionWriter struct{ s *gocql.Session }

func (w sessionWriter) Exec(ctx context.Context, st Stmt) error {
	return w.s.Query(st.CQL, st.Args...).WithContext(ctx).Exec()
}

func (w sessionWriter) batch(ctx context.Context, sts []Stmt) *gocql.Batch {
	b := w.s.NewBatch(gocql.LoggedBatch).WithContext(ctx)
	for _, st := range sts {
		b.Query(st.CQL, st.Args...)
	}
	return b
}

func (w sessionWriter) Batch(ctx context.Context, sts []Stmt) error {
	if len(sts) == 1 {
		return w.Exec(ctx, sts[0])
	}
	return w.s.ExecuteBatch(w.batch(ctx, sts))
}

func (w sessionWriter) CAS(ctx context.Context, sts []Stmt) (bool, error) {
	if len(sts) == 1 {
		return w.s.Query(sts[0].CQL, sts[0].Args...).WithContext(ctx).MapScanCAS(map[string]any{})
	}
	applied, iter, err := w.s.ExecuteBatchCAS(w.batch(ctx, sts))
	if iter != nil {
		_ = iter.Close()
	}
	return applied, err
}

// WriteBatches writes sts in order in batches within l, each once the one before
// succeeded. It is not atomic: callers write rows nothing reads until a later write
// (their commit) refers to them, or rows a retry writes again.
func WriteBatches(ctx context.Context, w Writer, l BatchLimits, sts []Stmt) error {
	for _, b := range l.Chunk(sts) {
		if err := w.Batch(ctx, b); err != nil {
			return fmt.Errorf("batch of %d statements: %w", len(b), err)
		}
	}
	return nil
}
