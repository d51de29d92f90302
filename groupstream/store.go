// Package groupstream keeps conversations and their message logs: the conversation
// directory (a pair of users maps to one conversation id, allocated once), every message
// body exactly once, a per-conversation history index, and recall.
//
// User timelines (package timeline) hold references to these messages, so a recall is a
// single write here and no API can return the recalled body afterwards.
//
// Stores are safe for concurrent use.
package groupstream

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/fanline/fanline/internal/wire"
)

// Conversation kinds.
const (
	KindDirect = "direct"
	KindGroup  = "group"
)

// Roles in a group.
const (
	RoleOwner  = "owner"
	RoleAdmin  = "admin"
	RoleMember = "member"
)

// Conversation is one entry of the directory. A group's conversation id is its group
// id.
type Conversation struct {
	ID        uint64    `json:"id"`
	Kind      string    `json:"kind"`
	CreatedAt time.Time `json:"created_at"`
	// Members are the two users of a direct conversation. Group members live in the
	// membership table (Store.Member, Store.Members).
	Members []string `json:"members,omitempty"`
	// Group fields.
	Name        string `json:"name,omitempty"`
	Owner       string `json:"owner,omitempty"`
	MemberCount int    `json:"member_count,omitempty"`
	// Version increases with every membership change.
	Version uint64 `json:"version,omitempty"`
}

// HasMember reports whether user is one of a direct conversation's two users.
func (c Conversation) HasMember(user string) bool {
	for _, m := range c.Members {
		if m == user {
			return true
		}
	}
	return false
}

// Member is one user's membership in a conversation.
type Member struct {
	User     string    `json:"-"`
	Role     string    `json:"role"`
	JoinedAt time.Time `json:"joined_at"`
}

// MemberChange is a change to a group's membership, made by Store.ChangeMembers.
type MemberChange struct {
	Add, Remove, Promote, Demote []string
	// Max bounds the member count after the change.
	Max int
}

// Message is a stored message, or a group event (Kind wire.KindGroupEvent) kept in the
// same log so history and sync show it in place.
type Message struct {
	ID             uint64          `json:"id"`
	Kind           string          `json:"kind,omitempty"` // "" is a message
	ConversationID uint64          `json:"conv"`
	From           string          `json:"from"`
	ClientMsgID    string          `json:"cmid"`
	Type           string          `json:"type"`
	Body           json.RawMessage `json:"body,omitempty"`
	CreatedAt      time.Time       `json:"at"`
	RecalledAt     time.Time       `json:"recalled_at,omitzero"`
}

// IsMessage reports whether this is a chat message (not a group event).
func (m Message) IsMessage() bool { return m.Kind == "" || m.Kind == wire.KindMessage }

// Recalled reports whether the message was recalled.
func (m Message) Recalled() bool { return !m.RecalledAt.IsZero() }

// Entry renders the message for clients; a recalled message has no type or body.
func (m Message) Entry() wire.Entry {
	kind := m.Kind
	if kind == "" {
		kind = wire.KindMessage
	}
	e := wire.Entry{
		Kind:           kind,
		ConversationID: wire.ID(m.ConversationID),
		MsgID:          wire.ID(m.ID),
		ClientMsgID:    m.ClientMsgID,
		From:           m.From,
		CreatedAt:      m.CreatedAt,
	}
	if m.Recalled() {
		e.Recalled = true
	} else {
		e.Type, e.Body = m.Type, m.Body
	}
	return e
}

// Errors.
var (
	// ErrNotFound is returned for a missing conversation, member or message.
	ErrNotFound = errors.New("groupstream: not found")
	// ErrTooManyMembers is returned when a change would pass MemberChange.Max.
	ErrTooManyMembers = errors.New("groupstream: too many members")
	// ErrOwner is returned for removing or demoting a group's owner.
	ErrOwner = errors.New("groupstream: the owner cannot be removed or demoted")
)

// Store is the conversation directory and message log.
type Store interface {
	// DirectConversation returns the conversation of users a and b, allocating it with
	// id newID() the first time. Every caller gets the same conversation for a pair.
	DirectConversation(ctx context.Context, a, b string, newID func() uint64) (Conversation, error)
	// Conversation returns a conversation by id, or ErrNotFound.
	Conversation(ctx context.Context, id uint64) (Conversation, error)
	// CreateGroup stores a new group with id, owned by owner, whose members are owner
	// and members (duplicates ignored).
	CreateGroup(ctx context.Context, id uint64, name, owner string, members []string, at time.Time) (Conversation, error)
	// ChangeMembers applies a membership change atomically and bumps the version.
	// Adding a member twice or removing a non-member changes nothing.
	ChangeMembers(ctx context.Context, id uint64, ch MemberChange, at time.Time) (Conversation, error)
	// Member returns user's membership of a conversation, or ErrNotFound.
	Member(ctx context.Context, conv uint64, user string) (Member, error)
	// Members returns every member of a conversation, ordered by user id. The slice
	// may be shared: callers must not modify it.
	Members(ctx context.Context, conv uint64) ([]Member, error)
	// PutMessages stores messages durably. Storing a message again is a no-op, so a
	// redelivered send stage changes nothing (a recall is never undone).
	PutMessages(ctx context.Context, msgs []Message) error
	// Message returns a message by id, or ErrNotFound.
	Message(ctx context.Context, id uint64) (Message, error)
	// LookupMessages returns the client view of each message found among ids.
	LookupMessages(ctx context.Context, ids []uint64) (map[uint64]wire.Entry, error)
	// History returns up to limit messages of conv older than before (0: newest),
	// newest first, and whether older ones remain.
	History(ctx context.Context, conv, before uint64, limit int) ([]Message, bool, error)
	// Recall marks a message recalled at the given time, durably; recalling twice
	// keeps the first time. It returns the message as stored.
	Recall(ctx context.Context, id uint64, at time.Time) (Message, error)
}
