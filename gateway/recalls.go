package gateway

import (
	"encoding/json"
	"sync"

	"github.com/fanline/fanline/internal/wire"
)

// recentRecalls remembers the messages whose recall a node pushed lately, so that a
// push of such a message arriving after it (its fanout job ran late, or the two
// pushes crossed on their way here) goes out as recalled, without its body. The
// store is the truth (sync and history never carry a recalled body); this keeps the
// pushes from contradicting it.
type recentRecalls struct {
	mu   sync.Mutex // guards the fields below
	set  map[uint64]struct{}
	ring []uint64 // the remembered ids, oldest overwritten first
	next int
}

// recallsKept is how many recalls a node remembers: far more than can be in flight.
const recallsKept = 8192

func newRecentRecalls() *recentRecalls {
	return &recentRecalls{set: make(map[uint64]struct{}, recallsKept), ring: make([]uint64, recallsKept)}
}

// seen reports whether msg's recall was pushed here lately.
func (r *recentRecalls) seen(msg uint64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.set[msg]
	return ok
}

func (r *recentRecalls) note(msg uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.set[msg]; ok {
		return
	}
	delete(r.set, r.ring[r.next])
	r.ring[r.next] = msg
	r.set[msg] = struct{}{}
	r.next = (r.next + 1) % len(r.ring)
}

// entry notes a recall entry and returns e as it may be pushed: a message whose
// recall was pushed here has its content removed.
func (r *recentRecalls) entry(e wire.Entry) wire.Entry {
	switch {
	case e.Kind == wire.KindRecall:
		r.note(uint64(e.MsgID))
	case e.Kind == wire.KindMessage && !e.Recalled && r.seen(uint64(e.MsgID)):
		e.Type, e.Body, e.Recalled = "", nil, true
	}
	return e
}

// frame is entry for an encoded frame of kind about msg (relayed from another node).
func (r *recentRecalls) frame(kind string, msg uint64, b []byte) []byte {
	switch {
	case kind == wire.KindRecall:
		r.note(msg)
	case kind == wire.KindMessage && r.seen(msg):
		var f wire.ServerFrame
		if err := json.Unmarshal(b, &f); err != nil || f.Entry == nil {
			return b
		}
		e := r.entry(*f.Entry)
		f.Entry = &e
		if nb, err := json.Marshal(f); err == nil {
			return nb
		}
	}
	return b
}
