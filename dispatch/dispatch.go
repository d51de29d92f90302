// Package dispatch is the send pipeline: it validates and authorises a send, dedups it
// on (sender, client_msg_id), assigns its msg_id and acknowledges it once the send
// stage's queue holds it durably. The stages that follow are idempotent and retried by
// the queue:
//
//   - the send stage stores the message once (a group message gets its stream seq and
//     fanout mode there) and then, for direct and write-fanout messages, produces one
//     fanout job per recipient; for a read-fanout message the stream is the only copy
//     and one push event goes to the gateway;
//   - the fanout stage (topic "fanout", keyed by recipient, so one writer per user
//     timeline) appends the entry to the member's timeline and pushes it to the
//     member's connected devices.
//
// The send stage runs on two topics with separate consumers, so a flooded large group
// cannot delay a 1:1 chat: "send" carries direct messages (keyed by sender) and
// write-fanout groups (keyed by group, one writer per group stream), "group" carries
// read-fanout groups (keyed by group). Control entries (read receipts, recalls,
// membership events) go through their own fanout topic, "control". Under backlog each
// stage takes its records in batches, so consecutive jobs for one recipient become one
// timeline write.
//
// The Dispatcher also answers the read side of the API (sync, conversations, history,
// receipts) and the state changes that go with it (mark-read, recall). It is safe for
// concurrent use; Run owns every goroutine it starts.
package dispatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fanline/fanline/groupstream"
	"github.com/fanline/fanline/internal/ids"
	"github.com/fanline/fanline/internal/keylock"
	"github.com/fanline/fanline/internal/metrics"
	"github.com/fanline/fanline/internal/queue"
	"github.com/fanline/fanline/internal/wire"
	"github.com/fanline/fanline/media"
	"github.com/fanline/fanline/timeline"
)

// Queue topics, and the consumer groups of the stages.
const (
	TopicSend    = "send"
	TopicGroup   = "group"
	TopicFanout  = "fanout"
	TopicControl = "control"
	groupSend    = "dispatch-send"
	groupGroup   = "dispatch-group"
	groupFanout  = "dispatch-fanout"
	groupControl = "dispatch-control"
)

// Groups lists the consumer groups that read each topic: every record must reach them.
var Groups = map[string][]string{TopicSend: {groupSend}, TopicGroup: {groupGroup},
	TopicFanout: {groupFanout}, TopicControl: {groupControl}, TopicDead: {groupDead}}

// Config configures a Dispatcher.
type Config struct {
	// MaxBodyBytes bounds a message body. Zero means 64 KiB.
	MaxBodyBytes int
	// RecallWindow is how long a sender may recall a message. Zero means 24 h.
	RecallWindow time.Duration
	// DedupTTL is how long a client_msg_id is remembered. Zero means 24 h (the minimum).
	DedupTTL time.Duration
	// SyncMaxLimit bounds the entries one sync returns. Zero means 500.
	SyncMaxLimit int
	// MaxInFlight bounds sends being processed at once; past it a send is refused
	// with overloaded (503) instead of queueing without bound. Zero means 10,000.
	MaxInFlight int
	// MaxStageLag bounds how long an acknowledged message may wait for delivery:
	// while the oldest of its kind (direct and shop, or group) on its way is older,
	// sends of that kind are refused with overloaded (503, Retry-After) rather than
	// acknowledged with a delivery seconds away. Zero means 1 s; negative: no bound.
	MaxStageLag time.Duration
	// MaxGroupMembers bounds a group's members. Zero means 20,000.
	MaxGroupMembers int
	// Shops is the customer-service router. Nil: no shop conversations.
	Shops ShopRouter
	// Storage tells whether the node's store takes new work. Nil: always.
	Storage Storage
	// Media keeps media messages' objects. Nil: no uploads, and a message that
	// carries an object_key is refused.
	Media *media.Store
	// Logger is the structured log. Nil means slog.Default().
	Logger *slog.Logger
}

// Pusher delivers entries to connected devices. Pushes are hints: a lost push is
// recovered by the device's next sync.
type Pusher interface {
	// Push delivers a timeline entry to a user's devices.
	Push(user string, e wire.Entry, cursor string)
	// PushGroup delivers a read-fanout entry once per gateway node, which hands it to
	// the local connections of the group's members, except those in skip (who get
	// the entry in their timeline). version is the group's membership version
	// (Conversation.Version) read after the entry was stored: a gateway whose index
	// is older checks its members first, so no one removed before the entry gets it.
	PushGroup(group, version uint64, e wire.Entry, skip map[string]bool)
	// GroupMembers tells the gateway nodes of a membership change (the group's
	// version after it), for their index of group -> local member connections. It
	// is a hint: a lost one is made up by the version PushGroup carries.
	GroupMembers(group, version uint64, added, removed []string)
	// PushFrame delivers a frame that is no timeline entry (typing) to a user's
	// devices.
	PushFrame(user string, f wire.ServerFrame)
}

// Storage is the health of the node's store (kv.Health).
type Storage interface {
	// Writable returns nil, or why new writes are refused now: the disk is full, or
	// the store is damaged.
	Writable() error
}

// Dispatcher is the send pipeline and the read-side service.
type Dispatcher struct {
	cfg       Config
	q         queue.Queue
	streams   groupstream.Store
	timelines timeline.Store
	dedup     Dedup
	ids       *ids.Generator
	shops     ShopRouter // nil without customer service
	push      Pusher
	m         *metrics.Metrics
	log       *slog.Logger

	inFlight  chan struct{} // one token per send being processed
	groupKeys *keylock.Set  // one creation per (user, client_group_id) at a time
	// The lag of the send stage on each send topic and of the fanout stage.
	// The messages acknowledged and not yet delivered, of the send and group topics.
	sendBacklog, groupBacklog *backlog
	announceGrace             time.Duration // age past which the drain takes a pending announcement
}

// New builds a Dispatcher; Run starts its stages.
func New(cfg Config, q queue.Queue, streams groupstream.Store, timelines timeline.Store, dedup Dedup, gen *ids.Generator, push Pusher, m *metrics.Metrics) (*Dispatcher, error) {
	if q == nil || streams == nil || timelines == nil || dedup == nil || gen == nil || push == nil || m == nil {
		return nil, errors.New("dispatch: New needs every dependency")
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 64 << 10
	}
	if cfg.RecallWindow <= 0 {
		cfg.RecallWindow = 24 * time.Hour
	}
	if cfg.DedupTTL < 24*time.Hour {
		cfg.DedupTTL = 24 * time.Hour
	}
	if cfg.SyncMaxLimit <= 0 {
		cfg.SyncMaxLimit = 500
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = 10000
	}
	if cfg.MaxStageLag == 0 {
		cfg.MaxStageLag = time.Second
	}
	if cfg.MaxGroupMembers <= 0 {
		cfg.MaxGroupMembers = 20000
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	d := &Dispatcher{cfg: cfg, q: q, streams: streams, timelines: timelines, dedup: dedup, ids: gen, shops: cfg.Shops,
		push: push, m: m, log: cfg.Logger, inFlight: make(chan struct{}, cfg.MaxInFlight), announceGrace: defaultAnnounceGrace,
		groupKeys:   keylock.New(64),
		sendBacklog: newBacklog(), groupBacklog: newBacklog()}
	for _, topic := range []string{TopicSend, TopicGroup, TopicFanout, TopicControl} { // exported at 0 from the start
		m.DeadLetters.WithLabelValues(topic)
		m.RecordsRefused.WithLabelValues(topic)
	}
	for stage, l := range map[string]*backlog{TopicSend: d.sendBacklog, TopicGroup: d.groupBacklog} {
		m.Registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "fanline_stage_lag_seconds", Help: "Age of the oldest message acknowledged through this send-stage topic and not yet delivered (0: none).",
			ConstLabels: prometheus.Labels{"stage": stage},
		}, func() float64 { return l.behind(time.Now()).Seconds() }))
	}
	return d, nil
}

// backlogOf is the backlog of the messages sent through topic.
func (d *Dispatcher) backlogOf(topic string) *backlog {
	if topic == TopicGroup {
		return d.groupBacklog
	}
	return d.sendBacklog
}

// overloaded refuses a send to topic while the oldest message acknowledged through it
// and not yet delivered is older than MaxStageLag: a flooded group refuses group
// sends, not direct chats. The refusal asks for a wait of one or two seconds, at
// random: the refused clients' retries then come spread out rather than as one wave,
// which would be refused again even below saturation.
func (d *Dispatcher) overloaded(topic string) *wire.Error {
	if d.cfg.MaxStageLag < 0 {
		return nil
	}
	lag := d.backlogOf(topic).behind(time.Now())
	if lag <= d.cfg.MaxStageLag {
		return nil
	}
	return &wire.Error{Code: wire.CodeOverloaded, RetryAfter: 1 + rand.IntN(2),
		Message: fmt.Sprintf("delivery is %.1fs behind; retry shortly", lag.Seconds())}
}

// Run consumes the send and fanout stages, drains membership announcements left
// pending and sweeps expired dedup keys and past memberships until ctx is done, then
// waits for them.
func (d *Dispatcher) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 6)
	start := func(f func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(ctx); err != nil && !errors.Is(err, context.Canceled) {
				errs <- err
				cancel()
			}
		}()
	}
	for _, st := range []struct {
		topic, group string
		h            func(context.Context, string, int, []queue.Record) error
	}{
		{TopicSend, groupSend, d.handleSend},
		{TopicGroup, groupGroup, d.handleSend},
		{TopicFanout, groupFanout, d.handleFanout},
		{TopicControl, groupControl, d.handleFanout},
	} {
		start(func(ctx context.Context) error {
			return d.q.Consume(ctx, st.topic, st.group, func(ctx context.Context, part int, recs []queue.Record) error {
				return st.h(ctx, st.topic, part, recs)
			})
		})
	}
	start(d.sweep)
	start(d.drainAnnouncements)
	wg.Wait()
	close(errs)
	return <-errs
}

// leftSweeper is a group store that deletes expired past memberships itself (the
// embedded one; Cassandra expires them by TTL).
type leftSweeper interface {
	SweepLeft(ctx context.Context, now time.Time) (int, error)
}

// sweep deletes expired dedup keys and past memberships every ten minutes.
func (d *Dispatcher) sweep(ctx context.Context) error {
	t := time.NewTicker(10 * time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-t.C:
			if err := d.dedup.Sweep(ctx, now); err != nil {
				d.log.Warn("dispatch: dedup sweep failed", "err", err)
			}
			if s, ok := d.streams.(leftSweeper); ok {
				if n, err := s.SweepLeft(ctx, now); err != nil {
					d.log.Warn("dispatch: sweeping past memberships failed", "err", err)
				} else if n > 0 {
					d.log.Info("dispatch: swept expired past memberships", "deleted", n)
				}
			}
		}
	}
}

// Send validates, authorises and dedups a send from who and acknowledges it once the
// send stage holds it durably. from is the request's optional "from" field. A staff
// member's sends are deduplicated and ordered in their shop inbox.
func (d *Dispatcher) Send(ctx context.Context, who wire.Principal, from string, req wire.SendRequest) (res wire.SendResult, err error) {
	defer func() {
		if err != nil {
			d.m.SendErrors.WithLabelValues(string(wire.AsError(err).Code)).Inc()
		}
	}()
	if from != "" && from != who.ID {
		return res, wire.Errorf(wire.CodeSenderMismatch, "from must be the token's user or absent")
	}
	user := who.Inbox()
	if e := validateSend(&req, d.cfg.MaxBodyBytes); e != nil {
		return res, e
	}
	if err := d.writable(); err != nil {
		return res, err
	}
	select {
	case d.inFlight <- struct{}{}:
		defer func() { <-d.inFlight }()
	default:
		return res, &wire.Error{Code: wire.CodeOverloaded, Message: "the server is busy; retry shortly", RetryAfter: 1}
	}
	// Most sends name their topic's conversation kind: an overloaded one is refused
	// before its conversation is looked up (refusals must stay cheap at twice the
	// load a node can take).
	early := ""
	switch {
	case req.GroupID != 0:
		early = TopicGroup
	case req.To != "":
		early = TopicSend
	}
	if early != "" {
		if e := d.overloaded(early); e != nil {
			return res, e
		}
	}
	conv, err := d.resolve(ctx, who, req)
	if err != nil {
		return res, err
	}
	agentID := ""
	if conv.Kind == groupstream.KindShop {
		if agentID, err = d.shopSender(conv, who); err != nil {
			return res, err
		}
	}
	// A sender's direct messages stay in order on the sender's partition; a group's,
	// in both fanout modes, on the group's partition of the group topic (one writer
	// per stream): a membership change that switches the mode between two messages
	// cannot reorder them. The mode itself is decided when the message is stored.
	topic, key := TopicSend, []byte(user)
	if conv.Kind == groupstream.KindGroup {
		topic, key = TopicGroup, []byte(strconv.FormatUint(conv.ID, 10))
	}
	if early == "" {
		if e := d.overloaded(topic); e != nil {
			return res, e
		}
	}
	fresh, err := d.newID()
	if err != nil {
		return res, err
	}
	id, existed, err := d.dedup.Reserve(ctx, user, req.ClientMsgID, fresh, d.cfg.DedupTTL)
	if err != nil {
		return res, err
	}
	res = wire.SendResult{MsgID: wire.ID(id), ConversationID: wire.ID(conv.ID), CreatedAt: ids.Time(id), Duplicate: existed}
	if existed {
		m, err := d.streams.Message(ctx, id)
		if err == nil {
			d.m.MessagesDuplicate.Inc()
			res.ConversationID, res.CreatedAt = wire.ID(m.ConversationID), m.CreatedAt
			return res, nil
		}
		if !errors.Is(err, groupstream.ErrNotFound) {
			return wire.SendResult{}, err
		}
		// Reserved but not stored yet: the first attempt is in the queue or was lost
		// before it got there. Queue it again under the same id; the stages are
		// idempotent, so whichever copy comes first wins and the other changes nothing.
	}
	if err := d.attachMedia(ctx, user, conv.ID, req, id); err != nil {
		return wire.SendResult{}, err
	}
	job := sendJob{MsgID: id, Conv: conv.ID, ConvKind: conv.Kind, From: user,
		ClientMsgID: req.ClientMsgID, Type: req.Type, Body: req.Body}
	if agentID != "" { // an agent writes as the shop
		job.From, job.AgentID = conv.Shop, agentID
	}
	fed := d.backlogOf(topic).feed(id)
	if err := d.q.Produce(ctx, topic, queue.Record{Key: key, Value: job.marshal()}); err != nil {
		if fed {
			d.backlogOf(topic).unfeed(id)
		}
		return wire.SendResult{}, fmt.Errorf("dispatch: queue send: %w", err)
	}
	if existed {
		d.m.MessagesDuplicate.Inc()
	} else {
		d.m.MessagesAccepted.Inc()
	}
	if conv.Kind == groupstream.KindShop && d.shops != nil {
		if agentID != "" {
			d.shops.AgentReplied(conv.Shop, conv.ID, agentID)
		} else {
			d.shops.BuyerMessage(conv.Shop, conv.ID)
		}
	}
	return res, nil
}

// writable refuses new work with unavailable (503, Retry-After) while the store
// cannot take it: a full disk keeps its room for the stages finishing what was
// acknowledged, and a damaged store is about to stop the node.
func (d *Dispatcher) writable() error {
	if d.cfg.Storage == nil {
		return nil
	}
	if err := d.cfg.Storage.Writable(); err != nil {
		return &wire.Error{Code: wire.CodeUnavailable, Message: "the server cannot store anything new right now; retry later",
			RetryAfter: 5}
	}
	return nil
}

// newID returns a fresh id from the node's generator, or unavailable (503, retry)
// when the generator cannot store its high-water mark: an id it could not cover
// might repeat after a restart, and a repeated msg_id is a lost message.
func (d *Dispatcher) newID() (uint64, error) {
	id, err := d.ids.Next()
	if err != nil {
		d.log.Error("dispatch: no new id", "err", err)
		return 0, &wire.Error{Code: wire.CodeUnavailable, Message: "the server cannot assign ids right now; retry shortly", RetryAfter: 1}
	}
	return id, nil
}

// resolve finds the conversation a send goes to and checks the sender belongs to it.
// Staff write only into their shop's conversations.
func (d *Dispatcher) resolve(ctx context.Context, who wire.Principal, req wire.SendRequest) (groupstream.Conversation, error) {
	if who.Staff() && req.ConversationID == 0 {
		return groupstream.Conversation{}, wire.Errorf(wire.CodeForbidden,
			"a %s token writes in its shop's conversations only (conversation_id); use a buyer token for your own chats", who.Role)
	}
	switch {
	case req.To != "":
		if req.To == who.ID {
			return groupstream.Conversation{}, wire.Errorf(wire.CodeInvalidRecipient, "cannot send a direct message to yourself")
		}
		// The id is taken whether or not the pair's conversation exists already: the
		// store cannot be handed a generator that fails.
		id, err := d.newID()
		if err != nil {
			return groupstream.Conversation{}, err
		}
		return d.streams.DirectConversation(ctx, who.ID, req.To, func() uint64 { return id })
	case req.ConversationID != 0:
		c, _, err := d.member(ctx, who, uint64(req.ConversationID))
		return c, err
	default:
		c, _, err := d.groupMember(ctx, who.Inbox(), uint64(req.GroupID))
		return c, err
	}
}

// member returns conversation id and who's membership of it (the zero Member outside
// groups and direct chats) if who may read it: a member of a direct chat or a group,
// or for a shop conversation its buyer and the shop's staff (shopReader).
func (d *Dispatcher) member(ctx context.Context, who wire.Principal, id uint64) (groupstream.Conversation, groupstream.Member, error) {
	c, err := d.streams.Conversation(ctx, id)
	if errors.Is(err, groupstream.ErrNotFound) {
		return c, groupstream.Member{}, wire.Errorf(wire.CodeConversationMissing, "conversation %d does not exist", id)
	}
	if err != nil {
		return c, groupstream.Member{}, err
	}
	if c.Kind == groupstream.KindShop {
		if !d.shopReader(c, who) {
			return c, groupstream.Member{}, wire.Errorf(wire.CodeNotParticipant, "you are not in conversation %d", id)
		}
		return c, groupstream.Member{}, nil
	}
	m, err := d.streams.Member(ctx, id, who.Inbox())
	if errors.Is(err, groupstream.ErrNotFound) {
		return c, m, wire.Errorf(wire.CodeNotParticipant, "you are not a member of conversation %d", id)
	}
	return c, m, err
}

// handleSend is the send stage: store each message once, then queue one fanout job
// per recipient, or push a read-fanout message to the gateways. Both steps are
// idempotent, so a redelivered batch changes nothing.
func (d *Dispatcher) handleSend(ctx context.Context, topic string, part int, recs []queue.Record) error {
	jobs := make([]sendJob, len(recs))
	ok, stop, err := d.screen(ctx, topic, part, recs, func(i int, r queue.Record) error { return jobs[i].unmarshal(r.Value) })
	if err != nil {
		return err
	}
	msgs := make([]groupstream.Message, 0, len(ok))
	for _, i := range ok {
		j := &jobs[i]
		msgs = append(msgs, groupstream.Message{ID: j.MsgID, ConversationID: j.Conv, From: j.From, AgentID: j.AgentID,
			ClientMsgID: j.ClientMsgID, Type: j.Type, Body: j.Body, CreatedAt: ids.Time(j.MsgID)})
	}
	stored, err := d.streams.PutMessages(ctx, msgs)
	if errors.Is(err, groupstream.ErrIDReused) {
		d.log.Error("dispatch: two messages have one msg_id; the send stage retries this batch until the cause is fixed (see docs/operations.md)", "err", err)
	}
	if err != nil {
		return err
	}
	now := time.Now()
	var out []queue.Record
	done := make(map[uint64]bool, len(stored))
	for _, m := range stored {
		if done[m.ID] {
			continue // a retried send's second copy in the batch: stored once, fanned out once
		}
		done[m.ID] = true
		d.m.SendStageLag.Observe(now.Sub(m.CreatedAt).Seconds())
		if m.Fanout == groupstream.FanoutRead {
			d.backlogOf(topic).stored(m.ID, 0)
			d.m.StreamAppends.Inc()
			// The membership version the message was stored at covers every change
			// committed before it, and none after: the gateways deliver it to the
			// members of that version, checked by it or newer (a redelivery long
			// after reaches no one added since).
			version := m.GroupVersion
			if version == 0 { // stored before messages recorded it
				c, err := d.streams.Conversation(ctx, m.ConversationID)
				if err != nil {
					return err
				}
				version = c.Version
			}
			d.push.PushGroup(m.ConversationID, version, m.Entry(), nil)
			// Sending reads everything before the message, in the sender's timeline
			// part of the group too; their other devices learn it from the read entry.
			e, _, err := d.timelines.MarkRead(ctx, m.From, m.ConversationID, m.ID, groupstream.KindGroup, m.CreatedAt)
			if err != nil {
				return err
			}
			if e != nil {
				d.push.Push(m.From, entryOf(*e), timeline.Cursor{Seq: e.Seq}.String())
			}
			continue
		}
		c, err := d.streams.Conversation(ctx, m.ConversationID)
		if err != nil {
			return err
		}
		jobs, err := d.recipientJobs(ctx, c, m)
		if err != nil {
			return err
		}
		d.backlogOf(topic).stored(m.ID, len(jobs))
		out = append(out, jobs...)
	}
	if err := d.q.Produce(ctx, TopicFanout, out...); err != nil {
		return err
	}
	return stop
}

// recipientJobs are the fanout records of stored message m of conversation c. A
// group's recipients are its members once the message is stored: someone who joined
// before its seq gets it, someone who left does not.
func (d *Dispatcher) recipientJobs(ctx context.Context, c groupstream.Conversation, m groupstream.Message) ([]queue.Record, error) {
	if c.Kind == groupstream.KindShop {
		return d.shopJobs(c, m), nil
	}
	members, err := d.streams.Members(ctx, m.ConversationID)
	if err != nil {
		return nil, err
	}
	var out []queue.Record
	for _, mem := range members {
		if m.Seq != 0 && mem.JoinSeq > m.Seq {
			continue
		}
		peer := ""
		if c.Kind == groupstream.KindDirect {
			peer = otherMember(members, mem.User)
		}
		out = append(out, messageRecord(m, c.Kind, mem.User, peer))
	}
	return out, nil
}

// messageRecord is the fanout record putting message m in user's timeline.
func messageRecord(m groupstream.Message, convKind, user, peer string) queue.Record {
	j := fanoutJob{User: user, Kind: timeline.KindMessage, Conv: m.ConversationID, ConvKind: convKind, Peer: peer,
		MsgID: m.ID, From: m.From, At: m.CreatedAt, ClientMsgID: m.ClientMsgID, Type: m.Type, Body: m.Body,
		GroupSeq: m.Seq, AgentID: m.AgentID}
	return queue.Record{Key: []byte(user), Value: j.marshal()}
}

func otherMember(members []groupstream.Member, user string) string {
	for _, m := range members {
		if m.User != user {
			return m.User
		}
	}
	return ""
}

// handleFanout is the fanout stage: append each job to its user's timeline (one
// atomic write for the batch; entries already present are skipped) and push what was
// added.
func (d *Dispatcher) handleFanout(ctx context.Context, topic string, part int, recs []queue.Record) error {
	decoded := make([]fanoutJob, len(recs))
	ok, stop, err := d.screen(ctx, topic, part, recs, func(i int, r queue.Record) error { return decoded[i].unmarshal(r.Value) })
	if err != nil {
		return err
	}
	items := make([]timeline.Item, 0, len(ok))
	jobs := make(map[string]*fanoutJob, len(ok))
	for _, i := range ok {
		j := &decoded[i]
		// The writer of a shop message is its agent (the shop is who buyers see).
		from := j.From
		if j.AgentID != "" {
			from = j.AgentID
		}
		items = append(items, timeline.Item{User: j.User, Kind: j.Kind, ConversationID: j.Conv, ConvKind: j.ConvKind,
			Peer: j.Peer, MsgID: j.MsgID, From: from, At: j.At, GroupSeq: j.GroupSeq})
		jobs[jobKey(j.User, j.Kind, j.MsgID, from)] = j
	}
	added, err := d.timelines.Append(ctx, items)
	if err != nil {
		return err
	}
	if topic == TopicFanout { // entries already present count as delivered too
		for _, it := range items {
			if it.Kind == timeline.KindMessage && !d.sendBacklog.delivered(it.MsgID) {
				d.groupBacklog.delivered(it.MsgID)
			}
		}
	}
	recalled, err := d.recalledAmong(ctx, added)
	if err != nil {
		return err
	}
	now := time.Now()
	d.m.FanoutEntries.Add(float64(len(added)))
	for _, e := range added {
		j := jobs[jobKey(e.User, e.Kind, e.MsgID, e.From)]
		if e.Kind == timeline.KindMessage {
			d.m.FanoutLag.Observe(now.Sub(e.At).Seconds())
		}

		we := entryOf(e)
		if j != nil && (e.Kind == timeline.KindMessage || e.Kind == timeline.KindGroupEvent) {
			we.ClientMsgID, we.Type, we.Body = j.ClientMsgID, j.Type, j.Body
			if e.Kind == timeline.KindMessage {
				we.GroupSeq, we.From, we.AgentID = j.GroupSeq, j.From, j.AgentID
				if recalled[e.MsgID] { // the job ran after the recall: its body is gone
					we.Type, we.Body, we.Recalled = "", nil, true
				}
			}
		}
		d.push.Push(e.User, we, timeline.Cursor{Seq: e.Seq}.String())
	}
	return stop
}

// recalledAmong returns which messages of the added message entries are recalled. A
// fanout job carries the body it was queued with; one that runs after the recall
// committed (a backlog, a redelivery) must not push it. The message log is the truth.
func (d *Dispatcher) recalledAmong(ctx context.Context, added []timeline.Entry) (map[uint64]bool, error) {
	var msgs []uint64 // each once: a message is in several timelines of a batch
	seen := make(map[uint64]bool, len(added))
	for _, e := range added {
		if e.Kind == timeline.KindMessage && !seen[e.MsgID] {
			seen[e.MsgID] = true
			msgs = append(msgs, e.MsgID)
		}
	}
	if len(msgs) == 0 {
		return nil, nil
	}
	found, err := d.streams.LookupMessages(ctx, msgs)
	if err != nil {
		return nil, err
	}
	var out map[uint64]bool
	for id, m := range found {
		if m.Recalled {
			if out == nil {
				out = make(map[uint64]bool)
			}
			out[id] = true
		}
	}
	return out, nil
}

func jobKey(user, kind string, msg uint64, from string) string {
	return fmt.Sprintf("%s\x00%s\x00%d\x00%s", user, kind, msg, from)
}

// entryOf renders a timeline entry without message content.
func entryOf(e timeline.Entry) wire.Entry {
	return wire.Entry{Kind: e.Kind, ConversationID: wire.ID(e.ConversationID), MsgID: wire.ID(e.MsgID),
		From: e.From, CreatedAt: e.At, Seq: e.Seq}
}
