package gateway

import (
	"context"
	"encoding/json"
	"io"
	"sync"
	"time"

	"github.com/fanline/fanline/internal/wire"
	"github.com/gorilla/websocket"
)

// Close codes the server uses.
const (
	closeNormal    = websocket.CloseNormalClosure
	closeGoingAway = websocket.CloseGoingAway     // server shutting down
	closeSlow      = websocket.CloseTryAgainLater // send queue overflowed: reconnect and sync
	closeIdle      = 4000                         // no frame within the heartbeat timeout
)

// conn is one WebSocket connection. The read loop runs in the HTTP handler's goroutine
// and handles frames one at a time, so a device's sends are acknowledged in order; the
// write loop is owned by the handler, which waits for it.
type conn struct {
	g    *Gateway
	ws   *websocket.Conn
	who  wire.Principal // the token's
	user string         // who.Inbox(): the timeline pushed here
	shop string         // the shop of an agent or admin ("" for buyers): live stats go there

	// refused counts the frames refused as over the rate budget since refusedFrom;
	// only the read loop touches them.
	refused     int
	refusedFrom time.Time
	// typingConv and typingAt are the last typing frame passed on (typedRecently);
	// only the read loop touches them.
	typingConv uint64
	typingAt   time.Time

	out  chan outFrame // frames to write; bounded
	done chan struct{} // closed by close
	once sync.Once
	code int // close code, set once under once
	// closeSent: the write loop sent the close frame (read by finish, after it).
	closeSent bool
}

// outFrame is a frame to write: its bytes, or the same frame prepared once for every
// connection it goes to (a large group's push).
type outFrame struct {
	data     []byte
	prepared *websocket.PreparedMessage
}

// offer queues a frame without blocking; false means the queue is full.
func (c *conn) offer(b outFrame) bool {
	select {
	case <-c.done:
		return true
	default:
	}
	select {
	case c.out <- b:
		return true
	default:
		return false
	}
}

// reply queues an answer to the client's own frame, waiting for room: the read loop
// handles one frame at a time, so replies are bounded.
func (c *conn) reply(f wire.ServerFrame) {
	b, err := json.Marshal(f)
	if err != nil {
		b, _ = json.Marshal(wire.ServerFrame{Type: wire.FrameError, ID: f.ID, Code: wire.CodeInternal, Message: "internal error"})
	}
	select {
	case c.out <- outFrame{data: b}:
	case <-c.done:
	}
}

// close ends the connection with code: the write loop sends the close frame, and the
// read loop's pending read returns at once (net.Conn deadlines may be set from any
// goroutine).
func (c *conn) close(code int) {
	c.once.Do(func() {
		c.code = code
		close(c.done)
		c.ws.UnderlyingConn().SetReadDeadline(time.Now())
	})
}

// writeLoop writes queued frames until the connection closes, then the close
// frame. The socket itself is closed by finish, once both loops are done.
func (c *conn) writeLoop() {
	for {
		// A closed connection writes nothing more than its close frame.
		select {
		case <-c.done:
			c.writeClose()
			return
		default:
		}
		select {
		case f := <-c.out:
			// gorilla keeps the deadline and applies it to the socket on every write.
			c.ws.SetWriteDeadline(time.Now().Add(c.g.cfg.WriteTimeout))
			var err error
			if f.prepared != nil {
				err = c.ws.WritePreparedMessage(f.prepared)
			} else {
				err = c.ws.WriteMessage(websocket.TextMessage, f.data)
			}
			if err != nil {
				c.close(closeNormal)
				return
			}
		case <-c.done:
			c.writeClose()
			return
		}
	}
}

// writeClose sends the close frame, if the socket takes it within a second: a
// connection closed for being slow may be too stuck to, and is then just dropped.
func (c *conn) writeClose() {
	msg := websocket.FormatCloseMessage(c.code, closeReason(c.code))
	c.closeSent = c.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second)) == nil
}

// finish closes the socket once both loops have returned. After a close frame it
// first ends the sending side (FIN) and reads and discards what the client still
// sends, until it closes too or closeLinger passes: closing at once with frames of
// the client's unread would answer with a reset, and the client could lose the
// close frame that says why it was closed (4029: a flooder that does not stop
// sending is exactly that case).
func (c *conn) finish() {
	defer c.ws.Close()
	if !c.closeSent {
		return
	}
	nc := c.ws.UnderlyingConn()
	if hc, ok := nc.(interface{ CloseWrite() error }); ok && hc.CloseWrite() == nil {
		nc.SetReadDeadline(time.Now().Add(closeLinger))
		io.Copy(io.Discard, nc)
	}
}

// closeLinger bounds how long a closed connection's remaining input is drained.
const closeLinger = time.Second

func closeReason(code int) string {
	switch code {
	case closeGoingAway:
		return "server shutting down"
	case closeSlow:
		return "send queue full; reconnect and sync"
	case closeIdle:
		return "heartbeat timeout"
	}
	return ""
}

func (c *conn) readLoop(ctx context.Context) {
	for {
		select {
		case <-c.done:
			return
		default:
		}
		c.ws.SetReadDeadline(time.Now().Add(c.g.cfg.HeartbeatTimeout))
		select {
		case <-c.done:
			// close ran between the check and the new deadline, which undid its own.
			return
		default:
		}
		_, data, err := c.ws.ReadMessage()
		if err != nil {
			if ne, ok := err.(interface{ Timeout() bool }); ok && ne.Timeout() {
				c.close(closeIdle)
			} else {
				c.close(closeNormal)
			}
			return
		}
		c.handle(ctx, data)
	}
}

// maxRefusedFrames refused within refusedWindow close a connection that keeps
// sending past its rate budget (code 4029) instead of answering each frame with an
// error. A client that waits the Retry-After it is told (a second at least) never
// gets there.
const (
	maxRefusedFrames = 256
	refusedWindow    = time.Second
)

// overLimit counts one more refused frame and reports whether the connection has had
// maxRefusedFrames of them within refusedWindow.
func (c *conn) overLimit(now time.Time) bool {
	if now.Sub(c.refusedFrom) > refusedWindow {
		c.refused, c.refusedFrom = 0, now
	}
	c.refused++
	return c.refused >= maxRefusedFrames
}

// typingEvery is how often a connection's typing frames for one conversation are
// passed on; those in between are acknowledged and dropped (the indicator a
// client shows lasts longer than that).
const typingEvery = 2 * time.Second

// typedRecently reports whether the connection's last typing frame passed on was
// for conv less than typingEvery before now, and if not, records this one.
func (c *conn) typedRecently(conv uint64, now time.Time) bool {
	if conv == c.typingConv && now.Sub(c.typingAt) < typingEvery {
		return true
	}
	c.typingConv, c.typingAt = conv, now
	return false
}

// frameCosts are what each client frame costs from the user's rate budget.
var frameCosts = map[string]int{wire.FrameSend: costSend, wire.FrameSync: costRead, wire.FrameRead: costMarkRead,
	wire.FramePing: costPing, wire.FrameAuth: costPing, wire.FrameTyping: costPing}

func (c *conn) handle(ctx context.Context, data []byte) {
	f, from, e := wire.DecodeFrame(data)
	if e == nil {
		if e = c.g.spend(c.user, frameCosts[f.Type]); e != nil && c.overLimit(time.Now()) {
			c.close(closeLimited) // a client that does not wait is let go
			return
		}
	}
	if e != nil {
		c.reply(wire.ServerFrame{Type: wire.FrameError, ID: f.ID, Code: e.Code, Message: e.Message, RetryAfter: e.RetryAfter})
		return
	}
	var result any
	var err error
	switch f.Type {
	case wire.FramePing:
		c.reply(wire.ServerFrame{Type: wire.FramePong, ID: f.ID})
		return
	case wire.FrameAuth:
		err = wire.Errorf(wire.CodeInvalidField, "this connection is authenticated already")
	case wire.FrameSend:
		start := time.Now()
		result, err = c.g.svc.Send(ctx, c.who, from, *f.Send)
		c.g.m.SendLatency.Observe(time.Since(start).Seconds())
	case wire.FrameSync:
		result, err = c.g.svc.Sync(ctx, c.who, *f.Sync)
	case wire.FrameTyping:
		if c.typedRecently(uint64(f.Typing), time.Now()) {
			result = struct{}{}
		} else if err = c.g.svc.Typing(ctx, c.who, uint64(f.Typing)); err == nil {
			result = struct{}{}
		}
	case wire.FrameRead:
		if f.Read.ConversationID == 0 || f.Read.MsgID == 0 {
			err = wire.Errorf(wire.CodeMissingField, "conversation_id and msg_id are required")
		} else {
			var receipts int
			receipts, err = c.g.svc.MarkRead(ctx, c.who, uint64(f.Read.ConversationID), uint64(f.Read.MsgID))
			c.g.limits.owe(c.user, receipts/receiptsPerUnit)
			result = struct{}{}
		}
	}
	if err != nil {
		we := c.g.clientError(err)
		c.reply(wire.ServerFrame{Type: wire.FrameError, ID: f.ID, Code: we.Code, Message: we.Message, RetryAfter: we.RetryAfter, Cursor: we.Cursor})
		return
	}
	c.reply(wire.ServerFrame{Type: wire.FrameAck, ID: f.ID, Result: result})
}
