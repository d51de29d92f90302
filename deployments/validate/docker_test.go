package validate

import (
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

// The version and commit the test stamps, as a release build passes them.
const (
	testVersion = "v0.0.0-validate"
	testCommit  = "abc1234"
)

// image is the Dockerfile, parsed by BuildKit's own parser.
type image struct {
	build, final instructions.Stage
	args         map[string]string // the build stage's ARG defaults
}

// parseDockerfile parses the Dockerfile; warnings are the parser's complaints.
func parseDockerfile() (img image, warnings []string, err error) {
	f, err := os.Open(filepath.Join(root, "deployments", "docker", "Dockerfile"))
	if err != nil {
		return img, nil, err
	}
	defer f.Close()
	res, err := parser.Parse(f)
	if err != nil {
		return img, nil, err
	}
	for _, w := range res.Warnings {
		warnings = append(warnings, w.Short)
	}
	stages, _, err := instructions.Parse(res.AST, nil)
	if err != nil {
		return img, nil, err
	}
	if len(stages) < 2 {
		return img, nil, fmt.Errorf("%d stages, want a build stage and a runtime stage", len(stages))
	}
	img = image{build: stages[0], final: stages[len(stages)-1], args: map[string]string{}}
	for _, c := range img.build.Commands {
		if a, ok := c.(*instructions.ArgCommand); ok {
			for _, kv := range a.Args {
				if kv.Value != nil {
					img.args[kv.Key] = *kv.Value
				}
			}
		}
	}
	return img, warnings, nil
}

// commands returns the stage's commands of type T.
func commands[T instructions.Command](s instructions.Stage) []T {
	var out []T
	for _, c := range s.Commands {
		if v, ok := c.(T); ok {
			out = append(out, v)
		}
	}
	return out
}

// TestDockerfile: a multi-stage build of a static, stamped binary onto a minimal
// image that runs as a non-root user, with a health check, a data volume and the
// port; the binary built with the Dockerfile's own build command (static, no
// dynamic loader) reports the stamped version, and the configuration the image's
// environment makes is one `serve --check-config` accepts once a secret is given.
func TestDockerfile(t *testing.T) {
	img, warnings, err := parseDockerfile()
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range warnings {
		t.Errorf("Dockerfile: %s", w)
	}
	if !strings.Contains(img.final.BaseName, "distroless/static") {
		t.Errorf("runtime base %q, want a distroless static image", img.final.BaseName)
	}
	users := commands[*instructions.UserCommand](img.final)
	if len(users) == 0 {
		t.Fatal("the runtime stage sets no USER")
	}
	if u := users[len(users)-1].User; u == "" || u == "root" || strings.HasPrefix(u, "0") {
		t.Errorf("runs as %q, want a non-root user", u)
	}
	hc := commands[*instructions.HealthCheckCommand](img.final)
	if len(hc) != 1 || !slices.Contains(hc[0].Health.Test, "healthcheck") ||
		!strings.Contains(strings.Join(hc[0].Health.Test, " "), "/healthz") {
		t.Errorf("HEALTHCHECK %+v, want fanline healthcheck on /healthz", hc)
	}
	if v := commands[*instructions.VolumeCommand](img.final); len(v) != 1 || !slices.Contains(v[0].Volumes, "/data") {
		t.Errorf("VOLUME %+v, want /data", v)
	}
	if e := commands[*instructions.ExposeCommand](img.final); len(e) != 1 || !slices.Contains(e[0].Ports, "8080") {
		t.Errorf("EXPOSE %+v, want 8080", e)
	}
	env := map[string]string{}
	for _, e := range commands[*instructions.EnvCommand](img.final) {
		for _, kv := range e.Env {
			env[kv.Key] = kv.Value
		}
	}
	if env["FANLINE_DATA_DIR"] != "/data" || !strings.HasSuffix(env["FANLINE_ADDR"], ":8080") {
		t.Errorf("ENV %v, want the data dir on the volume and the exposed port", env)
	}

	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "-X main.version=${VERSION}", "-X main.commit=${COMMIT}"} {
		if !strings.Contains(buildCommand, want) {
			t.Errorf("the build command lacks %s: %s", want, buildCommand)
		}
	}
	bin := fanline(t)
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	libs, _ := f.ImportedLibraries()
	interp := f.Section(".interp")
	f.Close()
	if len(libs) > 0 || interp != nil {
		t.Errorf("the binary links %v dynamically (interp %v), want a static binary", libs, interp != nil)
	}
	out := run(t, bin, nil, "version")
	if !strings.Contains(out, testVersion) || !strings.Contains(out, testCommit) {
		t.Errorf("version printed %q, want %s and %s", out, testVersion, testCommit)
	}
	var imageEnv []string
	for k, v := range env {
		imageEnv = append(imageEnv, k+"="+v)
	}
	if _, err := command(bin, imageEnv, "serve", "--check-config").CombinedOutput(); err == nil {
		t.Error("the image's configuration without a token secret was accepted off loopback")
	}
	out = run(t, bin, append(imageEnv, "FANLINE_AUTH_JWT_SECRET="+testSecret), "serve", "--check-config")
	if !strings.Contains(out, "configuration ok") || !strings.Contains(out, "dev mode false") {
		t.Errorf("check-config printed %q", out)
	}
}

// buildCommand is the build stage's go build command, as the Dockerfile writes it.
var buildCommand string

// dockerBuild builds the binary into dir with the build stage's go build command,
// the ARGs set as a release build sets them and /out/ replaced by dir, from the
// repository root (the build stage's COPY . .). Every test runs that binary.
func dockerBuild(dir string) error {
	img, _, err := parseDockerfile()
	if err != nil {
		return err
	}
	for _, r := range commands[*instructions.RunCommand](img.build) {
		if line := strings.Join(r.CmdLine, " "); strings.Contains(line, "go build") {
			buildCommand = line
		}
	}
	if buildCommand == "" {
		return errors.New("no go build in the Dockerfile's build stage")
	}
	args := map[string]string{"VERSION": testVersion, "COMMIT": testCommit}
	for k := range img.args {
		if _, ok := args[k]; !ok {
			return fmt.Errorf("the build stage takes ARG %s, which the test does not set", k)
		}
	}
	build := strings.ReplaceAll(os.Expand(buildCommand, func(k string) string { return args[k] }), "/out/", dir+"/")
	cmd := exec.Command("sh", "-c", build)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s: %v\n%s", build, err, b)
	}
	return nil
}
