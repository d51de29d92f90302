// Package ids generates fanline's 64-bit identifiers.
//
// An id is Snowflake-shaped: 41 bits of milliseconds since Epoch, 10 bits of node id
// and 12 bits of per-millisecond sequence. Ids from one Generator strictly increase;
// ids from different nodes are unique as long as node ids differ. A Generator with a
// Mark also increases across restarts, whatever the clock did meanwhile. A Generator
// is safe for concurrent use.
package ids

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"sync"
	"time"
)

// Epoch is the zero of the id clock: 2024-01-01T00:00:00Z.
var Epoch = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

const (
	nodeBits = 10
	seqBits  = 12
	// MaxNode is the largest node id a Generator accepts.
	MaxNode = 1<<nodeBits - 1
	maxSeq  = 1<<seqBits - 1
)

// Mark is where a Generator keeps its high-water mark: a time, in milliseconds since
// Epoch, that no id it handed out is past.
type Mark interface {
	// Load returns the stored mark, 0 if none was stored.
	Load() (int64, error)
	// Store records ms durably (synced) before it returns.
	Store(ms int64) error
}

// GeneratorConfig configures a Generator.
type GeneratorConfig struct {
	// Mark persists the high-water mark, so that ids keep increasing across a restart
	// even when the clock stepped back meanwhile. Nil: no mark, ids increase within
	// the process only (tests and tools; never a node that stores messages).
	Mark Mark
	// Lease is how far ahead of the ids it hands out the Generator stores its mark:
	// one Store per half lease of ids, and after a restart ids may run up to a lease
	// ahead of the clock. Zero means 2 s.
	Lease time.Duration
}

// Generator hands out ids for one node.
//
// With a Mark, the Generator leases time: before it hands out an id of millisecond
// ms it has stored a mark >= ms, and a new Generator starts above the stored mark.
// The mark is renewed ahead of time by the caller of Next that enters the second
// half of the lease, while other callers keep taking ids below the current mark; a
// caller that reaches the mark waits for the renewal (or makes it) and gets an error
// if it fails.
type Generator struct {
	node  uint64
	now   func() time.Time
	store Mark       // nil: no mark
	lease int64      // ms
	cond  *sync.Cond // on mu: a renewal finished
	mu    sync.Mutex // guards last, seq, mark and renewing
	// INVARIANT: every id handed out is <= (last<<22 | node<<12 | seq).
	last int64
	seq  uint64
	// INVARIANT: mark is durable (Mark.Store returned nil for it, or it was loaded)
	// and no id handed out, by this Generator or an earlier one on the same Mark, is
	// of a millisecond past it: last <= mark whenever mu is free.
	mark     int64
	renewing bool // a Store is running with mu unlocked; at most one at a time
}

// NewGenerator returns a Generator for node, which must be in [0, MaxNode]. With a
// Mark it loads the mark and starts above it.
func NewGenerator(node int, cfg GeneratorConfig) (*Generator, error) {
	if node < 0 || node > MaxNode {
		return nil, fmt.Errorf("ids: node %d out of range [0, %d]", node, MaxNode)
	}
	if cfg.Lease <= 0 {
		cfg.Lease = 2 * time.Second
	}
	g := &Generator{node: uint64(node), now: time.Now, store: cfg.Mark, lease: max(2, cfg.Lease.Milliseconds()),
		mark: math.MaxInt64}
	g.cond = sync.NewCond(&g.mu)
	if g.store != nil {
		m, err := g.store.Load()
		if err != nil {
			return nil, err
		}
		// Every id an earlier Generator handed out is <= (m, maxSeq): start above it.
		g.mark, g.last, g.seq = m, m, maxSeq
	}
	return g, nil
}

// Next returns a new id, larger than every id this Generator, or an earlier one on the
// same Mark, returned before. When the clock steps backwards it keeps counting on the
// last millisecond it saw. It returns an error, and no id, when the id's millisecond
// is past the mark and the mark cannot be stored.
func (g *Generator) Next() (uint64, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for {
		ms, seq := g.following()
		if ms <= g.mark {
			g.last, g.seq = ms, seq
			id := uint64(ms)<<(nodeBits+seqBits) | g.node<<seqBits | seq
			if g.store != nil && !g.renewing && ms > g.mark-g.lease/2 {
				// Ahead of time: the id is covered already, so a failure here only
				// leaves the renewal to a later caller.
				_ = g.renew(ms + g.lease)
			}
			return id, nil
		}
		if g.renewing {
			g.cond.Wait()
			continue
		}
		if err := g.renew(ms + g.lease); err != nil {
			return 0, fmt.Errorf("ids: no id past %s: storing the high-water mark: %w", Epoch.Add(time.Duration(g.mark)*time.Millisecond).Format(time.RFC3339Nano), err)
		}
	}
}

// following returns the millisecond and sequence of the id after the last one.
// The caller holds mu.
func (g *Generator) following() (int64, uint64) {
	ms := g.now().Sub(Epoch).Milliseconds()
	if ms > g.last {
		return ms, 0
	}
	if g.seq < maxSeq {
		return g.last, g.seq + 1
	}
	// Borrow the next millisecond rather than wait; the clock catches up.
	return g.last + 1, 0
}

// renew stores mark ms and raises g.mark to it on success. The caller holds mu and
// no renewal is running; mu is released during the Store, so other callers keep
// taking ids below the current mark meanwhile, and held again on return.
func (g *Generator) renew(ms int64) error {
	g.renewing = true
	g.mu.Unlock()
	err := g.store.Store(ms)
	g.mu.Lock()
	g.renewing = false
	if err == nil && ms > g.mark {
		g.mark = ms
	}
	g.cond.Broadcast()
	return err
}

// Time returns the moment an id was generated, to the millisecond.
func Time(id uint64) time.Time {
	return Epoch.Add(time.Duration(id>>(nodeBits+seqBits)) * time.Millisecond)
}

// Before returns the smallest id generated at t or later: every id below it was
// generated before t.
func Before(t time.Time) uint64 {
	ms := t.Sub(Epoch).Milliseconds()
	if ms <= 0 {
		return 0
	}
	return uint64(ms) << (nodeBits + seqBits)
}

// ErrInvalid is returned by Parse for a string that is not an id.
var ErrInvalid = errors.New("ids: not a valid id")

// Parse reads the decimal form of an id. Zero is not an id.
func Parse(s string) (uint64, error) {
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil || v == 0 {
		return 0, ErrInvalid
	}
	return v, nil
}
