package gateway

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/fanline/fanline/internal/auth"
	"github.com/fanline/fanline/internal/wire"
	"github.com/gin-gonic/gin"
	"github.com/gorilla/websocket"
)

const (
	wsPath = "/v1/ws"
	// wsProtocol is the subprotocol the server selects; a browser that passes its
	// token as the subprotocol bearer.<token> offers it too.
	wsProtocol     = "fanline"
	bearerProtocol = "bearer."
	// authFrameTimeout is how long a WebSocket without a token in its request has
	// to send its auth frame.
	authFrameTimeout = 10 * time.Second
	// Close codes of a connection refused at its auth frame.
	closeUnauthorized = 4001
	closeForbidden    = 4003
	closeLimited      = 4029
)

// wsToken finds the WebSocket's token outside the Authorization header: the
// subprotocol bearer.<token> (Sec-WebSocket-Protocol, which proxies do not log), or
// the ?token= query parameter.
func wsToken(r *http.Request) string {
	for _, p := range websocket.Subprotocols(r) {
		if t, ok := strings.CutPrefix(p, bearerProtocol); ok {
			return t
		}
	}
	return r.URL.Query().Get("token")
}

// originChecker lets a browser open a WebSocket from an allowed origin: the page's own
// (the console), one listed, or any with "*". A request without an Origin header is
// not from a browser (and carries its token explicitly), so it passes.
func originChecker(allowed []string) func(*http.Request) bool {
	any := slices.Contains(allowed, "*")
	return func(r *http.Request) bool {
		origin := r.Header.Get("Origin")
		if origin == "" || any {
			return true
		}
		u, err := url.Parse(origin)
		if err != nil {
			return false
		}
		if strings.EqualFold(u.Host, r.Host) {
			return true
		}
		return slices.ContainsFunc(allowed, func(o string) bool { return strings.EqualFold(o, origin) })
	}
}

// admit lets u open one more connection from ip: the role may connect, the rate
// budget pays for it, and the user and address are under their caps. On success
// the caller releases the connection's place when it ends.
func (g *Gateway) admit(u auth.User, ip string) *wire.Error {
	if e := permit(Members, u); e != nil {
		return e
	}
	if e := g.spend(u.Inbox(), costConnect); e != nil {
		return e
	}
	if e := g.conns.acquire(u.Inbox(), ip); e != nil {
		g.m.RateLimited.Inc()
		return e
	}
	return nil
}

// websocket upgrades GET /v1/ws. A token in the request is checked before the
// upgrade (and refused with an HTTP error); without one, the first frame must be
// {"type": "auth", "token"}.
func (g *Gateway) websocket(c *gin.Context) {
	if g.closing.Load() {
		g.fail(c, wire.Errorf(wire.CodeUnavailable, "the server is shutting down; retry"))
		return
	}
	// Counted before the upgrade: http.Server.Shutdown waits for handlers until they
	// hijack, so after Shutdown every WebSocket handler is counted before Close waits.
	g.wg.Add(1)
	defer g.wg.Done()
	ip := remoteIP(c.Request)
	v, ok := c.Get(userKey)
	if !ok {
		g.websocketAuthFrame(c, ip)
		return
	}
	u := v.(auth.User)
	if e := g.admit(u, ip); e != nil {
		g.fail(c, e)
		return
	}
	defer g.conns.release(u.Inbox(), ip)
	// Online before the upgrade answers, so a device that sees its connection open is
	// already visible.
	groups, leave, err := g.online(c.Request.Context(), u)
	defer leave()
	if err != nil {
		g.fail(c, err)
		return
	}
	ws, err := g.upgrader.Upgrade(c.Writer, c.Request, nil)
	if err != nil {
		return // the upgrader already answered
	}
	g.serveConn(ws, u, groups, nil)
}

// websocketAuthFrame upgrades first and authenticates by the connection's first frame.
func (g *Gateway) websocketAuthFrame(c *gin.Context, ip string) {
	ws, err := g.upgrader.Upgrade(c.Writer, c.Request, nil)
	if err != nil {
		return
	}
	refuse := func(id string, e *wire.Error, code int) {
		b, _ := json.Marshal(wire.ServerFrame{Type: wire.FrameError, ID: id, Code: e.Code, Message: e.Message})
		ws.SetWriteDeadline(time.Now().Add(g.cfg.WriteTimeout))
		_ = ws.WriteMessage(websocket.TextMessage, b)
		_ = ws.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(code, string(e.Code)))
		ws.Close()
	}
	ws.SetReadLimit(4 << 10)
	ws.SetReadDeadline(time.Now().Add(authFrameTimeout))
	_, data, err := ws.ReadMessage()
	if err != nil {
		refuse("", wire.Errorf(wire.CodeMissingToken, "send a token: the first frame must be auth"), closeUnauthorized)
		return
	}
	f, _, e := wire.DecodeFrame(data)
	if e == nil && f.Type != wire.FrameAuth {
		e = wire.Errorf(wire.CodeMissingToken, "the first frame must be auth {\"token\"} (or pass the token in the request)")
	}
	var u auth.User
	if e == nil {
		u, e = g.issuer.Verify(f.Token)
	}
	if e != nil {
		refuse(f.ID, e, closeUnauthorized)
		return
	}
	if e := g.admit(u, ip); e != nil {
		code := closeForbidden
		if e.Code == wire.CodeRateLimited {
			code = closeLimited
		}
		refuse(f.ID, e, code)
		return
	}
	defer g.conns.release(u.Inbox(), ip)
	groups, leave, err := g.online(c.Request.Context(), u)
	defer leave()
	if err != nil {
		we := g.clientError(err)
		refuse(f.ID, we, websocket.CloseTryAgainLater)
		return
	}
	ack := wire.ServerFrame{Type: wire.FrameAck, ID: f.ID, Result: map[string]string{"user_id": u.ID, "role": u.Role}}
	g.serveConn(ws, u, groups, &ack)
}

// online marks u's inbox present on this node and reads their groups for the node's
// index, with the hub's stamp taken before the read (see Hub.add). leave undoes the
// presence; it is safe to call whatever the error. Presence is advisory: its
// failures are logged, never fatal. A failed read of the groups refuses the
// connection: none is indexed with groups it could not read.
func (g *Gateway) online(ctx context.Context, u auth.User) (groups indexedGroups, leave func(), err error) {
	inbox := u.Inbox()
	if err := g.presence.Connect(g.ctx, inbox, g.cfg.Node); err != nil {
		g.log.Warn("gateway: presence connect failed", "user", inbox, "err", err)
	}
	leave = func() {
		if err := g.presence.Disconnect(context.WithoutCancel(g.ctx), inbox, g.cfg.Node); err != nil {
			g.log.Warn("gateway: presence disconnect failed", "user", inbox, "err", err)
		}
	}
	groups.stamp = g.hub.stamp()
	groups.list, err = g.svc.UserGroups(ctx, inbox)
	return groups, leave, err
}

// indexedGroups are a connecting user's groups, read after the hub's stamp.
type indexedGroups struct {
	list  []wire.GroupVersion
	stamp uint64
}

// serveConn runs an upgraded connection of u until it closes: registered in the hub,
// the write loop in its own goroutine, the read loop in this one. first, when set,
// is written before anything else (the answer to an auth frame).
func (g *Gateway) serveConn(ws *websocket.Conn, u auth.User, groups indexedGroups, first *wire.ServerFrame) {
	ws.SetReadLimit(4 * g.maxRequestBytes())
	cn := &conn{g: g, ws: ws, who: u, user: u.Inbox(), out: make(chan outFrame, g.cfg.SendQueue), done: make(chan struct{})}
	if u.Staff() {
		cn.shop = u.Shop
	}
	if first != nil {
		cn.reply(*first)
	}
	g.hub.add(cn, groups.list, groups.stamp)
	g.m.Connections.Inc()
	if u.Role == wire.RoleAgent && g.cs != nil {
		g.cs.Presence(u.Shop, u.ID, true) // an agent's connection keeps their status honest
	}
	defer func() {
		if g.hub.remove(cn) && u.Role == wire.RoleAgent && g.cs != nil {
			g.cs.Presence(u.Shop, u.ID, false)
		}
		g.m.Connections.Dec()
	}()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		cn.writeLoop()
	}()
	// A Close that ran before add saw no connection: close this one now.
	if g.closing.Load() {
		cn.close(closeGoingAway)
	}
	cn.readLoop(g.ctx)
	wg.Wait()
	cn.finish()
}
