package csrouting

import (
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"
)

// Canned is one of a shop's canned responses: an agent types "/" and the shortcut
// in the console's composer to insert the text.
type Canned struct {
	Shortcut string `json:"shortcut"`
	Text     string `json:"text"`
}

// Bounds of a shop's canned responses.
const (
	MaxCanned     = 500
	MaxCannedText = 4000 // characters
)

var shortcutRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,31}$`)

// Canned returns the shop's canned responses, in the order its admins gave them.
func (r *Router) Canned(shopID string) []Canned {
	s := r.shop(shopID, false)
	if s == nil {
		return []Canned{}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Canned{}, s.canned...)
}

// SetCanned replaces the shop's canned responses, or answers every problem of list
// and changes nothing.
func (r *Router) SetCanned(shopID string, list []Canned) ([]Problem, error) {
	if ps := cannedProblems(list); len(ps) > 0 {
		return ps, nil
	}
	list = append([]Canned{}, list...) // empty, not nil: save keeps nil fields as they are
	s := r.shop(shopID, true)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.save(ShopConfig{Canned: list}); err != nil {
		return nil, err
	}
	s.canned = list
	return nil, nil
}

// cannedProblems checks a list of canned responses: shortcuts (lower-case letters,
// digits, "_" and "-", at most 32, unique) and texts (not blank, at most
// MaxCannedText characters).
func cannedProblems(list []Canned) []Problem {
	var ps []Problem
	if len(list) > MaxCanned {
		ps = append(ps, Problem{"responses", fmt.Sprintf("has %d responses; a shop keeps at most %d", len(list), MaxCanned)})
	}
	seen := map[string]bool{}
	for i, c := range list {
		f := fmt.Sprintf("responses[%d]", i)
		switch {
		case !shortcutRE.MatchString(c.Shortcut):
			ps = append(ps, Problem{f + ".shortcut", fmt.Sprintf("is %q: 1 to 32 lower-case letters, digits, _ and -, starting with a letter or digit", c.Shortcut)})
		case seen[c.Shortcut]:
			ps = append(ps, Problem{f + ".shortcut", fmt.Sprintf("%q is used by an earlier response", c.Shortcut)})
		}
		seen[c.Shortcut] = true
		if strings.TrimSpace(c.Text) == "" {
			ps = append(ps, Problem{f + ".text", "is required"})
		} else if n := utf8.RuneCountInString(c.Text); n > MaxCannedText {
			ps = append(ps, Problem{f + ".text", fmt.Sprintf("has %d characters; at most %d", n, MaxCannedText)})
		}
	}
	return ps
}
