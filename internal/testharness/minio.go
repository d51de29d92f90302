package testharness

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// MinIOVersion is the MinIO server the tests run, built once with
// `go install github.com/minio/minio@` + MinIOVersion (into $HOME/go/bin; .ci/run does
// it when it is missing).
const MinIOVersion = "v0.0.0-20260212201848-7aac2a2c5b7c"

// MinIOServer is a private MinIO server a test can stop and start again.
type MinIOServer struct {
	// Addr is the server's host:port; it stays the same across restarts, and so do
	// the data directory and the credentials.
	Addr                 string
	AccessKey, SecretKey string
	bin, dir             string

	mu  sync.Mutex // guards cmd
	cmd *exec.Cmd
}

func minioBinary(t testing.TB) string {
	if p, err := exec.LookPath("minio"); err == nil {
		return p
	}
	home, _ := os.UserHomeDir()
	p := filepath.Join(home, "go", "bin", "minio")
	if _, err := os.Stat(p); err == nil {
		return p
	}
	if requireServices() {
		t.Fatalf("the MinIO server is not installed and FANLINE_REQUIRE_SERVICES=1 (go install github.com/minio/minio@%s)", MinIOVersion)
	}
	t.Skipf("the MinIO server is not installed (go install github.com/minio/minio@%s); skipping", MinIOVersion)
	return ""
}

// StartMinIO runs a MinIO server on a free loopback port with a data directory and
// random root credentials of its own, and waits until it is ready. It is killed at
// cleanup.
func StartMinIO(t testing.TB) *MinIOServer {
	t.Helper()
	key := make([]byte, 16)
	_, _ = rand.Read(key)
	m := &MinIOServer{Addr: FreeAddr(t), AccessKey: "fanline" + hex.EncodeToString(key[:4]), SecretKey: hex.EncodeToString(key),
		bin: minioBinary(t), dir: t.TempDir()}
	m.Start(t)
	t.Cleanup(m.Stop)
	return m
}

// Start runs the server (again) and waits until /minio/health/cluster answers (it
// can serve reads and writes).
func (m *MinIOServer) Start(t testing.TB) {
	t.Helper()
	cmd := exec.Command(m.bin, "server", "--quiet", "--address", m.Addr, "--console-address", FreeAddr(t), m.dir)
	cmd.Env = append(os.Environ(), "MINIO_ROOT_USER="+m.AccessKey, "MINIO_ROOT_PASSWORD="+m.SecretKey,
		"MINIO_BROWSER=off", "MINIO_UPDATE=off")
	if err := cmd.Start(); err != nil {
		t.Fatalf("testharness: start minio: %v", err)
	}
	m.mu.Lock()
	m.cmd = cmd
	m.mu.Unlock()
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get("http://" + m.Addr + "/minio/health/cluster")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("testharness: minio on %s not ready after 60s", m.Addr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop kills the server (an outage); Start brings it back with its data.
func (m *MinIOServer) Stop() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd != nil {
		_ = m.cmd.Process.Kill()
		_ = m.cmd.Wait()
		m.cmd = nil
	}
}
