package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/fanline/fanline/internal/testharness"
)

// TestBenchSmoke runs every available scenario for a few seconds against a real
// `fanline serve` and checks the JSON summary: everything sent was delivered, no
// errors, and each scenario's own figures are there.
func TestBenchSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("runs server and bench processes")
	}
	dir := t.TempDir()
	srv := testharness.StartServer(t, testharness.FreeAddr(t), filepath.Join(dir, "data"), "FANLINE_LIMITS_RATE_PER_SECOND=-1")
	pid := strconv.Itoa(srv.Cmd.Process.Pid)
	for _, tc := range []struct {
		name    string
		args    []string
		figures []string
		sent    bool
	}{
		{"direct", []string{"--users", "20", "--rate", "20", "--inflight", "2", "--procs", "2"},
			[]string{"server_cpu_us_per_msg", "server_cpu_us_per_delivery", "server_rss_kib_per_conn"}, true},
		{"direct", []string{"--users", "10", "--inflight", "2"}, nil, true},
		{"connections", []string{"--users", "200"}, []string{"server_kib_per_connection", "connect_seconds"}, false},
		{"sync", []string{"--messages", "300", "--conversations", "5", "--groups", "2", "--members", "600"}, []string{"sync_seconds", "conversations_found"}, true},
		{"cs", []string{"--users", "40", "--agents", "6", "--rate", "40", "--service", "200ms"}, []string{"max_queue_depth"}, true},
		{"group", []string{"--members", "600", "--users", "20", "--senders", "2", "--messages", "10", "--rate", "20", "--procs", "2"},
			[]string{"timeline_entries_per_msg", "stream_appends_per_msg", "storage_wal_kib_per_msg"}, true},
		// Lean receivers: only the senders use the SDK; every member still gets every message.
		{"group", []string{"--members", "600", "--users", "30", "--senders", "2", "--messages", "10", "--rate", "20", "--procs", "2", "--receivers", "lean"},
			[]string{"server_cpu_us_per_msg", "server_cpu_us_per_delivery", "server_rss_kib_per_conn"}, true},
	} {
		out := filepath.Join(dir, tc.name+".json")
		args := append([]string{"bench", tc.name, "--url", srv.URL(), "--duration", "2s", "--warmup", "500ms",
			"--pid", pid, "--json", out}, tc.args...)
		cmd := exec.Command(testharness.Binary(t), args...)
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("bench %v: %v\n%s", tc.args, err, b)
		}
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		var sum benchSummary
		if err := json.Unmarshal(b, &sum); err != nil {
			t.Fatal(err)
		}
		if sum.Errors != 0 || sum.Delivered != sum.Sent || (tc.sent && sum.Sent == 0) || sum.Connections == 0 ||
			sum.Server == nil || sum.Client == nil {
			t.Fatalf("%s %v: summary %s", tc.name, tc.args, b)
		}
		if (tc.name == "direct" || tc.name == "group" || tc.name == "cs") && (sum.Latency.Samples == 0 || sum.Latency.P99 < sum.Latency.P50) {
			t.Fatalf("direct latency %+v", sum.Latency)
		}
		for _, f := range tc.figures {
			if _, ok := sum.Figures[f]; !ok {
				t.Fatalf("%s: no figure %s in %s", tc.name, f, b)
			}
		}
		if tc.name == "sync" && sum.Figures["conversations_found"] != 7 {
			t.Fatalf("sync found %v conversations", sum.Figures["conversations_found"])
		}
		// 600 members: read-fanout, one stream append and no timeline entry a message.
		if tc.name == "group" && (sum.Figures["group_read_fanout"] != 1 || sum.Figures["stream_appends_per_msg"] != 1 ||
			sum.Figures["timeline_entries_per_msg"] != 0) {
			t.Fatalf("group figures %v", sum.Figures)
		}
	}
}

// TestBenchCold runs the cold scenario small: store, move, read every tier.
func TestBenchCold(t *testing.T) {
	if err := benchCold([]string{"--messages", "2000", "--conversations", "4", "--pages", "20", "--dir", t.TempDir()}); err != nil {
		t.Fatal(err)
	}
}
