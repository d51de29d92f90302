// Package gateway is fanline's access layer: the gin HTTP API, WebSocket connections
// (heartbeats, a bounded send queue each), token checks and presence.
//
// It talks to the pipeline through Service, which cmd wires to *dispatch.Dispatcher.
package gateway

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	_ "net/http/pprof" // registers on http.DefaultServeMux, served only when Config.Pprof
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fanline/fanline/internal/auth"
	"github.com/fanline/fanline/internal/ids"
	"github.com/fanline/fanline/internal/metrics"
	"github.com/fanline/fanline/internal/presence"
	"github.com/fanline/fanline/internal/wire"
	"github.com/gin-gonic/gin"
	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Service is what the gateway needs from the pipeline. Every call names who it is
// for (the token's user, role and shop); the pipeline authorises from all three.
type Service interface {
	Send(ctx context.Context, who wire.Principal, from string, req wire.SendRequest) (wire.SendResult, error)
	Sync(ctx context.Context, who wire.Principal, req wire.SyncRequest) (wire.SyncResult, error)
	Conversations(ctx context.Context, who wire.Principal) (wire.ConversationList, error)
	Unread(ctx context.Context, who wire.Principal) (wire.UnreadCounts, error)
	History(ctx context.Context, who wire.Principal, conv, before uint64, limit int) (wire.HistoryResult, error)
	// MarkRead returns the number of receipts it queued.
	MarkRead(ctx context.Context, who wire.Principal, conv, msgID uint64) (int, error)
	Recall(ctx context.Context, who wire.Principal, msgID uint64) error
	// Typing pushes "who is typing in conv" to its other participants.
	Typing(ctx context.Context, who wire.Principal, conv uint64) error
	Receipts(ctx context.Context, who wire.Principal, msgID uint64, q wire.ReceiptsQuery) (wire.Receipts, error)
	// UserGroups lists the groups of a timeline's owner (a Principal's Inbox), each
	// with its membership version read after the list, for the node's group index.
	UserGroups(ctx context.Context, inbox string) ([]wire.GroupVersion, error)
	// CheckMembers reports which of users (inboxes connected here) are members of
	// group, at the membership version it returns or a newer one, for the node's
	// group index.
	CheckMembers(ctx context.Context, group uint64, users []string) (wire.MemberCheck, error)
	CreateGroup(ctx context.Context, who wire.Principal, req wire.CreateGroupRequest) (wire.Group, error)
	Group(ctx context.Context, who wire.Principal, id uint64) (wire.Group, error)
	ChangeMembers(ctx context.Context, who wire.Principal, id uint64, req wire.MembersRequest) (wire.Group, error)
	OpenShopChat(ctx context.Context, who wire.Principal, shop string, req wire.OpenChatRequest) (wire.ChatState, error)
	Holder
	Mediator
}

// Config configures a Gateway.
type Config struct {
	// Node names this gateway in the presence registry. Zero means "local".
	Node string
	// DevMode turns on POST /v1/dev/token.
	DevMode bool
	// MaxBodyBytes is the message body limit; requests and frames may be this plus
	// 16 KiB. Zero means 64 KiB.
	MaxBodyBytes int
	// HeartbeatTimeout closes a WebSocket that sent no frame for this long. Zero
	// means 60 s.
	HeartbeatTimeout time.Duration
	// WriteTimeout bounds one frame write. Zero means 10 s.
	WriteTimeout time.Duration
	// SendQueue is each connection's outgoing frame queue. Zero means 256.
	SendQueue int
	// Operational serves /metrics and, with Pprof, /debug/pprof/ on the API port
	// (Operational). Nil: they are served elsewhere (an admin listener) or not at all.
	Operational http.Handler
	// Pprof routes /debug/pprof/ to Operational.
	Pprof bool
	// AllowedOrigins are the browser origins that may open a WebSocket ("*": any).
	// Empty: the same origin only. Clients that send no Origin are not browsers.
	AllowedOrigins []string
	// RatePerSecond and RateBurst make each user's token bucket of cost units (a
	// text message is one). A zero rate means 100 per second, a zero burst twice the
	// rate; a negative rate turns limiting off.
	RatePerSecond float64
	RateBurst     int
	// MaxConnsPerUser and MaxConnsPerIP cap open WebSockets on this node. Zero
	// means 20 and 10,000; negative: no cap.
	MaxConnsPerUser int
	MaxConnsPerIP   int
	// Ready reports whether the backends are reachable, for /readyz. Nil: always.
	Ready func() error
	// Internal serves the internal API (InternalHandler) under /internal/v1/, for the
	// gateway-only nodes of a cluster. Nil: not served.
	Internal http.Handler
	// CS is the customer-service router. Nil: its endpoints answer unavailable.
	CS CS
	// Console serves the web console at / and /console/. Nil: none.
	Console http.Handler
	// TransferIdle bounds the pause of an upload or download streamed through the
	// gateway (it may take longer than the server's read and write timeouts in
	// all, but never stall longer than this). Zero means 30 s.
	TransferIdle time.Duration
	// Logger is the structured log. Nil means slog.Default().
	Logger *slog.Logger
}

// Gateway serves the API.
type Gateway struct {
	cfg      Config
	svc      Service
	issuer   *auth.Issuer
	cs       CS // nil without customer service
	presence presence.Registry
	hub      *Hub
	m        *metrics.Metrics
	log      *slog.Logger
	engine   *gin.Engine
	table    []Route
	upgrader websocket.Upgrader
	limits   *limiter
	conns    *connLimits

	wg      sync.WaitGroup // open WebSocket handlers
	closing atomic.Bool    // set by Close: no new WebSockets
	// ctx is the context of WebSocket frames; Close cancels it only after every
	// connection's in-flight frame is answered.
	ctx    context.Context
	cancel context.CancelFunc
}

// New builds a Gateway. hub is the one the dispatcher pushes into.
func New(cfg Config, svc Service, issuer *auth.Issuer, reg presence.Registry, hub *Hub, m *metrics.Metrics) *Gateway {
	if cfg.Node == "" {
		cfg.Node = "local"
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 64 << 10
	}
	if cfg.HeartbeatTimeout <= 0 {
		cfg.HeartbeatTimeout = 60 * time.Second
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = 10 * time.Second
	}
	if cfg.TransferIdle <= 0 {
		cfg.TransferIdle = 30 * time.Second
	}
	if cfg.SendQueue <= 0 {
		cfg.SendQueue = 256
	}
	if cfg.Ready == nil {
		cfg.Ready = func() error { return nil }
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.MaxConnsPerUser == 0 {
		cfg.MaxConnsPerUser = 20
	}
	if cfg.MaxConnsPerIP == 0 {
		cfg.MaxConnsPerIP = 10000
	}
	g := &Gateway{cfg: cfg, svc: svc, issuer: issuer, cs: cfg.CS, presence: reg, hub: hub, m: m, log: cfg.Logger,
		limits: newLimiter(cfg.RatePerSecond, cfg.RateBurst), conns: newConnLimits(cfg.MaxConnsPerUser, cfg.MaxConnsPerIP),
		upgrader: websocket.Upgrader{
			// Reads reuse the HTTP server's buffer; writes borrow a pooled one, so an
			// idle connection holds no write buffer.
			WriteBufferSize: 4096, WriteBufferPool: &sync.Pool{},
			CheckOrigin:  originChecker(cfg.AllowedOrigins),
			Subprotocols: []string{wsProtocol},
		}}
	hub.checkWith(svc.CheckMembers, cfg.Logger)
	g.ctx, g.cancel = context.WithCancel(context.Background())
	g.engine = g.routes()
	return g
}

// Handler is the HTTP handler of the whole API.
func (g *Gateway) Handler() http.Handler { return g.engine }

// Close closes every WebSocket with "going away" and waits for their handlers, so
// in-flight sends finish.
func (g *Gateway) Close() {
	g.closing.Store(true)
	for _, c := range g.hub.all() {
		c.close(closeGoingAway)
	}
	g.wg.Wait()
	g.cancel()
}

func (g *Gateway) maxRequestBytes() int64 { return int64(g.cfg.MaxBodyBytes) + 16<<10 }

func (g *Gateway) routes() *gin.Engine {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.HandleMethodNotAllowed = true
	r.Use(g.recover, g.accessLog)
	r.NoRoute(func(c *gin.Context) { g.fail(c, wire.Errorf(wire.CodeNotFound, "no such endpoint")) })
	r.NoMethod(func(c *gin.Context) { g.fail(c, wire.Errorf(wire.CodeMethodNotAllowed, "method not allowed")) })

	g.table = g.apiTable()
	g.serve(r, g.table)
	if g.cfg.Internal != nil {
		r.POST(internalPrefix+":method", gin.WrapH(g.cfg.Internal))
	}
	return r
}

// Operational serves /metrics and, with pprof, Go's profiler under /debug/pprof/:
// on the API port (Config.Operational) or on a separate admin listener.
func Operational(m *metrics.Metrics, pprof bool) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{}))
	if pprof {
		mux.Handle("/debug/pprof/", http.DefaultServeMux)
	}
	return mux
}

func (g *Gateway) readyz(c *gin.Context) {
	if err := g.cfg.Ready(); err != nil {
		g.log.Warn("gateway: not ready", "err", err)
		g.fail(c, wire.Errorf(wire.CodeUnavailable, "a backend is unreachable"))
		return
	}
	c.JSON(http.StatusOK, gin.H{"status": "ready"})
}

func (g *Gateway) recover(c *gin.Context) {
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler { // an answer cut short on purpose (export)
				panic(v)
			}
			g.log.Error("gateway: panic in handler", "path", c.Request.URL.Path, "panic", v)
			g.fail(c, wire.Errorf(wire.CodeInternal, "internal error"))
		}
	}()
	c.Next()
}

// accessLog logs each request at debug level (WebSocket frames are not requests).
func (g *Gateway) accessLog(c *gin.Context) {
	if !g.log.Enabled(c.Request.Context(), slog.LevelDebug) {
		c.Next()
		return
	}
	start := time.Now()
	c.Next()
	g.log.Debug("http", "method", c.Request.Method, "path", c.Request.URL.Path, "status", c.Writer.Status(),
		"duration", time.Since(start), "remote", c.ClientIP())
}

// clientError turns any error into what a client may see, logging internal causes.
func (g *Gateway) clientError(err error) *wire.Error {
	we := wire.AsError(err)
	if we.Code == wire.CodeInternal {
		if errors.Is(err, context.Canceled) {
			return wire.Errorf(wire.CodeUnavailable, "the server is shutting down; retry")
		}
		g.log.Error("gateway: internal error", "err", err)
	}
	return we
}

func (g *Gateway) fail(c *gin.Context, err error) {
	we := g.clientError(err)
	if we.RetryAfter > 0 {
		c.Header("Retry-After", strconv.Itoa(we.RetryAfter))
	}
	c.AbortWithStatusJSON(we.Code.Status(), wire.ErrorBody{Error: we})
}

const userKey = "fanline.user"

// authenticate verifies the request's token: Authorization: Bearer <token>, or for
// the WebSocket also the subprotocol bearer.<token> or ?token= (see wsToken). A
// WebSocket without one goes on to authenticate by its first frame.
func (g *Gateway) authenticate(c *gin.Context) {
	token, ok := strings.CutPrefix(c.GetHeader("Authorization"), "Bearer ")
	ws := c.FullPath() == wsPath
	if !ok && ws {
		token = wsToken(c.Request)
	}
	if token == "" {
		if !ws {
			g.fail(c, wire.Errorf(wire.CodeMissingToken, "send Authorization: Bearer <token>"))
		}
		return
	}
	u, e := g.issuer.Verify(token)
	if e != nil {
		g.fail(c, e)
		return
	}
	c.Set(userKey, u)
}

func user(c *gin.Context) auth.User { return c.MustGet(userKey).(auth.User) }

// bind reads a JSON body of at most limit bytes into v, refusing fields not in
// fields; on a problem it answers the error and returns false.
func (g *Gateway) bind(c *gin.Context, limit int64, v any, fields []string) bool {
	b, e := g.readBody(c, limit)
	if e == nil {
		e = wire.DecodeBody(b, v, fields)
	}
	if e != nil {
		g.fail(c, e)
		return false
	}
	return true
}

// readBody reads a JSON body of at most limit bytes.
func (g *Gateway) readBody(c *gin.Context, limit int64) ([]byte, *wire.Error) {
	b, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, limit))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return nil, wire.Errorf(wire.CodeMessageTooLarge, "request body over %d bytes", limit)
	}
	if err != nil {
		return nil, wire.Errorf(wire.CodeBadJSON, "could not read the body")
	}
	return b, nil
}

func pathID(c *gin.Context, what string) (uint64, *wire.Error) {
	id, err := ids.Parse(c.Param("id"))
	if err != nil {
		return 0, wire.Errorf(wire.CodeInvalidField, "%s must be a decimal id", what)
	}
	return id, nil
}

func queryInt(c *gin.Context, name string, max int) (int, *wire.Error) {
	s := c.Query(name)
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > max {
		return 0, wire.Errorf(wire.CodeInvalidField, "%s must be an integer from 1 to %d", name, max)
	}
	return n, nil
}

func (g *Gateway) devToken(c *gin.Context) {
	if !g.cfg.DevMode {
		g.fail(c, wire.Errorf(wire.CodeDevModeOff, "dev tokens are off; issue tokens with your identity provider"))
		return
	}
	var req struct {
		UserID string `json:"user_id"`
		Role   string `json:"role"`
		ShopID string `json:"shop_id"`
	}
	if !g.bind(c, g.maxRequestBytes(), &req, []string{"user_id", "role", "shop_id"}) {
		return
	}
	if req.UserID == "" {
		g.fail(c, wire.Errorf(wire.CodeMissingField, "user_id is required"))
		return
	}
	if req.Role == "" {
		req.Role = wire.RoleBuyer
	}
	token, err := g.issuer.Issue(auth.User{ID: req.UserID, Role: req.Role, Shop: req.ShopID})
	if err != nil {
		g.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"token": token})
}

func (g *Gateway) send(c *gin.Context) {
	start := time.Now()
	var req wire.SendBody
	if !g.bind(c, g.maxRequestBytes(), &req, wire.SendFields) {
		return
	}
	res, err := g.svc.Send(c.Request.Context(), user(c), req.From, req.SendRequest)
	g.m.SendLatency.Observe(time.Since(start).Seconds())
	if err != nil {
		g.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, res)
}

func (g *Gateway) sync(c *gin.Context) {
	limit, e := queryInt(c, "limit", 10000)
	if e != nil {
		g.fail(c, e)
		return
	}
	req := wire.SyncRequest{Cursor: c.Query("cursor"), Limit: limit}
	if v := c.Query("group_seqs"); v != "" {
		req.GroupSeqs = map[string]uint64{}
		for _, pair := range strings.Split(v, ",") {
			id, seq, ok := strings.Cut(pair, ":")
			n, err := strconv.ParseUint(seq, 10, 64)
			if !ok || err != nil {
				g.fail(c, wire.Errorf(wire.CodeInvalidField, "group_seqs must be group_id:group_seq pairs separated by commas"))
				return
			}
			req.GroupSeqs[id] = n
		}
	}
	res, err := g.svc.Sync(c.Request.Context(), user(c), req)
	if err != nil {
		g.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, res)
}

func (g *Gateway) conversations(c *gin.Context) {
	res, err := g.svc.Conversations(c.Request.Context(), user(c))
	if err != nil {
		g.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, res)
}

func (g *Gateway) unread(c *gin.Context) {
	res, err := g.svc.Unread(c.Request.Context(), user(c))
	if err != nil {
		g.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, res)
}

func (g *Gateway) history(c *gin.Context) {
	conv, e := pathID(c, "conversation id")
	if e != nil {
		g.fail(c, e)
		return
	}
	limit, e := queryInt(c, "limit", 500)
	if e != nil {
		g.fail(c, e)
		return
	}
	var before uint64
	if s := c.Query("before"); s != "" {
		var err error
		if before, err = ids.Parse(s); err != nil {
			g.fail(c, wire.Errorf(wire.CodeInvalidField, "before must be a msg_id"))
			return
		}
	}
	res, err := g.svc.History(c.Request.Context(), user(c), conv, before, limit)
	if err != nil {
		g.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, res)
}

func (g *Gateway) markRead(c *gin.Context) {
	conv, e := pathID(c, "conversation id")
	if e != nil {
		g.fail(c, e)
		return
	}
	var req wire.ReadRequest
	if !g.bind(c, g.maxRequestBytes(), &req, []string{"msg_id"}) {
		return
	}
	if req.MsgID == 0 {
		g.fail(c, wire.Errorf(wire.CodeMissingField, "msg_id is required"))
		return
	}
	receipts, err := g.svc.MarkRead(c.Request.Context(), user(c), conv, uint64(req.MsgID))
	if err != nil {
		g.fail(c, err)
		return
	}
	g.limits.owe(user(c).Inbox(), receipts/receiptsPerUnit)
	c.JSON(http.StatusOK, gin.H{})
}

func (g *Gateway) recall(c *gin.Context) {
	id, e := pathID(c, "msg_id")
	if e != nil {
		g.fail(c, e)
		return
	}
	if err := g.svc.Recall(c.Request.Context(), user(c), id); err != nil {
		g.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{})
}

func (g *Gateway) receipts(c *gin.Context) {
	id, e := pathID(c, "msg_id")
	if e != nil {
		g.fail(c, e)
		return
	}
	q := wire.ReceiptsQuery{After: c.Query("after")}
	switch c.Query("readers") {
	case "", "false", "0":
	case "true", "1":
		q.Readers = true
	default:
		g.fail(c, wire.Errorf(wire.CodeInvalidField, "readers must be true or false"))
		return
	}
	if q.Limit, e = queryInt(c, "limit", 1000); e != nil {
		g.fail(c, e)
		return
	}
	res, err := g.svc.Receipts(c.Request.Context(), user(c), id, q)
	if err != nil {
		g.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, res)
}

func (g *Gateway) createGroup(c *gin.Context) {
	var req wire.CreateGroupRequest
	if !g.bind(c, maxGroupBodyBytes, &req, []string{"name", "members", "client_group_id"}) {
		return
	}
	if !g.pay(c, costGroup+len(req.Members)/groupMembersPerUnit) {
		return
	}
	res, err := g.svc.CreateGroup(c.Request.Context(), user(c), req)
	if err != nil {
		g.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, res)
}

func (g *Gateway) group(c *gin.Context) {
	id, e := pathID(c, "group id")
	if e != nil {
		g.fail(c, e)
		return
	}
	res, err := g.svc.Group(c.Request.Context(), user(c), id)
	if err != nil {
		g.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, res)
}

func (g *Gateway) changeMembers(c *gin.Context) {
	id, e := pathID(c, "group id")
	if e != nil {
		g.fail(c, e)
		return
	}
	var req wire.MembersRequest
	if !g.bind(c, maxGroupBodyBytes, &req, []string{"add", "remove", "promote", "demote"}) {
		return
	}
	if !g.pay(c, costGroup+(len(req.Add)+len(req.Remove))/groupMembersPerUnit) {
		return
	}
	res, err := g.svc.ChangeMembers(c.Request.Context(), user(c), id, req)
	if err != nil {
		g.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, res)
}

// maxGroupBodyBytes bounds a group request: 20,000 member ids of up to 64 characters.
const maxGroupBodyBytes = 2 << 20

// maxPresenceUsers bounds one presence query.
const maxPresenceUsers = 200

func (g *Gateway) presenceOf(c *gin.Context) {
	users := strings.Split(c.Query("users"), ",")
	if c.Query("users") == "" || len(users) > maxPresenceUsers {
		g.fail(c, wire.Errorf(wire.CodeInvalidField, "users must list 1 to %d user ids, comma-separated", maxPresenceUsers))
		return
	}
	for _, u := range users {
		if !wire.ValidUserID(u) {
			g.fail(c, wire.Errorf(wire.CodeInvalidUserID, "%q is not a valid user id", u))
			return
		}
	}
	online, err := g.presence.Online(c.Request.Context(), users)
	if err != nil {
		g.log.Warn("gateway: presence query failed", "err", err)
		g.fail(c, wire.Errorf(wire.CodeUnavailable, "presence is unavailable; retry"))
		return
	}
	out := map[string]string{}
	for u, on := range online {
		out[u] = "offline"
		if on {
			out[u] = "online"
		}
	}
	c.JSON(http.StatusOK, gin.H{"presence": out})
}
