// Package groupstream keeps conversations and their message logs: the conversation
// directory (a pair of users maps to one conversation id, allocated once), every message
// body exactly once, a per-conversation history index, and recall.
//
// Every group message gets a stream seq, continuous per group (1, 2, 3, ...), and a
// fanout mode chosen when it is stored: write (the pipeline copies it into every
// member's timeline) or read (the group's stream is the only copy and members' syncs
// read it). A group switches to read when it has more than Config.WriteMaxMembers
// members and back below Config.WriteBackMembers; the switch takes effect at the seq
// of the first message stored after it (Conversation.FanoutSince), so every message
// has exactly one mode. The stream also keeps members' read positions, from which it
// derives a member's unread count and a message's "read by N of M".
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
	// KindShop is a buyer's conversation with a shop: its one member is the buyer;
	// the shop's agents serve it (package csrouting decides who).
	KindShop = "shop"
)

// Fanout modes of a group message.
const (
	FanoutWrite = "write"
	FanoutRead  = "read"
)

// Config configures a Store.
type Config struct {
	// WriteMaxMembers is the largest group that uses write-fanout. Zero means 500.
	WriteMaxMembers int
	// WriteBackMembers: a read-fanout group with fewer members than this returns to
	// write-fanout. Zero means 80% of WriteMaxMembers; it is at most WriteMaxMembers.
	WriteBackMembers int
	// CacheBytes bounds the memory a store keeps of conversations, group member
	// lists and groups' read positions (estimated: strings and struct overhead). A
	// value larger than a quarter of it is not cached. Zero means 64 MiB.
	CacheBytes int64
}

func (c *Config) fill() {
	if c.WriteMaxMembers <= 0 {
		c.WriteMaxMembers = 500
	}
	if c.WriteBackMembers <= 0 {
		c.WriteBackMembers = c.WriteMaxMembers * 4 / 5
	}
	c.WriteBackMembers = min(c.WriteBackMembers, c.WriteMaxMembers)
	if c.CacheBytes <= 0 {
		c.CacheBytes = defaultCacheBytes
	}
}

// mode returns the fanout mode of a group in mode cur with n members.
func (c Config) mode(cur string, n int) string {
	switch {
	case n > c.WriteMaxMembers:
		return FanoutRead
	case n < c.WriteBackMembers:
		return FanoutWrite
	case cur == "":
		return FanoutWrite
	}
	return cur
}

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
	// Members are the two users of a direct conversation, or the buyer of a shop
	// conversation. Group members live in the membership table (Store.Member,
	// Store.Members).
	Members []string `json:"members,omitempty"`
	// Shop is a shop conversation's shop.
	Shop string `json:"shop,omitempty"`
	// Group fields.
	Name        string `json:"name,omitempty"`
	Owner       string `json:"owner,omitempty"`
	MemberCount int    `json:"member_count,omitempty"`
	// Version increases with every membership change.
	Version uint64 `json:"version,omitempty"`
	// Fanout is the group's mode for the next message, since stream seq FanoutSince.
	Fanout      string `json:"fanout,omitempty"`
	FanoutSince uint64 `json:"fanout_since,omitempty"`
	// Head is the seq of the stream's last entry; ReadHead that of its last
	// read-fanout entry (0: the group has never used read-fanout); Rank counts its
	// read-fanout messages (recall entries excluded).
	Head     uint64 `json:"head,omitempty"`
	ReadHead uint64 `json:"read_head,omitempty"`
	Rank     uint64 `json:"rank,omitempty"`
	// LastMsgID is the group's newest message.
	LastMsgID uint64 `json:"last_msg,omitempty"`
	// Archived is the highest msg id, and ArchivedSeq the highest stream seq, of
	// the conversation's history in cold segments (its manifest); 0: none.
	Archived    uint64 `json:"archived,omitempty"`
	ArchivedSeq uint64 `json:"archived_seq,omitempty"`
}

// FanoutMode is the group's current fanout mode.
func (c Conversation) FanoutMode() string {
	if c.Fanout == "" {
		return FanoutWrite
	}
	return c.Fanout
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
	// JoinSeq is the first stream seq the member receives (0 reads as 1).
	JoinSeq uint64 `json:"join_seq,omitempty"`
}

// MemberChange is a change to a group's membership, made by Store.ChangeMembers.
type MemberChange struct {
	Add, Remove, Promote, Demote []string
	// Max bounds the member count after the change.
	Max int
	// Event is the msg id of the group event that will announce the change, and
	// Actor who made it. The store records an Announcement with the change when
	// Event is set.
	Event uint64
	Actor string
}

// Announcement is a membership change whose effects are still to be made: the group
// event in the group's log, the members' timeline entries, the gateways' member
// index. A store commits it if and only if it commits the change (an outbox: Pebble
// in the change's batch, Cassandra in its conditional batch), so a crash or a
// failure between the change and its effects loses nothing: whoever drains it
// (Announcer) makes the effects (each is idempotent, keyed by Event) and then
// deletes it. A group's creation is announced with its own id as Event.
type Announcement struct {
	Group    uint64    `json:"group"`
	Version  uint64    `json:"version"`
	Event    uint64    `json:"event"`
	Type     string    `json:"type"` // "created" or "members_changed"
	Actor    string    `json:"actor"`
	At       time.Time `json:"at"`
	Added    []string  `json:"added,omitempty"`
	Removed  []string  `json:"removed,omitempty"`
	Promoted []string  `json:"promoted,omitempty"`
	Demoted  []string  `json:"demoted,omitempty"`
}

// Announcer keeps the announcements of membership changes; every Store is one.
type Announcer interface {
	// Announcements returns up to limit (0: all) pending announcements of group,
	// oldest version first; group 0 lists those of every group.
	Announcements(ctx context.Context, group uint64, limit int) ([]Announcement, error)
	// Announced deletes an announcement whose effects are made. Deleting one that
	// is gone already is not an error.
	Announced(ctx context.Context, group, version uint64) error
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
	RecalledBy     string          `json:"recalled_by,omitempty"`
	// AgentID is the shop agent who wrote a shop conversation's message (From is
	// then the shop).
	AgentID string `json:"agent,omitempty"`
	// Seq is the group stream seq (0 outside groups and for group events) and
	// Fanout the mode it was stored in.
	Seq    uint64 `json:"seq,omitempty"`
	Fanout string `json:"fanout,omitempty"`
	// GroupVersion is the group's membership version when the message was stored
	// (0 outside groups, and for messages stored before it was recorded): who was a
	// member then is who it is for.
	GroupVersion uint64 `json:"group_version,omitempty"`
	// RecallSeq is the seq of the stream's recall entry when the message was
	// recalled in read-fanout (0 when the recall went to members' timelines).
	RecallSeq uint64 `json:"recall_seq,omitempty"`
}

// Left is a past membership of a group: the member received stream entries JoinSeq
// to LeftSeq.
type Left struct {
	Conv    uint64    `json:"conv"`
	JoinSeq uint64    `json:"join"`
	LeftSeq uint64    `json:"left"`
	At      time.Time `json:"at"`
}

// StreamEntry is one entry of a group's read-fanout stream.
type StreamEntry struct {
	Seq   uint64
	Kind  string // wire.KindMessage or wire.KindRecall
	MsgID uint64
	From  string
	At    time.Time
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
		GroupSeq:       m.Seq,
		AgentID:        m.AgentID,
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
	// ErrIDReused is returned by PutMessages for a message whose id another message
	// (another conversation, sender or client_msg_id) already has.
	ErrIDReused = errors.New("groupstream: message id already used by another message")
)

// Store is the conversation directory and message log, with the announcements of
// its membership changes, the steps that move its history to the cold tier and
// the legal holds on its conversations.
type Store interface {
	Announcer
	Archiver
	Holds

	// DirectConversation returns the conversation of users a and b, allocating it with
	// id newID() the first time. Every caller gets the same conversation for a pair.
	DirectConversation(ctx context.Context, a, b string, newID func() uint64) (Conversation, error)
	// ShopConversation returns the conversation of buyer with shop, allocating it
	// with id newID() the first time.
	ShopConversation(ctx context.Context, buyer, shop string, newID func() uint64) (Conversation, error)
	// Conversation returns a conversation by id, or ErrNotFound.
	Conversation(ctx context.Context, id uint64) (Conversation, error)
	// CreateGroup stores a new group with id, owned by owner, whose members are owner
	// and members (duplicates ignored), with the announcement of its creation.
	CreateGroup(ctx context.Context, id uint64, name, owner string, members []string, at time.Time) (Conversation, error)
	// ChangeMembers applies a membership change atomically, with its announcement
	// when ch has an Event, and bumps the version. Adding a member twice or
	// removing a non-member changes nothing (and announces nothing).
	ChangeMembers(ctx context.Context, id uint64, ch MemberChange, at time.Time) (Conversation, error)
	// Member returns user's membership of a conversation, or ErrNotFound.
	Member(ctx context.Context, conv uint64, user string) (Member, error)
	// Members returns every member of a conversation, ordered by user id. The slice
	// may be shared: callers must not modify it.
	Members(ctx context.Context, conv uint64) ([]Member, error)
	// PutMessages stores messages durably, giving each group message the next stream
	// seq and its fanout mode, and returns them as stored. Storing a message again
	// changes nothing and returns the stored one, so a redelivered stage sees the
	// seq and mode of the first delivery (and a recall is never undone). A
	// group message also moves its sender's read position to it.
	PutMessages(ctx context.Context, msgs []Message) ([]Message, error)
	// Message returns a message by id, or ErrNotFound.
	Message(ctx context.Context, id uint64) (Message, error)
	// LookupMessages returns the client view of each message found among ids.
	LookupMessages(ctx context.Context, ids []uint64) (map[uint64]wire.Entry, error)
	// History returns up to limit messages of conv older than before (0: newest),
	// newest first, and whether older ones remain.
	History(ctx context.Context, conv, before uint64, limit int) ([]Message, bool, error)
	// Recall marks a message recalled at the given time, durably; recalling twice
	// keeps the first time. In a group currently in read-fanout it also appends a
	// recall entry to the stream (Message.RecallSeq). It returns the message as
	// stored.
	Recall(ctx context.Context, id uint64, by string, at time.Time) (Message, error)

	// UserGroups returns the ids of the groups user belongs to.
	UserGroups(ctx context.Context, user string) ([]uint64, error)
	// LeftGroups returns user's past memberships of groups that had read-fanout
	// entries (for 30 days): their devices may still sync the stream up to LeftSeq.
	LeftGroups(ctx context.Context, user string) ([]Left, error)
	// Stream returns up to limit read-fanout entries of group conv with seq > after,
	// in seq order.
	Stream(ctx context.Context, conv, after uint64, limit int) ([]StreamEntry, error)
	// SetReadSeq moves user's read position in group conv up to seq (never back).
	SetReadSeq(ctx context.Context, conv uint64, user string, seq uint64) error
	// ReadSeq returns user's read position in group conv.
	ReadSeq(ctx context.Context, conv uint64, user string) (uint64, error)
	// Unread counts the read-fanout messages of group conv after user's read
	// position (and from their join point).
	Unread(ctx context.Context, conv uint64, user string) (int64, error)
	// ReadCount counts the members of group conv whose read position is at seq or
	// past it, in O(log M).
	ReadCount(ctx context.Context, conv, seq uint64) (int, error)
	// Readers returns up to limit members (by user id, after the user id after)
	// whose read position is at seq or past it.
	Readers(ctx context.Context, conv, seq uint64, after string, limit int) ([]string, error)
}
