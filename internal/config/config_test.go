package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLoadFileThenEnv(t *testing.T) {
	f := filepath.Join(t.TempDir(), "fanline.yaml")
	os.WriteFile(f, []byte("addr: 127.0.0.1:9000\ndev_mode: false\nauth:\n  jwt_secret: s3cret\nlimits:\n  rate_per_second: 5\nmessages:\n  recall_window: 2m\n"), 0o600)
	c, err := Load(f, []string{"FANLINE_KAFKA_BROKERS=h1:9092,h2:9092", "FANLINE_LIMITS_RATE_PER_SECOND=7.5", "FANLINE_GATEWAY_HEARTBEAT_TIMEOUT=5s", "FANLINE_NODE_ID=3", "OTHER=1"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != "127.0.0.1:9000" || c.Dev() || c.Limits.RatePerSecond != 7.5 || c.NodeID != 3 ||
		len(c.Kafka.Brokers) != 2 || c.Kafka.Brokers[1] != "h2:9092" ||
		time.Duration(c.Gateway.HeartbeatTimeout) != 5*time.Second || time.Duration(c.Messages.RecallWindow) != 2*time.Minute {
		t.Fatalf("loaded %+v", c)
	}
	if c.NodeName != "node-3" {
		t.Errorf("node_name %q, want node-3 (from node_id)", c.NodeName)
	}
	if m := c.Masked(); strings.Contains(m, "s3cret") || !strings.Contains(m, "***") {
		t.Fatalf("masked config shows the secret:\n%s", m)
	}
}

func TestLoadErrors(t *testing.T) {
	f := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(f, []byte("adr: x\n"), 0o600)
	if _, err := Load(f, nil); err == nil {
		t.Error("unknown key accepted")
	}
	if _, err := Load("", []string{"FANLINE_NODE_ID=x"}); err == nil {
		t.Error("bad env value accepted")
	}
	c, err := Load("", nil)
	if err != nil || !c.Dev() || c.Addr != "127.0.0.1:8080" || c.Limits.RateBurst != 200 ||
		time.Duration(c.Messages.RecallWindow) != 24*time.Hour || c.Queue.FanoutPartitions != 8 {
		t.Errorf("defaults: %+v %v", c, err)
	}
}

func TestCheckRoles(t *testing.T) {
	cluster := []string{"FANLINE_QUEUE_BACKEND=kafka", "FANLINE_PRESENCE_BACKEND=redis", "FANLINE_AUTH_JWT_SECRET=" + secret}
	for _, tc := range []struct {
		env []string
		ok  bool
	}{
		{nil, true},
		{[]string{"FANLINE_ROLES=gateway,dispatch"}, true},
		{[]string{"FANLINE_ROLES=gateway,web"}, false},
		{[]string{"FANLINE_ROLES=dispatch"}, false}, // split on embedded backends
		{append([]string{"FANLINE_ROLES=dispatch"}, cluster...), true},
		{append([]string{"FANLINE_ROLES=gateway"}, cluster...), false}, // no dispatch_url
		{append([]string{"FANLINE_ROLES=gateway", "FANLINE_CLUSTER_DISPATCH_URL=http://d:8080"}, cluster...), true},
		{[]string{"FANLINE_ROLES=dispatch", "FANLINE_QUEUE_BACKEND=kafka", "FANLINE_PRESENCE_BACKEND=redis"}, false}, // no shared secret
	} {
		c, err := Load("", tc.env)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Check(); (err == nil) != tc.ok {
			t.Errorf("%v: Check() = %v", tc.env, err)
		}
	}
	c, _ := Load("", nil)
	if !c.Has(RoleGateway) || !c.Has(RoleDispatch) {
		t.Errorf("default roles %v", c.Roles)
	}
}

const secret = "0123456789abcdef0123456789abcdef"

// TestDevModeRules: dev mode (anyone gets any token) is on only for the embedded
// single-process default; a secret, a JWKS, split roles or a public address turn it
// off unless dev_mode is written; short secrets and a missing key are refused.
func TestDevModeRules(t *testing.T) {
	cluster := []string{"FANLINE_QUEUE_BACKEND=kafka", "FANLINE_PRESENCE_BACKEND=redis", "FANLINE_AUTH_JWT_SECRET=" + secret}
	for _, tc := range []struct {
		name     string
		env      []string
		dev      bool
		explicit bool
		check    string // "" when Check passes, else part of its error
	}{
		{"embedded default", nil, true, false, ""},
		{"localhost", []string{"FANLINE_ADDR=localhost:8080"}, true, false, ""},
		{"ipv6 loopback", []string{"FANLINE_ADDR=[::1]:8080"}, true, false, ""},
		{"a secret", []string{"FANLINE_AUTH_JWT_SECRET=" + secret}, false, false, ""},
		{"a jwks", []string{"FANLINE_AUTH_JWKS_FILE=/etc/keys.json"}, false, false, ""},
		{"public address", []string{"FANLINE_ADDR=0.0.0.0:8080"}, false, false, "set auth.jwt_secret"},
		{"all interfaces", []string{"FANLINE_ADDR=:8080"}, false, false, "set auth.jwt_secret"},
		{"public with a secret", []string{"FANLINE_ADDR=0.0.0.0:8080", "FANLINE_AUTH_JWT_SECRET=" + secret}, false, false, ""},
		{"split roles", append([]string{"FANLINE_ROLES=dispatch"}, cluster...), false, false, ""},
		{"explicitly on, public", []string{"FANLINE_ADDR=0.0.0.0:8080", "FANLINE_DEV_MODE=true"}, true, true, ""},
		{"explicitly on, with a secret", []string{"FANLINE_DEV_MODE=true", "FANLINE_AUTH_JWT_SECRET=" + secret}, true, true, ""},
		{"explicitly off, no key", []string{"FANLINE_DEV_MODE=false"}, false, false, "set auth.jwt_secret"},
		{"short secret", []string{"FANLINE_AUTH_JWT_SECRET=short"}, false, false, "at least 32"},
		{"short secret in dev mode", []string{"FANLINE_DEV_MODE=true", "FANLINE_AUTH_JWT_SECRET=0123456789"}, true, true, "at least 32"},
	} {
		c, err := Load("", tc.env)
		if err != nil {
			t.Fatal(err)
		}
		err = c.Check()
		if c.Dev() != tc.dev || c.DevExplicit() != tc.explicit ||
			(tc.check == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.check)) {
			t.Errorf("%s: Dev()=%v DevExplicit()=%v Check()=%v", tc.name, c.Dev(), c.DevExplicit(), err)
		}
	}
}

// TestDeploymentConfigs: the example cluster configuration loads and is coherent
// once the secret comes from the environment, as its comments say.
func TestDeploymentConfigs(t *testing.T) {
	for _, f := range []string{"dispatch.yaml", "gateway.yaml"} {
		c, err := Load(filepath.Join("..", "..", "deployments", "cluster", f), []string{"FANLINE_AUTH_JWT_SECRET=from-the-environment-32-bytes-long"})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Check(); err != nil {
			t.Errorf("%s: %v", f, err)
		}
		if c.Dev() || c.Queue.Backend != "kafka" || c.Presence.Backend != "redis" {
			t.Errorf("%s: %+v", f, c)
		}
	}
}

// TestCassandraLimits: the batch bounds' defaults, and a group size a Cassandra
// batch cannot hold is refused.
func TestCassandraLimits(t *testing.T) {
	c, err := Load("", nil)
	if err != nil || c.Cassandra.BatchBytes != 32<<10 || c.Cassandra.BatchStatements != 500 {
		t.Fatalf("defaults: %d bytes, %d statements, %v", c.Cassandra.BatchBytes, c.Cassandra.BatchStatements, err)
	}
	for _, tc := range []struct {
		env []string
		ok  bool
	}{
		{[]string{"FANLINE_LIMITS_MAX_GROUP_MEMBERS=40000"}, true},
		{[]string{"FANLINE_GROUPSTREAM_BACKEND=cassandra", "FANLINE_LIMITS_MAX_GROUP_MEMBERS=32000"}, true},
		{[]string{"FANLINE_GROUPSTREAM_BACKEND=cassandra", "FANLINE_LIMITS_MAX_GROUP_MEMBERS=40000"}, false},
	} {
		c, err := Load("", tc.env)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Check(); (err == nil) != tc.ok {
			t.Errorf("%v: Check() = %v", tc.env, err)
		}
	}
}

// TestUnknownEnv: FANLINE_ variables that name no key are found, the others not.
func TestUnknownEnv(t *testing.T) {
	got := UnknownEnv([]string{"FANLINE_QUEUE_BACKEND=kafka", "FANLINE_QUEUE_BACKENDS=x", "FANLINE_KAFKA_BROKERS=a:1",
		"FANLINE_NODE_ID=x", "FANLINE_LIMITS=1", "PATH=/bin"})
	if strings.Join(got, " ") != "FANLINE_LIMITS FANLINE_QUEUE_BACKENDS" {
		t.Fatalf("unknown %v", got)
	}
}

// TestSecretFiles: a secret can come from a file (white space trimmed), never from a
// file and a value at once, and an unreadable or empty file is an error.
func TestSecretFiles(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "jwt")
	os.WriteFile(f, []byte("  "+secret+"\n"), 0o600)
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, []byte("\n"), 0o600)
	c, err := Load("", []string{"FANLINE_AUTH_JWT_SECRET_FILE=" + f, "FANLINE_REDIS_PASSWORD_FILE=" + f})
	if err != nil || c.Auth.JWTSecret != secret || c.Redis.Password != secret {
		t.Fatalf("from files: %q %q %v", c.Auth.JWTSecret, c.Redis.Password, err)
	}
	for _, env := range [][]string{
		{"FANLINE_AUTH_JWT_SECRET_FILE=" + f, "FANLINE_AUTH_JWT_SECRET=" + secret},
		{"FANLINE_MINIO_SECRET_KEY_FILE=" + filepath.Join(dir, "missing")},
		{"FANLINE_CASSANDRA_PASSWORD_FILE=" + empty},
	} {
		if _, err := Load("", env); err == nil {
			t.Errorf("%v accepted", env)
		}
	}
}
