package validate

import (
	"strings"
	"testing"
	"time"
)

// TestHealthcheck: the image's HEALTHCHECK command fails while nothing serves and
// passes once a node answers /healthz.
func TestHealthcheck(t *testing.T) {
	addr := freeAddr(t)
	url := "http://" + addr + "/healthz"
	bin := fanline(t)
	if out, err := command(bin, nil, "healthcheck", "--url", url).CombinedOutput(); err == nil {
		t.Fatalf("healthcheck passed with nothing serving: %s", out)
	}
	startNode(t, addr)
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, err := command(bin, nil, "healthcheck", "--url", url).CombinedOutput()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("healthcheck still fails 30 s after start: %s", strings.TrimSpace(string(out)))
		}
		time.Sleep(100 * time.Millisecond)
	}
}
