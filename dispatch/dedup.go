package dispatch

import (
	"context"
	"time"
)

// Dedup remembers which msg_id a (sender, client_msg_id) pair was given.
type Dedup interface {
	// Reserve gives (sender, clientMsgID) the id msgID for ttl unless it already holds
	// one; it returns the id the pair holds and whether it held it before this call.
	// The reservation must be durable no later than the next durable Produce of the
	// same process.
	Reserve(ctx context.Context, sender, clientMsgID string, msgID uint64, ttl time.Duration) (held uint64, existed bool, err error)
	// Sweep forgets reservations that expired before now.
	Sweep(ctx context.Context, now time.Time) error
}
