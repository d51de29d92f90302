// Package timeline keeps user timelines, the write-fanout target: one log per user with
// a continuous seq (1, 2, 3, ...), each entry a reference to a message, recall or read
// event; and per-user conversation state (unread, read position, last message).
//
// Unread counts per conversation and the user's total change in the same atomic write
// as the timeline entry that causes them, so they always agree.
//
// Stores are safe for concurrent use; writes for one user are serialised by the store.
// The pipeline still gives each user a single writer (the fanout partition), which is
// what keeps distributed backends free of seq races.
package timeline

import (
	"context"
	"errors"
	"time"
)

// Entry kinds stored in a timeline.
const (
	KindMessage    = "message"
	KindRecall     = "recall"
	KindRead       = "read"
	KindGroupEvent = "group_event" // a membership change; shows the conversation, adds no unread
)

// Item asks for one entry in one user's timeline.
type Item struct {
	User           string
	Kind           string
	ConversationID uint64
	// ConvKind and Peer describe the conversation for the user's conversation list.
	ConvKind string
	Peer     string
	// MsgID is the message the entry is about (for read: read up to it).
	MsgID uint64
	From  string
	At    time.Time
	// GroupSeq is a group message's stream seq (0 otherwise).
	GroupSeq uint64
}

// Entry is a stored timeline entry.
type Entry struct {
	User           string    `json:"-"`
	Seq            uint64    `json:"-"`
	Kind           string    `json:"k"`
	ConversationID uint64    `json:"c"`
	MsgID          uint64    `json:"m"`
	From           string    `json:"f"`
	At             time.Time `json:"t"`
}

// ConvState is a user's state in one conversation.
type ConvState struct {
	ConversationID uint64    `json:"-"`
	Kind           string    `json:"kind"`
	Peer           string    `json:"peer,omitempty"`
	Unread         int64     `json:"unread"`
	ReadMsgID      uint64    `json:"read"`
	LastMsgID      uint64    `json:"last"`
	LastAt         time.Time `json:"last_at"`
	// GroupSeq is the highest stream seq of the group's messages in this timeline,
	// appended at timeline seq GroupSeqAt.
	GroupSeq   uint64 `json:"gseq,omitempty"`
	GroupSeqAt uint64 `json:"gseq_at,omitempty"`
}

// ErrNotFound is returned for a conversation the user has no state in.
var ErrNotFound = errors.New("timeline: not found")

// Store is the timeline and conversation-state store.
type Store interface {
	// Append adds items to their users' timelines atomically and durably, and returns
	// the entries it added. An item already present (same user, kind, conversation,
	// message and sender) is skipped, so redelivered fanout jobs change nothing.
	Append(ctx context.Context, items []Item) ([]Entry, error)
	// Read returns up to limit entries of user's timeline with seq > after, in order.
	// When entries after `after` were dropped (see Trimmer), it returns a
	// *CursorExpiredError naming the seq to read after instead.
	Read(ctx context.Context, user string, after uint64, limit int) ([]Entry, error)
	// Head returns the seq of user's last entry (0 for an empty timeline).
	Head(ctx context.Context, user string) (uint64, error)
	// Conversations returns the user's conversation states and total unread.
	Conversations(ctx context.Context, user string) ([]ConvState, int64, error)
	// ConvState returns the user's state in one conversation, or ErrNotFound.
	ConvState(ctx context.Context, user string, conv uint64) (ConvState, error)
	// MarkRead moves user's read position in conv up to msgID, recomputes unread and
	// appends a read entry for the user's other devices. Marking at or below the
	// current position changes nothing and returns a nil entry. A user with no state
	// in conv gets ErrNotFound, unless convKind is set: then the state is created
	// (a read-fanout group the user has only read from its stream).
	MarkRead(ctx context.Context, user string, conv, msgID uint64, convKind string, at time.Time) (*Entry, ConvState, error)
	// Unread returns user's unread counts (per conversation with unread messages, and
	// the total) at the timeline's head, from the store's UnreadCounters when it has
	// a current copy.
	Unread(ctx context.Context, user string) (Counts, error)
}
