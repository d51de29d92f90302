package validate

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
)

// notOurs are the series a rule or panel may name that fanline does not export:
// Prometheus's own.
var notOurs = map[string]bool{"up": true}

// TestAlertRules: the rules parse and validate with Prometheus's own rule parser
// (expressions with its PromQL parser, annotations as templates); every alert has a
// severity, a summary and a runbook that is a paragraph of docs/operations.md.
func TestAlertRules(t *testing.T) {
	p := parser.NewParser(parser.Options{})
	groups, errs := rulefmt.ParseFile(filepath.Join(root, "deployments", "prometheus", "rules.yml"), false,
		model.UTF8Validation, p, slog.New(slog.DiscardHandler))
	for _, err := range errs {
		t.Error(err)
	}
	if groups == nil {
		t.FailNow()
	}
	ops, err := os.ReadFile(filepath.Join(root, "docs", "operations.md"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			n++
			if s := r.Labels["severity"]; s != "warning" && s != "critical" {
				t.Errorf("%s: severity %q, want warning or critical", r.Alert, s)
			}
			if r.Annotations["summary"] == "" {
				t.Errorf("%s: no summary", r.Alert)
			}
			want := "docs/operations.md#" + strings.ToLower(r.Alert)
			if r.Annotations["runbook"] != want {
				t.Errorf("%s: runbook %q, want %q", r.Alert, r.Annotations["runbook"], want)
			}
			if !strings.Contains(string(ops), "\n#### "+r.Alert+"\n") {
				t.Errorf("%s: docs/operations.md has no runbook paragraph (a #### %s heading)", r.Alert, r.Alert)
			}
		}
	}
	if n < 10 {
		t.Errorf("%d alerts", n)
	}
}

// dashboard is the part of a Grafana dashboard the test reads.
type dashboard struct {
	UID    string `json:"uid"`
	Panels []struct {
		Title   string `json:"title"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
	} `json:"panels"`
}

// grafanaVars stands in for the dashboard's variables, so its queries parse as
// Prometheus will see them.
var grafanaVars = strings.NewReplacer("$__rate_interval", "5m", "$instance", ".*")

// TestDashboardAndRulesNameRealMetrics: every query of the dashboard parses as
// PromQL, and every metric the dashboard and the alert rules name is in the /metrics
// output of a running node that carried a little traffic: a metric renamed in the
// code fails here.
func TestDashboardAndRulesNameRealMetrics(t *testing.T) {
	p := parser.NewParser(parser.Options{})
	used := map[string][]string{} // metric -> where
	collect := func(where, expr string) {
		e, err := p.ParseExpr(expr)
		if err != nil {
			t.Errorf("%s: %v\n%s", where, err, expr)
			return
		}
		parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
			if vs, ok := n.(*parser.VectorSelector); ok && !notOurs[vs.Name] {
				used[vs.Name] = append(used[vs.Name], where)
			}
			return nil
		})
	}
	b, err := os.ReadFile(filepath.Join(root, "deployments", "grafana", "fanline.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	dec := json.NewDecoder(strings.NewReader(string(b)))
	if err := dec.Decode(&d); err != nil {
		t.Fatal(err)
	}
	if d.UID == "" || len(d.Panels) < 10 {
		t.Errorf("dashboard uid %q with %d panels", d.UID, len(d.Panels))
	}
	for _, panel := range d.Panels {
		if len(panel.Targets) == 0 {
			t.Errorf("panel %q has no query", panel.Title)
		}
		for _, q := range panel.Targets {
			collect("panel "+panel.Title, grafanaVars.Replace(q.Expr))
		}
	}
	groups, _ := rulefmt.ParseFile(filepath.Join(root, "deployments", "prometheus", "rules.yml"), false,
		model.UTF8Validation, p, slog.New(slog.DiscardHandler))
	if groups != nil {
		for _, g := range groups.Groups {
			for _, r := range g.Rules {
				collect("alert "+r.Alert, r.Expr)
			}
		}
	}

	exported := scrapeWithTraffic(t)
	var missing []string
	for name, where := range used {
		if !exported[name] {
			missing = append(missing, fmt.Sprintf("%s (in %s)", name, strings.Join(where, ", ")))
		}
	}
	sort.Strings(missing)
	for _, m := range missing {
		t.Errorf("not exported by a running node: %s", m)
	}
	t.Logf("%d metrics named by the dashboard and the rules, %d of them not exported", len(used), len(missing))
}

// scrapeWithTraffic starts a node, sends a message and a refused one through the
// HTTP API, and returns the names of the series its /metrics exports.
func scrapeWithTraffic(t *testing.T) map[string]bool {
	t.Helper()
	addr := freeAddr(t)
	startNode(t, addr)
	base := "http://" + addr
	deadline := time.Now().Add(30 * time.Second)
	for {
		if resp, err := http.Get(base + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the node is not healthy after 30 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	post := func(path, token, body string) string {
		req, _ := http.NewRequest(http.MethodPost, base+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	m := regexp.MustCompile(`"token":"([^"]+)"`).FindStringSubmatch(post("/v1/dev/token", "", `{"user_id":"alice"}`))
	if m == nil {
		t.Fatal("no dev token")
	}
	if out := post("/v1/messages", m[1], `{"client_msg_id":"v1","to":"bob","type":"text","body":{"text":"hi"}}`); !strings.Contains(out, "msg_id") {
		t.Fatalf("send: %s", out)
	}
	post("/v1/messages", m[1], `{"client_msg_id":"v2","to":"alice","type":"text","body":{"text":"me"}}`) // refused: to yourself
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	names := map[string]bool{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if i := strings.IndexAny(line, "{ "); i > 0 {
			names[line[:i]] = true
		}
	}
	return names
}
