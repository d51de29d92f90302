// Package client is fanline's Go SDK: what apps, the CLI, the tests and the benchmark
// use to talk to a server.
//
// A Client keeps one WebSocket open, reconnecting with backoff. Send retries with the
// same client_msg_id until the server acknowledges, so a message is stored once however
// often it is retried. Entries delivers the user's timeline in seq order, merged with
// the streams of the user's large groups in group_seq order, each entry once: pushes
// are applied when they continue their sequence; a gap, a reconnect or the periodic
// backstop pulls from the cursor with sync. When the server no longer keeps the
// timeline from the cursor (cursor_expired), Entries gets a KindResync entry and the
// view rebuilt from history, and delivery goes on from where the server's timeline
// starts.
//
// Every goroutine a Client starts is stopped and waited for by Close.
package client

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fanline/fanline/internal/wire"
	"github.com/gorilla/websocket"
)

// Config configures a Client.
type Config struct {
	// URL is the server's base URL, e.g. http://127.0.0.1:8080. Required.
	URL string
	// Token is the user's JWT. Required.
	Token string
	// Cursor resumes delivery after a cursor the app kept. Empty: from the beginning.
	Cursor string
	// LastSeq is the seq of the last entry the app already has: entries at or below it
	// are not delivered again (a saved cursor may be a little behind).
	LastSeq uint64
	// GroupSeqs is, per large (read-fanout) group, the group_seq of the last stream
	// entry the app already has (Client.GroupSeqs when it stopped); like LastSeq.
	GroupSeqs map[uint64]uint64
	// Heartbeat is the ping interval. Zero means 20 s (the server's timeout is 60 s).
	Heartbeat time.Duration
	// AttemptTimeout bounds one send attempt before it is retried. Zero means 10 s.
	AttemptTimeout time.Duration
	// MaxBackoff caps reconnect and retry delays. Zero means 5 s.
	MaxBackoff time.Duration
	// BackstopSync is how often to sync even without a gap. Zero means 30 s.
	BackstopSync time.Duration
	// EntryBuffer is the capacity of the Entries channel, and of the queue of pushes
	// read ahead of it. Zero means 8192.
	EntryBuffer int
	// LocalAddr, when set, is the source IP of connections (spread load over 127.0.0.x).
	LocalAddr string
	// Logger receives connection events. Nil discards them.
	Logger *slog.Logger
}

// Client is one device of one user.
type Client struct {
	cfg      Config
	base     string
	wsURL    string
	wsHeader http.Header
	http     *http.Client
	dialer   *websocket.Dialer
	log      *slog.Logger

	entries chan wire.Entry
	cs      chan CSEvent    // customer-service events, dropped when full
	typing  chan Typing     // typing frames, dropped when full
	inbox   chan pushed     // pushes from the read loop to the deliverer
	kick    chan struct{}   // asks the deliverer to sync; capacity 1
	ctx     context.Context // ends at Close
	cancel  context.CancelFunc
	wg      sync.WaitGroup // every goroutine of the client

	mu      sync.Mutex    // guards cur, changed, frameID, cursor, groups
	cur     *conn         // the live connection, or nil
	changed chan struct{} // closed when cur changes
	frameID uint64
	cursor  string            // last delivered position
	groups  map[uint64]uint64 // large group -> group_seq delivered up to; written by deliver
}

type pushed struct {
	entry  wire.Entry
	cursor string
}

// frame is a server frame as the client decodes it.
type frame struct {
	Type    string          `json:"type"`
	ID      string          `json:"id"`
	Result  json.RawMessage `json:"result"`
	Code    wire.Code       `json:"code"`
	Message string          `json:"message"`
	// RetryAfter is a refusal's wait in seconds (rate_limited, overloaded).
	RetryAfter int             `json:"retry_after"`
	Entry      *wire.Entry     `json:"entry"`
	Cursor     string          `json:"cursor"`
	Event      string          `json:"event"`
	Chat       *wire.ChatState `json:"chat"`
	Live       json.RawMessage `json:"live"`
	// ConversationID and From are a typing frame's.
	ConversationID wire.ID `json:"conversation_id"`
	From           string  `json:"from"`
}

// conn is one WebSocket connection.
type conn struct {
	ws      *websocket.Conn
	wmu     sync.Mutex // serialises writes
	mu      sync.Mutex // guards pending
	pending map[string]chan frame
	dead    chan struct{} // closed when the connection is gone
}

// ErrClosed is returned by calls on a closed Client.
var ErrClosed = errors.New("client: closed")

// Connect opens a Client and its first connection; it fails if that first connection
// is refused (for example, a bad token). Later disconnects are retried forever.
func Connect(ctx context.Context, cfg Config) (*Client, error) {
	c, err := newClient(cfg)
	if err != nil {
		return nil, err
	}
	cn, err := c.dial(ctx)
	if err != nil {
		c.cancel()
		return nil, err
	}
	c.wg.Add(2)
	go c.run(cn)
	go c.deliver()
	return c, nil
}

func newClient(cfg Config) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(cfg.URL, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || cfg.Token == "" {
		return nil, fmt.Errorf("client: need an http(s) URL and a token")
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = 20 * time.Second
	}
	if cfg.AttemptTimeout <= 0 {
		cfg.AttemptTimeout = 10 * time.Second
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 5 * time.Second
	}
	if cfg.BackstopSync <= 0 {
		cfg.BackstopSync = 30 * time.Second
	}
	if cfg.EntryBuffer <= 0 {
		cfg.EntryBuffer = 8192
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	netDialer := &net.Dialer{Timeout: 10 * time.Second}
	if cfg.LocalAddr != "" {
		netDialer.LocalAddr = &net.TCPAddr{IP: net.ParseIP(cfg.LocalAddr)}
	}
	transport := &http.Transport{DialContext: netDialer.DialContext, MaxIdleConnsPerHost: 4, IdleConnTimeout: 30 * time.Second}
	ws := *u
	ws.Scheme = map[string]string{"http": "ws", "https": "wss"}[u.Scheme]
	ws.Path += "/v1/ws"
	c := &Client{
		cfg: cfg, base: u.String(), wsURL: ws.String(), log: cfg.Logger,
		// The token travels in the handshake's Authorization header, never in
		// the URL, where proxies log it.
		wsHeader: http.Header{"Authorization": {"Bearer " + cfg.Token}},
		http:     &http.Client{Transport: transport, Timeout: 30 * time.Second},
		dialer:   &websocket.Dialer{NetDialContext: netDialer.DialContext, HandshakeTimeout: 10 * time.Second},
		entries:  make(chan wire.Entry, cfg.EntryBuffer),
		cs:       make(chan CSEvent, 256),
		typing:   make(chan Typing, 64),
		inbox:    make(chan pushed, cfg.EntryBuffer),
		kick:     make(chan struct{}, 1),
		changed:  make(chan struct{}),
		cursor:   cfg.Cursor,
		groups:   map[uint64]uint64{},
	}
	for g, seq := range cfg.GroupSeqs {
		c.groups[g] = seq
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	return c, nil
}

// Entries delivers the user's timeline in seq order, each entry once. An app that
// reads slowly loses nothing: pushes that do not fit are dropped and the entries are
// fetched by sync once it reads again; acks are never held up behind them.
func (c *Client) Entries() <-chan wire.Entry { return c.entries }

// Cursor is a position to resume from later (Config.Cursor). It never passes an entry
// the SDK has not yet put on the Entries channel, but may lag behind the last few, so
// keep the seq of the last entry you processed too and pass it as Config.LastSeq.
// Entries still in the channel are covered by the cursor: save it when you have
// processed what you read.
func (c *Client) Cursor() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cursor
}

// GroupSeqs returns, per large (read-fanout) group, the group_seq up to which entries
// are on the Entries channel: save it with the cursor and pass it as
// Config.GroupSeqs.
func (c *Client) GroupSeqs() map[uint64]uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.groups)
}

// Close disconnects and stops every goroutine of the client.
func (c *Client) Close() error {
	c.cancel()
	c.mu.Lock()
	if c.cur != nil {
		c.cur.ws.Close()
	}
	c.mu.Unlock()
	c.wg.Wait()
	return nil
}

func (c *Client) dial(ctx context.Context) (*conn, error) {
	ws, resp, err := c.dialer.DialContext(ctx, c.wsURL, c.wsHeader)
	if err != nil {
		if resp != nil && resp.StatusCode == http.StatusUnauthorized {
			return nil, &wire.Error{Code: wire.CodeInvalidToken, Message: "the server refused the token"}
		}
		return nil, fmt.Errorf("client: connect: %w", err)
	}
	return &conn{ws: ws, pending: map[string]chan frame{}, dead: make(chan struct{})}, nil
}

func (c *Client) setConn(cn *conn) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cur = cn
	close(c.changed)
	c.changed = make(chan struct{})
}

// run owns the connection: it serves one until it drops, then redials with backoff.
func (c *Client) run(cn *conn) {
	defer c.wg.Done()
	backoff := 100 * time.Millisecond
	for {
		c.setConn(cn)
		c.requestSync()
		started := time.Now()
		c.serve(cn)
		c.setConn(nil)
		if c.ctx.Err() != nil {
			return
		}
		if time.Since(started) > 10*time.Second {
			backoff = 100 * time.Millisecond
		}
		for {
			if !sleep(c.ctx, jitter(backoff)) {
				return
			}
			backoff = min(2*backoff, c.cfg.MaxBackoff)
			var err error
			if cn, err = c.dial(c.ctx); err == nil {
				break
			}
			c.log.Debug("client: reconnect failed", "err", err)
		}
	}
}

// serve reads frames until the connection drops, pinging meanwhile.
func (c *Client) serve(cn *conn) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(c.cfg.Heartbeat)
		defer t.Stop()
		for {
			select {
			case <-cn.dead:
				return
			case <-c.ctx.Done():
				cn.ws.Close()
				return
			case <-t.C:
				if c.write(cn, map[string]string{"type": wire.FramePing}) != nil {
					cn.ws.Close()
				}
			}
		}
	}()
	defer wg.Wait()
	defer func() {
		cn.ws.Close()
		cn.mu.Lock()
		close(cn.dead)
		cn.mu.Unlock()
	}()
	for {
		_, data, err := cn.ws.ReadMessage()
		if err != nil {
			c.log.Debug("client: disconnected", "err", err)
			return
		}
		var f frame
		if json.Unmarshal(data, &f) != nil {
			continue
		}
		switch {
		case f.Type == wire.FrameMessage && f.Entry != nil:
			// Never block here: acks arrive on this loop too. When the app is behind,
			// the push is dropped (pushes are hints) and the deliverer syncs instead.
			select {
			case c.inbox <- pushed{*f.Entry, f.Cursor}:
			default:
				c.requestSync()
			}
		case f.Type == wire.FrameCS:
			select {
			case c.cs <- CSEvent{Event: f.Event, Chat: f.Chat, Live: f.Live}:
			default:
			}
		case f.Type == wire.FrameTyping && f.ID == "":
			select {
			case c.typing <- Typing{ConversationID: f.ConversationID, From: f.From}:
			default:
			}
		case f.ID != "":
			cn.mu.Lock()
			ch := cn.pending[f.ID]
			delete(cn.pending, f.ID)
			cn.mu.Unlock()
			if ch != nil {
				ch <- f
			}
		}
	}
}

func (c *Client) write(cn *conn, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	cn.wmu.Lock()
	defer cn.wmu.Unlock()
	cn.ws.SetWriteDeadline(time.Now().Add(c.cfg.AttemptTimeout))
	return cn.ws.WriteMessage(websocket.TextMessage, b)
}

// waitConn returns the live connection, waiting for a reconnect if there is none.
func (c *Client) waitConn(ctx context.Context) (*conn, error) {
	for {
		c.mu.Lock()
		cn, changed := c.cur, c.changed
		c.mu.Unlock()
		if cn != nil {
			return cn, nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-c.ctx.Done():
			return nil, ErrClosed
		}
	}
}

var errLost = errors.New("client: connection lost")

// request writes a frame with a fresh id and waits for its answer on cn.
func (c *Client) request(ctx context.Context, cn *conn, typ string, payload any) (frame, error) {
	c.mu.Lock()
	c.frameID++
	id := strconv.FormatUint(c.frameID, 36)
	c.mu.Unlock()
	ch := make(chan frame, 1)
	cn.mu.Lock()
	select {
	case <-cn.dead:
		cn.mu.Unlock()
		return frame{}, errLost
	default:
	}
	cn.pending[id] = ch
	cn.mu.Unlock()
	defer func() {
		cn.mu.Lock()
		delete(cn.pending, id)
		cn.mu.Unlock()
	}()
	b, err := json.Marshal(payload)
	if err != nil {
		return frame{}, err
	}
	var f map[string]any
	if err := json.Unmarshal(b, &f); err != nil {
		return frame{}, err
	}
	f["type"], f["id"] = typ, id
	if err := c.write(cn, f); err != nil {
		cn.ws.Close()
		return frame{}, errLost
	}
	t := time.NewTimer(c.cfg.AttemptTimeout)
	defer t.Stop()
	select {
	case r := <-ch:
		return r, nil
	case <-cn.dead:
		return frame{}, errLost
	case <-t.C:
		return frame{}, errLost
	case <-ctx.Done():
		return frame{}, ctx.Err()
	case <-c.ctx.Done():
		return frame{}, ErrClosed
	}
}

// retryable codes are answered again after a pause with the same request.
func retryable(code wire.Code) bool {
	switch code {
	case wire.CodeRateLimited, wire.CodeOverloaded, wire.CodeUnavailable, wire.CodeInternal:
		return true
	}
	return false
}

// NewClientMsgID returns a random client_msg_id.
func NewClientMsgID() string {
	b := make([]byte, 12)
	crand.Read(b)
	return hex.EncodeToString(b)
}

// Send sends a message over the WebSocket, retrying with the same client_msg_id (one
// is generated when empty) across timeouts, reconnects and retryable errors until the
// server acknowledges or ctx ends. A refusal (bad input, not allowed) is returned as
// *Error at once.
func (c *Client) Send(ctx context.Context, req wire.SendRequest) (wire.SendResult, error) {
	if req.ClientMsgID == "" {
		req.ClientMsgID = NewClientMsgID()
	}
	backoff := 50 * time.Millisecond
	for {
		cn, err := c.waitConn(ctx)
		if err != nil {
			return wire.SendResult{}, err
		}
		f, err := c.request(ctx, cn, wire.FrameSend, map[string]any{"message": req})
		switch {
		case err == nil && f.Type == wire.FrameAck:
			var res wire.SendResult
			err := json.Unmarshal(f.Result, &res)
			return res, err
		case err == nil && !retryable(f.Code):
			return wire.SendResult{}, &wire.Error{Code: f.Code, Message: f.Message}
		case err != nil && !errors.Is(err, errLost):
			return wire.SendResult{}, err
		}
		// A refusal that says how long to wait is waited out.
		if wait := time.Duration(f.RetryAfter) * time.Second; wait > backoff {
			backoff = min(wait, c.cfg.MaxBackoff)
		}
		if !sleep(ctx, jitter(backoff)) {
			return wire.SendResult{}, ctx.Err()
		}
		backoff = min(2*backoff, c.cfg.MaxBackoff)
	}
}

// Typing is someone typing in one of the user's conversations: From is a user id,
// or the shop's id when one of its agents types in a buyer's chat with it.
type Typing struct {
	ConversationID wire.ID
	From           string
}

// TypingEvents delivers typing frames as they arrive; when the app does not keep
// up, they are dropped. A client shows "typing" for a few seconds after each.
func (c *Client) TypingEvents() <-chan Typing { return c.typing }

// Typing tells conv's other participants that the user is typing in it. Call it
// again every few seconds while the user types (the server passes on one every 2 s
// per connection and conversation). It is not retried: a lost one costs nothing.
func (c *Client) Typing(ctx context.Context, conv wire.ID) error {
	cn, err := c.waitConn(ctx)
	if err != nil {
		return err
	}
	f, err := c.request(ctx, cn, wire.FrameTyping, map[string]wire.ID{"conversation_id": conv})
	if err != nil {
		return err
	}
	if f.Type == wire.FrameError {
		return &wire.Error{Code: f.Code, Message: f.Message}
	}
	return nil
}

// requestSync asks the deliverer to pull from the cursor.
func (c *Client) requestSync() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// deliver owns the delivery position: it applies pushes that continue the sequence and
// syncs on gaps, reconnects and the backstop timer.
//
// The position is the last timeline seq and, per large group, the last group_seq. A
// timeline entry applies when it is the next seq (and, for a tracked large group, no
// entry of the group is missing before it); a large group's stream entry applies
// when it is the group's next group_seq. The server's sync pages come in the right
// order and only skip what was delivered.
func (c *Client) deliver() {
	defer c.wg.Done()
	last := c.cfg.LastSeq
	t := time.NewTicker(c.cfg.BackstopSync)
	defer t.Stop()
	emit := func(e wire.Entry, cursor string) bool {
		select {
		case c.entries <- e:
		case <-c.ctx.Done():
			return false
		}
		if e.Seq > 0 {
			last = e.Seq
		}
		c.mu.Lock()
		// A pushed cursor has no large-group positions: syncs send them.
		if cursor != "" {
			c.cursor = cursor
		}
		if g := uint64(e.ConversationID); e.GroupSeq > 0 {
			// A position is known from a sync's group_seqs or a stream entry, and
			// then moved by every entry of the group.
			if pos, ok := c.groups[g]; ok || e.Seq == 0 {
				c.groups[g] = max(pos, e.GroupSeq)
			}
		}
		c.mu.Unlock()
		return true
	}
	for {
		gap := false
		select {
		case <-c.ctx.Done():
			return
		case p := <-c.inbox:
			switch c.classify(p.entry, last) {
			case apply:
				if !emit(p.entry, p.cursor) {
					return
				}
			case missing:
				gap = true
			}
		case <-c.kick:
			gap = true
		case <-t.C:
			gap = true
		}
		if gap && !c.catchUp(&last, emit) {
			return
		}
	}
}

// What to do with a pushed entry.
const (
	skip    = iota // already delivered
	apply          // the next one: deliver it
	missing        // something before it is missing: sync
)

func (c *Client) classify(e wire.Entry, last uint64) int {
	c.mu.Lock()
	pos, tracked := c.groups[uint64(e.ConversationID)]
	c.mu.Unlock()
	switch {
	case e.Seq > 0 && e.Seq <= last:
		return skip
	case e.Seq > 0 && e.Seq != last+1:
		return missing
	case e.Seq > 0 && tracked && e.GroupSeq > pos+1:
		return missing // the group's entries before it come first
	case e.Seq > 0:
		return apply
	case e.GroupSeq == 0:
		return apply // a hint outside any sequence (a large group's membership change)
	case !tracked:
		return missing
	case e.GroupSeq <= pos:
		return skip
	case e.GroupSeq == pos+1:
		return apply
	}
	return missing
}

// syncFrame fetches one page after cursor over the WebSocket (a sync frame), waiting
// for a connection if there is none.
func (c *Client) syncFrame(ctx context.Context, cursor string) (wire.SyncResult, error) {
	cn, err := c.waitConn(ctx)
	if err != nil {
		return wire.SyncResult{}, err
	}
	req := wire.SyncRequest{Cursor: cursor, Limit: 500}
	c.mu.Lock()
	if len(c.groups) > 0 {
		req.GroupSeqs = make(map[string]uint64, len(c.groups))
		for g, seq := range c.groups {
			req.GroupSeqs[strconv.FormatUint(g, 10)] = seq
		}
	}
	c.mu.Unlock()
	f, err := c.request(ctx, cn, wire.FrameSync, req)
	if err != nil {
		return wire.SyncResult{}, err
	}
	if f.Type != wire.FrameAck {
		return wire.SyncResult{}, &wire.Error{Code: f.Code, Message: f.Message, Cursor: f.Cursor}
	}
	var res wire.SyncResult
	err = json.Unmarshal(f.Result, &res)
	return res, err
}

// catchUp syncs from the cursor until nothing is left, retrying failures. A cursor
// the server no longer keeps the timeline from is recovered from by a resync.
func (c *Client) catchUp(last *uint64, emit func(wire.Entry, string) bool) bool {
	backoff := 100 * time.Millisecond
	var resynced map[wire.ID]bool // the messages a resync of this catch-up delivered
	for {
		res, err := c.syncFrame(c.ctx, c.Cursor())
		var we *wire.Error
		if errors.As(err, &we) && we.Code == wire.CodeCursorExpired && we.Cursor != "" {
			var ok bool
			if resynced, ok = c.resync(); !ok {
				return false
			}
			c.mu.Lock()
			c.cursor = we.Cursor
			c.mu.Unlock()
			continue
		}
		if errors.As(err, &we) && we.Code == wire.CodeInvalidCursor {
			// A cursor from another server or a corrupted store: start over; entries
			// already delivered are skipped by seq.
			c.log.Warn("client: server refused the cursor; syncing from the beginning")
			c.mu.Lock()
			c.cursor = ""
			c.mu.Unlock()
			continue
		}
		if err != nil {
			if !sleep(c.ctx, jitter(backoff)) {
				return false
			}
			backoff = min(2*backoff, c.cfg.MaxBackoff)
			continue
		}
		for _, e := range res.Entries {
			if e.Kind == wire.KindMessage && resynced[e.MsgID] {
				*last = max(*last, e.Seq) // delivered by the resync
				continue
			}
			if c.fresh(e, *last) && !emit(e, "") {
				return false
			}
		}
		c.mu.Lock()
		c.cursor = res.Cursor
		for id, seq := range res.GroupSeqs {
			if g, err := strconv.ParseUint(id, 10, 64); err == nil {
				c.groups[g] = max(c.groups[g], seq)
			}
		}
		c.mu.Unlock()
		if !res.HasMore {
			return true
		}
	}
}

// fresh reports whether an entry of a sync page has not been delivered yet.
func (c *Client) fresh(e wire.Entry, last uint64) bool {
	if e.Seq > 0 || e.GroupSeq == 0 {
		return e.Seq > last
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return e.GroupSeq > c.groups[uint64(e.ConversationID)]
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func jitter(d time.Duration) time.Duration {
	return d/2 + time.Duration(rand.Int64N(int64(d)/2+1))
}
