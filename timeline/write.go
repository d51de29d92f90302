package timeline

import (
	"context"
	"fmt"
	"time"
)

// engine is what the write logic shared by every backend needs from its storage:
// reads of committed data and one commit per write. A write keeps its own changes in
// memory (heads, states, totals, index), so an engine never has to read uncommitted
// data.
type engine interface {
	// loadHead returns the committed head seq of user's timeline.
	loadHead(ctx context.Context, user string) (uint64, error)
	// loadTotal returns the committed total unread of user.
	loadTotal(ctx context.Context, user string) (int64, error)
	// loadState returns the committed state of user in conv; ok is false for none.
	loadState(ctx context.Context, user string, conv uint64) (st ConvState, ok bool, err error)
	// indexed reports whether the entry for it is committed; head is the user's
	// committed head.
	indexed(ctx context.Context, it Item, head uint64) (bool, error)
	// othersAfter counts the committed messages of user's conv from other senders
	// with id > msgID; head is the user's committed head.
	othersAfter(ctx context.Context, user string, conv, msgID, head uint64) (int64, error)
	// commit stores the write durably and atomically per user: its entries (and
	// their index), heads, states and totals.
	commit(ctx context.Context, w *write) error
	// counters is the copy of unread counts to keep up to date (nil: none).
	counters() UnreadCounters
}

// write is one Append or MarkRead: what it read, and the changes it makes.
type write struct {
	e       engine
	base    map[string]uint64 // user -> committed head when first read
	heads   map[string]uint64 // user -> head after this write
	states  map[string]map[uint64]*ConvState
	totals  map[string]int64
	entries []Entry // in the order appended
	items   []Item  // items[i] made entries[i]
	made    map[entryRef]bool
}

// entryRef identifies an entry the way the index does.
type entryRef struct {
	user, kind, from string
	conv, msg        uint64
}

func refOf(it Item) entryRef {
	return entryRef{user: it.User, kind: it.Kind, from: it.From, conv: it.ConversationID, msg: it.MsgID}
}

func newWrite(e engine) *write {
	return &write{e: e, base: map[string]uint64{}, heads: map[string]uint64{},
		states: map[string]map[uint64]*ConvState{}, totals: map[string]int64{}, made: map[entryRef]bool{}}
}

func (w *write) head(ctx context.Context, user string) (uint64, error) {
	if h, ok := w.heads[user]; ok {
		return h, nil
	}
	h, err := w.e.loadHead(ctx, user)
	if err != nil {
		return 0, err
	}
	w.base[user], w.heads[user] = h, h
	return h, nil
}

func (w *write) total(ctx context.Context, user string) (int64, error) {
	if v, ok := w.totals[user]; ok {
		return v, nil
	}
	v, err := w.e.loadTotal(ctx, user)
	if err != nil {
		return 0, err
	}
	w.totals[user] = v
	return v, nil
}

// state returns the user's state in conv; created reports a fresh one.
func (w *write) state(ctx context.Context, user string, conv uint64) (*ConvState, bool, error) {
	if st, ok := w.states[user][conv]; ok {
		return st, false, nil
	}
	st, ok, err := w.e.loadState(ctx, user, conv)
	if err != nil {
		return nil, false, err
	}
	st.ConversationID = conv
	if w.states[user] == nil {
		w.states[user] = map[uint64]*ConvState{}
	}
	w.states[user][conv] = &st
	return &st, !ok, nil
}

func (w *write) append(ctx context.Context, it Item) (Entry, error) {
	if _, ok := kindBytes[it.Kind]; !ok {
		return Entry{}, fmt.Errorf("timeline: unknown entry kind %q", it.Kind)
	}
	h, err := w.head(ctx, it.User)
	if err != nil {
		return Entry{}, err
	}
	h++
	w.heads[it.User] = h
	e := Entry{User: it.User, Seq: h, Kind: it.Kind, ConversationID: it.ConversationID, MsgID: it.MsgID, From: it.From, At: it.At.UTC()}
	w.entries = append(w.entries, e)
	w.items = append(w.items, it)
	w.made[refOf(it)] = true
	return e, nil
}

// present reports whether it is already in its user's timeline.
//
// A message newer than the conversation's last message cannot be: appending it would
// have raised LastMsgID to at least its id in the same write. Only older ones (late
// arrivals and redeliveries) and other kinds need the index probe.
func (w *write) present(ctx context.Context, it Item) (bool, error) {
	if it.Kind == KindMessage {
		st, _, err := w.state(ctx, it.User, it.ConversationID)
		if err != nil {
			return false, err
		}
		if it.MsgID > st.LastMsgID {
			return false, nil
		}
	}
	if w.made[refOf(it)] {
		return true, nil
	}
	if _, err := w.head(ctx, it.User); err != nil {
		return false, err
	}
	return w.e.indexed(ctx, it, w.base[it.User])
}

// unreadAfter counts messages from others in user's conv with id > msgID.
func (w *write) unreadAfter(ctx context.Context, user string, conv, msgID uint64) (int64, error) {
	if _, err := w.head(ctx, user); err != nil {
		return 0, err
	}
	n, err := w.e.othersAfter(ctx, user, conv, msgID, w.base[user])
	for _, it := range w.items {
		if it.User == user && it.ConversationID == conv && it.Kind == KindMessage && it.MsgID > msgID && it.From != user {
			n++
		}
	}
	return n, err
}

// moveRead advances st's read position to msgID and recomputes unread and total.
func (w *write) moveRead(ctx context.Context, user string, st *ConvState, msgID uint64) error {
	unread, err := w.unreadAfter(ctx, user, st.ConversationID, msgID)
	if err != nil {
		return err
	}
	return w.setRead(ctx, user, st, msgID, unread)
}

// setRead sets st's read position and unread count, adjusting the user's total.
func (w *write) setRead(ctx context.Context, user string, st *ConvState, msgID uint64, unread int64) error {
	total, err := w.total(ctx, user)
	if err != nil {
		return err
	}
	w.totals[user] = total + unread - st.Unread
	st.Unread, st.ReadMsgID = unread, msgID
	return nil
}

// appendItems is Append on any engine; the caller serialises writes per user.
func appendItems(ctx context.Context, e engine, items []Item) ([]Entry, error) {
	w := newWrite(e)
	for _, it := range items {
		dup, err := w.present(ctx, it)
		if err != nil {
			return nil, fmt.Errorf("timeline: %w", err)
		}
		if dup {
			continue
		}
		en, err := w.append(ctx, it)
		if err != nil {
			return nil, err
		}
		if it.Kind != KindMessage && it.Kind != KindGroupEvent {
			continue
		}
		st, _, err := w.state(ctx, it.User, it.ConversationID)
		if err != nil {
			return nil, fmt.Errorf("timeline: %w", err)
		}
		if st.Kind == "" {
			st.Kind, st.Peer = it.ConvKind, it.Peer
		}
		if it.GroupSeq > st.GroupSeq {
			st.GroupSeq, st.GroupSeqAt = it.GroupSeq, en.Seq
		}
		if it.Kind == KindGroupEvent {
			continue // the conversation now exists for the user; nothing to read
		}
		newest := it.MsgID > st.LastMsgID
		if newest {
			st.LastMsgID, st.LastAt = it.MsgID, it.At.UTC()
		}
		switch {
		case it.MsgID <= st.ReadMsgID:
		case it.From == it.User && newest:
			// Sending reads everything before the message; nothing is after it.
			err = w.setRead(ctx, it.User, st, it.MsgID, 0)
		case it.From == it.User:
			err = w.moveRead(ctx, it.User, st, it.MsgID)
		default:
			st.Unread++
			var total int64
			if total, err = w.total(ctx, it.User); err == nil {
				w.totals[it.User] = total + 1
			}
		}
		if err != nil {
			return nil, fmt.Errorf("timeline: %w", err)
		}
	}
	if len(w.entries) == 0 {
		return nil, nil
	}
	if err := e.commit(ctx, w); err != nil {
		return nil, fmt.Errorf("timeline: append: %w", err)
	}
	afterCommit(ctx, e.counters(), w)
	return w.entries, nil
}

// markRead is MarkRead on any engine; the caller serialises writes for user.
func markRead(ctx context.Context, e engine, user string, conv, msgID uint64, convKind string, at time.Time) (*Entry, ConvState, error) {
	w := newWrite(e)
	st, created, err := w.state(ctx, user, conv)
	if err != nil {
		return nil, ConvState{}, fmt.Errorf("timeline: %w", err)
	}
	if created && convKind == "" {
		return nil, ConvState{}, ErrNotFound
	}
	if created {
		st.Kind = convKind
	}
	if msgID <= st.ReadMsgID {
		return nil, *st, nil
	}
	if err := w.moveRead(ctx, user, st, msgID); err != nil {
		return nil, ConvState{}, fmt.Errorf("timeline: %w", err)
	}
	en, err := w.append(ctx, Item{User: user, Kind: KindRead, ConversationID: conv, MsgID: msgID, From: user, At: at})
	if err != nil {
		return nil, ConvState{}, err
	}
	if err := e.commit(ctx, w); err != nil {
		return nil, ConvState{}, fmt.Errorf("timeline: mark read: %w", err)
	}
	afterCommit(ctx, e.counters(), w)
	return &en, *st, nil
}

// userStripes is how many lock stripes serialise the writes of users in a store.
const userStripes = 256

func usersOf(items []Item) []string {
	users := make([]string, len(items))
	for i, it := range items {
		users[i] = it.User
	}
	return users
}
