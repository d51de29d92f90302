package gateway

import (
	"net/http"
	"slices"
	"strings"

	"github.com/fanline/fanline/internal/wire"
	"github.com/gin-gonic/gin"
)

// Access is who may call a route. The gateway checks it from the verified token
// before the handler runs; the pipeline then checks the resource itself (membership
// of the conversation, the chat's shop), again from the token's role and shop.
type Access string

// The access classes of the public API.
const (
	Public    Access = "public"     // no token
	Members   Access = "members"    // buyers, agents and admins, on their own conversations
	Buyers    Access = "buyers"     // buyer tokens
	Agents    Access = "agents"     // agent tokens, for their own shop
	Staff     Access = "staff"      // agents and admins, for their own shop
	ShopAdmin Access = "shop_admin" // admins of the shop named in the path
	Operators Access = "operators"  // platform operators (platform endpoints only)
	// BuyersAdmins are buyers and admins: a conversation's members and a shop
	// conversation's admins, never its agents (the export).
	BuyersAdmins Access = "buyers_admins"
)

// roles are the token roles each class lets through.
var roles = map[Access][]string{
	Members:      {wire.RoleBuyer, wire.RoleAgent, wire.RoleAdmin},
	Buyers:       {wire.RoleBuyer},
	Agents:       {wire.RoleAgent},
	Staff:        {wire.RoleAgent, wire.RoleAdmin},
	ShopAdmin:    {wire.RoleAdmin},
	Operators:    {wire.RoleOperator},
	BuyersAdmins: {wire.RoleBuyer, wire.RoleAdmin},
}

// Route is one endpoint of the API, who may call it and what one call costs from the
// caller's rate budget (0: not limited). A sized route's handler charges Cost plus
// what the request's size adds, at once, after reading the body (a refused call
// costs nothing); a caller who cannot pay even Cost is refused before the body is
// read, so a flood of large bodies costs the server no decoding.
type Route struct {
	Method string
	Path   string
	Access Access
	Cost   int
	Sized  bool
	h      gin.HandlerFunc
}

// Routes lists the API's endpoints with their access, as served (the internal node
// API, which takes a node key instead of a token, is not among them).
func (g *Gateway) Routes() []Route {
	out := make([]Route, len(g.table))
	copy(out, g.table)
	return out
}

// table is the public API: every endpoint, who may call it and its cost. A route is
// served only through this table, so the authorisation matrix test sees them all.
func (g *Gateway) apiTable() []Route {
	t := []Route{
		{"GET", "/healthz", Public, 0, false, func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "ok"}) }},
		{"GET", "/readyz", Public, 0, false, g.readyz},
		{"POST", "/v1/dev/token", Public, 0, false, g.devToken},
		{"GET", "/v1/ws", Members, costConnect, false, g.websocket},
		{"POST", "/v1/messages", Members, costSend, false, g.send},
		{"GET", "/v1/sync", Members, costRead, false, g.sync},
		{"GET", "/v1/conversations", Members, costList, false, g.conversations},
		{"GET", "/v1/unread", Members, costRead, false, g.unread},
		{"GET", "/v1/conversations/:id/messages", Members, costRead, false, g.history},
		{"POST", "/v1/conversations/:id/read", Members, costMarkRead, false, g.markRead},
		{"POST", "/v1/messages/:id/recall", Members, costRecall, false, g.recall},
		{"GET", "/v1/messages/:id/receipts", Members, costRead, false, g.receipts},
		{"GET", "/v1/presence", Members, costRead, false, g.presenceOf},
		{"POST", "/v1/groups", Buyers, costGroup, true, g.createGroup},
		{"GET", "/v1/groups/:id", Buyers, costRead, false, g.group},
		{"POST", "/v1/groups/:id/members", Buyers, costGroup, true, g.changeMembers},
		{"POST", "/v1/shops/:shop_id/chats", Buyers, costOpenChat, false, g.openChat},
		{"PUT", "/v1/agents/me/status", Agents, costRead, false, g.csOn(g.agentStatus)},
		{"GET", "/v1/agents/me/conversations", Agents, costRead, false, g.csOn(g.agentChats)},
		{"POST", "/v1/cs/conversations/:id/transfer", Staff, costChatChange, false, g.csOn(g.transfer)},
		{"POST", "/v1/cs/conversations/:id/close", Staff, costChatChange, false, g.csOn(g.closeChat)},
	}
	t = append(t, g.adminRoutes()...)
	t = append(t, g.holdRoutes()...)
	t = append(t, g.mediaRoutes()...)
	if g.cfg.Console != nil {
		console := gin.WrapH(g.cfg.Console)
		t = append(t, Route{"GET", "/", Public, 0, false, console}, Route{"GET", "/console/*file", Public, 0, false, console},
			Route{"GET", "/demo/shop/:shop_id", Public, 0, false, console})
	}
	if g.cfg.Operational != nil {
		op := gin.WrapH(g.cfg.Operational)
		t = append(t, Route{"GET", "/metrics", Public, 0, false, op})
		if g.cfg.Pprof {
			t = append(t, Route{"GET", "/debug/pprof/*any", Public, 0, false, op})
		}
	}
	return t
}

// serve registers the table on r: token check, role check, the shop check of admin
// routes (and staff routes naming a shop), the rate charge, then the handler.
func (g *Gateway) serve(r *gin.Engine, table []Route) {
	for _, rt := range table {
		var chain []gin.HandlerFunc
		if rt.Path == wsPath {
			// The WebSocket admits itself: its token may come in its first frame.
			r.Handle(rt.Method, rt.Path, g.authenticate, rt.h)
			continue
		}
		if rt.Access != Public {
			chain = append(chain, g.authenticate, g.allow(rt.Access))
		}
		if rt.Access == ShopAdmin || (rt.Access == Staff && strings.Contains(rt.Path, ":shop_id")) {
			chain = append(chain, g.ownShop)
		}
		switch {
		case rt.Cost > 0 && rt.Sized:
			chain = append(chain, g.affords(rt.Cost))
		case rt.Cost > 0:
			chain = append(chain, g.charge(rt.Cost))
		}
		r.Handle(rt.Method, rt.Path, append(chain, rt.h)...)
	}
}

// allow lets only the roles of class a through.
func (g *Gateway) allow(a Access) gin.HandlerFunc {
	return func(c *gin.Context) {
		if e := permit(a, user(c)); e != nil {
			g.fail(c, e)
		}
	}
}

// ownShop lets staff act on their own shop only (the shop_id of the path).
func (g *Gateway) ownShop(c *gin.Context) {
	if user(c).Shop != c.Param("shop_id") {
		g.fail(c, wire.Errorf(wire.CodeForbidden, "your token is for shop %s, not %s", user(c).Shop, c.Param("shop_id")))
	}
}

// permit checks that u's role is one class a lets through.
func permit(a Access, u wire.Principal) *wire.Error {
	want := roles[a]
	if slices.Contains(want, u.Role) {
		return nil
	}
	return wire.Errorf(wire.CodeForbidden, "this needs a %s token; yours is %s", strings.Join(want, " or "), u.Role)
}
