package csrouting

import (
	"bytes"
	"encoding/json"
	"reflect"
	"sort"
	"strings"
	"testing"
)

// FuzzRules checks the routing rules document as PUT /v1/admin/shops/{id}/routing takes
// it: decoded strictly (unknown fields refused, as server.decodeDoc does), then
// validated. No input panics either step. A rejected document lists problems, each
// with a field under one of the document's top-level keys and a message. Validating
// against agents adds exactly one "empty skill group" problem per group no agent has
// and changes nothing else. An accepted document, marshalled (as GET returns it and
// the Store keeps it) and decoded again, is accepted and equal, down to the prepared
// business hours; its encoding is then a fixed point. Seeds live in
// testdata/fuzz/FuzzRules.
func FuzzRules(f *testing.F) {
	f.Add([]byte(`{"skills":[{"name":"pre_sales"}]}`))
	f.Add([]byte(`{"skills":[{"name":"after_sales","fallback_after":"1m30s"}],"reply_timeout":"-1s"}`))
	agents := map[string]*agent{
		"ann": {AgentConfig: AgentConfig{ID: "ann", Skills: []string{"pre_sales", "after_sales"}, Capacity: 2}},
		"bob": {AgentConfig: AgentConfig{ID: "bob", Skills: []string{"pre_sales"}, Capacity: 1}},
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		var r Rules
		if decodeRulesDoc(doc, &r) != nil {
			return
		}
		ps := r.validate(nil)
		checkProblems(t, ps)
		withAgents := r.validate(agents)
		checkProblems(t, withAgents)
		var empty int
		for _, g := range r.Skills {
			if g.Name != "" && !anyAgentHas(agents, g.Name) {
				empty++
			}
		}
		var rest []Problem
		for _, p := range withAgents {
			if !strings.Contains(p.Message, "is empty: no agent has this skill") {
				rest = append(rest, p)
			}
		}
		if len(withAgents)-len(rest) != empty {
			t.Fatalf("%d empty-group problems for %d groups no agent has: %v", len(withAgents)-len(rest), empty, withAgents)
		}
		if !sameProblems(rest, ps) {
			t.Fatalf("agents changed the other problems:\n without: %v\n with:    %v", ps, rest)
		}
		if len(ps) > 0 {
			return
		}

		b, err := json.Marshal(r)
		if err != nil {
			t.Fatalf("accepted rules do not marshal: %v", err)
		}
		var r2 Rules
		if err := decodeRulesDoc(b, &r2); err != nil {
			t.Fatalf("re-marshalled rules %s do not decode: %v", b, err)
		}
		if ps := r2.validate(nil); len(ps) > 0 {
			t.Fatalf("re-marshalled rules %s rejected: %v", b, ps)
		}
		if !sameRules(r, r2) {
			t.Fatalf("rules changed in a round trip:\n doc:   %s\n first: %+v\n again: %+v", doc, r, r2)
		}
		b2, err := json.Marshal(r2)
		if err != nil {
			t.Fatal(err)
		}
		var r3 Rules
		if err := decodeRulesDoc(b2, &r3); err != nil {
			t.Fatal(err)
		}
		if b3, _ := json.Marshal(r3); !bytes.Equal(b2, b3) {
			t.Fatalf("encoding is not a fixed point:\n %s\n %s", b2, b3)
		}
	})
}

// decodeRulesDoc decodes an admin document the way server.decodeDoc does.
func decodeRulesDoc(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

var ruleFields = []string{"skills", "default_skill", "entries", "keywords", "vip", "hours"}

func checkProblems(t *testing.T, ps []Problem) {
	t.Helper()
	for _, p := range ps {
		top, _, _ := strings.Cut(p.Field, ".")
		top, _, _ = strings.Cut(top, "[")
		found := false
		for _, f := range ruleFields {
			found = found || top == f
		}
		if !found || p.Message == "" {
			t.Fatalf("problem %q: %q names no field of the document or says nothing", p.Field, p.Message)
		}
	}
}

// sameProblems compares problem lists as multisets: the order of the vip problems
// follows map iteration.
func sameProblems(a, b []Problem) bool {
	key := func(ps []Problem) []string {
		out := make([]string, len(ps))
		for i, p := range ps {
			out[i] = p.String()
		}
		sort.Strings(out)
		return out
	}
	return reflect.DeepEqual(key(a), key(b))
}

// sameRules compares two validated documents: an empty map or list equals a missing
// one (both mean none), and the prepared hours must match.
func sameRules(a, b Rules) bool {
	if (a.Hours == nil) != (b.Hours == nil) {
		return false
	}
	if a.Hours != nil {
		if a.Hours.loc.String() != b.Hours.loc.String() || !reflect.DeepEqual(a.Hours.spans, b.Hours.spans) {
			return false
		}
	}
	return reflect.DeepEqual(normalRules(a), normalRules(b))
}

func normalRules(r Rules) Rules {
	if len(r.Entries) == 0 {
		r.Entries = nil
	}
	if len(r.Keywords) == 0 {
		r.Keywords = nil
	}
	if len(r.VIP.Tiers) == 0 {
		r.VIP.Tiers = nil
	}
	if len(r.VIP.Buyers) == 0 {
		r.VIP.Buyers = nil
	}
	if r.Hours != nil {
		h := Hours{TimeZone: r.Hours.TimeZone, OfflineReply: r.Hours.OfflineReply}
		if len(r.Hours.Week) > 0 {
			h.Week = map[string][]string{}
			for d, rs := range r.Hours.Week {
				if len(rs) == 0 {
					rs = nil
				}
				h.Week[d] = rs
			}
		}
		r.Hours = &h
	}
	return r
}
