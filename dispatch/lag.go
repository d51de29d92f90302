package dispatch

import (
	"sync"
	"time"

	"github.com/fanline/fanline/internal/ids"
)

// backlogForget is how long a message stays counted in a backlog: one whose stages
// never report it done (its send stage was redelivered to another node, or a stage
// retries it without end and logs that) stops holding the lag up after this.
const backlogForget = time.Minute

// backlog follows the messages this node acknowledged until they are delivered:
// stored by the send stage, and written into every recipient's timeline when they are
// write-fanout. Its lag is the age of the oldest one still on its way, the trailing
// edge of the pipeline: a partition that falls behind shows even while the others
// keep up, and the lag is what an accepted message now waits, not a guess from the
// newest one handled. A backlog left by a crash is not known, but the first message
// acknowledged after the restart waits behind it, and its wait counts.
type backlog struct {
	mu sync.Mutex // guards the fields below
	// left is each message's work still to do: one unit until the send stage stores
	// it, then one per fanout job it queued.
	left map[uint64]*pending
	// order holds the ids of left in the order they were fed (a msg_id carries its
	// creation time, and ids are fed nearly in order), order[head:] still live.
	order []uint64
	head  int
}

type pending struct {
	left   int
	stored bool
}

func newBacklog() *backlog { return &backlog{left: map[uint64]*pending{}} }

// feed records that message id is about to be queued for its send stage (before
// it is, so the stage cannot report it first), and reports whether it was added: a
// retried send's id already on its way changes nothing.
func (b *backlog) feed(id uint64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.left[id]; ok {
		return false
	}
	b.left[id] = &pending{left: 1}
	b.order = append(b.order, id)
	return true
}

// unfeed takes back a feed whose message could not be queued.
func (b *backlog) unfeed(id uint64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.left, id)
}

// stored records that the send stage stored message id and queued jobs fanout jobs
// for it (0: it is delivered). A redelivered batch's second report changes nothing.
func (b *backlog) stored(id uint64, jobs int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	p, ok := b.left[id]
	if !ok || p.stored {
		return
	}
	p.stored = true
	p.left += jobs - 1
	if p.left <= 0 {
		delete(b.left, id)
	}
}

// delivered records that one fanout job of message id is in its recipient's
// timeline, and reports whether the message was one of b's.
func (b *backlog) delivered(id uint64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	p, ok := b.left[id]
	if !ok {
		return false
	}
	if p.left--; p.stored && p.left <= 0 {
		delete(b.left, id)
	}
	return true
}

// behind is the age at now of the oldest message still on its way; 0 when there is
// none.
func (b *backlog) behind(now time.Time) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	for b.head < len(b.order) {
		id := b.order[b.head]
		if _, ok := b.left[id]; ok {
			age := now.Sub(ids.Time(id))
			if age < backlogForget {
				b.compact()
				return max(0, age)
			}
			delete(b.left, id)
		}
		b.head++
	}
	b.order, b.head = b.order[:0], 0
	return 0
}

// compact drops the delivered ids at the front of order once they are most of it,
// so order stays proportional to what is on its way. The caller holds mu.
func (b *backlog) compact() {
	if b.head > 1024 && b.head > len(b.order)/2 {
		b.order = append(b.order[:0], b.order[b.head:]...)
		b.head = 0
	}
}
