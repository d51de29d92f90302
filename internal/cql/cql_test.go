package cql

import (
	"fmt"
	"testing"
	"time"
)

func TestConfig(t *testing.T) {
	c := Config{Hosts: []string{"h1"}}
	stmt, err := c.KeyspaceStatement()
	if err != nil || stmt != "CREATE KEYSPACE IF NOT EXISTS fanline WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 3}" {
		t.Fatalf("default: %q %v", stmt, err)
	}
	c = Config{Hosts: []string{"h1"}, Keyspace: "im", LocalDC: "eu1"}
	if err := c.fill(); err != nil || c.Replication != "{'class': 'NetworkTopologyStrategy', 'eu1': 3}" ||
		c.Consistency != "LOCAL_QUORUM" || c.Timeout != 5*time.Second {
		t.Fatalf("with a local DC: %+v %v", c, err)
	}
	cl := c.cluster(c.Keyspace)
	if cl.Keyspace != "im" || cl.Consistency.String() != "LOCAL_QUORUM" || cl.SerialConsistency.String() != "LOCAL_SERIAL" {
		t.Fatalf("cluster: %+v", cl)
	}
	for _, bad := range []Config{
		{},
		{Hosts: []string{"h"}, Keyspace: "drop table x"},
		{Hosts: []string{"h"}, Replication: "{'class': 'SimpleStrategy'}; DROP KEYSPACE x"},
		{Hosts: []string{"h"}, Replication: "SimpleStrategy"},
		{Hosts: []string{"h"}, Consistency: "MOST"},
	} {
		if err := bad.fill(); err == nil {
			t.Errorf("accepted %+v", bad)
		}
	}
}

func TestChunk(t *testing.T) {
	row := func(n int) Stmt { return Q("INSERT INTO t (k, v) VALUES (?, ?)", "k", make([]byte, n)) }
	// A row of a 1-byte key and an n-byte value: 16 + 8+1 + 8+n.
	if got := row(100).Size(); got != 133 {
		t.Errorf("Size = %d, want 133", got)
	}
	if got := Q("UPDATE t SET a = ? WHERE k = ?", int64(1), time.Now()).Size(); got != 16+16+16 {
		t.Errorf("Size of two fixed-size values = %d", got)
	}
	for _, tc := range []struct {
		name  string
		l     BatchLimits
		sts   []Stmt
		sizes []int // statements per batch
	}{
		{"empty", BatchLimits{}, nil, nil},
		{"one batch", BatchLimits{}, []Stmt{row(10), row(10)}, []int{2}},
		{"by bytes", BatchLimits{Bytes: 300}, []Stmt{row(100), row(100), row(100), row(100), row(100)}, []int{2, 2, 1}},
		{"by count", BatchLimits{Statements: 2}, []Stmt{row(1), row(1), row(1), row(1), row(1)}, []int{2, 2, 1}},
		{"oversize alone", BatchLimits{Bytes: 300}, []Stmt{row(10), row(1000), row(10)}, []int{1, 1, 1}},
		{"default count", BatchLimits{}, make([]Stmt, 1201), []int{500, 500, 201}},
	} {
		got := tc.l.Chunk(tc.sts)
		var sizes []int
		n := 0
		for _, b := range got {
			sizes = append(sizes, len(b))
			for _, st := range b {
				if st.CQL != tc.sts[n].CQL || len(st.Args) != len(tc.sts[n].Args) {
					t.Errorf("%s: statement %d out of order", tc.name, n)
				}
				n++
			}
		}
		if n != len(tc.sts) || fmt.Sprint(sizes) != fmt.Sprint(tc.sizes) {
			t.Errorf("%s: batches of %v statements (%d in all), want %v", tc.name, sizes, n, tc.sizes)
		}
	}
	// Default bytes: 32 KiB of 1 KiB rows.
	var rows []Stmt
	for range 100 {
		rows = append(rows, row(1000))
	}
	for _, b := range (BatchLimits{}).Chunk(rows) {
		size := 0
		for _, st := range b {
			size += st.Size()
		}
		if size > DefaultBatchBytes {
			t.Errorf("a batch of %d bytes", size)
		}
	}
	if n := len((BatchLimits{}).Chunk(rows)); n != 4 {
		t.Errorf("100 rows of 1 KiB: %d batches, want 4", n)
	}
}
