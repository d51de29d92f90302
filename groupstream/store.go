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
)

// Conversation is one entry of the directory.
type Conversation struct {
	ID        uint64    `json:"id"`
	Kind      string    `json:"kind"`
	Members   []string  `json:"members"`
	CreatedAt time.Time `json:"created_at"`
}

// HasMember reports whether user belongs to the conversation.
func (c Conversation) HasMember(user string) bool {
	for _, m := range c.Members {
		if m == user {
			return true
		}
	}
	return false
}

// Peer returns the other member of a direct conversation.
func (c Conversation) Peer(user string) string {
	for _, m := range c.Members {
		if m != user {
			return m
		}
	}
	return ""
}

// Message is a stored message.
type Message struct {
	ID             uint64          `json:"id"`
	ConversationID uint64          `json:"conv"`
	From           string          `json:"from"`
	ClientMsgID    string          `json:"cmid"`
	Type           string          `json:"type"`
	Body           json.RawMessage `json:"body,omitempty"`
	CreatedAt      time.Time       `json:"at"`
	RecalledAt     time.Time       `json:"recalled_at,omitzero"`
}

// Recalled reports whether the message was recalled.
func (m Message) Recalled() bool { return !m.RecalledAt.IsZero() }

// Entry renders the message for clients; a recalled message has no type or body.
func (m Message) Entry() wire.Entry {
	e := wire.Entry{
		Kind:           wire.KindMessage,
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

// ErrNotFound is returned for a missing conversation or message.
var ErrNotFound = errors.New("groupstream: not found")

// Store is the conversation directory and message log.
type Store interface {
	// DirectConversation returns the conversation of users a and b, allocating it with
	// id newID() the first time. Every caller gets the same conversation for a pair.
	DirectConversation(ctx context.Context, a, b string, newID func() uint64) (Conversation, error)
	// Conversation returns a conversation by id, or ErrNotFound.
	Conversation(ctx context.Context, id uint64) (Conversation, error)
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
