package validate

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"testing"
)

// root is the repository's root, from this package's directory.
const root = "../.."

// testSecret is a token secret of the minimum length.
const testSecret = "validate-0123456789abcdef-0123456789"

// command runs fanline's bin with args and only env (plus PATH and HOME), so the
// test's own FANLINE_ variables do not leak in.
func command(bin string, env []string, args ...string) *exec.Cmd {
	cmd := exec.Command(bin, args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}, env...)
	return cmd
}

// run runs the command and returns its standard output; it fails the test unless the
// command succeeds.
func run(t *testing.T, bin string, env []string, args ...string) string {
	t.Helper()
	cmd := command(bin, env, args...)
	var stderr []byte
	out, err := cmd.Output()
	if ee, ok := err.(*exec.ExitError); ok {
		stderr = ee.Stderr
	}
	if err != nil {
		t.Fatalf("fanline %v: %v\n%s", args, err, stderr)
	}
	return string(out)
}

// binDir holds the fanline binary the tests share, built once by TestMain with the
// Dockerfile's build command.
var binDir string

func TestMain(m *testing.M) {
	var err error
	if binDir, err = os.MkdirTemp("", "fanline-validate"); err != nil {
		panic(err)
	}
	if err := dockerBuild(binDir); err != nil {
		os.RemoveAll(binDir)
		fmt.Fprintln(os.Stderr, "building with the Dockerfile's command:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(binDir)
	os.Exit(code)
}

// fanline is the shared binary's path.
func fanline(*testing.T) string { return binDir + "/fanline" }

// freeAddr is a loopback address with a port free at the time of the call.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startNode starts the embedded single node on addr, with a data directory of its
// own; it is killed when the test ends.
func startNode(t *testing.T, addr string) {
	t.Helper()
	srv := command(fanline(t), []string{"FANLINE_LOG_LEVEL=error"}, "serve", "--addr", addr, "--data", t.TempDir())
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		srv.Process.Kill()
		srv.Wait()
	})
}
