package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"

	"github.com/fanline/fanline/dispatch"
	"github.com/fanline/fanline/internal/metrics"
	"github.com/fanline/fanline/internal/presence"
	"github.com/fanline/fanline/internal/queue"
	"github.com/fanline/fanline/internal/wire"
)

// TopicPush is the queue topic that carries pushes to the gateway nodes when the
// pipeline and the connections live in different processes.
const TopicPush = "push"

// RelayConfig configures a Relay.
type RelayConfig struct {
	// Partitions is the push topic's partition count. Required.
	Partitions int
	// Buffer bounds the pushes waiting to be routed; past it pushes are dropped (they
	// are hints: the devices resync). Zero means 65536.
	Buffer int
	// Logger receives routing failures. Nil means slog.Default().
	Logger *slog.Logger
}

// Relay is the Pusher of a cluster: it routes each push through the push topic to the
// gateway nodes that hold the recipients' connections (found in the presence
// registry), and broadcasts what every node filters locally (large-group entries,
// membership changes, shop frames) once per partition, so each node gets it once. A
// node reads its own partition with Hub.Receive.
//
// A Relay never blocks its caller: pushes are queued and Run sends them
// in batches, one presence lookup and one produce per batch.
type Relay struct {
	q   queue.Queue
	reg presence.Registry
	m   *metrics.Metrics
	cfg RelayConfig

	pending chan relayed
	// everyPart holds one key per partition of the push topic; a broadcast goes
	// once to each.
	everyPart [][]byte
}

var _ dispatch.Pusher = (*Relay)(nil)

// relayed is one push on the push topic.
type relayed struct {
	// Node is the gateway node it is for; empty for a broadcast.
	Node    string   `json:"node,omitempty"`
	User    string   `json:"user,omitempty"`
	Shop    string   `json:"shop,omitempty"`
	Group   uint64   `json:"group,omitempty"`
	Skip    []string `json:"skip,omitempty"`
	Added   []string `json:"added,omitempty"`
	Removed []string `json:"removed,omitempty"`
	Version uint64   `json:"version,omitempty"` // the group's membership version (PushGroup, GroupMembers)
	// Frame is the encoded wire.ServerFrame, passed through to the connections.
	Frame json.RawMessage `json:"frame,omitempty"`
	// Kind and Msg name the entry Frame carries, if any (for the node's recent
	// recalls).
	Kind string `json:"kind,omitempty"`
	Msg  uint64 `json:"msg,omitempty"`
}

// NewRelay returns a relay producing to q's push topic.
func NewRelay(q queue.Queue, reg presence.Registry, m *metrics.Metrics, cfg RelayConfig) (*Relay, error) {
	if cfg.Partitions <= 0 {
		return nil, fmt.Errorf("gateway: relay needs the push topic's partition count")
	}
	if cfg.Buffer <= 0 {
		cfg.Buffer = 1 << 16
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	r := &Relay{q: q, reg: reg, m: m, cfg: cfg, pending: make(chan relayed, cfg.Buffer),
		everyPart: make([][]byte, cfg.Partitions)}
	// Search keys until every partition has one; PartitionFor spreads them evenly, so
	// this takes about Partitions x ln(Partitions) tries.
	for found, i := 0, 0; found < cfg.Partitions; i++ {
		k := []byte(fmt.Sprintf("*%d", i))
		if p := queue.PartitionFor(k, cfg.Partitions); r.everyPart[p] == nil {
			r.everyPart[p] = k
			found++
		}
	}
	return r, nil
}

func (r *Relay) offer(p relayed) {
	select {
	case r.pending <- p:
	default:
		r.m.PushesDropped.Inc()
	}
}

// Push implements dispatch.Pusher.
func (r *Relay) Push(user string, e wire.Entry, cursor string) {
	r.PushFrame(user, wire.ServerFrame{Type: wire.FrameMessage, Entry: &e, Cursor: cursor})
}

// PushFrame sends a frame to a user's connections, wherever they are.
func (r *Relay) PushFrame(user string, f wire.ServerFrame) { r.offerFrame(relayed{User: user}, f) }

// PushShop sends a frame to every connection of a shop's agents and admins.
func (r *Relay) PushShop(shop string, f wire.ServerFrame) { r.offerFrame(relayed{Shop: shop}, f) }

// PushGroup implements dispatch.Pusher: one record per partition, not per member.
func (r *Relay) PushGroup(group, version uint64, e wire.Entry, skip map[string]bool) {
	p := relayed{Group: group, Version: version}
	for u := range skip {
		p.Skip = append(p.Skip, u)
	}
	r.offerFrame(p, wire.ServerFrame{Type: wire.FrameMessage, Entry: &e})
}

// offerFrame queues p carrying f, encoded once here as the connections will get it.
func (r *Relay) offerFrame(p relayed, f wire.ServerFrame) {
	b, err := json.Marshal(f)
	if err != nil {
		r.m.PushesDropped.Inc()
		return
	}
	p.Frame = b
	if f.Entry != nil {
		p.Kind, p.Msg = f.Entry.Kind, uint64(f.Entry.MsgID)
	}
	r.offer(p)
}

// GroupMembers implements dispatch.Pusher.
func (r *Relay) GroupMembers(group, version uint64, added, removed []string) {
	r.offer(relayed{Group: group, Version: version, Added: added, Removed: removed})
}

// relayBatch bounds the pushes routed together.
const relayBatch = 512

// Run routes queued pushes until ctx is done.
func (r *Relay) Run(ctx context.Context) {
	for {
		var batch []relayed
		select {
		case p := <-r.pending:
			batch = append(batch, p)
		case <-ctx.Done():
			return
		}
	fill:
		for len(batch) < relayBatch {
			select {
			case p := <-r.pending:
				batch = append(batch, p)
			default:
				break fill
			}
		}
		if err := r.route(ctx, batch); err != nil && ctx.Err() == nil {
			r.m.PushesDropped.Add(float64(len(batch)))
			r.cfg.Logger.Warn("gateway: pushes not relayed; devices will resync", "pushes", len(batch), "err", err)
		}
	}
}

// route looks up the nodes of the batch's users and produces one record per node
// (per partition for broadcasts).
func (r *Relay) route(ctx context.Context, batch []relayed) error {
	var users []string
	for _, p := range batch {
		if p.User != "" {
			users = append(users, p.User)
		}
	}
	var nodes map[string][]string
	if len(users) > 0 {
		var err error
		if nodes, err = r.reg.Nodes(ctx, users); err != nil {
			return err
		}
	}
	var recs []queue.Record
	for _, p := range batch {
		if p.User == "" {
			v, err := json.Marshal(p)
			if err != nil {
				return err
			}
			for _, k := range r.everyPart {
				recs = append(recs, queue.Record{Key: k, Value: v})
			}
			continue
		}
		for _, n := range nodes[p.User] {
			p.Node = n
			v, err := json.Marshal(p)
			if err != nil {
				return err
			}
			recs = append(recs, queue.Record{Key: []byte(n), Value: v})
		}
	}
	return r.q.Produce(ctx, TopicPush, recs...)
}

// Receive delivers the pushes the relays send to node, reading node's partition of
// the push topic from now on, until ctx is done.
func (h *Hub) Receive(ctx context.Context, q queue.Queue, node string, partitions int, log *slog.Logger) error {
	part := queue.PartitionFor([]byte(node), partitions)
	return q.Tail(ctx, TopicPush, part, func(ctx context.Context, _ int, recs []queue.Record) error {
		for _, rec := range recs {
			var p relayed
			if err := json.Unmarshal(rec.Value, &p); err != nil {
				log.Warn("gateway: undecodable push record", "offset", rec.Offset, "err", err)
				continue
			}
			if p.Node == "" || p.Node == node {
				h.deliver(ctx, p)
			}
		}
		return nil
	})
}

// deliver hands one relayed push to this node's connections.
func (h *Hub) deliver(ctx context.Context, p relayed) {
	switch {
	case p.User != "" && p.Frame != nil:
		h.pushUser(p.User, h.recalls.frame(p.Kind, p.Msg, p.Frame))
	case p.Shop != "" && p.Frame != nil:
		h.pushShop(p.Shop, p.Frame)
	case p.Group != 0 && p.Frame != nil:
		skip := make(map[string]bool, len(p.Skip))
		for _, u := range p.Skip {
			skip[u] = true
		}
		h.pushGroup(ctx, p.Group, p.Version, createdAt(p.Msg), h.recalls.frame(p.Kind, p.Msg, p.Frame), skip)
	case p.Group != 0:
		h.GroupMembers(p.Group, p.Version, p.Added, p.Removed)
	}
}
