package gateway

import (
	"net/http"

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
	Canned(shop string) (any, error)
	SetCanned(shop string, body []byte) (any, error)
	Audit(shop string, limit int) (any, error)
	Live(shop string) (any, error)
}

// maxAdminBodyBytes bounds an admin document (rules, agent lists).
const maxAdminBodyBytes = 1 << 20

// adminRoutes are a shop admin's endpoints: /v1/admin/shops/{shop_id}/...
func (g *Gateway) adminRoutes() []Route {
	const p = "/v1/admin/shops/:shop_id"
	get := func(path string, cost int, f func(shop string, c *gin.Context) (any, error)) Route {
		return Route{"GET", p + path, ShopAdmin, cost, false, g.csOn(g.adminDoc(f))}
	}
	put := func(path string, f func(shop string, b []byte) (any, error)) Route {
		return Route{"PUT", p + path, ShopAdmin, costAdminWrite, false, g.csOn(g.adminPut(f))}
	}
	return []Route{
		get("/routing", costRead, func(shop string, _ *gin.Context) (any, error) { return g.cs.Rules(shop) }),
		put("/routing", func(shop string, b []byte) (any, error) { return g.cs.SetRules(shop, b) }),
		{"POST", p + "/routing/dry-run", ShopAdmin, costChatChange, false, g.csOn(g.dryRun)},
		// The shop's agents read the agent list too: a transfer picks a colleague by
		// status and load.
		{"GET", p + "/agents", Staff, costRead, false, g.csOn(g.adminDoc(func(shop string, _ *gin.Context) (any, error) {
			return g.cs.Agents(shop)
		}))},
		put("/agents", func(shop string, b []byte) (any, error) { return g.cs.SetAgents(shop, b) }),
		// The shop's agents read the canned responses too (their composer offers them).
		{"GET", p + "/canned", Staff, costRead, false, g.csOn(g.adminDoc(func(shop string, _ *gin.Context) (any, error) {
			return g.cs.Canned(shop)
		}))},
		put("/canned", func(shop string, b []byte) (any, error) { return g.cs.SetCanned(shop, b) }),
		get("/audit", costList, func(shop string, c *gin.Context) (any, error) {
			limit, e := queryInt(c, "limit", 10000)
			if e != nil {
				return nil, e
			}
			if limit == 0 {
				limit = 100
			}
			return g.cs.Audit(shop, limit)
		}),
		get("/live", costRead, func(shop string, _ *gin.Context) (any, error) { return g.cs.Live(shop) }),
	}
}

// csOn answers 503 on a node without customer service, else runs h.
func (g *Gateway) csOn(h gin.HandlerFunc) gin.HandlerFunc {
	return func(c *gin.Context) {
		if g.cs == nil {
			g.fail(c, wire.Errorf(wire.CodeUnavailable, "customer service is not configured on this node"))
			return
		}
		h(c)
	}
}

func (g *Gateway) openChat(c *gin.Context) {
	var req wire.OpenChatRequest
	if !g.bind(c, g.maxRequestBytes(), &req, []string{"entry", "product_id", "order_id", "text", "client_msg_id"}) {
		return
	}
	res, err := g.svc.OpenShopChat(c.Request.Context(), user(c), c.Param("shop_id"), req)
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
