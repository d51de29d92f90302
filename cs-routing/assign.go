package csrouting

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// This file holds one shop's decisions: classification, the choice of an agent, the
// queue and its timers. Every function here runs with the shop's lock held.

// classify decides a chat's skill, weight and priority, and says why.
func (s *shop) classify(req OpenRequest) (Class, int, string) {
	rules := s.rules
	cl := Class{Skill: rules.DefaultSkill}
	if cl.Skill == "" {
		cl.Skill = rules.Skills[0].Name
	}
	why := "default " + cl.Skill
	if e, ok := rules.Entries[req.Entry]; ok {
		cl, why = e, fmt.Sprintf("entry %s -> %s", req.Entry, e.Skill)
	}
	text := strings.ToLower(req.Text)
	for _, k := range rules.Keywords {
		for _, w := range k.Any {
			if w = strings.ToLower(strings.TrimSpace(w)); w != "" && strings.Contains(text, w) {
				why = fmt.Sprintf("%s; keyword %q -> %s", why, w, k.Skill)
				cl = Class{Skill: k.Skill, Weight: max(k.Weight, cl.Weight)}
				goto classified
			}
		}
	}
classified:
	cl.Weight = max(cl.Weight, 1)
	priority := 0
	if tier, ok := rules.VIP.Buyers[req.Buyer]; ok {
		priority = rules.VIP.Tiers[tier]
		why += fmt.Sprintf("; VIP %s priority %d", tier, priority)
	}
	if cl.Weight > 1 {
		why += fmt.Sprintf("; weight %d", cl.Weight)
	}
	return cl, priority, why
}

// reskill moves chats of a skill the rules no longer define to the default skill,
// keeping their place in line.
func (s *shop) reskill() {
	def := s.rules.DefaultSkill
	if def == "" {
		def = s.rules.Skills[0].Name
	}
	for _, c := range s.chats {
		if c.state == Closed || s.hasSkill(c.skill) {
			continue
		}
		old := c.skill
		c.skill = def
		if c.state == Queued {
			s.removeQueued(c)
			s.insertQueued(c)
		}
		s.keep(c)
		s.record(c, "reclassified", c.agent, fmt.Sprintf("skill %s was removed from the rules: now %s", old, def))
	}
}

func (s *shop) hasSkill(skill string) bool {
	for _, g := range s.rules.Skills {
		if g.Name == skill {
			return true
		}
	}
	return false
}

func (s *shop) group(skill string) SkillGroup {
	for _, g := range s.rules.Skills {
		if g.Name == skill {
			return g
		}
	}
	return SkillGroup{Name: skill}
}

// enqueue routes a new or reopened chat: assign now if the shop is open and an agent
// fits, otherwise queue it (with the offline reply when the shop is closed).
func (s *shop) enqueue(c *chat, why string) Decision {
	now := s.r.clock.Now()
	s.seq++
	c.seq, c.queuedAt, c.state, c.agent = s.seq, now, Queued, ""
	open, _ := s.rules.Hours.open(now)
	if !open {
		s.insertQueued(c)
		s.keep(c)
		reason := why + "; shop closed, queued for the next shift"
		s.record(c, "queued", "", reason)
		d := s.describe(c, reason)
		d.AutoReply = s.rules.Hours.OfflineReply
		return d
	}
	if c.last != "" { // reopened: the previous agent first
		if a := s.agents[c.last]; a != nil && a.available() && a.load+c.weight <= a.Capacity {
			reason := fmt.Sprintf("%s; reopened: back to %s (%d/%d)", why, a.ID, a.load, a.Capacity)
			s.assign(c, a, "assigned", reason, "")
			return s.describe(c, reason)
		}
	}
	var a *agent
	var reason string
	if n := s.waiting(c); n > 0 {
		// First come, first served: earlier chats of its line are waiting (for an
		// agent who fits the first of them), so it waits behind them.
		reason = fmt.Sprintf("%d earlier chats of %s waiting; queued", n, c.skill)
	} else if a, reason = s.pick(c); a != nil {
		s.assign(c, a, "assigned", why+"; "+reason, "")
		return s.describe(c, why+"; "+reason)
	}
	s.insertQueued(c)
	s.armFallback(c)
	s.keep(c)
	s.record(c, "queued", "", why+"; "+reason)
	d := s.describe(c, why+"; "+reason)
	s.notify(Event{Type: "queued", Chat: c.id, Buyer: c.buyer, Decision: d})
	return d
}

// pick chooses an agent for c by its skill group's strategy, or nil, and says why.
func (s *shop) pick(c *chat) (*agent, string) {
	g := s.group(c.skill)
	var notes []string
	var fit []*agent
	ids := make([]string, 0, len(s.agents))
	for id := range s.agents {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		a := s.agents[id]
		if !a.has(c.skill) && !c.fallback {
			continue
		}
		switch {
		case c.excluded[a.ID]:
			notes = append(notes, a.ID+" timed out on it")
		case a.status != Online:
			notes = append(notes, a.ID+" "+a.status)
		case !a.connected:
			notes = append(notes, a.ID+" disconnected")
		case a.load+c.weight > a.Capacity:
			notes = append(notes, fmt.Sprintf("%s at %d/%d", a.ID, a.load, a.Capacity))
		default:
			fit = append(fit, a)
		}
	}
	prefix := ""
	if c.fallback {
		prefix = fmt.Sprintf("waited past %s: any skill; ", time.Duration(g.FallbackAfter))
	}
	if len(fit) == 0 {
		if len(notes) == 0 {
			notes = append(notes, "no agent has skill "+c.skill)
		}
		return nil, prefix + strings.Join(notes, "; ") + "; queued"
	}
	if g.StickyDays > 0 {
		if last, ok := s.served[c.buyer]; ok && s.r.clock.Now().Sub(last.at) <= time.Duration(g.StickyDays)*24*time.Hour {
			for _, a := range fit {
				if a.ID == last.agent {
					return a, prefix + join(notes, fmt.Sprintf("%s served this buyer last (%d/%d)", a.ID, a.load, a.Capacity))
				}
			}
			notes = append(notes, last.agent+" (last served this buyer) unavailable")
		}
	}
	if g.Strategy == RoundRobin {
		prev := s.rr[c.skill]
		chosen := fit[0]
		for _, a := range fit {
			if a.ID > prev {
				chosen = a
				break
			}
		}
		s.rr[c.skill] = chosen.ID
		return chosen, prefix + join(notes, fmt.Sprintf("%s next in turn (%d/%d)", chosen.ID, chosen.load, chosen.Capacity))
	}
	chosen := fit[0]
	for _, a := range fit[1:] {
		if a.load < chosen.load || (a.load == chosen.load && a.Capacity-a.load > chosen.Capacity-chosen.load) {
			chosen = a
		}
	}
	return chosen, prefix + join(notes, fmt.Sprintf("%s least loaded %d/%d", chosen.ID, chosen.load, chosen.Capacity))
}

func join(notes []string, last string) string { return strings.Join(append(notes, last), "; ") }

// assign gives c to a and records why.
func (s *shop) assign(c *chat, a *agent, action, reason, previous string) {
	stop(&c.fallbackStop)
	if c.state == Queued && s.r.cfg.Waited != nil {
		s.r.cfg.Waited(s.r.clock.Now().Sub(c.queuedAt))
	}
	c.state, c.agent, c.assignedAt, c.awaitingReply = Assigned, a.ID, s.r.clock.Now(), false
	a.load += c.weight
	a.chats[c.id] = c
	s.keep(c)
	s.record(c, action, a.ID, reason)
	typ := "assigned"
	if previous != "" {
		typ = "reassigned"
	}
	s.notify(Event{Type: typ, Chat: c.id, Buyer: c.buyer, Agent: a.ID, Previous: previous, Decision: s.describe(c, reason)})
}

// unassign takes c from its agent.
func (s *shop) unassign(c *chat) {
	stop(&c.replyStop)
	c.awaitingReply = false
	if a := s.agents[c.agent]; a != nil && a.chats[c.id] != nil {
		a.load -= c.weight
		delete(a.chats, c.id)
	}
	if c.agent != "" {
		c.last = c.agent
	}
	c.agent = ""
}

// requeue puts an assigned chat back in line at its old place and says why.
func (s *shop) requeue(c *chat, why string) {
	prev := c.agent
	s.unassign(c)
	s.removeQueued(c)
	c.state = Queued
	s.insertQueued(c)
	s.armFallback(c)
	s.keep(c)
	s.record(c, "queued", "", why)
	s.notify(Event{Type: "queued", Chat: c.id, Buyer: c.buyer, Previous: prev, Decision: s.describe(c, why)})
}

// requeueAll hands every chat of a back to the queue.
func (s *shop) requeueAll(a *agent, why string) {
	chats := make([]*chat, 0, len(a.chats))
	for _, c := range a.chats {
		chats = append(chats, c)
	}
	sort.Slice(chats, func(i, j int) bool { return chats[i].seq < chats[j].seq })
	for _, c := range chats {
		s.requeue(c, why)
	}
}

// drain assigns queued chats while agents have room: by priority, then first come;
// a chat that cannot be placed holds back the later chats of its skill and priority,
// so nobody overtakes within a level.
func (s *shop) drain() {
	if s.rules == nil {
		return
	}
	if open, _ := s.rules.Hours.open(s.r.clock.Now()); !open {
		return
	}
	blocked := map[string]bool{}
	for i := 0; i < len(s.queue); {
		c := s.queue[i]
		key := fmt.Sprintf("%s/%d", c.skill, c.priority)
		if blocked[key] {
			i++
			continue
		}
		a, reason := s.pick(c)
		if a == nil {
			blocked[key] = true
			i++
			continue
		}
		s.queue = append(s.queue[:i], s.queue[i+1:]...)
		s.assign(c, a, "assigned", fmt.Sprintf("waited %s; %s", s.r.clock.Now().Sub(c.queuedAt).Round(time.Millisecond), reason), c.last)
	}
	if s.r.cfg.Notifier != nil {
		s.notifyPositions()
		s.notify(Event{Type: "live"})
	}
}

// insertQueued places c by priority (high first), then seq.
func (s *shop) insertQueued(c *chat) {
	i := sort.Search(len(s.queue), func(i int) bool {
		q := s.queue[i]
		return q.priority < c.priority || (q.priority == c.priority && q.seq > c.seq)
	})
	s.queue = append(s.queue, nil)
	copy(s.queue[i+1:], s.queue[i:])
	s.queue[i] = c
}

func (s *shop) removeQueued(c *chat) {
	for i, q := range s.queue {
		if q == c {
			s.queue = append(s.queue[:i], s.queue[i+1:]...)
			return
		}
	}
}

// waiting counts the queued chats of c's line (skill and priority).
func (s *shop) waiting(c *chat) int {
	n := 0
	for _, q := range s.queue {
		if q.skill == c.skill && q.priority == c.priority {
			n++
		}
	}
	return n
}

// wouldQueueAt is the 1-based place a chat like c would take in its skill's line.
func (s *shop) wouldQueueAt(c *chat) int {
	n := 1
	for _, q := range s.queue {
		if q.skill == c.skill && q.priority >= c.priority {
			n++
		}
	}
	return n
}

// position is c's 1-based place among the queued chats of its skill.
func (s *shop) position(c *chat) int {
	n := 0
	for _, q := range s.queue {
		if q.skill == c.skill {
			n++
		}
		if q == c {
			return n
		}
	}
	return 0
}

// armFallback lets c go to any skill once it has waited its group's fallback time.
func (s *shop) armFallback(c *chat) {
	after := time.Duration(s.group(c.skill).FallbackAfter)
	if after <= 0 || c.fallback {
		return
	}
	stop(&c.fallbackStop)
	left := after - s.r.clock.Now().Sub(c.queuedAt)
	c.fallbackStop = s.after(max(left, 0), func() {
		if c.state != Queued {
			return
		}
		c.fallback = true
		s.drain()
	})
}

// scheduleOpening drains the queue when a closed shop opens.
func (s *shop) scheduleOpening() {
	stop(&s.openStop)
	open, next := s.rules.Hours.open(s.r.clock.Now())
	if open || next.IsZero() {
		return
	}
	s.openStop = s.after(next.Sub(s.r.clock.Now()), func() {
		s.openStop = nil
		s.drain()
		s.scheduleClosing()
	})
}

// scheduleClosing arms the next opening after this shift.
func (s *shop) scheduleClosing() {
	now := s.r.clock.Now()
	// The shift ends at most a day later; look for the first closed minute.
	for m := 1; m <= 24*60; m++ {
		t := now.Add(time.Duration(m) * time.Minute)
		if open, _ := s.rules.Hours.open(t); !open {
			s.openStop = s.after(t.Sub(now), func() {
				s.scheduleOpening()
			})
			return
		}
	}
}

func (s *shop) describe(c *chat, reason string) Decision {
	d := Decision{Chat: c.id, Buyer: c.buyer, State: c.state, Agent: c.agent, Skill: c.skill, Weight: c.weight, Priority: c.priority, Reason: reason,
		Entry: c.from.kind, ProductID: c.from.product, OrderID: c.from.order}
	if c.state == Queued {
		d.Position = s.position(c)
		d.EstimatedWait = s.estimate(c)
	}
	return d
}

// estimate is a queued chat's expected wait: the chats ahead of it, served at the
// rate its skill's online capacity closes chats.
func (s *shop) estimate(c *chat) Duration { return s.estimateAt(c.skill, s.position(c)) }

func (s *shop) estimateAt(skill string, ahead int) Duration {
	var closed time.Duration // a closed shop adds the time until it opens
	if open, next := s.rules.Hours.open(s.r.clock.Now()); !open && !next.IsZero() {
		closed = next.Sub(s.r.clock.Now())
	}
	capacity := 0
	for _, a := range s.agents {
		if a.available() && a.has(skill) {
			capacity += a.Capacity
		}
	}
	if capacity == 0 {
		return Duration(closed + time.Duration(ahead)*s.avgServe)
	}
	return Duration(closed + time.Duration(ahead)*s.avgServe/time.Duration(capacity))
}

// notifyPositions tells each queued buyer whose place changed.
func (s *shop) notifyPositions() {
	place := map[string]int{}
	for _, c := range s.queue {
		place[c.skill]++
		if c.told != place[c.skill] {
			c.told = place[c.skill]
			s.notify(Event{Type: "queued", Chat: c.id, Buyer: c.buyer, Decision: s.describe(c, "")})
		}
	}
}

func (s *shop) notify(e Event) {
	if s.r.cfg.Notifier == nil {
		return
	}
	e.Shop = s.id
	if e.Type == "live" {
		l := s.live()
		e.Live = &l
	}
	s.r.cfg.Notifier.Notify(e)
}

func (s *shop) record(c *chat, action, agentID, reason string) {
	e := AuditEntry{At: s.r.clock.Now().UTC(), Chat: c.id, Action: action, Agent: agentID, Reason: reason}
	if len(s.audit) < s.r.cfg.AuditSize {
		s.audit = append(s.audit, e)
		return
	}
	s.audit[s.auditAt] = e
	s.auditAt = (s.auditAt + 1) % len(s.audit)
}

func stop(f *func() bool) {
	if *f != nil {
		(*f)()
		*f = nil
	}
}
