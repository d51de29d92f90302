package csrouting_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	csrouting "github.com/fanline/fanline/cs-routing"
)

// TestCannedResponses: a shop's canned responses are kept in order across a
// restart, beside its rules and agents (setting one keeps the others); a bad list
// answers every problem and changes nothing.
func TestCannedResponses(t *testing.T) {
	open := restarts(t, newManualClock(time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)))
	r := open()
	if got := r.Canned("acme"); got == nil || len(got) != 0 {
		t.Fatalf("canned of a new shop: %#v", got)
	}
	if ps, err := r.SetAgents("acme", []csrouting.AgentConfig{{ID: "ann", Skills: []string{"sales"}, Capacity: 2}}); ps != nil || err != nil {
		t.Fatal(ps, err)
	}
	list := []csrouting.Canned{{Shortcut: "hi", Text: "Hello! How can I help?"}, {Shortcut: "refund-policy", Text: "Refunds take 5 days."}}
	if ps, err := r.SetCanned("acme", list); ps != nil || err != nil {
		t.Fatal(ps, err)
	}
	if _, ps, err := r.SetRules("acme", csrouting.Rules{Skills: []csrouting.SkillGroup{{Name: "sales"}}}); ps != nil || err != nil {
		t.Fatal(ps, err)
	}

	bad := []csrouting.Canned{{Shortcut: "hi", Text: "x"}, {Shortcut: "hi", Text: " "}, {Shortcut: "Bad Cut", Text: "y"},
		{Shortcut: "long", Text: strings.Repeat("é", csrouting.MaxCannedText+1)}}
	ps, err := r.SetCanned("acme", bad)
	if err != nil {
		t.Fatal(err)
	}
	var fields []string
	for _, p := range ps {
		fields = append(fields, p.Field)
	}
	want := []string{"responses[1].shortcut", "responses[1].text", "responses[2].shortcut", "responses[3].text"}
	if !slices.Equal(fields, want) {
		t.Fatalf("problems %v, want fields %v", ps, want)
	}
	many := make([]csrouting.Canned, csrouting.MaxCanned+1)
	for i := range many {
		many[i] = csrouting.Canned{Shortcut: fmt.Sprint("c", i), Text: "t"}
	}
	if ps, _ := r.SetCanned("acme", many); len(ps) != 1 || ps[0].Field != "responses" {
		t.Fatalf("problems of %d responses: %v", len(many), ps)
	}

	again := open()
	if got := again.Canned("acme"); !slices.Equal(got, list) {
		t.Fatalf("canned after a restart: %+v, want %+v", got, list)
	}
	if as := again.Agents("acme"); len(as) != 1 || as[0].ID != "ann" {
		t.Fatalf("agents after a restart: %+v", as)
	}
	if rules, err := again.Rules("acme"); err != nil || len(rules.Skills) != 1 {
		t.Fatalf("rules after a restart: %+v %v", rules, err)
	}
	if ps, err := again.SetCanned("acme", nil); ps != nil || err != nil {
		t.Fatal(ps, err)
	}
	if got := open().Canned("acme"); len(got) != 0 {
		t.Fatalf("canned after clearing and a restart: %+v", got)
	}
}
