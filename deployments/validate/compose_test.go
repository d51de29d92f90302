package validate

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"gopkg.in/yaml.v3"
)

// composeFile is the compose set-up's path.
var composeFile = filepath.Join(root, "deployments", "compose", "compose.yaml")

// loadCompose loads the compose file with the Compose specification's loader, for
// the given profiles, with env as the shell's environment.
func loadCompose(profiles, env []string) (*types.Project, error) {
	opts, err := cli.NewProjectOptions([]string{composeFile}, cli.WithProfiles(profiles), cli.WithEnv(env),
		cli.WithWorkingDirectory(filepath.Dir(composeFile)))
	if err != nil {
		return nil, err
	}
	return opts.LoadProject(context.Background())
}

// TestCompose: the compose file loads for each profile with the services that
// profile promises; every file it mounts exists; the cluster refuses to load
// without its token secret; and every fanline service's command and environment
// make a configuration `serve --check-config` accepts (migrate's with serve's check).
func TestCompose(t *testing.T) {
	base := []string{"fanline"}
	cluster := []string{"kafka", "cassandra", "redis", "minio", "migrate", "dispatch", "gateway-1", "gateway-2", "lb"}
	monitoring := []string{"prometheus", "grafana"}
	env := []string{"JWT_SECRET=" + testSecret}
	for _, tc := range []struct {
		profiles []string
		want     []string
	}{
		{nil, base},
		{[]string{"cluster"}, append(slices.Clone(base), cluster...)},
		{[]string{"monitoring"}, append(slices.Clone(base), monitoring...)},
		{[]string{"cluster", "monitoring"}, append(append(slices.Clone(base), cluster...), monitoring...)},
	} {
		t.Run(strings.Join(append([]string{"default"}, tc.profiles...), "+"), func(t *testing.T) {
			p, err := loadCompose(tc.profiles, env)
			if err != nil {
				t.Fatal(err)
			}
			got := p.ServiceNames()
			sort.Strings(got)
			want := slices.Clone(tc.want)
			sort.Strings(want)
			if !slices.Equal(got, want) {
				t.Fatalf("services %v, want %v", got, want)
			}
			for _, name := range got {
				s := p.Services[name]
				for _, v := range s.Volumes {
					if v.Type == types.VolumeTypeBind {
						if _, err := os.Stat(v.Source); err != nil {
							t.Errorf("%s mounts %s: %v", name, v.Source, err)
						}
					}
				}
				if s.Image != "fanline:local" {
					continue
				}
				args := []string(s.Command)
				if len(args) == 0 || (args[0] != "serve" && args[0] != "migrate") {
					t.Errorf("%s runs %q", name, args)
					continue
				}
				if args[0] == "migrate" {
					args = []string{"serve"}
				}
				var senv []string
				for k, v := range s.Environment {
					if v != nil {
						senv = append(senv, k+"="+*v)
					}
				}
				out := run(t, fanline(t), senv, append(args, "--check-config")...)
				if !strings.Contains(out, "configuration ok") {
					t.Errorf("%s: check-config printed %q", name, out)
				}
			}
		})
	}
	if _, err := loadCompose([]string{"cluster"}, nil); err == nil || !strings.Contains(err.Error(), "JWT_SECRET") {
		t.Errorf("the cluster loaded without a token secret: %v", err)
	}
}

// TestComposePrometheusTargets: the monitoring profile's Prometheus scrapes fanline
// services of the compose file, on their port, and loads the alert rules.
func TestComposePrometheusTargets(t *testing.T) {
	p, err := loadCompose([]string{"cluster", "monitoring"}, []string{"JWT_SECRET=" + testSecret})
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(filepath.Dir(composeFile), "prometheus.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		RuleFiles     []string `yaml:"rule_files"`
		ScrapeConfigs []struct {
			JobName       string `yaml:"job_name"`
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	if len(cfg.ScrapeConfigs) != 1 || cfg.ScrapeConfigs[0].JobName != "fanline" {
		t.Fatalf("scrape configs %+v, want job fanline (the rules select it)", cfg.ScrapeConfigs)
	}
	n := 0
	for _, sc := range cfg.ScrapeConfigs[0].StaticConfigs {
		for _, target := range sc.Targets {
			host, port, _ := strings.Cut(target, ":")
			s, ok := p.Services[host]
			if !ok || s.Image != "fanline:local" || port != "8080" {
				t.Errorf("target %s is not a fanline service's port", target)
			}
			n++
		}
	}
	if n != 4 {
		t.Errorf("%d targets, want the single node, the dispatch node and both gateways", n)
	}
	mounted := false
	for _, v := range p.Services["prometheus"].Volumes {
		mounted = mounted || (slices.Contains(cfg.RuleFiles, v.Target) && strings.HasSuffix(v.Source, filepath.Join("prometheus", "rules.yml")))
	}
	if !mounted {
		t.Errorf("prometheus does not mount deployments/prometheus/rules.yml where rule_files %v says", cfg.RuleFiles)
	}
}
