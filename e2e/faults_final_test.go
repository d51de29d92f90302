package e2e

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/fanline/fanline/client"
	"github.com/fanline/fanline/internal/wire"
)

// final is what the system answers once the faults are over and it has quiesced:
// each user's whole sync from an empty cursor, the history of every conversation,
// each user's conversation list and badge.
type final struct {
	syncs     map[string][]wire.Entry
	histories map[wire.ID][]wire.Entry // conversation -> history as one of its permanent members reads it
	lists     map[string]wire.ConversationList
	badges    map[string]wire.UnreadCounts
	// receipts of a sample of messages (every mark-read target, then every fifth),
	// asked by their senders, with every reader of a read-fanout message paged in.
	receipts map[wire.ID]wire.Receipts
	// receiptErrs are the refusals of those calls (an acked message not found).
	receiptErrs map[wire.ID]error
}

// syncFrom pages through c's whole sync from an empty cursor.
func syncFrom(ctx context.Context, c *client.Client) ([]wire.Entry, error) {
	var out []wire.Entry
	cursor := ""
	for {
		var page wire.SyncResult
		err := retryCall(ctx, func(ctx context.Context) error {
			var err error
			page, err = c.SyncPage(ctx, cursor, 500)
			return err
		})
		if err != nil {
			return nil, err
		}
		out = append(out, page.Entries...)
		cursor = page.Cursor
		if !page.HasMore {
			return out, nil
		}
	}
}

// historyOf pages through a conversation's whole history, newest first.
func historyOf(ctx context.Context, c *client.Client, conv wire.ID) ([]wire.Entry, error) {
	var out []wire.Entry
	var before wire.ID
	for {
		var page wire.HistoryResult
		err := retryCall(ctx, func(ctx context.Context) error {
			var err error
			page, err = c.History(ctx, conv, before, 200)
			return err
		})
		if err != nil {
			return nil, err
		}
		out = append(out, page.Messages...)
		if !page.HasMore || len(page.Messages) == 0 {
			return out, nil
		}
		before = page.Messages[len(page.Messages)-1].MsgID
	}
}

// signature summarises a sync, to tell when nothing changes any more.
func signature(es []wire.Entry) string {
	var b strings.Builder
	for _, e := range es {
		fmt.Fprintf(&b, "%s:%d:%d:%d:%t;", e.Kind, e.MsgID, e.Seq, e.GroupSeq, e.Recalled)
	}
	return b.String()
}

// quiesce polls every user's sync until every acknowledged message is in some sync,
// the syncs stop changing and every open device has as many entries as its sync (or
// nothing changed for 10 s), within a deadline, and returns the last syncs.
func (w *workload) quiesce(ctx context.Context, deadline time.Duration) (map[string][]wire.Entry, time.Duration, error) {
	start := time.Now()
	prev := map[string]string{}
	stableSince := time.Time{}
	for {
		syncs := map[string][]wire.Entry{}
		changed := false
		caughtUp := true
		w.mu.Lock()
		devices := make(map[string]*device, len(w.devices))
		for u, d := range w.devices {
			devices[u] = d
		}
		w.mu.Unlock()
		for u, d := range devices {
			es, err := syncFrom(ctx, d.c)
			if err != nil {
				return nil, 0, fmt.Errorf("sync %s: %w", u, err)
			}
			syncs[u] = es
			if sig := signature(es); sig != prev[u] {
				changed = true
				prev[u] = sig
			}
			if !d.closed && len(w.h.viewOf(u)) < len(es) {
				caughtUp = false
			}
		}
		now := time.Now()
		if changed || stableSince.IsZero() {
			stableSince = now
		}
		stable := now.Sub(stableSince)
		stored := w.allStored(syncs)
		if !changed && stored && stable > 300*time.Millisecond && (caughtUp || stable > 10*time.Second) {
			return syncs, now.Sub(start), nil
		}
		if now.Sub(start) > deadline {
			return syncs, now.Sub(start), fmt.Errorf("the system did not quiesce within %s", deadline)
		}
		sleepCtx(ctx, 200*time.Millisecond)
	}
}

// collect reads the rest of the final state.
func (w *workload) collect(ctx context.Context, syncs map[string][]wire.Entry) (*final, error) {
	f := &final{syncs: syncs, histories: map[wire.ID][]wire.Entry{}, lists: map[string]wire.ConversationList{},
		badges: map[string]wire.UnreadCounts{}, receipts: map[wire.ID]wire.Receipts{},
		receiptErrs: map[wire.ID]error{}}
	for u, d := range w.devices {
		err := retryCall(ctx, func(ctx context.Context) error {
			l, err := d.c.Conversations(ctx)
			f.lists[u] = l
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("conversations of %s: %w", u, err)
		}
		err = retryCall(ctx, func(ctx context.Context) error {
			b, err := d.c.Unread(ctx)
			f.badges[u] = b
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("unread of %s: %w", u, err)
		}
	}
	// Every conversation's history through a permanent member: a group's owner, a
	// direct chat's first user.
	readers := map[wire.ID]string{}
	for _, g := range w.groups {
		readers[g.id] = g.spec.core[0]
	}
	w.h.mu.Lock()
	for _, s := range w.h.sends {
		if s.group == "" && s.conv != 0 {
			readers[s.conv] = s.from
		}
	}
	w.h.mu.Unlock()
	if err := w.collectReceipts(ctx, f); err != nil {
		return nil, err
	}
	for conv, u := range readers {
		hist, err := historyOf(ctx, w.devices[u].c, conv)
		if err != nil {
			return nil, fmt.Errorf("history of %d through %s: %w", conv, u, err)
		}
		f.histories[conv] = hist
	}
	return f, nil
}

// maxReceipts bounds the receipts asked for at the end of a run.
const maxReceipts = 150

func (w *workload) collectReceipts(ctx context.Context, f *final) error {
	w.h.mu.Lock()
	byID := map[wire.ID]*sendOp{}
	var sample []*sendOp
	for _, s := range w.h.sends {
		if s.acked() && strings.HasPrefix(s.from, "u") {
			byID[s.msgID] = s
		}
	}
	picked := map[wire.ID]bool{}
	for _, r := range w.h.reads {
		if s := byID[r.msg]; s != nil && !picked[r.msg] && len(sample) < maxReceipts/2 {
			picked[r.msg] = true
			sample = append(sample, s)
		}
	}
	for i, s := range w.h.sends {
		if byID[s.msgID] == s && !picked[s.msgID] && i%5 == 0 && len(sample) < maxReceipts {
			picked[s.msgID] = true
			sample = append(sample, s)
		}
	}
	w.h.mu.Unlock()
	for _, s := range sample {
		c := w.devices[s.from].c
		var rc wire.Receipts
		err := retryCall(ctx, func(ctx context.Context) error {
			var err error
			rc, err = c.Receipts(ctx, s.msgID)
			return err
		})
		if err != nil && !retryableErr(err) {
			f.receiptErrs[s.msgID] = err
			continue
		}
		if err != nil {
			return fmt.Errorf("receipts of %s: %w", s.cmid, err)
		}
		if rc.Readers == nil { // a read-fanout message: its readers a page at a time
			rc.Readers = []string{}
			for after := ""; ; {
				var page wire.Receipts
				err := retryCall(ctx, func(ctx context.Context) error {
					var err error
					page, err = c.ReaderPage(ctx, s.msgID, after, 100)
					return err
				})
				if err != nil {
					return fmt.Errorf("readers of %s: %w", s.cmid, err)
				}
				rc.Readers = append(rc.Readers, page.Readers...)
				if after = page.NextAfter; after == "" {
					break
				}
			}
		}
		f.receipts[s.msgID] = rc
	}
	return nil
}

// allStored reports whether every acknowledged message is in some user's sync.
func (w *workload) allStored(syncs map[string][]wire.Entry) bool {
	in := map[wire.ID]bool{}
	for _, es := range syncs {
		for _, e := range es {
			in[e.MsgID] = true
		}
	}
	w.h.mu.Lock()
	defer w.h.mu.Unlock()
	for _, s := range w.h.sends {
		if s.acked() && !in[s.msgID] {
			return false
		}
	}
	return true
}
