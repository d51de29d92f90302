package csrouting

import (
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Agent statuses.
const (
	Online  = "online"
	Busy    = "busy"
	Away    = "away"
	Offline = "offline"
)

// Chat states.
const (
	Queued   = "queued"   // waiting for an agent
	Assigned = "assigned" // an agent serves it
	Closed   = "closed"
)

// Errors. The API maps them to error codes.
var (
	ErrUnknownShop  = errors.New("csrouting: the shop has no routing rules")
	ErrUnknownAgent = errors.New("csrouting: no such agent in this shop")
	ErrUnknownChat  = errors.New("csrouting: no such chat in this shop")
	ErrUnavailable  = errors.New("csrouting: the agent is not online with capacity")
	ErrBadStatus    = errors.New("csrouting: status must be online, busy, away or offline")
	ErrClosed       = errors.New("csrouting: the chat is closed")
	ErrInvalid      = errors.New("csrouting: invalid")
)

// AgentConfig is an agent as the shop's admin configures them.
type AgentConfig struct {
	ID       string   `json:"agent_id"`
	Name     string   `json:"name,omitempty"`
	Skills   []string `json:"skills"`
	Capacity int      `json:"capacity"`
}

// AgentView is an agent with their live state.
type AgentView struct {
	AgentConfig
	Status    string `json:"status"`
	Connected bool   `json:"connected"`
	Load      int    `json:"load"`
}

// OpenRequest is a buyer opening (or resuming) a chat with a shop.
type OpenRequest struct {
	Buyer string
	// Chat is the conversation id that identifies the chat.
	Chat string
	// Entry is where the chat was opened: product, order, refund, return, shop, ...
	Entry string
	// ProductID and OrderID name what the buyer was looking at, if anything.
	ProductID, OrderID string
	// Text is the buyer's first message, if any.
	Text string
}

// Decision is what happened to a chat, with the reason stored in the audit log.
type Decision struct {
	Chat     string `json:"conversation_id,omitempty"`
	Buyer    string `json:"buyer_id,omitempty"`
	State    string `json:"state"`
	Agent    string `json:"agent_id,omitempty"`
	Skill    string `json:"skill"`
	Weight   int    `json:"weight"`
	Priority int    `json:"priority"`
	Position int    `json:"queue_position,omitempty"`
	// EstimatedWait is for a queued chat.
	EstimatedWait Duration `json:"estimated_wait,omitzero"`
	Reason        string   `json:"reason"`
	// AutoReply is the shop's offline reply, for a chat opened while it is closed.
	AutoReply string `json:"auto_reply,omitempty"`
	// Entry, ProductID and OrderID are where the chat was (last) opened from.
	Entry     string `json:"entry,omitempty"`
	ProductID string `json:"product_id,omitempty"`
	OrderID   string `json:"order_id,omitempty"`
}

// AuditEntry is one routing decision.
type AuditEntry struct {
	At     time.Time `json:"at"`
	Chat   string    `json:"conversation_id"`
	Action string    `json:"action"` // assigned, queued, reassigned, transferred, closed
	Agent  string    `json:"agent_id,omitempty"`
	Reason string    `json:"reason"`
}

// Live is what supervisors watch.
type Live struct {
	Queues      map[string]int `json:"queue_depth"` // per skill
	LongestWait Duration       `json:"longest_wait"`
	Agents      []AgentView    `json:"agents"`
	Open        bool           `json:"open"`
}

// Event tells the outside world about a change: the buyer and agent of a chat, and
// the shop's supervisors (Type "live").
type Event struct {
	Type     string // assigned, queued, reassigned, closed, live
	Shop     string
	Chat     string
	Buyer    string
	Agent    string // the new agent (assigned, reassigned)
	Previous string // the agent who lost the chat (reassigned, transferred)
	Decision Decision
	Live     *Live // for "live"
}

// Notifier receives events; it must not block nor call back into the Router.
type Notifier interface{ Notify(Event) }

// Clock is time for the Router; tests use a manual one.
type Clock interface {
	Now() time.Time
	AfterFunc(d time.Duration, f func()) func() bool // returns stop
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }
func (realClock) AfterFunc(d time.Duration, f func()) func() bool {
	return time.AfterFunc(d, f).Stop
}

// Config configures a Router.
type Config struct {
	// Clock is nil for the real clock.
	Clock Clock
	// Notifier is nil for none.
	Notifier Notifier
	// AuditSize is how many decisions each shop keeps. Zero means 10,000.
	AuditSize int
	// Store keeps shops' rules and agents. Nil: kept in memory only.
	Store Store
	// PendingPresence is how many connected agents, in all, are remembered for
	// shops that are not configured yet (the oldest connection is forgotten first).
	// Zero means 10,000.
	PendingPresence int
	// Waited, when set, is told how long each chat waited in its shop's queue
	// when an agent gets it (for a metric). It is called with the shop locked.
	Waited func(time.Duration)
}

// Router routes the chats of every shop.
type Router struct {
	cfg         Config
	clock       Clock
	closed      atomic.Bool  // set by Stop: timers that fire later do nothing
	storeErrors atomic.Int64 // chat states the Store failed to keep

	// mu guards shops (the map; each shop has its own lock) and pending. A shop
	// exists once an admin configured it (SetRules, SetAgents, or the Store at
	// start-up); nothing else allocates per-shop state.
	mu      sync.Mutex
	shops   map[string]*shop
	pending *pendingPresence // connected agents of shops not configured yet
}

// NewRouter returns a Router with the shops cfg.Store holds.
func NewRouter(cfg Config) (*Router, error) {
	if cfg.Clock == nil {
		cfg.Clock = realClock{}
	}
	if cfg.AuditSize <= 0 {
		cfg.AuditSize = 10000
	}
	if cfg.PendingPresence <= 0 {
		cfg.PendingPresence = 10000
	}
	r := &Router{cfg: cfg, clock: cfg.Clock, shops: map[string]*shop{}, pending: newPendingPresence(cfg.PendingPresence)}
	if cfg.Store == nil {
		return r, nil
	}
	all, err := cfg.Store.All()
	if err != nil {
		return nil, err
	}
	for id, sc := range all {
		s := r.shop(id, true)
		s.setAgents(sc.Agents)
		s.canned = sc.Canned
		if sc.Rules != nil {
			rules := *sc.Rules
			rules.validate(nil) // prepares the hours; it was valid when stored
			s.rules = &rules
			s.scheduleOpening()
			s.restore(sc.Chats)
		}
	}
	return r, nil
}

// Stop stops the Router: timers that fire afterwards change nothing.
func (r *Router) Stop() { r.closed.Store(true) }

// after runs f with the shop's lock held once d has passed, unless the Router is
// stopped by then; it returns the timer's stop.
func (s *shop) after(d time.Duration, f func()) func() bool {
	return s.r.clock.AfterFunc(d, func() {
		if s.r.closed.Load() {
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		f()
	})
}

// shop is one shop's routing state.
type shop struct {
	r  *Router
	id string

	mu       sync.Mutex // guards everything below; timers take it too
	rules    *Rules     // nil until the first PUT
	agents   map[string]*agent
	chats    map[string]*chat
	queue    []*chat // queued chats, by priority (high first) then seq
	seq      uint64
	served   map[string]served // buyer -> who served them last
	present  map[string]bool   // agent ids with a live connection, configured or not
	rr       map[string]string // skill -> agent id picked last (round robin)
	audit    []AuditEntry      // ring
	auditAt  int
	avgServe time.Duration // moving average of how long a chat stays assigned
	openStop func() bool   // the timer for the next opening, when closed
	closes   int           // chats closed, to sweep old ones now and then
	forgotAt time.Time     // when forgetOldChats last swept
	canned   []Canned      // the canned responses, in the admins' order
}

type served struct {
	agent string
	at    time.Time
}

type agent struct {
	AgentConfig
	status    string
	connected bool
	graceStop func() bool // runs out the presence grace
	load      int
	chats     map[string]*chat
}

func (a *agent) has(skill string) bool {
	for _, s := range a.Skills {
		if s == skill {
			return true
		}
	}
	return false
}

// available reports whether a can take new chats.
func (a *agent) available() bool { return a.status == Online && a.connected }

type chat struct {
	id, buyer     string
	skill         string
	weight        int
	priority      int
	state         string
	agent         string
	last          string // the agent who served it before (reopen, reassignment)
	seq           uint64 // FIFO order within a priority
	queuedAt      time.Time
	assignedAt    time.Time
	closedAt      time.Time
	fallback      bool            // waited long enough for any skill
	excluded      map[string]bool // agents who timed out on it
	fallbackStop  func() bool
	replyStop     func() bool
	awaitingReply bool
	told          int // the queue position the buyer was last told
	from          entry
}

// entry is where a chat was (last) opened from.
type entry struct{ kind, product, order string }

// shop returns the shop id, or nil. Only configuring a shop may create it (create
// true): its agents connected meanwhile are then remembered as present.
func (r *Router) shop(id string, create bool) *shop {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.shops[id]
	if s == nil && create {
		s = &shop{r: r, id: id, agents: map[string]*agent{}, chats: map[string]*chat{}, served: map[string]served{},
			rr: map[string]string{}, present: map[string]bool{}, avgServe: 5 * time.Minute, forgotAt: r.clock.Now()}
		for _, a := range r.pending.take(id) {
			s.present[a] = true
		}
		r.shops[id] = s
	}
	return s
}

// Configured reports whether the shop has routing rules. It allocates nothing, so
// callers may ask it about any shop id.
func (r *Router) Configured(shopID string) bool {
	s := r.shop(shopID, false)
	if s == nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rules != nil
}

// locked returns the shop, locked; the caller unlocks it.
func (r *Router) locked(id string) (*shop, error) {
	s := r.shop(id, false)
	if s == nil {
		return nil, ErrUnknownShop
	}
	s.mu.Lock()
	if s.rules == nil {
		s.mu.Unlock()
		return nil, ErrUnknownShop
	}
	return s, nil
}

// lockedChat returns a chat and its shop, locked; the caller unlocks it.
func (r *Router) lockedChat(shopID, chatID string) (*shop, *chat, error) {
	s, err := r.locked(shopID)
	if err != nil {
		return nil, nil, err
	}
	c := s.chats[chatID]
	if c == nil {
		s.mu.Unlock()
		return nil, nil, ErrUnknownChat
	}
	return s, c, nil
}

// SetRules validates rules against the shop's agents and, when there is no problem,
// stores them as the shop's rules with the next version. It returns the stored rules
// or every problem found.
func (r *Router) SetRules(shopID string, rules Rules) (Rules, []Problem, error) {
	s := r.shop(shopID, false)
	if s == nil {
		// A new shop: refused rules create nothing.
		if ps := rules.validate(nil); len(ps) > 0 {
			return Rules{}, ps, nil
		}
		s = r.shop(shopID, true)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if ps := rules.validate(s.agents); len(ps) > 0 {
		return Rules{}, ps, nil
	}
	rules.Version = 1
	if s.rules != nil {
		rules.Version = s.rules.Version + 1
	}
	if err := s.save(ShopConfig{Rules: &rules}); err != nil {
		return Rules{}, nil, err
	}
	s.rules = &rules
	s.reskill()
	s.scheduleOpening()
	s.drain()
	return rules, nil, nil
}

// Rules returns the shop's rules.
func (r *Router) Rules(shopID string) (Rules, error) {
	s, err := r.locked(shopID)
	if err != nil {
		return Rules{}, err
	}
	defer s.mu.Unlock()
	return *s.rules, nil
}

// SetAgents replaces the shop's agent list (their live status and chats stay). It
// refuses, with every problem, agents without an id or skills or with a capacity below
// 1. Skills the rules do not define yet are allowed: a new skill group needs its
// agents before the rules can name it (an empty group is a rules problem).
func (r *Router) SetAgents(shopID string, list []AgentConfig) ([]Problem, error) {
	if ps := agentProblems(list); len(ps) > 0 {
		return ps, nil // a refused list creates nothing
	}
	s := r.shop(shopID, true)
	s.mu.Lock()
	defer s.mu.Unlock()
	if list == nil {
		list = []AgentConfig{} // none, not "as they are" (save)
	}
	if err := s.save(ShopConfig{Agents: list}); err != nil {
		return nil, err
	}
	s.setAgents(list)
	s.drain()
	return nil, nil
}

// agentProblems checks an agent list: ids, capacities and skills.
func agentProblems(list []AgentConfig) []Problem {
	var ps []Problem
	ids := map[string]bool{}
	for i, a := range list {
		f := fmt.Sprintf("agents[%d]", i)
		if a.ID == "" || ids[a.ID] {
			ps = append(ps, Problem{f + ".agent_id", "is required and must be unique"})
		}
		ids[a.ID] = true
		if a.Capacity < 1 {
			ps = append(ps, Problem{f + ".capacity", fmt.Sprintf("is %d: an agent takes at least one chat", a.Capacity)})
		}
		if len(a.Skills) == 0 {
			ps = append(ps, Problem{f + ".skills", "needs at least one skill"})
		}
	}
	return ps
}

// setAgents replaces the agent list; removed agents' chats go back to the queue.
func (s *shop) setAgents(list []AgentConfig) {
	next := map[string]*agent{}
	for _, c := range list {
		a := s.agents[c.ID]
		if a == nil {
			a = &agent{status: Offline, chats: map[string]*chat{}, connected: s.present[c.ID]}
		}
		a.AgentConfig = c
		next[c.ID] = a
	}
	var removed []*agent
	for id, a := range s.agents {
		if next[id] == nil {
			removed = append(removed, a)
		}
	}
	s.agents = next
	for _, a := range removed {
		s.requeueAll(a, "removed from the shop's agents")
	}
}

// Agents lists the shop's agents with their live state.
func (r *Router) Agents(shopID string) []AgentView {
	s := r.shop(shopID, false)
	if s == nil {
		return []AgentView{}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.agentViews()
}

// IsAgent reports whether id is one of the shop's agents.
func (r *Router) IsAgent(shopID, id string) bool {
	s := r.shop(shopID, false)
	if s == nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.agents[id] != nil
}

func (s *shop) agentViews() []AgentView {
	out := make([]AgentView, 0, len(s.agents))
	for _, a := range s.agents {
		out = append(out, AgentView{AgentConfig: a.AgentConfig, Status: a.status, Connected: a.connected, Load: a.load})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// SetStatus sets an agent's status. Going offline hands their chats to others now.
func (r *Router) SetStatus(shopID, agentID, status string) error {
	switch status {
	case Online, Busy, Away, Offline:
	default:
		return ErrBadStatus
	}
	s, err := r.locked(shopID)
	if err != nil {
		return err
	}
	defer s.mu.Unlock()
	a := s.agents[agentID]
	if a == nil {
		return ErrUnknownAgent
	}
	a.status = status
	if status == Offline {
		s.requeueAll(a, a.ID+" went offline")
	}
	s.drain()
	return nil
}

// Open classifies and routes a buyer's chat. A chat that exists and is closed is
// reopened, preferring the agent who served it; one that is open is answered as it
// stands.
func (r *Router) Open(shopID string, req OpenRequest) (Decision, error) {
	s, err := r.locked(shopID)
	if err != nil {
		return Decision{}, err
	}
	defer s.mu.Unlock()
	c := s.chats[req.Chat]
	if c != nil && c.state != Closed {
		return s.describe(c, "already "+c.state), nil
	}
	cl, priority, why := s.classify(req)
	if c == nil {
		c = &chat{id: req.Chat, buyer: req.Buyer}
		s.chats[c.id] = c
	}
	c.skill, c.weight, c.priority = cl.Skill, cl.Weight, priority
	c.excluded, c.fallback = nil, false
	c.from = entry{req.Entry, req.ProductID, req.OrderID}
	return s.enqueue(c, why), nil
}

// DryRun answers who would get a chat now, and why, changing nothing.
func (r *Router) DryRun(shopID string, req OpenRequest) (Decision, error) {
	s, err := r.locked(shopID)
	if err != nil {
		return Decision{}, err
	}
	defer s.mu.Unlock()
	cl, priority, why := s.classify(req)
	c := &chat{id: req.Chat, buyer: req.Buyer, skill: cl.Skill, weight: cl.Weight, priority: priority}
	d := Decision{Chat: req.Chat, Buyer: req.Buyer, Skill: c.skill, Weight: c.weight, Priority: c.priority,
		Entry: req.Entry, ProductID: req.ProductID, OrderID: req.OrderID}
	if open, _ := s.rules.Hours.open(s.r.clock.Now()); !open {
		d.State, d.Reason = Queued, why+"; shop closed: would wait for opening"
		return d, nil
	}
	a, reason := s.pick(c)
	if n := s.waiting(c); n > 0 {
		a, reason = nil, fmt.Sprintf("%d earlier chats of %s waiting; queued", n, c.skill)
	}
	d.Reason = why + "; " + reason
	if a == nil {
		d.State, d.Position = Queued, s.wouldQueueAt(c)
		d.EstimatedWait = s.estimateAt(c.skill, d.Position)
		return d, nil
	}
	d.State, d.Agent = Assigned, a.ID
	return d, nil
}

// BuyerMessage starts the reply timer of an assigned chat.
func (r *Router) BuyerMessage(shopID, chatID string) {
	s, c, err := r.lockedChat(shopID, chatID)
	if err != nil {
		return
	}
	defer s.mu.Unlock()
	if c.state != Assigned || c.awaitingReply {
		return
	}
	timeout := time.Duration(s.rules.ReplyTimeout)
	if timeout == 0 {
		timeout = 2 * time.Minute
	}
	if timeout < 0 {
		return
	}
	c.awaitingReply = true
	agentID := c.agent
	c.replyStop = s.after(timeout, func() {
		if c.state != Assigned || c.agent != agentID || !c.awaitingReply {
			return
		}
		if c.excluded == nil {
			c.excluded = map[string]bool{}
		}
		c.excluded[agentID] = true
		s.requeue(c, fmt.Sprintf("%s did not reply within %s", agentID, timeout))
		s.drain()
	})
}

// AgentReplied stops the reply timer; it reports whether agentID serves the chat.
func (r *Router) AgentReplied(shopID, chatID, agentID string) bool {
	s, c, err := r.lockedChat(shopID, chatID)
	if err != nil {
		return false
	}
	defer s.mu.Unlock()
	if c.agent != agentID {
		return false
	}
	c.awaitingReply = false
	stop(&c.replyStop)
	return true
}

// Chat returns a chat's state as its buyer or agent sees it.
func (r *Router) Chat(shopID, chatID string) (Decision, error) {
	s, c, err := r.lockedChat(shopID, chatID)
	if err != nil {
		return Decision{}, err
	}
	defer s.mu.Unlock()
	return s.describe(c, ""), nil
}

// AgentChats lists the chats an agent serves.
func (r *Router) AgentChats(shopID, agentID string) ([]Decision, error) {
	s, err := r.locked(shopID)
	if err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	a := s.agents[agentID]
	if a == nil {
		return nil, ErrUnknownAgent
	}
	out := []Decision{}
	for _, c := range a.chats {
		out = append(out, s.describe(c, ""))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Chat < out[j].Chat })
	return out, nil
}

// Transfer moves a chat to an agent (who must be online with capacity) or to a skill
// (queued there, keeping its place in line).
func (r *Router) Transfer(shopID, chatID, by, toAgent, toSkill string) (Decision, error) {
	s, c, err := r.lockedChat(shopID, chatID)
	if err != nil {
		return Decision{}, err
	}
	defer s.mu.Unlock()
	if c.state == Closed {
		return Decision{}, ErrClosed
	}
	if toAgent != "" {
		a := s.agents[toAgent]
		if a == nil {
			return Decision{}, ErrUnknownAgent
		}
		if !a.available() || a.load+c.weight > a.Capacity {
			return Decision{}, ErrUnavailable
		}
		prev := c.agent
		s.unassign(c)
		s.removeQueued(c)
		s.assign(c, a, "transferred", fmt.Sprintf("transferred by %s to %s (%d/%d)", by, a.ID, a.load, a.Capacity), prev)
		s.drain()
		return s.describe(c, ""), nil
	}
	if !s.hasSkill(toSkill) {
		return Decision{}, fmt.Errorf("%w: unknown skill %q", ErrInvalid, toSkill)
	}
	c.skill = toSkill
	s.requeue(c, fmt.Sprintf("transferred by %s to skill %s", by, toSkill))
	s.drain()
	return s.describe(c, ""), nil
}

// Close closes a chat and frees its agent's capacity.
func (r *Router) Close(shopID, chatID, by string) (Decision, error) {
	s, c, err := r.lockedChat(shopID, chatID)
	if err != nil {
		return Decision{}, err
	}
	defer s.mu.Unlock()
	if c.state == Closed {
		return s.describe(c, ""), nil
	}
	agentID := c.agent
	if a := s.agents[agentID]; a != nil && c.state == Assigned {
		s.served[c.buyer] = served{agentID, s.r.clock.Now()}
		d := s.r.clock.Now().Sub(c.assignedAt)
		s.avgServe = (s.avgServe*9 + d) / 10
	}
	s.unassign(c)
	s.removeQueued(c)
	c.state, c.last, c.closedAt = Closed, agentID, s.r.clock.Now()
	s.keep(c)
	s.forgetOldChats()
	stop(&c.fallbackStop)
	s.record(c, "closed", agentID, "closed by "+by)
	s.notify(Event{Type: "closed", Chat: c.id, Buyer: c.buyer, Agent: agentID, Decision: s.describe(c, "")})
	s.drain()
	return s.describe(c, ""), nil
}

// Audit returns the shop's latest decisions, newest last.
func (r *Router) Audit(shopID string, limit int) []AuditEntry {
	s := r.shop(shopID, false)
	if s == nil {
		return []AuditEntry{}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(s.audit)
	out := make([]AuditEntry, 0, min(n, limit))
	for i := max(0, n-limit); i < n; i++ {
		out = append(out, s.audit[(s.auditAt+i)%n])
	}
	return out
}

// Waiting returns how many chats wait in the queues of every shop.
func (r *Router) Waiting() int {
	r.mu.Lock()
	shops := make([]*shop, 0, len(r.shops))
	for _, s := range r.shops {
		shops = append(shops, s)
	}
	r.mu.Unlock()
	n := 0
	for _, s := range shops {
		s.mu.Lock()
		n += len(s.queue)
		s.mu.Unlock()
	}
	return n
}

// Live returns the shop's queues and agents.
func (r *Router) Live(shopID string) (Live, error) {
	s, err := r.locked(shopID)
	if err != nil {
		return Live{}, err
	}
	defer s.mu.Unlock()
	return s.live(), nil
}

func (s *shop) live() Live {
	l := Live{Queues: map[string]int{}, Agents: s.agentViews()}
	for _, g := range s.rules.Skills {
		l.Queues[g.Name] = 0
	}
	now := s.r.clock.Now()
	for _, c := range s.queue {
		l.Queues[c.skill]++
		l.LongestWait = max(l.LongestWait, Duration(now.Sub(c.queuedAt)))
	}
	l.Open, _ = s.rules.Hours.open(now)
	return l
}
