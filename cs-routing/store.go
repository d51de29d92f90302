package csrouting

import (
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/fanline/fanline/internal/kv"
)

// ShopConfig is what a shop keeps across restarts: the rules, agents and canned
// responses its admins configured, and its chats.
type ShopConfig struct {
	Rules  *Rules        `json:"rules,omitempty"`
	Agents []AgentConfig `json:"agents,omitempty"`
	Canned []Canned      `json:"canned,omitempty"`
	Chats  []ChatRecord  `json:"-"`
}

// ChatRecord is a chat's routing state as stored.
type ChatRecord struct {
	ID         string    `json:"id"`
	Buyer      string    `json:"buyer"`
	Skill      string    `json:"skill"`
	Weight     int       `json:"weight"`
	Priority   int       `json:"priority,omitempty"`
	State      string    `json:"state"`
	Agent      string    `json:"agent,omitempty"`
	Last       string    `json:"last,omitempty"`
	Seq        uint64    `json:"seq"`
	QueuedAt   time.Time `json:"queued_at"`
	AssignedAt time.Time `json:"assigned_at,omitzero"`
	ClosedAt   time.Time `json:"closed_at,omitzero"`
	Entry      string    `json:"entry,omitempty"`
	ProductID  string    `json:"product_id,omitempty"`
	OrderID    string    `json:"order_id,omitempty"`
}

// Store keeps shops across restarts.
type Store interface {
	// Put replaces a shop's configuration, durably.
	Put(shop string, cfg ShopConfig) error
	// PutChat stores a chat's state. It need not be synced: a crash may lose the
	// last changes, which the agents' and buyers' next actions redo.
	PutChat(shop string, c ChatRecord) error
	// DeleteChats deletes chats' states (closed long ago). Like PutChat it need
	// not be synced: a delete lost in a crash is done again at the next start.
	DeleteChats(shop string, ids []string) error
	// All returns every shop with its chats.
	All() (map[string]ShopConfig, error)
}

// PebbleStore is the embedded Store: r c <shop> -> ShopConfig as JSON; r h <shop>
// <chat> -> ChatRecord as JSON.
type PebbleStore struct{ db *pebble.DB }

var _ Store = (*PebbleStore)(nil)

// NewPebbleStore returns a Store on db.
func NewPebbleStore(db *pebble.DB) *PebbleStore { return &PebbleStore{db: db} }

func shopPrefix() kv.Key { return kv.NewKey(kv.PrefixRouting, 'c') }
func chatPrefix(shop string) kv.Key {
	return kv.NewKey(kv.PrefixRouting, 'h').Str(shop)
}

// PutChat implements Store.
func (s *PebbleStore) PutChat(shop string, c ChatRecord) error {
	v, err := json.Marshal(c)
	if err != nil {
		return err
	}
	if err := s.db.Set(chatPrefix(shop).Str(c.ID), v, pebble.NoSync); err != nil {
		return fmt.Errorf("csrouting: save chat %s: %w", c.ID, err)
	}
	return nil
}

// DeleteChats implements Store.
func (s *PebbleStore) DeleteChats(shop string, ids []string) error {
	batch := s.db.NewBatch()
	defer batch.Close()
	for _, id := range ids {
		_ = batch.Delete(chatPrefix(shop).Str(id), nil)
	}
	if err := batch.Commit(pebble.NoSync); err != nil {
		return fmt.Errorf("csrouting: delete chats of %s: %w", shop, err)
	}
	return nil
}

// Put implements Store.
func (s *PebbleStore) Put(shop string, cfg ShopConfig) error {
	v, err := json.Marshal(cfg)
	if err != nil {
		return err
	}
	if err := s.db.Set(shopPrefix().Str(shop), v, pebble.Sync); err != nil {
		return fmt.Errorf("csrouting: save shop %s: %w", shop, err)
	}
	return nil
}

// All implements Store.
func (s *PebbleStore) All() (map[string]ShopConfig, error) {
	prefix := shopPrefix()
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: kv.PrefixEnd(prefix)})
	if err != nil {
		return nil, fmt.Errorf("csrouting: %w", err)
	}
	defer it.Close()
	out := map[string]ShopConfig{}
	for it.First(); it.Valid(); it.Next() {
		k := it.Key()[len(prefix):]
		var cfg ShopConfig
		if err := json.Unmarshal(it.Value(), &cfg); err != nil {
			return nil, fmt.Errorf("csrouting: shop %s: %w", k[1:1+k[0]], err)
		}
		out[string(k[1:1+k[0]])] = cfg
	}
	if err := it.Error(); err != nil {
		return nil, err
	}
	for shop, cfg := range out {
		if cfg.Chats, err = s.chats(shop); err != nil {
			return nil, err
		}
		out[shop] = cfg
	}
	return out, nil
}

func (s *PebbleStore) chats(shop string) ([]ChatRecord, error) {
	prefix := chatPrefix(shop)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: kv.PrefixEnd(prefix)})
	if err != nil {
		return nil, fmt.Errorf("csrouting: %w", err)
	}
	defer it.Close()
	var out []ChatRecord
	for it.First(); it.Valid(); it.Next() {
		var c ChatRecord
		if err := json.Unmarshal(it.Value(), &c); err != nil {
			return nil, fmt.Errorf("csrouting: chat of %s: %w", shop, err)
		}
		out = append(out, c)
	}
	return out, it.Error()
}

// keepClosedFor is how long a closed chat is remembered (reopening, stickiness).
const keepClosedFor = maxStickyDays * 24 * time.Hour

// restore rebuilds the shop's chats after a restart: waiting chats keep their place;
// chats of agents who are not connected (nobody is, yet) move on after the presence
// grace unless their agent comes back. Chats closed more than keepClosedFor ago are
// deleted from the Store.
func (s *shop) restore(recs []ChatRecord) {
	now := s.r.clock.Now()
	var old []string
	defer func() { s.deleteChats(old) }()
	for _, rec := range recs {
		if rec.State == Closed && now.Sub(rec.ClosedAt) > keepClosedFor {
			old = append(old, rec.ID)
			continue
		}
		c := &chat{id: rec.ID, buyer: rec.Buyer, skill: rec.Skill, weight: rec.Weight, priority: rec.Priority,
			state: rec.State, agent: rec.Agent, last: rec.Last, seq: rec.Seq, queuedAt: rec.QueuedAt,
			assignedAt: rec.AssignedAt, closedAt: rec.ClosedAt, from: entry{rec.Entry, rec.ProductID, rec.OrderID}}
		s.chats[c.id] = c
		s.seq = max(s.seq, c.seq)
		switch c.state {
		case Queued:
			s.insertQueued(c)
			s.armFallback(c)
		case Assigned:
			a := s.agents[c.agent]
			if a == nil {
				c.state, c.agent = Queued, ""
				s.insertQueued(c)
				continue
			}
			a.load += c.weight
			a.chats[c.id] = c
		case Closed:
			if last, ok := s.served[c.buyer]; c.last != "" && (!ok || c.closedAt.After(last.at)) {
				s.served[c.buyer] = served{c.last, c.closedAt}
			}
		}
	}
	for _, a := range s.agents {
		if len(a.chats) > 0 && !a.connected {
			a.status = Online // as they left it; the grace decides
			s.armGrace(a)
		}
	}
}

// A close runs forgetOldChats every forgetCloses closes, and when forgetEvery has
// passed since it last ran (so a quiet shop trims too).
const (
	forgetEvery  = 24 * time.Hour
	forgetCloses = 1024
)

// forgetOldChats drops, every 1,024 closes or once a day when a chat closes, the
// chats closed longer than keepClosedFor ago, from memory and from the Store, so
// both hold open chats and a month of closed ones. The caller holds the shop's lock.
func (s *shop) forgetOldChats() {
	now := s.r.clock.Now()
	if s.closes++; s.closes%forgetCloses != 0 && now.Sub(s.forgotAt) < forgetEvery {
		return
	}
	s.forgotAt = now
	var old []string
	for id, c := range s.chats {
		if c.state == Closed && now.Sub(c.closedAt) > keepClosedFor {
			delete(s.chats, id)
			old = append(old, id)
		}
	}
	s.deleteChats(old)
	for buyer, sv := range s.served {
		if now.Sub(sv.at) > keepClosedFor {
			delete(s.served, buyer)
		}
	}
}

// keep stores c's state; the caller holds the shop's lock. Routing goes on if the
// store fails (the state is then lost at the next restart) and the error is counted.
func (s *shop) keep(c *chat) {
	if s.r.cfg.Store == nil {
		return
	}
	rec := ChatRecord{ID: c.id, Buyer: c.buyer, Skill: c.skill, Weight: c.weight, Priority: c.priority, State: c.state,
		Agent: c.agent, Last: c.last, Seq: c.seq, QueuedAt: c.queuedAt, AssignedAt: c.assignedAt, ClosedAt: c.closedAt,
		Entry: c.from.kind, ProductID: c.from.product, OrderID: c.from.order}
	if err := s.r.cfg.Store.PutChat(s.id, rec); err != nil {
		s.r.storeErrors.Add(1)
	}
}

// deleteChats deletes old chats' states from the Store; the caller holds the shop's
// lock. A failure is counted (the chats are deleted at the next restart).
func (s *shop) deleteChats(ids []string) {
	if s.r.cfg.Store == nil || len(ids) == 0 {
		return
	}
	sort.Strings(ids)
	if err := s.r.cfg.Store.DeleteChats(s.id, ids); err != nil {
		s.r.storeErrors.Add(1)
	}
}

// StoreErrors counts chat states the Store failed to keep or delete.
func (r *Router) StoreErrors() int64 { return r.storeErrors.Load() }

// save stores the shop's configuration: its current one with what cfg changes
// (the fields cfg sets); the caller holds its lock and applies the change after.
func (s *shop) save(cfg ShopConfig) error {
	if s.r.cfg.Store == nil {
		return nil
	}
	if cfg.Rules == nil {
		cfg.Rules = s.rules
	}
	if cfg.Agents == nil {
		cfg.Agents = s.agentConfigs()
	}
	if cfg.Canned == nil {
		cfg.Canned = s.canned
	}
	return s.r.cfg.Store.Put(s.id, cfg)
}

func (s *shop) agentConfigs() []AgentConfig {
	out := make([]AgentConfig, 0, len(s.agents))
	for _, v := range s.agentViews() {
		out = append(out, v.AgentConfig)
	}
	return out
}
