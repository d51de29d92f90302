package validate

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-systemd/v22/unit"
)

// TestSystemdUnit: the unit parses with go-systemd's parser, runs as its own user
// with the hardening options set, stops after longer than the server's drain, and
// its ExecStartPre (the same check as ExecStart's configuration) accepts the example
// production configuration with the secret from the credential the unit loads.
func TestSystemdUnit(t *testing.T) {
	f, err := os.Open(filepath.Join(root, "deployments", "systemd", "fanline.service"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	opts, err := unit.DeserializeOptions(f)
	if err != nil {
		t.Fatal(err)
	}
	svc := map[string][]string{}
	for _, o := range opts {
		if o.Section == "Service" {
			svc[o.Name] = append(svc[o.Name], o.Value)
		}
	}
	one := func(name string) string {
		if v := svc[name]; len(v) == 1 {
			return v[0]
		}
		t.Errorf("[Service] %s: %q, want one value", name, svc[name])
		return ""
	}
	if u := one("User"); u == "" || u == "root" {
		t.Errorf("User=%q, want a user of its own", u)
	}
	for name, want := range map[string]string{
		"NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
		"PrivateDevices": "yes", "CapabilityBoundingSet": "", "RestrictSUIDSGID": "yes", "StateDirectory": "fanline",
		"MemoryDenyWriteExecute": "yes", "LockPersonality": "yes",
	} {
		if got := one(name); got != want {
			t.Errorf("%s=%q, want %q", name, got, want)
		}
	}
	if stop, err := time.ParseDuration(one("TimeoutStopSec")); err != nil || stop <= 10*time.Second {
		t.Errorf("TimeoutStopSec=%v (%v), want longer than the server's 10 s drain", stop, err)
	}
	start := strings.Fields(one("ExecStart"))
	check := strings.Fields(one("ExecStartPre"))
	if len(start) < 2 || start[1] != "serve" || strings.Join(append(start[1:], "--check-config"), " ") != strings.Join(check[1:], " ") {
		t.Fatalf("ExecStartPre %q should check what ExecStart %q serves", check, start)
	}

	// The credential: LoadCredential=NAME:PATH appears as $CREDENTIALS_DIRECTORY/NAME (%d).
	creds := t.TempDir()
	for _, lc := range svc["LoadCredential"] {
		name, _, _ := strings.Cut(lc, ":")
		os.WriteFile(filepath.Join(creds, name), []byte(testSecret+"\n"), 0o600)
	}
	var env []string
	for _, e := range svc["Environment"] {
		env = append(env, strings.ReplaceAll(e, "%d", creds))
	}
	args := check[1:]
	for i, a := range args {
		if a == "/etc/fanline/fanline.yaml" { // installed from the example, as the unit's comment says
			args[i] = filepath.Join(root, "deployments", "fanline.production.yaml")
		}
	}
	out := run(t, fanline(t), env, args...)
	if !strings.Contains(out, "configuration ok") || !strings.Contains(out, "dev mode false") {
		t.Errorf("check-config printed %q", out)
	}
}
