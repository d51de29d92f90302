package client

import (
	"errors"
	"slices"
	"time"

	"github.com/fanline/fanline/internal/wire"
)

// KindResync is the kind of an entry the SDK itself puts on Entries when the server
// no longer keeps the user's timeline from the client's cursor (cursor_expired: the
// device was away longer than the server's coldstore.timeline_keep). The entries
// after it rebuild the app's view: each conversation's newest history page, oldest
// first within a conversation (older pages come from History): messages the app had
// before come again, so merge them by msg_id. Delivery then goes on from where the
// server's timeline starts, without the messages the rebuild brought. The entry
// carries only its kind and the time of the resync.
const KindResync = "resync"

// resync rebuilds the app's view after cursor_expired: the conversation list and the
// newest history page of each conversation, on Entries after a KindResync entry. It
// retries failures until it succeeds and returns the msg_ids of the messages it
// delivered; ok is false when the client closed.
func (c *Client) resync() (seen map[wire.ID]bool, ok bool) {
	c.log.Warn("client: the server no longer keeps the timeline from this cursor; rebuilding from the conversation list and history")
	backoff := 100 * time.Millisecond
	var pages [][]wire.Entry
	for {
		var err error
		if pages, err = c.newestPages(); err == nil {
			break
		}
		c.log.Debug("client: resync failed", "err", err)
		if !sleep(c.ctx, jitter(backoff)) {
			return nil, false
		}
		backoff = min(2*backoff, c.cfg.MaxBackoff)
	}
	seen = map[wire.ID]bool{}
	if !c.put(wire.Entry{Kind: KindResync, CreatedAt: time.Now().UTC()}) {
		return nil, false
	}
	for _, page := range pages {
		for _, e := range page {
			if e.Kind == wire.KindMessage {
				seen[e.MsgID] = true
			}
			if !c.put(e) {
				return nil, false
			}
		}
	}
	return seen, true
}

// newestPages returns the newest history page of each of the user's conversations,
// each oldest first. A conversation the user may no longer read is left out.
func (c *Client) newestPages() ([][]wire.Entry, error) {
	list, err := c.Conversations(c.ctx)
	if err != nil {
		return nil, err
	}
	var pages [][]wire.Entry
	for _, conv := range list.Conversations {
		h, err := c.History(c.ctx, conv.ConversationID, 0, 0)
		var we *wire.Error
		if errors.As(err, &we) && !retryable(we.Code) {
			continue // left or removed since the list was made
		}
		if err != nil {
			return nil, err
		}
		page := slices.Clone(h.Messages)
		slices.Reverse(page)
		pages = append(pages, page)
	}
	return pages, nil
}

// put puts e on Entries; false when the client closed first.
func (c *Client) put(e wire.Entry) bool {
	select {
	case c.entries <- e:
		return true
	case <-c.ctx.Done():
		return false
	}
}
