package cqltest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/fanline/fanline/internal/cql"
)

// Call is one call a Recorder took: "exec", "batch" or "cas", and its statements.
// NotApplied marks a conditional batch whose conditions did not hold (with
// Recorder.Conditions): it wrote nothing.
type Call struct {
	Kind       string
	Stmts      []cql.Stmt
	NotApplied bool
}

// Row is a row's columns but its key, as written, by name (a literal of the
// statement's text, such as 0 or null, as written there).
type Row map[string]any

// Recorder is a cql.Writer that runs nothing. It records the calls it takes, in
// order, and the rows they leave: each INSERT, UPDATE or DELETE writes or deletes the
// row its primary key names (a statement without a table's clustering columns
// writes the partition's static row), and within one batch, whose statements share
// a timestamp, a deletion wins. Nothing else of CQL is modelled: conditions are
// evaluated only with Conditions (otherwise every CAS applies), TTLs never expire,
// nothing is read.
//
// FailAt simulates a crash: the call holding the FailAt-th statement written fails,
// whole (as a logged batch fails: none of it is recorded), and so does every call
// after it until Restart.
//
// With Conditions set, a CAS checks its statements' conditions on the rows recorded
// (IF NOT EXISTS and IF EXISTS: whether the row the statement names exists, the
// static row for a statement without the clustering columns; IF col = ? AND ...:
// the row's values, compared as written, a literal by its text) and, unless all
// hold, writes nothing and reports false; its statements still count as written.
type Recorder struct {
	FailAt     int
	Conditions bool
	Calls      []Call

	t       *testing.T
	tables  map[string]table
	shapes  map[string]shape          // statement text -> parsed
	rows    map[string]map[string]Row // table -> Key -> row
	written int                       // statements recorded
	down    bool
}

var _ cql.Writer = (*Recorder)(nil)

// ErrCrashed is what a Recorder's calls return from FailAt on.
var ErrCrashed = errors.New("cqltest: crashed")

// NewRecorder returns a Recorder of writes to the tables of schemas.
func NewRecorder(t *testing.T, schemas ...cql.Schema) *Recorder {
	r := &Recorder{t: t, tables: map[string]table{}, shapes: map[string]shape{}, rows: map[string]map[string]Row{}}
	for _, s := range schemas {
		for name, tb := range parseSchema(t, s) {
			r.tables[name] = tb
		}
	}
	return r
}

// Restart lets calls through again after a crash (FailAt 0).
func (r *Recorder) Restart() { r.FailAt, r.down = 0, false }

// Written is how many statements the recorder took.
func (r *Recorder) Written() int { return r.written }

// Rows returns table's rows by Key. Callers must not modify them.
func (r *Recorder) Rows(table string) map[string]Row { return r.rows[table] }

// Key is the Rows key of the row whose primary key columns have values vals, in the
// schema's order (partition key, then clustering).
func Key(vals ...any) string {
	parts := make([]string, len(vals))
	for i, v := range vals {
		if b, ok := v.([]byte); ok {
			v = string(b)
		}
		parts[i] = fmt.Sprint(v)
	}
	return strings.Join(parts, "/")
}

// Exec implements cql.Writer.
func (r *Recorder) Exec(_ context.Context, st cql.Stmt) error { return r.take("exec", []cql.Stmt{st}) }

// Batch implements cql.Writer.
func (r *Recorder) Batch(_ context.Context, sts []cql.Stmt) error { return r.take("batch", sts) }

// CAS implements cql.Writer: the conditions hold unless Conditions is set and the
// rows recorded fail them.
func (r *Recorder) CAS(_ context.Context, sts []cql.Stmt) (bool, error) {
	r.t.Helper()
	if r.Conditions && !r.crashing(len(sts)) {
		held, err := r.hold(sts)
		if err != nil {
			r.t.Errorf("cqltest: %v", err)
			return false, err
		}
		if !held {
			r.written += len(sts)
			r.Calls = append(r.Calls, Call{Kind: "cas", Stmts: sts, NotApplied: true})
			return false, nil
		}
	}
	err := r.take("cas", sts)
	return err == nil, err
}

// crashing reports whether a call of n statements fails as crashed.
func (r *Recorder) crashing(n int) bool {
	return r.down || (r.FailAt > 0 && r.written+n >= r.FailAt)
}

// hold reports whether the conditions of every statement of sts hold on the rows
// recorded.
func (r *Recorder) hold(sts []cql.Stmt) (bool, error) {
	for _, st := range sts {
		w, cond, err := r.resolve(st)
		if err != nil {
			return false, fmt.Errorf("%q: %v", st.CQL, err)
		}
		row, exists := r.rows[w.table][w.key]
		switch c := r.shapes[st.CQL].cond; c {
		case "":
		case "NOT EXISTS", "EXISTS":
			if exists != (c == "EXISTS") {
				return false, nil
			}
		default:
			cols, vals, err := assignments(c, " AND ")
			if err != nil {
				return false, fmt.Errorf("%q: %v", st.CQL, err)
			}
			want, err := bind(cols, vals, &cond)
			if err != nil {
				return false, fmt.Errorf("%q: condition: %v", st.CQL, err)
			}
			for col, v := range want {
				if !exists || !sameValue(row[col], v) {
					return false, nil
				}
			}
		}
	}
	return true, nil
}

// sameValue compares two values of a cell: blobs by their bytes, anything else by
// its text (a literal such as 1 is recorded as written).
func sameValue(a, b any) bool {
	if ab, ok := a.([]byte); ok {
		bb, ok := b.([]byte)
		return ok && bytes.Equal(ab, bb)
	}
	return a != nil && fmt.Sprint(a) == fmt.Sprint(b)
}

func (r *Recorder) take(kind string, sts []cql.Stmt) error {
	r.t.Helper()
	if r.crashing(len(sts)) {
		r.down = true
		return ErrCrashed
	}
	// The statements of a batch share a write timestamp, and Cassandra resolves a
	// tie for a tombstone: a row deleted in a batch stays deleted whatever else the
	// batch writes to it. A tie of two values of a cell goes to the greater value,
	// not the later statement: none of the stores' batches writes a cell twice.
	ws := make([]rowWrite, len(sts))
	cells := map[string]any{}
	for i, st := range sts {
		w, _, err := r.resolve(st)
		if err != nil {
			r.t.Errorf("cqltest: %q: %v", st.CQL, err)
			return err
		}
		for c, v := range w.set {
			cell := w.table + "|" + w.key + "|" + c
			if old, ok := cells[cell]; ok && !reflect.DeepEqual(old, v) {
				r.t.Errorf("cqltest: one batch writes %s twice (%q, %q): Cassandra keeps the greater value", cell, old, v)
			}
			cells[cell] = v
		}
		ws[i] = w
	}
	for _, del := range []bool{false, true} {
		for _, w := range ws {
			if w.del == del {
				r.put(w)
			}
		}
	}
	r.written += len(sts)
	r.Calls = append(r.Calls, Call{Kind: kind, Stmts: sts})
	return nil
}

var (
	insertRe = regexp.MustCompile(`^INSERT INTO (\w+) \(([^)]*)\) VALUES \(([^)]*)\)`)
	updateRe = regexp.MustCompile(`^UPDATE (\w+)(?: USING TTL \d+)? SET (.*?) WHERE (.*?)(?: IF .*)?$`)
	deleteRe = regexp.MustCompile(`^DELETE FROM (\w+) WHERE (.*?)(?: IF .*)?$`)
)

// bind pairs columns with values: ? takes the next argument, anything else is a
// literal.
func bind(cols, vals []string, args *[]any) (Row, error) {
	if len(cols) != len(vals) {
		return nil, fmt.Errorf("%d columns, %d values", len(cols), len(vals))
	}
	row := Row{}
	for i, c := range cols {
		v := any(vals[i])
		if vals[i] == "?" {
			if len(*args) == 0 {
				return nil, errors.New("too few values bound")
			}
			v, *args = (*args)[0], (*args)[1:]
		}
		row[c] = v
	}
	return row, nil
}

// assignments splits "a = ?, b = 1" (sep ",") or "a = ? AND b = ?" (sep " AND ").
func assignments(s, sep string) (cols, vals []string, err error) {
	for _, part := range strings.Split(s, sep) {
		c, v, ok := strings.Cut(part, "=")
		if !ok {
			return nil, nil, fmt.Errorf("%q is not col = value", part)
		}
		cols, vals = append(cols, strings.TrimSpace(c)), append(vals, strings.TrimSpace(v))
	}
	return cols, vals, nil
}

func split(s string) []string {
	out := strings.Split(s, ",")
	for i := range out {
		out[i] = strings.TrimSpace(out[i])
	}
	return out
}

// shape is a write statement's text, parsed: its table and which columns it sets
// and keys, to what (? or a literal), and its condition (the text after IF).
type shape struct {
	table                string
	setCols, setVals     []string
	whereCols, whereVals []string // the same as set's for an INSERT
	insert, del          bool
	cond                 string
}

func parse(stmt string) (sh shape, err error) {
	defer func() {
		if i := strings.LastIndex(stmt, " IF "); i >= 0 {
			sh.cond = strings.TrimSpace(stmt[i+len(" IF "):])
		}
	}()
	switch {
	case insertRe.MatchString(stmt):
		m := insertRe.FindStringSubmatch(stmt)
		sh = shape{table: m[1], setCols: split(m[2]), setVals: split(m[3]), insert: true}
		sh.whereCols, sh.whereVals = sh.setCols, sh.setVals
	case updateRe.MatchString(stmt):
		m := updateRe.FindStringSubmatch(stmt)
		sh.table = m[1]
		if sh.setCols, sh.setVals, err = assignments(m[2], ","); err == nil {
			sh.whereCols, sh.whereVals, err = assignments(m[3], " AND ")
		}
	case deleteRe.MatchString(stmt):
		m := deleteRe.FindStringSubmatch(stmt)
		sh.table, sh.del = m[1], true
		sh.whereCols, sh.whereVals, err = assignments(m[2], " AND ")
	default:
		err = errors.New("not an INSERT, UPDATE or DELETE")
	}
	return sh, err
}

// rowWrite is what one statement does: set columns of a row, or delete it.
type rowWrite struct {
	table, key string
	set        Row
	del        bool
}

func (r *Recorder) put(w rowWrite) {
	if r.rows[w.table] == nil {
		r.rows[w.table] = map[string]Row{}
	}
	if w.del {
		delete(r.rows[w.table], w.key)
		return
	}
	row := r.rows[w.table][w.key]
	if row == nil {
		row = Row{}
		r.rows[w.table][w.key] = row
	}
	for c, v := range w.set {
		row[c] = v
	}
}

// resolve returns the row st writes and the columns it sets but the key, and the
// values bound to its condition.
func (r *Recorder) resolve(st cql.Stmt) (rowWrite, []any, error) {
	sh, ok := r.shapes[st.CQL]
	if !ok {
		var err error
		if sh, err = parse(st.CQL); err != nil {
			return rowWrite{}, nil, err
		}
		r.shapes[st.CQL] = sh
	}
	args := st.Args
	name, del := sh.table, sh.del
	var set, where Row
	var err error
	if !del {
		if set, err = bind(sh.setCols, sh.setVals, &args); err != nil {
			return rowWrite{}, nil, err
		}
	}
	if sh.insert {
		where = set
	} else if where, err = bind(sh.whereCols, sh.whereVals, &args); err != nil {
		return rowWrite{}, nil, err
	}
	if len(args) > 0 && !strings.Contains(st.CQL, " IF ") {
		return rowWrite{}, nil, fmt.Errorf("%d values bound too many", len(args))
	}
	tb, ok := r.tables[name]
	if !ok {
		return rowWrite{}, nil, fmt.Errorf("no table %s", name)
	}
	var key []any
	for _, k := range tb.partition {
		v, ok := where[k]
		if !ok {
			return rowWrite{}, nil, fmt.Errorf("partition key column %s not given", k)
		}
		key = append(key, v)
	}
	for _, k := range tb.clustering {
		if v, ok := where[k]; ok {
			key = append(key, v)
		} else if del || len(key) > len(tb.partition) {
			return rowWrite{}, nil, fmt.Errorf("clustering column %s not given", k)
		}
	}
	w := rowWrite{table: name, key: Key(key...), set: Row{}, del: del}
	for c, v := range set {
		if !tb.columns[c] {
			return rowWrite{}, nil, fmt.Errorf("no column %s in %s", c, name)
		}
		if !slices.Contains(tb.partition, c) && !slices.Contains(tb.clustering, c) {
			w.set[c] = v
		}
	}
	return w, args, nil
}
