// Package testharness starts real servers for tests: the fanline binary as a child
// process on a free port. Every server it starts is stopped by the test's cleanup.
package testharness

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Binary builds cmd/fanline once per test process and returns its path.
func Binary(t testing.TB) string {
	t.Helper()
	bin, err := buildBinary()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

var buildBinary = sync.OnceValues(func() (string, error) {
	root, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("testharness: go env GOMOD: %w", err)
	}
	dir, err := os.MkdirTemp("", "fanline-bin")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "fanline")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/fanline")
	cmd.Dir = filepath.Dir(strings.TrimSpace(string(root)))
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("testharness: go build: %v\n%s", err, out)
	}
	return bin, nil
})

// FreeAddr returns a loopback address with a port free at the time of the call.
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// Server is a `fanline serve` child process.
type Server struct {
	Addr string
	Cmd  *exec.Cmd
	// Log is the file its output goes to.
	Log  string
	done chan struct{} // closed once the process was reaped
	err  error         // Wait's result, set before done is closed
}

// URL is the server's base URL.
func (s *Server) URL() string { return "http://" + s.Addr }

// Launch runs `fanline serve --addr addr --data data` with extra environment
// variables, its output appended to logPath, without waiting for it to be healthy
// (it may be meant to fail). The test's end kills it.
func Launch(t testing.TB, addr, data, logPath string, env ...string) *Server {
	t.Helper()
	cmd := exec.Command(Binary(t), "serve", "--addr", addr, "--data", data)
	cmd.Env = append(os.Environ(), env...)
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &Server{Addr: addr, Cmd: cmd, Log: logPath, done: make(chan struct{})}
	go func() {
		s.err = cmd.Wait()
		close(s.done)
	}()
	t.Cleanup(s.Kill)
	return s
}

// StartServer launches the server with its output in data + ".log" and waits until
// /healthz answers.
func StartServer(t testing.TB, addr, data string, env ...string) *Server {
	t.Helper()
	s := Launch(t, addr, data, data+".log", env...)
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(s.URL() + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("testharness: %s not healthy after 30s (log: %s)", addr, s.Log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Done is closed once the process has exited; Err then says how.
func (s *Server) Done() <-chan struct{} { return s.done }

// Err is the process's exit (exec.Cmd.Wait's result), once Done is closed.
func (s *Server) Err() error {
	<-s.done
	return s.err
}

// Kill stops the server with SIGKILL, as a crash would, and reaps it; a server that
// has exited already is left as it is.
func (s *Server) Kill() {
	select {
	case <-s.done:
	default:
		_ = s.Cmd.Process.Kill()
		<-s.done
	}
}
