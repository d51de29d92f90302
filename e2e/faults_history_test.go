package e2e

import (
	"sync"
	"time"

	"github.com/fanline/fanline/internal/wire"
)

// The history of a fault run, Jepsen-style: every operation the workload invoked,
// with when it was invoked and when (if ever) it was acknowledged, and every entry a
// device saw, with when it saw it. The oracle judges the system from it alone.
type history struct {
	mu sync.Mutex // guards everything below

	sends   []*sendOp
	byCmid  map[string]*sendOp // sender + "/" + client_msg_id
	reads   []*readOp
	recalls []*recallOp
	changes []*changeOp
	retries []retryCheck

	// views are what each device's SDK put on its Entries channel, in order; frames
	// what the raw push listener of the user got, per connection, in order.
	views  map[string][]seen
	frames map[string][][]seen
	// firstSeen is when any device first saw a message: it was stored by then.
	firstSeen map[wire.ID]time.Time
	acked     int // sends acknowledged so far
}

// sendOp is one send of a message (one client_msg_id), however often it was tried.
type sendOp struct {
	from, cmid string
	to         string  // a direct message's recipient
	conv       wire.ID // known up front for a group, from the ack for a direct chat
	group      string  // the group's name in the workload ("" for direct)
	invoke     time.Time
	ack        time.Time // zero: never acknowledged
	msgID      wire.ID
	err        error // the last failure; with a zero ack the send is indeterminate
	reissued   bool  // acknowledged only when sent again after the faults
}

func (s *sendOp) acked() bool { return !s.ack.IsZero() }

// readOp is a mark-read of conv up to msg.
type readOp struct {
	user   string
	conv   wire.ID
	msg    wire.ID
	invoke time.Time
	ack    time.Time
	err    error
}

// recallOp is a recall of one of the user's messages.
type recallOp struct {
	user   string
	msg    wire.ID
	invoke time.Time
	ack    time.Time
	err    error
}

// changeOp is a membership change of a group by its owner.
type changeOp struct {
	by      string
	group   string
	conv    wire.ID
	add     []string
	remove  []string
	invoke  time.Time
	ack     time.Time
	version uint64 // the group's version the change made (from the answer)
	err     error
}

// retryCheck is a send retried with the same client_msg_id after its ack: it must be
// answered as a duplicate with the original msg_id.
type retryCheck struct {
	op  *sendOp
	res wire.SendResult
	err error
}

// seen is one entry a device (or a raw push connection) got, and when.
type seen struct {
	e  wire.Entry
	at time.Time
}

func newHistory() *history {
	return &history{byCmid: map[string]*sendOp{}, views: map[string][]seen{}, frames: map[string][][]seen{},
		firstSeen: map[wire.ID]time.Time{}}
}

func (h *history) addSend(op *sendOp) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.sends = append(h.sends, op)
	h.byCmid[op.from+"/"+op.cmid] = op
}

// update runs f under the history's lock (operations are filled in as they finish).
func (h *history) update(f func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	f()
}

func (h *history) sawLocked(e wire.Entry, at time.Time) {
	if e.Kind == wire.KindMessage && e.MsgID != 0 {
		if t, ok := h.firstSeen[e.MsgID]; !ok || at.Before(t) {
			h.firstSeen[e.MsgID] = at
		}
	}
}

// view records an entry a user's device got from its SDK.
func (h *history) view(user string, e wire.Entry) {
	now := time.Now()
	h.mu.Lock()
	defer h.mu.Unlock()
	h.views[user] = append(h.views[user], seen{e, now})
	h.sawLocked(e, now)
}

// frame records a push a user's raw connection number conn got.
func (h *history) frame(user string, conn int, e wire.Entry) {
	now := time.Now()
	h.mu.Lock()
	defer h.mu.Unlock()
	fs := h.frames[user]
	for len(fs) <= conn {
		fs = append(fs, nil)
	}
	fs[conn] = append(fs[conn], seen{e, now})
	h.frames[user] = fs
	h.sawLocked(e, now)
}

// ackedCount is the number of sends acknowledged so far.
func (h *history) ackedCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.acked
}

// deliveredCount is the number of messages some device has seen.
func (h *history) deliveredCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.firstSeen)
}

// viewOf returns a copy of what user's device has seen.
func (h *history) viewOf(user string) []seen {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]seen(nil), h.views[user]...)
}
