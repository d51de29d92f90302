package cql

import (
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
