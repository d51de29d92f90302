// Package ids generates fanline's 64-bit identifiers.
//
// An id is Snowflake-shaped: 41 bits of milliseconds since Epoch, 10 bits of node id
// and 12 bits of per-millisecond sequence. Ids from one Generator strictly increase;
// ids from different nodes are unique as long as node ids differ. A Generator is safe
// for concurrent use.
package ids

import (
	"errors"
	"fmt"
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

// Generator hands out ids for one node.
type Generator struct {
	node uint64
	now  func() time.Time

	mu sync.Mutex // guards last and seq
	// INVARIANT: every id handed out is <= (last<<22 | node<<12 | seq).
	last int64
	seq  uint64
}

// NewGenerator returns a Generator for node, which must be in [0, MaxNode].
func NewGenerator(node int) (*Generator, error) {
	if node < 0 || node > MaxNode {
		return nil, fmt.Errorf("ids: node %d out of range [0, %d]", node, MaxNode)
	}
	return &Generator{node: uint64(node), now: time.Now}, nil
}

// Next returns a new id, larger than every id this Generator returned before. When the
// clock steps backwards it keeps counting on the last millisecond it saw.
func (g *Generator) Next() uint64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	ms := g.now().Sub(Epoch).Milliseconds()
	if ms <= g.last {
		g.seq++
		if g.seq > maxSeq {
			// Borrow the next millisecond rather than wait; the clock catches up.
			g.last++
			g.seq = 0
		}
	} else {
		g.last = ms
		g.seq = 0
	}
	return uint64(g.last)<<(nodeBits+seqBits) | g.node<<seqBits | g.seq
}

// Time returns the moment an id was generated, to the millisecond.
func Time(id uint64) time.Time {
	return Epoch.Add(time.Duration(id>>(nodeBits+seqBits)) * time.Millisecond)
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
