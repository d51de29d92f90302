package e2e

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

// TestImportRules enforces DESIGN.md's layering: imports point downward only, storage
// never imports the access layer, internal/ never imports a domain package, the SDK
// depends only on the wire types, and no catch-all packages exist.
func TestImportRules(t *testing.T) {
	out, err := exec.Command("go", "list", "-json", "../...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	const mod = "github.com/fanline/fanline/"
	// forbidden[p] lists what package p (and its subpackages) must not import.
	forbidden := map[string][]string{
		"internal":    {"gateway", "dispatch", "timeline", "groupstream", "cs-routing", "coldstore", "web", "client", "server", "cmd"},
		"timeline":    {"gateway", "dispatch", "groupstream", "cs-routing", "coldstore", "client", "server", "cmd"},
		"groupstream": {"gateway", "dispatch", "timeline", "cs-routing", "coldstore", "client", "server", "cmd"},
		"coldstore":   {"gateway", "dispatch", "timeline", "groupstream", "cs-routing", "client", "server", "cmd"},
		"dispatch":    {"gateway", "cs-routing", "client", "server", "cmd"},
		"cs-routing":  {"gateway", "dispatch", "client", "server", "cmd"},
		"gateway":     {"timeline", "groupstream", "client", "server", "cmd"},
		"client":      {"gateway", "dispatch", "timeline", "groupstream", "cs-routing", "coldstore", "server", "cmd", "internal/queue", "internal/kv"},
		"server":      {"cmd", "client"},
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	checked := 0
	for dec.More() {
		var p struct {
			ImportPath string
			Name       string
			Imports    []string
		}
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		rel := strings.TrimPrefix(p.ImportPath, mod)
		switch p.Name {
		case "utils", "util", "common", "helpers":
			t.Errorf("%s: catch-all package name %q", p.ImportPath, p.Name)
		}
		for layer, bad := range forbidden {
			if rel != layer && !strings.HasPrefix(rel, layer+"/") {
				continue
			}
			for _, imp := range p.Imports {
				r := strings.TrimPrefix(imp, mod)
				if r == imp {
					continue
				}
				for _, b := range bad {
					if r == b || strings.HasPrefix(r, b+"/") {
						t.Errorf("%s imports %s", rel, r)
					}
				}
			}
		}
		checked++
	}
	if checked < 10 {
		t.Fatalf("only %d packages listed", checked)
	}
}
