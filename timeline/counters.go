package timeline

import "context"

// Counts is a user's unread counts as of timeline head Head.
type Counts struct {
	Head  uint64
	Total int64
	// Convs holds the conversations with unread messages (absent: none).
	Convs map[uint64]int64
}

// UnreadCounters keeps a copy of users' unread counts (per conversation and total)
// where reading them costs one round trip, for badges: a store's Unread answers from
// it while its head matches the store's. The store remains the truth.
//
// Every change carries the timeline head it is at, and a copy never takes a change
// at or below the head it holds, so late or replayed updates cannot move counts back.
// A user's copy is complete once seeded with all their counts; changes to a copy
// that is not complete only record their head (so an older seed is refused).
type UnreadCounters interface {
	// Set applies the counts changed by the write that took user's timeline to head:
	// convs holds the new count of each conversation it changed, total the new
	// total (nil: unchanged).
	Set(ctx context.Context, user string, head uint64, convs map[uint64]int64, total *int64) error
	// Seed replaces user's copy with all their counts at head, unless the copy is
	// at a later head.
	Seed(ctx context.Context, user string, c Counts) error
	// Get returns user's copy; ok is false when there is no complete one.
	Get(ctx context.Context, user string) (c Counts, ok bool, err error)
}

// countsOf returns what a committed write changed for user: the unread of every
// conversation state it touched, and the total if it changed.
func (w *write) countsOf(user string) (map[uint64]int64, *int64) {
	convs := make(map[uint64]int64, len(w.states[user]))
	for conv, st := range w.states[user] {
		convs[conv] = st.Unread
	}
	if t, ok := w.totals[user]; ok {
		return convs, &t
	}
	return convs, nil
}

// counted is a store that may keep a copy of its unread counts.
type counted interface {
	Head(ctx context.Context, user string) (uint64, error)
	Conversations(ctx context.Context, user string) ([]ConvState, int64, error)
}

// unreadCounts is Store.Unread on any backend: from the copy when it is at the
// store's head, otherwise from the store, seeding the copy.
func unreadCounts(ctx context.Context, s counted, counters UnreadCounters, user string) (Counts, error) {
	head, err := s.Head(ctx, user)
	if err != nil {
		return Counts{}, err
	}
	if counters != nil {
		// A copy that cannot be read is bypassed: the store answers.
		if c, ok, err := counters.Get(ctx, user); err == nil && ok && c.Head == head {
			return c, nil
		}
	}
	// Read after the head: the states are at least as new as head, and a copy seeded
	// with them is refused once a newer change has been recorded.
	states, total, err := s.Conversations(ctx, user)
	if err != nil {
		return Counts{}, err
	}
	c := Counts{Head: head, Total: total, Convs: map[uint64]int64{}}
	for _, st := range states {
		if st.Unread != 0 {
			c.Convs[st.ConversationID] = st.Unread
		}
	}
	if counters != nil {
		_ = counters.Seed(ctx, user, c) // best effort: the next read tries again
	}
	return c, nil
}

// afterCommit passes a committed write's counts to the copy, best effort: a copy
// that missed them is behind the store's head and bypassed.
func afterCommit(ctx context.Context, counters UnreadCounters, w *write) {
	if counters == nil {
		return
	}
	for user, head := range w.heads {
		if head == w.base[user] {
			continue
		}
		convs, total := w.countsOf(user)
		_ = counters.Set(ctx, user, head, convs, total)
	}
}
