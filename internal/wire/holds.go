package wire

import "time"

// Hold is a legal hold on a conversation, as the hold endpoints answer it: while a
// conversation has one, retention deletes none of its history.
type Hold struct {
	ConversationID ID `json:"conversation_id"`
	// Scope is who placed it: "ops" (a platform operator) or "shop:<shop_id>" (that
	// shop's admins).
	Scope  string    `json:"scope"`
	By     string    `json:"by"`
	Reason string    `json:"reason,omitempty"`
	At     time.Time `json:"at"`
}

// HoldRequest is the optional body of PUT and DELETE of a hold: why (logged, and
// kept with a placed hold).
type HoldRequest struct {
	Reason string `json:"reason,omitempty"`
}

// ConversationHolds answers GET of a conversation's holds: the caller's scope's
// (a shop admin) or all of them (an operator); none: not held.
type ConversationHolds struct {
	ConversationID ID     `json:"conversation_id"`
	Holds          []Hold `json:"holds"`
}

// HoldList answers GET /v1/ops/holds: held conversations by id, with their holds;
// NextAfter, when set, is the after of the next page.
type HoldList struct {
	Conversations []ConversationHolds `json:"conversations"`
	NextAfter     ID                  `json:"next_after,omitempty"`
}
