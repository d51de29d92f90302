// Package wire holds the types that cross fanline's public boundary: JSON entries,
// requests and results shared by the HTTP API, the WebSocket frames and the Go SDK.
package wire

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"time"
)

// ID is a 64-bit identifier that travels in JSON as a decimal string, because
// JavaScript clients cannot hold 64-bit integers as numbers.
type ID uint64

// MarshalJSON writes the id as a JSON string.
func (id ID) MarshalJSON() ([]byte, error) {
	return []byte(`"` + strconv.FormatUint(uint64(id), 10) + `"`), nil
}

// UnmarshalJSON reads an id from a JSON string of decimal digits.
func (id *ID) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("wire: id must be a string of digits")
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil || v == 0 {
		return fmt.Errorf("wire: %q is not an id", s)
	}
	*id = ID(v)
	return nil
}

// String is the decimal form of the id.
func (id ID) String() string { return strconv.FormatUint(uint64(id), 10) }

// Entry kinds.
const (
	KindMessage = "message" // a chat message
	KindRecall  = "recall"  // msg_id was recalled by from
	KindRead    = "read"    // from has read conversation_id up to msg_id
	// KindGroupEvent: a group's membership changed (type created or members_changed,
	// body a GroupEvent).
	KindGroupEvent = "group_event"
)

// GroupEvent is the body of a group_event entry. Each list names at most
// MaxEventNames users; the counts say how many there were.
type GroupEvent struct {
	By           string   `json:"by"`
	Version      uint64   `json:"version"`
	Name         string   `json:"name,omitempty"`
	Added        []string `json:"added,omitempty"`
	Removed      []string `json:"removed,omitempty"`
	Promoted     []string `json:"promoted,omitempty"`
	Demoted      []string `json:"demoted,omitempty"`
	AddedCount   int      `json:"added_count,omitempty"`
	RemovedCount int      `json:"removed_count,omitempty"`
}

// MaxEventNames bounds each user list of a GroupEvent.
const MaxEventNames = 100

// Summary returns the event with each list cut to MaxEventNames and the counts set.
func (ev GroupEvent) Summary() GroupEvent {
	ev.AddedCount, ev.RemovedCount = len(ev.Added), len(ev.Removed)
	for _, l := range []*[]string{&ev.Added, &ev.Removed, &ev.Promoted, &ev.Demoted} {
		if len(*l) > MaxEventNames {
			*l = (*l)[:MaxEventNames:MaxEventNames]
		}
	}
	return ev
}

// Entry is one item of a user's timeline, as returned by sync, history and pushes.
type Entry struct {
	Kind           string          `json:"kind"`
	ConversationID ID              `json:"conversation_id"`
	MsgID          ID              `json:"msg_id,omitempty"`
	ClientMsgID    string          `json:"client_msg_id,omitempty"`
	From           string          `json:"from,omitempty"`
	Type           string          `json:"type,omitempty"`
	Body           json.RawMessage `json:"body,omitempty"`
	Recalled       bool            `json:"recalled,omitempty"`
	CreatedAt      time.Time       `json:"created_at"`
	// Seq is the entry's place in the user's timeline. A read-fanout group entry
	// has none: it comes from the group's stream.
	Seq uint64 `json:"seq,omitempty"`
	// GroupSeq is a group message's (or stream recall's) place in the group's stream.
	GroupSeq uint64 `json:"group_seq,omitempty"`
	// AgentID is the shop agent who wrote a message a buyer sees as from the shop.
	AgentID string `json:"agent_id,omitempty"`
}

// SendRequest is the body of POST /v1/messages and of the WebSocket send frame.
type SendRequest struct {
	ClientMsgID    string          `json:"client_msg_id"`
	To             string          `json:"to,omitempty"`
	ConversationID ID              `json:"conversation_id,omitempty"`
	GroupID        ID              `json:"group_id,omitempty"`
	Type           string          `json:"type"`
	Body           json.RawMessage `json:"body"`
}

// SendResult answers a send.
type SendResult struct {
	MsgID          ID        `json:"msg_id"`
	ConversationID ID        `json:"conversation_id"`
	CreatedAt      time.Time `json:"created_at"`
	Duplicate      bool      `json:"duplicate"`
}

// SyncResult answers a sync.
type SyncResult struct {
	Entries []Entry `json:"entries"`
	Cursor  string  `json:"cursor"`
	HasMore bool    `json:"has_more"`
	// GroupSeqs holds, per read-fanout group of the user (id as a string), the
	// group_seq up to which the device has every entry once it holds this page.
	GroupSeqs map[string]uint64 `json:"group_seqs,omitempty"`
}

// Conversation is one row of GET /v1/conversations.
type Conversation struct {
	ConversationID ID     `json:"conversation_id"`
	Kind           string `json:"kind"`
	Peer           string `json:"peer,omitempty"`
	GroupID        ID     `json:"group_id,omitempty"`
	ShopID         string `json:"shop_id,omitempty"`
	LastMessage    *Entry `json:"last_message,omitempty"`
	Unread         int64  `json:"unread"`
	ReadMsgID      ID     `json:"read_msg_id,omitempty"`
}

// ConversationList answers GET /v1/conversations.
type ConversationList struct {
	Conversations []Conversation `json:"conversations"`
	TotalUnread   int64          `json:"total_unread"`
}

// UnreadCounts answers GET /v1/unread: the badge.
type UnreadCounts struct {
	TotalUnread int64 `json:"total_unread"`
	// Conversations maps each conversation with unread messages (its id, as a
	// string) to their number.
	Conversations map[string]int64 `json:"conversations"`
}

// HistoryResult answers GET /v1/conversations/{id}/messages.
type HistoryResult struct {
	Messages []Entry `json:"messages"`
	HasMore  bool    `json:"has_more"`
}

// CreateGroupRequest is the body of POST /v1/groups.
type CreateGroupRequest struct {
	Name    string   `json:"name"`
	Members []string `json:"members"`
	// ClientGroupID, chosen by the device like a client_msg_id, makes the call
	// safe to retry: the same key of the same user answers the group it made.
	ClientGroupID string `json:"client_group_id,omitempty"`
}

// MembersRequest is the body of POST /v1/groups/{id}/members.
type MembersRequest struct {
	Add     []string `json:"add,omitempty"`
	Remove  []string `json:"remove,omitempty"`
	Promote []string `json:"promote,omitempty"`
	Demote  []string `json:"demote,omitempty"`
}

// Group describes a group (GET /v1/groups/{id}). Role is the caller's.
type Group struct {
	GroupID     ID     `json:"group_id"`
	Name        string `json:"name"`
	Owner       string `json:"owner"`
	MemberCount int    `json:"member_count"`
	Fanout      string `json:"fanout"`
	Version     uint64 `json:"version"`
	Role        string `json:"role"`
}

// MemberCheck answers which of some users are members of a group (an internal call:
// a gateway checks its index with it). Members are the members among the users asked
// about as of Version or a later version: a user removed at Version or before is not
// in it.
type MemberCheck struct {
	Version uint64   `json:"version"`
	Members []string `json:"members"`
}

// GroupVersion is one of a user's groups with its membership version as read after
// the user's memberships (an internal call: a gateway indexes a connecting user with
// it), so at least the version that added the user.
type GroupVersion struct {
	Group   uint64 `json:"group"`
	Version uint64 `json:"version"`
}

// ReadRequest is the body of POST /v1/conversations/{id}/read and the WebSocket read frame.
type ReadRequest struct {
	ConversationID ID `json:"conversation_id,omitempty"`
	MsgID          ID `json:"msg_id"`
}

// Receipts answers GET /v1/messages/{msg_id}/receipts. MemberCount counts the
// recipients of the message (the members other than its sender). Readers lists who
// read it: always for direct and write-fanout messages; for read-fanout messages one
// page at a time when asked (ReceiptsQuery.Readers), NextAfter naming the next page.
type Receipts struct {
	ReadCount   int      `json:"read_count"`
	MemberCount int      `json:"member_count"`
	Readers     []string `json:"readers,omitempty"`
	NextAfter   string   `json:"next_after,omitempty"`
}

// ReceiptsQuery asks for a page of a read-fanout message's readers: the query
// parameters readers=true, after=<user id> and limit=<n>.
type ReceiptsQuery struct {
	Readers bool
	After   string
	Limit   int
}

// Roles a token can carry. Agents and admins act for the shop their token names;
// operators run the platform (its /v1/ops endpoints) and have no conversations.
const (
	RoleBuyer    = "buyer"
	RoleAgent    = "agent"
	RoleAdmin    = "admin"
	RoleOperator = "operator"
)

// Principal is who a request speaks for, from its verified token: the user, their role
// and, for agents and admins, their shop. Authorisation decides from all three.
type Principal struct {
	ID   string `json:"id"`
	Role string `json:"role"`
	Shop string `json:"shop,omitempty"`
}

// Staff reports whether the principal acts for a shop (an agent or an admin).
func (p Principal) Staff() bool { return p.Role == RoleAgent || p.Role == RoleAdmin }

// Inbox is the timeline the principal reads and is pushed to: a buyer's own, and for
// staff one per shop (StaffInbox), so a person's own chats and the shop chats they
// serve never mix, whichever token they hold.
func (p Principal) Inbox() string {
	if p.Staff() {
		return StaffInbox(p.Shop, p.ID)
	}
	return p.ID
}

// StaffInbox names the timeline of a shop's agent or admin: "shop/user". No user id
// contains '/', so it never names a user's own timeline.
func StaffInbox(shop, user string) string { return shop + "/" + user }

var userIDPattern = regexp.MustCompile(`^[A-Za-z0-9_.:@-]{1,64}$`)

// ValidUserID reports whether s is a well-formed user id: 1-64 characters of
// [A-Za-z0-9_.:@-].
func ValidUserID(s string) bool { return userIDPattern.MatchString(s) }

var clientMsgIDPattern = regexp.MustCompile(`^[A-Za-z0-9_.:@-]{1,64}$`)

// ValidClientMsgID reports whether s is a well-formed client_msg_id: 1-64 characters of
// [A-Za-z0-9_.:@-].
func ValidClientMsgID(s string) bool { return clientMsgIDPattern.MatchString(s) }

// OpenChatRequest is the body of POST /v1/shops/{shop_id}/chats.
type OpenChatRequest struct {
	Entry       string `json:"entry"`
	ProductID   string `json:"product_id,omitempty"`
	OrderID     string `json:"order_id,omitempty"`
	Text        string `json:"text,omitempty"`
	ClientMsgID string `json:"client_msg_id,omitempty"`
}

// ChatState is a customer-service chat as its buyer or agent sees it, and the cs
// event pushed when it changes.
type ChatState struct {
	ConversationID ID     `json:"conversation_id"`
	ShopID         string `json:"shop_id,omitempty"`
	BuyerID        string `json:"buyer_id,omitempty"`
	State          string `json:"state"` // queued, assigned, closed
	AgentID        string `json:"agent_id,omitempty"`
	Skill          string `json:"skill,omitempty"`
	QueuePosition  int    `json:"queue_position,omitempty"`
	// EstimatedWaitSeconds is a queued chat's expected wait.
	EstimatedWaitSeconds int    `json:"estimated_wait_seconds,omitempty"`
	Reason               string `json:"reason,omitempty"`
	// Priority is the chat's queue priority (from the buyer's VIP tier): for staff.
	Priority int `json:"priority,omitempty"`
	// Entry, ProductID and OrderID are where the buyer opened (or last reopened)
	// the chat from.
	Entry     string `json:"entry,omitempty"`
	ProductID string `json:"product_id,omitempty"`
	OrderID   string `json:"order_id,omitempty"`
}

// ForBuyer is the state as its buyer may see it: without the routing reason,
// skill and priority, which are for staff (reasons name agents).
func (s ChatState) ForBuyer() ChatState {
	s.Reason, s.Skill, s.Priority = "", "", 0
	return s
}

// CannedResponse is one of a shop's canned responses: an agent types "/" and the
// shortcut in the composer to insert the text.
type CannedResponse struct {
	Shortcut string `json:"shortcut"`
	Text     string `json:"text"`
}

// CannedResponses is the document of GET|PUT /v1/admin/shops/{shop_id}/canned.
type CannedResponses struct {
	Responses []CannedResponse `json:"responses"`
}

// DryRunRequest is the body of POST /v1/admin/shops/{shop_id}/routing/dry-run.
type DryRunRequest struct {
	BuyerID string `json:"buyer_id"`
	Entry   string `json:"entry"`
	Text    string `json:"text,omitempty"`
}

// TransferRequest is the body of POST /v1/cs/conversations/{id}/transfer: exactly one
// of AgentID and Skill.
type TransferRequest struct {
	AgentID string `json:"agent_id,omitempty"`
	Skill   string `json:"skill,omitempty"`
}

// StatusRequest is the body of PUT /v1/agents/me/status.
type StatusRequest struct {
	Status string `json:"status"`
}
