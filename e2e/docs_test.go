package e2e

import (
	"os"
	"strings"
	"testing"

	"github.com/fanline/fanline/internal/wire"
	"gopkg.in/yaml.v3"
)

// TestErrorCodesDocumented: every code a client can see is in docs/protocol.md and
// docs/openapi.yaml.
func TestErrorCodesDocumented(t *testing.T) {
	for _, doc := range []string{"../docs/protocol.md", "../docs/openapi.yaml"} {
		b, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range wire.Codes() {
			if !strings.Contains(string(b), string(c)) {
				t.Errorf("%s does not document error code %s", doc, c)
			}
		}
	}
}

// TestOpenAPICoversRoutes: docs/openapi.yaml parses, and documents every route the
// server serves with the same method (the console's pages aside).
func TestOpenAPICoversRoutes(t *testing.T) {
	b, err := os.ReadFile("../docs/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Paths map[string]map[string]any `yaml:"paths"`
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("openapi.yaml: %v", err)
	}
	ts := startServer(t, nil)
	for _, rt := range ts.srv.Routes() {
		if rt.Path == "/" || strings.HasPrefix(rt.Path, "/console/") || strings.HasPrefix(rt.Path, "/demo/") || strings.HasPrefix(rt.Path, "/debug/") {
			continue
		}
		path := rt.Path
		for _, p := range []string{"id", "shop_id", "object_key"} {
			path = strings.ReplaceAll(path, ":"+p, "{"+p+"}")
		}
		if _, ok := doc.Paths[path][strings.ToLower(rt.Method)]; !ok {
			t.Errorf("openapi.yaml does not document %s %s", rt.Method, path)
		}
	}
}
