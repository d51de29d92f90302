// Package cqltest checks a store's CQL statements against its schema without a
// Cassandra server: tables exist, every named column is declared, reads and updates
// fix the whole partition key (but a SELECT DISTINCT without WHERE: a scan of every
// partition), inserts bind one value per column.
package cqltest

import (
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/fanline/fanline/internal/cql"
)

// table is a CREATE TABLE statement's columns and keys.
type table struct {
	columns    map[string]bool
	partition  []string
	clustering []string
}

var (
	createRe = regexp.MustCompile(`^CREATE TABLE IF NOT EXISTS (\w+) \((.*), PRIMARY KEY \(\(([^)]*)\)(?:, ([^)]*))?\)\)( WITH .*)?$`)
	wordRe   = regexp.MustCompile(`[A-Za-z_]\w*`)
	tableRe  = regexp.MustCompile(`(?:FROM|INTO|UPDATE) (\w+)`)
	whereRe  = regexp.MustCompile(`(\w+) (?:=|>|<|<=|>=) \?`)
	keywords = map[string]bool{"SELECT": true, "FROM": true, "WHERE": true, "AND": true, "LIMIT": true, "INSERT": true,
		"INTO": true, "VALUES": true, "IF": true, "NOT": true, "EXISTS": true, "UPDATE": true, "SET": true,
		"USING": true, "TTL": true, "ORDER": true, "BY": true, "DESC": true, "ASC": true, "DELETE": true, "DISTINCT": true, "null": true}
)

func parseSchema(t *testing.T, s cql.Schema) map[string]table {
	t.Helper()
	out := map[string]table{}
	for _, stmt := range s.Statements {
		stmt = strings.Join(strings.Fields(stmt), " ")
		m := createRe.FindStringSubmatch(stmt)
		if m == nil {
			t.Fatalf("%s: not a CREATE TABLE IF NOT EXISTS with a PRIMARY KEY: %s", s.Name, stmt)
		}
		tb := table{columns: map[string]bool{}, partition: wordRe.FindAllString(m[3], -1), clustering: wordRe.FindAllString(m[4], -1)}
		for _, col := range strings.Split(m[2], ",") {
			tb.columns[wordRe.FindString(col)] = true
		}
		for _, k := range slices.Concat(tb.clustering, tb.partition) {
			if !tb.columns[k] {
				t.Fatalf("%s: key column %s is not declared", m[1], k)
			}
		}
		out[m[1]] = tb
	}
	return out
}

// Check checks stmts against schema.
func Check(t *testing.T, schema cql.Schema, stmts ...string) {
	t.Helper()
	tables := parseSchema(t, schema)
	for _, s := range stmts {
		m := tableRe.FindStringSubmatch(s)
		if m == nil {
			t.Errorf("no table in %q", s)
			continue
		}
		tb, ok := tables[m[1]]
		if !ok {
			t.Errorf("%q names table %s, not in schema %s", s, m[1], schema.Name)
			continue
		}
		for _, w := range wordRe.FindAllString(strings.Replace(s, m[1], "", 1), -1) {
			if !keywords[w] && !tb.columns[w] {
				t.Errorf("%q: %s is not a column of %s", s, w, m[1])
			}
		}
		scan := strings.HasPrefix(s, "SELECT DISTINCT") && !strings.Contains(s, " WHERE ")
		if !scan && (strings.HasPrefix(s, "SELECT") || strings.HasPrefix(s, "UPDATE") || strings.HasPrefix(s, "DELETE")) {
			i := strings.Index(s, "WHERE")
			if i < 0 {
				t.Errorf("%q has no WHERE", s)
				continue
			}
			where := s[i:]
			restricted := map[string]bool{}
			for _, w := range whereRe.FindAllStringSubmatch(where, -1) {
				restricted[w[1]] = true
			}
			for _, k := range tb.partition {
				if !restricted[k] || !strings.Contains(where, k+" = ?") {
					t.Errorf("%q does not fix partition key column %s", s, k)
				}
			}
		}
		if strings.HasPrefix(s, "INSERT") {
			v := strings.Index(s, "VALUES")
			cols := strings.Count(s[:v], ",") + 1
			vals := strings.Count(s[v:strings.Index(s[v:], ")")+v], ",") + 1
			if cols != vals {
				t.Errorf("%q: %d columns, %d values", s, cols, vals)
			}
		}
	}
}
