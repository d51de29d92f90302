package dispatch

import (
	"sync"
	"time"
)

// stageLag estimates how far behind one stage is, so that sends are refused before
// the backlog after the ack grows without bound. The stage is fed messages created up
// to accepted and has handled those created up to handled; when accepted is past
// handled, something waits, and it has waited at least since the later of handled and
// since (the creation of the first message fed after the stage was last caught up).
// Partitions progress separately, so this is the lag of the stage's leading edge: one
// stuck partition among moving ones is not seen (a stuck handler logs its retries).
// A backlog left by a crash is not known, but the first message fed after the
// restart waits behind it, and its wait counts.
type stageLag struct {
	mu sync.Mutex // guards the fields below
	// INVARIANT: since is not after accepted.
	accepted, handled, since time.Time
}

func newStageLag(start time.Time) *stageLag {
	return &stageLag{accepted: start, handled: start, since: start}
}

// fed records that a message created at t was queued for the stage.
func (l *stageLag) fed(t time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.accepted.After(l.handled) { // caught up until now
		l.since = t
	}
	if t.After(l.accepted) {
		l.accepted = t
	}
}

// done records that the stage handled a message created at t.
func (l *stageLag) done(t time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if t.After(l.handled) {
		l.handled = t
	}
}

// behind is the stage's lag at now.
func (l *stageLag) behind(now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.accepted.After(l.handled) {
		return 0
	}
	from := l.handled
	if l.since.After(from) {
		from = l.since
	}
	return max(0, now.Sub(from))
}
