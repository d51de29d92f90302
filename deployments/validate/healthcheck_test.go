package validate

import (
	"net"
	"strings"
	"testing"
	"time"
)

// TestHealthcheck: the image's HEALTHCHECK command fails while nothing serves and
// passes once a node answers /healthz.
func TestHealthcheck(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	url := "http://" + addr + "/healthz"
	bin := fanline(t)
	if out, err := command(bin, nil, "healthcheck", "--url", url).CombinedOutput(); err == nil {
		t.Fatalf("healthcheck passed with nothing serving: %s", out)
	}
	srv := command(bin, nil, "serve", "--addr", addr, "--data", t.TempDir())
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		srv.Process.Kill()
		srv.Wait()
	}()
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
