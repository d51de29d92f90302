package e2e

import (
	"os"
	"strings"
	"testing"

	"github.com/fanline/fanline/internal/wire"
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
