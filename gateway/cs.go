package gateway

import (
	"net/http"
	"strings"

	"github.com/fanline/fanline/internal/auth"
	"github.com/fanline/fanline/internal/wire"
	"github.com/gin-gonic/gin"
)

// CS is what the gateway needs from the customer-service router. Chats are keyed by
// their conversation id within a shop; admin documents pass through as JSON.
type CS interface {
	SetStatus(shop, agent, status string) error
	Presence(shop, agent string, connected bool)
	AgentChats(shop, agent string) ([]wire.ChatState, error)
	Chat(shop string, chat uint64) (wire.ChatState, error)
	Transfer(shop string, chat uint64, by, toAgent, toSkill string) (wire.ChatState, error)
	Close(shop string, chat uint64, by string) (wire.ChatState, error)
	Rules(shop string) (any, error)
	SetRules(shop string, body []byte) (any, error)
	DryRun(shop string, req wire.DryRunRequest) (wire.ChatState, error)
	Agents(shop string) (any, error)
	SetAgents(shop string, body []byte) (any, error)
	Audit(shop string, limit int) (any, error)
	Live(shop string) (any, error)
}

// maxAdminBodyBytes bounds an admin document (rules, agent lists).
const maxAdminBodyBytes = 1 << 20

func (g *Gateway) csRoutes(a *gin.RouterGroup) {
	a.POST("/shops/:shop_id/chats", g.role(wire.RoleBuyer), g.openChat)
	agent := a.Group("", g.role(wire.RoleAgent), g.csOn)
	agent.PUT("/agents/me/status", g.agentStatus)
	agent.GET("/agents/me/conversations", g.agentChats)
	staff := a.Group("/cs/conversations/:id", g.role(wire.RoleAgent, wire.RoleAdmin), g.csOn)
	staff.POST("/transfer", g.transfer)
	staff.POST("/close", g.closeChat)
	admin := a.Group("/admin/shops/:shop_id", g.role(wire.RoleAdmin), g.ownShop, g.csOn)
	admin.GET("/routing", g.adminDoc(func(shop string, _ *gin.Context) (any, error) { return g.cs.Rules(shop) }))
	admin.PUT("/routing", g.adminPut(func(shop string, b []byte) (any, error) { return g.cs.SetRules(shop, b) }))
	admin.POST("/routing/dry-run", g.dryRun)
	admin.GET("/agents", g.adminDoc(func(shop string, _ *gin.Context) (any, error) { return g.cs.Agents(shop) }))
	admin.PUT("/agents", g.adminPut(func(shop string, b []byte) (any, error) { return g.cs.SetAgents(shop, b) }))
	admin.GET("/audit", g.adminDoc(func(shop string, c *gin.Context) (any, error) {
		limit, e := queryInt(c, "limit", 10000)
		if e != nil {
			return nil, e
		}
		if limit == 0 {
			limit = 100
		}
		return g.cs.Audit(shop, limit)
	}))
	admin.GET("/live", g.adminDoc(func(shop string, _ *gin.Context) (any, error) { return g.cs.Live(shop) }))
}

// role lets only tokens of the given roles through.
func (g *Gateway) role(roles ...string) gin.HandlerFunc {
	return func(c *gin.Context) {
		u := user(c)
		for _, r := range roles {
			if u.Role == r {
				return
			}
		}
		g.fail(c, wire.Errorf(wire.CodeForbidden, "this needs the %s role; your token is %s", strings.Join(roles, " or "), roleOf(u)))
	}
}

func roleOf(u auth.User) string {
	if u.Role == "" {
		return wire.RoleBuyer
	}
	return u.Role
}

// ownShop lets an admin act on their own shop only.
func (g *Gateway) ownShop(c *gin.Context) {
	if user(c).Shop != c.Param("shop_id") {
		g.fail(c, wire.Errorf(wire.CodeForbidden, "you administer shop %s, not %s", user(c).Shop, c.Param("shop_id")))
	}
}

// csOn answers 503 on a node without customer service.
func (g *Gateway) csOn(c *gin.Context) {
	if g.cs == nil {
		g.fail(c, wire.Errorf(wire.CodeUnavailable, "customer service is not configured on this node"))
	}
}

func (g *Gateway) openChat(c *gin.Context) {
	var req wire.OpenChatRequest
	if !g.bind(c, g.maxRequestBytes(), &req, []string{"entry", "product_id", "order_id", "text", "client_msg_id"}) {
		return
	}
	res, err := g.svc.OpenShopChat(c.Request.Context(), user(c).ID, c.Param("shop_id"), req)
	if err != nil {
		g.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, res)
}

func (g *Gateway) agentStatus(c *gin.Context) {
	var req wire.StatusRequest
	if !g.bind(c, 4<<10, &req, []string{"status"}) {
		return
	}
	u := user(c)
	if err := g.cs.SetStatus(u.Shop, u.ID, req.Status); err != nil {
		g.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"status": req.Status})
}

func (g *Gateway) agentChats(c *gin.Context) {
	u := user(c)
	chats, err := g.cs.AgentChats(u.Shop, u.ID)
	if err != nil {
		g.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"conversations": chats})
}

// staffChat finds the chat of the path in the caller's shop; an agent must be the one
// serving it, an admin any.
func (g *Gateway) staffChat(c *gin.Context) (uint64, bool) {
	id, e := pathID(c, "conversation id")
	if e != nil {
		g.fail(c, e)
		return 0, false
	}
	u := user(c)
	st, err := g.cs.Chat(u.Shop, id)
	if err != nil {
		g.fail(c, err)
		return 0, false
	}
	if u.Role == wire.RoleAgent && st.AgentID != u.ID {
		g.fail(c, wire.Errorf(wire.CodeForbidden, "conversation %d is not assigned to you", id))
		return 0, false
	}
	return id, true
}

func (g *Gateway) transfer(c *gin.Context) {
	id, ok := g.staffChat(c)
	if !ok {
		return
	}
	var req wire.TransferRequest
	if !g.bind(c, 4<<10, &req, []string{"agent_id", "skill"}) {
		return
	}
	if (req.AgentID == "") == (req.Skill == "") {
		g.fail(c, wire.Errorf(wire.CodeInvalidField, "give exactly one of agent_id and skill"))
		return
	}
	u := user(c)
	st, err := g.cs.Transfer(u.Shop, id, u.ID, req.AgentID, req.Skill)
	if err != nil {
		g.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, st)
}

func (g *Gateway) closeChat(c *gin.Context) {
	id, ok := g.staffChat(c)
	if !ok {
		return
	}
	u := user(c)
	st, err := g.cs.Close(u.Shop, id, u.ID)
	if err != nil {
		g.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, st)
}

func (g *Gateway) adminDoc(get func(shop string, c *gin.Context) (any, error)) gin.HandlerFunc {
	return func(c *gin.Context) {
		v, err := get(c.Param("shop_id"), c)
		if err != nil {
			g.fail(c, err)
			return
		}
		c.JSON(http.StatusOK, v)
	}
}

func (g *Gateway) adminPut(put func(shop string, body []byte) (any, error)) gin.HandlerFunc {
	return func(c *gin.Context) {
		b, e := g.readBody(c, maxAdminBodyBytes)
		if e != nil {
			g.fail(c, e)
			return
		}
		v, err := put(c.Param("shop_id"), b)
		if err != nil {
			g.fail(c, err)
			return
		}
		c.JSON(http.StatusOK, v)
	}
}

func (g *Gateway) dryRun(c *gin.Context) {
	var req wire.DryRunRequest
	if !g.bind(c, g.maxRequestBytes(), &req, []string{"buyer_id", "entry", "text"}) {
		return
	}
	if req.Entry == "" {
		g.fail(c, wire.Errorf(wire.CodeMissingField, "entry is required"))
		return
	}
	st, err := g.cs.DryRun(c.Param("shop_id"), req)
	if err != nil {
		g.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, st)
}
