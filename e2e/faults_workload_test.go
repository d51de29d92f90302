package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fanline/fanline/internal/wire"
	"golang.org/x/time/rate"
)

// The workload of a fault run: core users (u0..u7) chat directly in fixed pairs and
// in three groups of which they are members for the whole run, retry sends with the
// same client_msg_id, mark conversations read and recall their messages; the owners
// of two groups add and remove churned users (c1, c2, ...), who send in the group
// while they are members. "big" has groupCore members and takes churned users two at
// a time, so it crosses the fanout switch (read past 5 members, write below 5) with
// every change; "small-a" takes one at a time and stays in write-fanout; "small-b"
// never changes.

const coreUsers = 8

// groupSpec is a group of the workload.
type groupSpec struct {
	name  string
	core  []string // the owner first; members for the whole run
	churn int      // churned users per cycle (0: no membership changes)
}

var workloadGroups = []groupSpec{
	{name: "big", core: []string{"u3", "u0", "u5", "u6"}, churn: 2},
	{name: "small-a", core: []string{"u0", "u1", "u2"}, churn: 1},
	{name: "small-b", core: []string{"u4", "u5", "u6", "u7"}},
}

// peersOf lists the users u chats with directly: u±1 and u±3 around the ring.
func peersOf(u int) []string {
	var out []string
	for _, d := range []int{1, coreUsers - 1, 3, coreUsers - 3} {
		out = append(out, fmt.Sprintf("u%d", (u+d)%coreUsers))
	}
	return out
}

// group is a group of the running workload.
type group struct {
	spec groupSpec
	id   wire.ID
}

type workload struct {
	h      *history
	urls   []string
	rate   *rate.Limiter
	groups map[string]*group

	mu      sync.Mutex // guards devices, nextUser
	devices map[string]*device
	next    int

	stopping atomic.Bool
	wg       sync.WaitGroup // the actors
	errs     chan error     // setup failures of the actors (connecting churned users)
	seq      atomic.Int64   // client_msg_id numbers
}

// urlFor spreads users over the gateways.
func (w *workload) urlFor(n int) string { return w.urls[n%len(w.urls)] }

// newWorkload connects the core users and creates the groups (before any fault).
func newWorkload(ctx context.Context, h *history, urls []string, opsPerSecond float64) (*workload, error) {
	w := &workload{h: h, urls: urls, rate: rate.NewLimiter(rate.Limit(opsPerSecond), 4), groups: map[string]*group{},
		devices: map[string]*device{}, errs: make(chan error, 16)}
	for i := range coreUsers {
		u := fmt.Sprintf("u%d", i)
		d, err := openDevice(ctx, h, u, w.urlFor(i))
		if err != nil {
			return nil, fmt.Errorf("connect %s: %w", u, err)
		}
		w.devices[u] = d
	}
	for _, spec := range workloadGroups {
		owner := w.devices[spec.core[0]]
		var g wire.Group
		err := retryCall(ctx, func(ctx context.Context) error {
			var err error
			g, err = owner.c.CreateGroup(ctx, spec.name, spec.core[1:]...)
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("create %s: %w", spec.name, err)
		}
		w.groups[spec.name] = &group{spec: spec, id: g.GroupID}
	}
	return w, nil
}

func (w *workload) device(u string) *device {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.devices[u]
}

// start runs one actor per core user and one membership actor per churned group.
func (w *workload) start(seed uint64) {
	for i := range coreUsers {
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			w.actor(fmt.Sprintf("u%d", i), rand.New(rand.NewPCG(seed, uint64(i))))
		}()
	}
	for _, g := range w.groups {
		if g.spec.churn > 0 {
			w.wg.Add(1)
			go func() {
				defer w.wg.Done()
				w.churn(g)
			}()
		}
	}
}

// stop asks every actor to finish its current operation and waits for them.
func (w *workload) stop() {
	w.stopping.Store(true)
	w.wg.Wait()
}

// opCtx bounds one operation: long enough to outlast any fault of the schedule.
func opCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 30*time.Second)
}

// actor is a core user's loop of operations.
func (w *workload) actor(u string, r *rand.Rand) {
	me := w.device(u)
	var mine []*sendOp // my acknowledged sends
	var convs []wire.ID
	var groups []*group
	for _, g := range w.groups {
		if slices.Contains(g.spec.core, u) {
			groups = append(groups, g)
		}
	}
	var n int
	fmt.Sscanf(u, "u%d", &n)
	peers := peersOf(n)
	for !w.stopping.Load() {
		if w.rate.Wait(context.Background()) != nil {
			return
		}
		switch p := r.IntN(100); {
		case p < 45:
			if op := w.send(me, peers[r.IntN(len(peers))], nil); op.acked() {
				mine = append(mine, op)
			}
		case p < 70 && len(groups) > 0:
			if op := w.send(me, "", groups[r.IntN(len(groups))]); op.acked() {
				mine = append(mine, op)
			}
		case p < 78 && len(mine) > 0:
			w.retry(me, mine[r.IntN(len(mine))])
		case p < 92:
			convs = w.markRead(me, r, convs)
		case len(mine) > 0:
			target := mine[len(mine)-1] // just sent: its fanout may still be running
			if r.IntN(2) == 0 {
				target = mine[r.IntN(len(mine))]
			}
			w.recall(me, target)
		}
	}
}

// send sends one new message from d to a peer or in a group and records it.
func (w *workload) send(d *device, to string, g *group) *sendOp {
	op := &sendOp{from: d.user, cmid: fmt.Sprintf("%s-%d", d.user, w.seq.Add(1)), to: to}
	req := wire.SendRequest{ClientMsgID: op.cmid, Type: "text", Body: text(op.cmid)}
	if g != nil {
		op.conv, op.group, req.GroupID = g.id, g.spec.name, g.id
	} else {
		req.To = to
	}
	op.invoke = time.Now()
	w.h.addSend(op)
	ctx, cancel := opCtx()
	defer cancel()
	res, err := d.c.Send(ctx, req)
	w.h.update(func() {
		if err != nil {
			op.err = err
			return
		}
		op.ack, op.msgID, op.conv = time.Now(), res.MsgID, res.ConversationID
		w.h.acked++
	})
	return op
}

// request rebuilds the send request of op.
func (op *sendOp) request() wire.SendRequest {
	req := wire.SendRequest{ClientMsgID: op.cmid, Type: "text", Body: text(op.cmid)}
	if op.group != "" {
		req.GroupID = op.conv
	} else {
		req.To = op.to
	}
	return req
}

// retry sends an acknowledged message again with its client_msg_id.
func (w *workload) retry(d *device, op *sendOp) {
	ctx, cancel := opCtx()
	defer cancel()
	res, err := d.c.Send(ctx, op.request())
	w.h.update(func() { w.h.retries = append(w.h.retries, retryCheck{op: op, res: res, err: err}) })
}

// markRead marks a conversation read up to a message from someone else that d's
// device has: usually the newest, sometimes an older one. convs caches the user's
// conversations with such messages.
func (w *workload) markRead(d *device, r *rand.Rand, convs []wire.ID) []wire.ID {
	byConv := map[wire.ID][]wire.ID{}
	for _, s := range w.h.viewOf(d.user) {
		if s.e.Kind == wire.KindMessage && s.e.From != d.user && !s.e.Recalled {
			if !slices.Contains(convs, s.e.ConversationID) {
				convs = append(convs, s.e.ConversationID)
			}
			byConv[s.e.ConversationID] = append(byConv[s.e.ConversationID], s.e.MsgID)
		}
	}
	if len(convs) == 0 {
		return convs
	}
	conv := convs[r.IntN(len(convs))]
	msgs := byConv[conv]
	if len(msgs) == 0 {
		return convs
	}
	msg := msgs[len(msgs)-1]
	if r.IntN(4) == 0 {
		msg = msgs[r.IntN(len(msgs))]
	}
	op := &readOp{user: d.user, conv: conv, msg: msg, invoke: time.Now()}
	w.h.update(func() { w.h.reads = append(w.h.reads, op) })
	w.finishRead(d, op)
	return convs
}

func (w *workload) finishRead(d *device, op *readOp) {
	ctx, cancel := opCtx()
	defer cancel()
	err := retryCall(ctx, func(ctx context.Context) error { return d.c.MarkRead(ctx, op.conv, op.msg) })
	w.h.update(func() {
		if op.err = err; err == nil {
			op.ack = time.Now()
		}
	})
}

// recall recalls one of d's acknowledged messages.
func (w *workload) recall(d *device, target *sendOp) {
	op := &recallOp{user: d.user, msg: target.msgID, invoke: time.Now()}
	w.h.update(func() { w.h.recalls = append(w.h.recalls, op) })
	w.finishRecall(d, op)
}

func (w *workload) finishRecall(d *device, op *recallOp) {
	ctx, cancel := opCtx()
	defer cancel()
	err := retryCall(ctx, func(ctx context.Context) error { return d.c.Recall(ctx, op.msg) })
	w.h.update(func() {
		if op.err = err; err == nil {
			op.ack = time.Now()
		}
	})
}

// churn is the owner of g adding churned users, letting them send while members,
// and removing them, over and over. A removed user's device stays connected for one
// more cycle (a late push to it is what the oracle looks for), then closes.
func (w *workload) churn(g *group) {
	owner := w.device(g.spec.core[0])
	var leaving []*device
	for !w.stopping.Load() {
		var joined []*device
		var names []string
		for range g.spec.churn {
			w.mu.Lock()
			w.next++
			n := w.next
			w.mu.Unlock()
			name := fmt.Sprintf("c%d", n)
			ctx, cancel := opCtx()
			d, err := openDevice(ctx, w.h, name, w.urlFor(n))
			cancel()
			if err != nil {
				w.errs <- fmt.Errorf("connect %s: %w", name, err)
				return
			}
			w.mu.Lock()
			w.devices[name] = d
			w.mu.Unlock()
			joined = append(joined, d)
			names = append(names, name)
		}
		w.change(owner, g, names, nil)
		// The joined send in the group until about 60 more sends were acknowledged.
		var senders sync.WaitGroup
		var quit atomic.Bool
		for _, d := range joined {
			senders.Add(1)
			go func() {
				defer senders.Done()
				for !quit.Load() && !w.stopping.Load() {
					if w.rate.Wait(context.Background()) != nil {
						return
					}
					w.send(d, "", g)
				}
			}()
		}
		w.awaitAcks(60)
		quit.Store(true)
		senders.Wait()
		for _, d := range leaving {
			d.close()
			w.mu.Lock()
			d.closed = true
			w.mu.Unlock()
		}
		if w.stopping.Load() {
			return // the joined stay members
		}
		w.change(owner, g, nil, names)
		leaving = joined
	}
}

// awaitAcks waits until n more sends are acknowledged or the workload stops.
func (w *workload) awaitAcks(n int) {
	target := w.h.ackedCount() + n
	for !w.stopping.Load() && w.h.ackedCount() < target {
		sleepCtx(context.Background(), 10*time.Millisecond)
	}
}

// change adds or removes members of g as its owner.
func (w *workload) change(owner *device, g *group, add, remove []string) {
	op := &changeOp{by: owner.user, group: g.spec.name, conv: g.id, add: add, remove: remove, invoke: time.Now()}
	w.h.update(func() { w.h.changes = append(w.h.changes, op) })
	w.finishChange(owner, op)
}

func (w *workload) finishChange(owner *device, op *changeOp) {
	ctx, cancel := opCtx()
	defer cancel()
	var res wire.Group
	err := retryCall(ctx, func(ctx context.Context) error {
		var err error
		res, err = owner.c.ChangeMembers(ctx, op.conv, wire.MembersRequest{Add: op.add, Remove: op.remove})
		return err
	})
	w.h.update(func() {
		if op.err = err; err == nil {
			op.ack, op.version = time.Now(), res.Version
		}
	})
}

// settle makes every indeterminate operation determinate now that the faults are
// healed: sends are sent again with their client_msg_id (a send refused meanwhile,
// e.g. by a churned user after removal, stays indeterminate), mark-reads, recalls
// and membership changes (all idempotent) are made again.
func (w *workload) settle() {
	w.h.mu.Lock()
	sends := slices.Clone(w.h.sends)
	reads, recalls, changes := slices.Clone(w.h.reads), slices.Clone(w.h.recalls), slices.Clone(w.h.changes)
	w.h.mu.Unlock()
	for _, c := range changes {
		if c.ack.IsZero() {
			w.finishChange(w.device(c.by), c)
		}
	}
	for _, op := range sends {
		if op.acked() || !retryableErr(op.err) {
			continue
		}
		ctx, cancel := opCtx()
		res, err := w.device(op.from).c.Send(ctx, op.request())
		cancel()
		w.h.update(func() {
			if err != nil {
				op.err = err
				return
			}
			op.ack, op.msgID, op.conv, op.reissued = time.Now(), res.MsgID, res.ConversationID, true
			w.h.acked++
		})
	}
	for _, op := range reads {
		if op.ack.IsZero() && retryableErr(op.err) {
			w.finishRead(w.device(op.user), op)
		}
	}
	for _, op := range recalls {
		if op.ack.IsZero() && retryableErr(op.err) {
			w.finishRecall(w.device(op.user), op)
		}
	}
}

// closeAll closes every device still open.
func (w *workload) closeAll() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, d := range w.devices {
		if !d.closed {
			d.close()
		}
	}
}
