// Package csrouting assigns buyer -> shop conversations ("chats") to a shop's agents by
// rules the shop's admins write: classification (entry context, keywords on the first
// message, VIP tier), a strategy per skill group (sticky, least loaded, round robin),
// fallback to any skill after a wait, business hours, and reassignment when an agent
// goes away or does not reply.
//
// A Router holds every shop's state in memory and decides in microseconds. It is
// event-driven: a chat is assigned the moment it arrives, capacity frees, an agent
// comes online, a wait times out or the shop opens; no periodic sweep. Every decision
// stores a one-line reason in the shop's audit log.
//
// A Router is safe for concurrent use: each shop's state is guarded by its own mutex,
// and timers re-enter through it.
package csrouting

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Strategies of a skill group.
const (
	LeastLoaded = "least_loaded"
	RoundRobin  = "round_robin"
)

// Rules is a shop's routing document. Admins PUT it whole; the Router stamps Version.
type Rules struct {
	Version int `json:"version"`
	// Skills are the shop's skill groups (at least one), each with its strategy.
	Skills []SkillGroup `json:"skills"`
	// DefaultSkill classifies a chat no entry or keyword rule matched. Empty: the
	// first skill group.
	DefaultSkill string `json:"default_skill,omitempty"`
	// Entries classify by where the chat was opened ("product", "order", "refund",
	// "return", "shop", ...).
	Entries map[string]Class `json:"entries,omitempty"`
	// Keywords classify by the first message, the first matching rule winning over
	// the entry's class.
	Keywords []KeywordRule `json:"keywords,omitempty"`
	// VIP gives buyers of a tier a priority (higher is served first; default 0).
	VIP VIP `json:"vip,omitzero"`
	// Hours are the shop's business hours; none means always open.
	Hours *Hours `json:"hours,omitempty"`
	// PresenceGrace is how long an agent may be disconnected before their chats go
	// to others. Zero means 30s.
	PresenceGrace Duration `json:"presence_grace,omitzero"`
	// ReplyTimeout moves a chat whose buyer has waited this long for the agent's
	// reply. Zero means 120s; negative turns it off.
	ReplyTimeout Duration `json:"reply_timeout,omitzero"`
}

// SkillGroup is one skill and how its chats are assigned.
type SkillGroup struct {
	Name string `json:"name"`
	// Strategy is least_loaded (default) or round_robin.
	Strategy string `json:"strategy,omitempty"`
	// StickyDays prefers the agent who last served the buyer within this many days,
	// when online with capacity. Zero: not sticky.
	StickyDays int `json:"sticky_days,omitempty"`
	// FallbackAfter lets a chat waiting this long go to an agent of any skill. Zero:
	// never.
	FallbackAfter Duration `json:"fallback_after,omitzero"`
}

// Class is what classification decides: a skill and the chat's weight against agents'
// capacity (0 means 1).
type Class struct {
	Skill  string `json:"skill"`
	Weight int    `json:"weight,omitempty"`
}

// KeywordRule matches a first message containing any of Any (case-insensitive).
type KeywordRule struct {
	Any []string `json:"any"`
	Class
}

// VIP maps tiers to priorities and buyers to tiers.
type VIP struct {
	Tiers  map[string]int    `json:"tiers,omitempty"`
	Buyers map[string]string `json:"buyers,omitempty"`
}

// Hours are weekly opening hours in a time zone.
type Hours struct {
	TimeZone string `json:"timezone"`
	// Week maps mon..sun to "HH:MM-HH:MM" ranges; a missing day is closed.
	Week map[string][]string `json:"week"`
	// OfflineReply is sent to a buyer who opens a chat while the shop is closed.
	OfflineReply string `json:"offline_reply,omitempty"`

	loc   *time.Location
	spans map[time.Weekday][]span
}

type span struct{ from, to int } // minutes of the day, from < to

// Duration is a time.Duration written as "90s", "2m".
type Duration time.Duration

// MarshalJSON implements json.Marshaler.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON implements json.Unmarshaler.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("a duration is a string like \"90s\"")
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// maxStickyDays bounds SkillGroup.StickyDays: who served a buyer is kept this long.
const maxStickyDays = 30

// Problem is one thing wrong with a rules document or an agent list.
type Problem struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

func (p Problem) String() string { return p.Field + ": " + p.Message }

var weekdays = map[string]time.Weekday{"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday,
	"wed": time.Wednesday, "thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday}

// validate checks r against the shop's agents and returns every problem found; it
// also prepares r's hours for use.
func (r *Rules) validate(agents map[string]*agent) []Problem {
	var ps []Problem
	add := func(field, format string, args ...any) {
		ps = append(ps, Problem{Field: field, Message: fmt.Sprintf(format, args...)})
	}
	skills := map[string]bool{}
	if len(r.Skills) == 0 {
		add("skills", "at least one skill group is required")
	}
	for i, g := range r.Skills {
		f := fmt.Sprintf("skills[%d]", i)
		switch {
		case g.Name == "":
			add(f+".name", "is required")
		case skills[g.Name]:
			add(f+".name", "%q is defined twice", g.Name)
		}
		skills[g.Name] = true
		if g.Strategy != "" && g.Strategy != LeastLoaded && g.Strategy != RoundRobin {
			add(f+".strategy", "%q is not least_loaded or round_robin", g.Strategy)
		}
		if g.StickyDays < 0 || g.FallbackAfter < 0 {
			add(f, "sticky_days and fallback_after cannot be negative")
		}
		if g.StickyDays > maxStickyDays {
			add(f+".sticky_days", "is at most %d (who served a buyer is remembered that long)", maxStickyDays)
		}
		if g.Name != "" && len(agents) > 0 && !anyAgentHas(agents, g.Name) {
			add(f, "skill group %q is empty: no agent has this skill", g.Name)
		}
	}
	class := func(field string, c Class) {
		if !skills[c.Skill] {
			add(field+".skill", "unknown skill %q", c.Skill)
		}
		if c.Weight < 0 {
			add(field+".weight", "cannot be negative")
		}
	}
	if r.DefaultSkill != "" && !skills[r.DefaultSkill] {
		add("default_skill", "unknown skill %q", r.DefaultSkill)
	}
	for _, e := range sortedKeys(r.Entries) {
		class("entries."+e, r.Entries[e])
	}
	keywords, words := r.Keywords, 0
	for _, k := range keywords {
		words += len(k.Any)
	}
	if words > maxKeywords {
		// Checking reachability compares every keyword with the earlier ones.
		add("keywords", "has %d keywords; at most %d", words, maxKeywords)
		keywords = nil
	}
	var earlier []string // keywords of earlier rules: a message containing one matches there
	for i, k := range keywords {
		f := fmt.Sprintf("keywords[%d]", i)
		class(f, k.Class)
		if len(k.Any) == 0 {
			add(f+".any", "needs at least one keyword")
		}
		reachable := false
		for _, w := range k.Any {
			w = strings.ToLower(strings.TrimSpace(w))
			if w == "" {
				add(f+".any", "has an empty keyword")
				continue
			}
			if !containsAny(w, earlier) {
				reachable = true
			}
		}
		if len(k.Any) > 0 && !reachable {
			add(f, "unreachable: every keyword contains one of an earlier rule, which matches first")
		}
		for _, w := range k.Any {
			if w = strings.ToLower(strings.TrimSpace(w)); w != "" {
				earlier = append(earlier, w)
			}
		}
	}
	for _, tier := range sortedKeys(r.VIP.Tiers) {
		if r.VIP.Tiers[tier] < 0 {
			add("vip.tiers."+tier, "priority cannot be negative")
		}
	}
	for _, buyer := range sortedKeys(r.VIP.Buyers) {
		if _, ok := r.VIP.Tiers[r.VIP.Buyers[buyer]]; !ok {
			add("vip.buyers."+buyer, "unknown tier %q", r.VIP.Buyers[buyer])
		}
	}
	if r.Hours != nil {
		ps = append(ps, r.Hours.prepare()...)
	}
	return ps
}

func containsAny(s string, words []string) bool {
	for _, w := range words {
		if strings.Contains(s, w) {
			return true
		}
	}
	return false
}

func anyAgentHas(agents map[string]*agent, skill string) bool {
	for _, a := range agents {
		if a.has(skill) {
			return true
		}
	}
	return false
}

// prepare parses the hours and returns every problem: unknown zone or day, malformed
// or empty ranges, overlaps within a day.
func (h *Hours) prepare() []Problem {
	var ps []Problem
	loc, err := time.LoadLocation(h.TimeZone)
	if err != nil || h.TimeZone == "" {
		ps = append(ps, Problem{"hours.timezone", fmt.Sprintf("unknown time zone %q", h.TimeZone)})
		loc = time.UTC
	}
	h.loc, h.spans = loc, map[time.Weekday][]span{}
	for _, day := range sortedKeys(h.Week) {
		wd, ok := weekdays[day]
		if !ok {
			ps = append(ps, Problem{"hours.week." + day, "days are mon, tue, wed, thu, fri, sat, sun"})
			continue
		}
		var spans []span
		for _, rg := range h.Week[day] {
			sp, ok := parseSpan(rg)
			if !ok {
				ps = append(ps, Problem{"hours.week." + day, fmt.Sprintf("%q is not HH:MM-HH:MM with the start before the end", rg)})
				continue
			}
			spans = append(spans, sp)
		}
		sort.Slice(spans, func(i, j int) bool { return spans[i].from < spans[j].from })
		for i := 1; i < len(spans); i++ {
			if spans[i].from < spans[i-1].to {
				ps = append(ps, Problem{"hours.week." + day, "ranges overlap"})
			}
		}
		h.spans[wd] = spans
	}
	return ps
}

func parseSpan(s string) (span, bool) {
	a, b, ok := strings.Cut(strings.TrimSpace(s), "-")
	if !ok {
		return span{}, false
	}
	from, ok1 := parseClock(a)
	to, ok2 := parseClock(b)
	return span{from, to}, ok1 && ok2 && from < to
}

func parseClock(s string) (int, bool) {
	t, err := time.Parse("15:04", strings.TrimSpace(s))
	if err != nil {
		if strings.TrimSpace(s) == "24:00" {
			return 24 * 60, true
		}
		return 0, false
	}
	return t.Hour()*60 + t.Minute(), true
}

// open reports whether the shop is open at t and, if not, when it next opens (zero if
// never).
func (h *Hours) open(t time.Time) (bool, time.Time) {
	if h == nil {
		return true, time.Time{}
	}
	local := t.In(h.loc)
	day := time.Date(local.Year(), local.Month(), local.Day(), 0, 0, 0, 0, h.loc)
	now := local.Hour()*60 + local.Minute()
	for _, sp := range h.spans[local.Weekday()] {
		if now >= sp.from && now < sp.to {
			return true, time.Time{}
		}
	}
	for d := 0; d < 8; d++ {
		date := day.AddDate(0, 0, d)
		for _, sp := range h.spans[date.Weekday()] {
			at := date.Add(time.Duration(sp.from) * time.Minute)
			if at.After(local) {
				return false, at
			}
		}
	}
	return false, time.Time{}
}

// maxKeywords bounds the keywords of a rules document (validating them is quadratic).
const maxKeywords = 1000

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
