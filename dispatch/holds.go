package dispatch

import (
	"context"
	"errors"
	"time"
	"unicode/utf8"

	"github.com/fanline/fanline/groupstream"
	"github.com/fanline/fanline/internal/wire"
)

// Legal holds: a shop's admin holds the shop's conversations (scope shop:<shop>),
// a platform operator any conversation (scope ops). A conversation is held while
// any hold exists, and retention deletes none of a held conversation's history.
// Every change is logged at info level: who, what, and why.

const (
	// maxHoldReason bounds a hold's reason, in characters.
	maxHoldReason = 1000
	// maxHoldsPage bounds the conversations of one page of ListHolds.
	maxHoldsPage = 1000
)

// holdScope returns the scope of who's holds on conv after checking that who may
// hold it: an operator any conversation, a shop's admin the shop's conversations.
// A conversation that is not who's to hold answers conversation_not_found, as one
// that does not exist.
func (d *Dispatcher) holdScope(ctx context.Context, who wire.Principal, conv uint64) (string, error) {
	if who.Role != wire.RoleOperator && who.Role != wire.RoleAdmin {
		return "", wire.Errorf(wire.CodeForbidden, "legal holds need an operator or a shop admin token")
	}
	missing := wire.Errorf(wire.CodeConversationMissing, "conversation %d does not exist", conv)
	c, err := d.streams.Conversation(ctx, conv)
	if errors.Is(err, groupstream.ErrNotFound) {
		return "", missing
	}
	if err != nil {
		return "", err
	}
	if who.Role == wire.RoleOperator {
		return groupstream.HoldScopeOps, nil
	}
	if c.Kind != groupstream.KindShop || c.Shop != who.Shop {
		return "", missing
	}
	return groupstream.HoldScopeShop(who.Shop), nil
}

func holdOf(h groupstream.Hold) wire.Hold {
	return wire.Hold{ConversationID: wire.ID(h.Conv), Scope: h.Scope, By: h.By, Reason: h.Reason, At: h.At}
}

// Holds returns conv's holds as who sees them: an operator every hold, a shop's
// admin the shop's.
func (d *Dispatcher) Holds(ctx context.Context, who wire.Principal, conv uint64) (wire.ConversationHolds, error) {
	scope, err := d.holdScope(ctx, who, conv)
	if err != nil {
		return wire.ConversationHolds{}, err
	}
	hs, err := d.streams.Holds(ctx, conv)
	if err != nil {
		return wire.ConversationHolds{}, err
	}
	out := wire.ConversationHolds{ConversationID: wire.ID(conv), Holds: []wire.Hold{}}
	for _, h := range hs {
		if scope == groupstream.HoldScopeOps || h.Scope == scope {
			out.Holds = append(out.Holds, holdOf(h))
		}
	}
	return out, nil
}

// PutHold places who's hold on conv, or replaces it (its reason and time), and
// returns it.
func (d *Dispatcher) PutHold(ctx context.Context, who wire.Principal, conv uint64, req wire.HoldRequest) (wire.Hold, error) {
	if utf8.RuneCountInString(req.Reason) > maxHoldReason {
		return wire.Hold{}, wire.Errorf(wire.CodeInvalidField, "reason must be at most %d characters", maxHoldReason)
	}
	if err := d.writable(); err != nil {
		return wire.Hold{}, err
	}
	scope, err := d.holdScope(ctx, who, conv)
	if err != nil {
		return wire.Hold{}, err
	}
	h := groupstream.Hold{Conv: conv, Scope: scope, By: who.ID, Reason: req.Reason, At: time.Now().UTC()}
	if err := d.streams.PutHold(ctx, h); err != nil {
		return wire.Hold{}, err
	}
	d.log.Info("dispatch: legal hold placed", "conversation", conv, "scope", scope, "by", who.ID, "role", who.Role,
		"reason", req.Reason)
	return holdOf(h), nil
}

// DeleteHold removes who's hold on conv (hold_not_found if there is none); req's
// reason is logged.
func (d *Dispatcher) DeleteHold(ctx context.Context, who wire.Principal, conv uint64, req wire.HoldRequest) error {
	if utf8.RuneCountInString(req.Reason) > maxHoldReason {
		return wire.Errorf(wire.CodeInvalidField, "reason must be at most %d characters", maxHoldReason)
	}
	if err := d.writable(); err != nil {
		return err
	}
	scope, err := d.holdScope(ctx, who, conv)
	if err != nil {
		return err
	}
	hs, err := d.streams.Holds(ctx, conv)
	if err != nil {
		return err
	}
	var old *groupstream.Hold
	for i := range hs {
		if hs[i].Scope == scope {
			old = &hs[i]
		}
	}
	if old == nil {
		return wire.Errorf(wire.CodeHoldMissing, "conversation %d has no %s hold", conv, scope)
	}
	if err := d.streams.DeleteHold(ctx, conv, scope); err != nil {
		return err
	}
	d.log.Info("dispatch: legal hold removed", "conversation", conv, "scope", scope, "by", who.ID, "role", who.Role,
		"reason", req.Reason, "placed_by", old.By, "placed_at", old.At, "placed_for", old.Reason,
		"still_held", len(hs) > 1)
	return nil
}

// ListHolds lists held conversations with an id greater than after, up to limit
// (0: 100) of them, with all their holds: an operator's view.
func (d *Dispatcher) ListHolds(ctx context.Context, who wire.Principal, after uint64, limit int) (wire.HoldList, error) {
	if who.Role != wire.RoleOperator {
		return wire.HoldList{}, wire.Errorf(wire.CodeForbidden, "listing every hold needs an operator token")
	}
	if limit <= 0 || limit > maxHoldsPage {
		limit = 100
	}
	// One more conversation than asked tells whether another page follows.
	hs, err := d.streams.ListHolds(ctx, after, limit+1)
	if err != nil {
		return wire.HoldList{}, err
	}
	out := wire.HoldList{Conversations: []wire.ConversationHolds{}}
	for _, h := range hs {
		n := len(out.Conversations)
		if n == 0 || uint64(out.Conversations[n-1].ConversationID) != h.Conv {
			if n == limit {
				out.NextAfter = out.Conversations[n-1].ConversationID
				break
			}
			out.Conversations = append(out.Conversations, wire.ConversationHolds{ConversationID: wire.ID(h.Conv)})
			n++
		}
		out.Conversations[n-1].Holds = append(out.Conversations[n-1].Holds, holdOf(h))
	}
	return out, nil
}
