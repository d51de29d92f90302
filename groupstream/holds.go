package groupstream

import (
	"context"
	"strings"
	"time"
)

// Hold scopes: who placed a legal hold. A conversation may carry one hold per
// scope; it is held while any exists.
const (
	// HoldScopeOps is a platform operator's hold (any conversation).
	HoldScopeOps = "ops"
	// holdScopeShop prefixes a shop admin's hold on one of its shop's
	// conversations: "shop:<shop id>".
	holdScopeShop = "shop:"
)

// HoldScopeShop is the scope of shop's admins' holds.
func HoldScopeShop(shop string) string { return holdScopeShop + shop }

// ValidHoldScope reports whether scope is "ops" or "shop:<shop id>".
func ValidHoldScope(scope string) bool {
	return scope == HoldScopeOps || (strings.HasPrefix(scope, holdScopeShop) && len(scope) > len(holdScopeShop))
}

// Hold is a legal hold on a conversation: while it exists, retention deletes none
// of the conversation's history.
type Hold struct {
	Conv   uint64    `json:"conv"`
	Scope  string    `json:"scope"`
	By     string    `json:"by"`
	Reason string    `json:"reason,omitempty"`
	At     time.Time `json:"at"`
}

// Holds keeps legal holds; every Store is one.
type Holds interface {
	// PutHold stores h, replacing the hold of the same conversation and scope.
	PutHold(ctx context.Context, h Hold) error
	// DeleteHold removes conv's hold of scope. Removing one that does not exist is
	// not an error.
	DeleteHold(ctx context.Context, conv uint64, scope string) error
	// Holds returns conv's holds, by scope (none: the conversation is not held).
	Holds(ctx context.Context, conv uint64) ([]Hold, error)
	// ListHolds returns the holds of the first limit held conversations with an id
	// greater than after, by conversation and then scope: every hold of each
	// conversation it names. Pass the last conversation returned as after to
	// read on.
	ListHolds(ctx context.Context, after uint64, limit int) ([]Hold, error)
}
