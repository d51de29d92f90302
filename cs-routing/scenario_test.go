package csrouting_test

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	csrouting "github.com/fanline/fanline/cs-routing"
)

var update = flag.Bool("update", false, "rewrite the expected output of testdata scenarios")

// TestScenarios runs the data-driven files in testdata/: lines starting with "> " are
// commands, the lines after one its expected output. Run with -update to regenerate.
//
// Commands (shop "s1", the clock starts on Monday 2026-11-23 10:00 UTC):
//
//	rules <json>                      PUT the rules: the version, or every problem
//	agents <json>                     PUT the agents: ok, or every problem
//	status <agent> <status>           the agent sets a status
//	connect <agent> / drop <agent>    the agent's connection comes or goes
//	open <chat> <buyer> <entry> [text] a buyer opens a chat: the decision
//	dryrun <chat> <buyer> <entry> [text] who would get it, changing nothing
//	msg <chat> / reply <chat> <agent> the buyer writes / the agent replies
//	transfer <chat> agent=<id>|skill=<name>
//	close <chat>
//	advance <duration>                move the clock; prints the decisions made meanwhile
//	audit                             the decisions since the last print
//	live                              queues and agents
func TestScenarios(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.txt")
	if len(files) == 0 {
		t.Fatal("no scenarios")
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txt"), func(t *testing.T) { runScenario(t, file) })
	}
}

func runScenario(t *testing.T, file string) {
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	clock := newManualClock(time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC))
	r, err := csrouting.NewRouter(csrouting.Config{Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	newAudit := func() []string {
		all := r.Audit("s1", 1<<20)
		var out []string
		for _, e := range all[min(seen, len(all)):] {
			out = append(out, fmt.Sprintf("%s %s %s: %s", e.Chat, e.Action, e.Agent, e.Reason))
		}
		seen = len(all)
		return out
	}
	var rewritten strings.Builder
	var failed []string
	lines := strings.Split(strings.TrimRight(string(raw), "\n"), "\n")
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		if !strings.HasPrefix(line, "> ") {
			if strings.HasPrefix(line, "#") || strings.TrimSpace(line) == "" {
				rewritten.WriteString(line + "\n")
			}
			continue
		}
		var want []string
		j := i + 1
		for ; j < len(lines) && !strings.HasPrefix(lines[j], "> ") && !strings.HasPrefix(lines[j], "#") && strings.TrimSpace(lines[j]) != ""; j++ {
			want = append(want, lines[j])
		}
		got := run(t, r, clock, strings.TrimPrefix(line, "> "), newAudit)
		rewritten.WriteString(line + "\n")
		for _, g := range got {
			rewritten.WriteString(g + "\n")
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			failed = append(failed, fmt.Sprintf("line %d: %s\n got:\n  %s\n want:\n  %s", i+1, line,
				strings.Join(got, "\n  "), strings.Join(want, "\n  ")))
		}
		i = j - 1
	}
	if *update {
		if err := os.WriteFile(file, []byte(rewritten.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	for _, f := range failed {
		t.Error(f)
	}
}

func run(t *testing.T, r *csrouting.Router, clock *manualClock, cmd string, audit func() []string) []string {
	t.Helper()
	name, rest, _ := strings.Cut(cmd, " ")
	args := strings.Fields(rest)
	decision := func(d csrouting.Decision, err error) []string {
		if err != nil {
			return []string{"error: " + err.Error()}
		}
		s := fmt.Sprintf("%s %s skill=%s weight=%d priority=%d", d.State, d.Agent, d.Skill, d.Weight, d.Priority)
		if d.Position > 0 {
			s += fmt.Sprintf(" position=%d wait=%s", d.Position, time.Duration(d.EstimatedWait))
		}
		out := []string{s}
		if d.Reason != "" {
			out = append(out, "  why: "+d.Reason)
		}
		if d.AutoReply != "" {
			out = append(out, "  auto-reply: "+d.AutoReply)
		}
		return out
	}
	open := func() csrouting.OpenRequest {
		req := csrouting.OpenRequest{Chat: args[0], Buyer: args[1], Entry: args[2]}
		if len(args) > 3 {
			req.Text = strings.Join(args[3:], " ")
		}
		return req
	}
	switch name {
	case "rules":
		var rules csrouting.Rules
		if err := json.Unmarshal([]byte(rest), &rules); err != nil {
			return []string{"bad json: " + err.Error()}
		}
		got, ps, err := r.SetRules("s1", rules)
		if err != nil {
			t.Fatal(err)
		}
		if len(ps) == 0 {
			return []string{fmt.Sprintf("version %d", got.Version)}
		}
		var out []string
		for _, p := range ps {
			out = append(out, "problem "+p.String())
		}
		return out
	case "agents":
		var list []csrouting.AgentConfig
		if err := json.Unmarshal([]byte(rest), &list); err != nil {
			return []string{"bad json: " + err.Error()}
		}
		ps, err := r.SetAgents("s1", list)
		if err != nil {
			t.Fatal(err)
		}
		if len(ps) == 0 {
			return []string{"ok"}
		}
		var out []string
		for _, p := range ps {
			out = append(out, "problem "+p.String())
		}
		return out
	case "status":
		if err := r.SetStatus("s1", args[0], args[1]); err != nil {
			return []string{"error: " + err.Error()}
		}
		return audit()
	case "connect", "drop":
		r.Presence("s1", args[0], name == "connect")
		return audit()
	case "open":
		out := decision(r.Open("s1", open()))
		audit()
		return out
	case "dryrun":
		return decision(r.DryRun("s1", open()))
	case "msg":
		r.BuyerMessage("s1", args[0])
		return nil
	case "reply":
		if !r.AgentReplied("s1", args[0], args[1]) {
			return []string{"not their chat"}
		}
		return nil
	case "transfer":
		kind, to, _ := strings.Cut(args[1], "=")
		agent, skill := "", ""
		if kind == "agent" {
			agent = to
		} else {
			skill = to
		}
		out := decision(r.Transfer("s1", args[0], "sup", agent, skill))
		return append(out, audit()...)
	case "close":
		if _, err := r.Close("s1", args[0], "agent"); err != nil {
			return []string{"error: " + err.Error()}
		}
		return audit()
	case "advance":
		d, err := time.ParseDuration(args[0])
		if err != nil {
			t.Fatal(err)
		}
		clock.Advance(d)
		return audit()
	case "audit":
		return audit()
	case "live":
		l, err := r.Live("s1")
		if err != nil {
			return []string{"error: " + err.Error()}
		}
		var skills []string
		for k, v := range l.Queues {
			skills = append(skills, fmt.Sprintf("%s=%d", k, v))
		}
		sort.Strings(skills)
		out := []string{fmt.Sprintf("open=%v queues %s longest=%s", l.Open, strings.Join(skills, " "), time.Duration(l.LongestWait))}
		for _, a := range l.Agents {
			out = append(out, fmt.Sprintf("  %s %s connected=%v %d/%d", a.ID, a.Status, a.Connected, a.Load, a.Capacity))
		}
		return out
	}
	t.Fatalf("unknown command %q", cmd)
	return nil
}
