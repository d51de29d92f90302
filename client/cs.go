package client

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/fanline/fanline/internal/wire"
)

// CSEvent is a customer-service event pushed over the WebSocket: a chat of the user
// changed (Chat), or, for a shop's agents and admins, its live stats (Live).
type CSEvent struct {
	Event string          `json:"event"`
	Chat  *wire.ChatState `json:"chat,omitempty"`
	Live  json.RawMessage `json:"live,omitempty"`
}

// CSEvents delivers customer-service events as they arrive. Events are hints (the
// state is always in the API): when the app does not keep up, they are dropped.
func (c *Client) CSEvents() <-chan CSEvent { return c.cs }

// OpenChat opens (or resumes) the buyer's chat with a shop; send in it with the
// returned conversation_id.
func (c *Client) OpenChat(ctx context.Context, shop string, req wire.OpenChatRequest) (wire.ChatState, error) {
	var out wire.ChatState
	err := c.do(ctx, http.MethodPost, "/v1/shops/"+url.PathEscape(shop)+"/chats", req, &out)
	return out, err
}

// SetStatus sets the agent's status: online, busy, away or offline.
func (c *Client) SetStatus(ctx context.Context, status string) error {
	return c.do(ctx, http.MethodPut, "/v1/agents/me/status", wire.StatusRequest{Status: status}, nil)
}

// AgentChats lists the chats the agent serves.
func (c *Client) AgentChats(ctx context.Context) ([]wire.ChatState, error) {
	var out struct {
		Conversations []wire.ChatState `json:"conversations"`
	}
	err := c.do(ctx, http.MethodGet, "/v1/agents/me/conversations", nil, &out)
	return out.Conversations, err
}

// Transfer moves a chat to an agent or a skill (exactly one of them).
func (c *Client) Transfer(ctx context.Context, conv wire.ID, req wire.TransferRequest) (wire.ChatState, error) {
	var out wire.ChatState
	err := c.do(ctx, http.MethodPost, "/v1/cs/conversations/"+conv.String()+"/transfer", req, &out)
	return out, err
}

// CloseChat closes a chat.
func (c *Client) CloseChat(ctx context.Context, conv wire.ID) (wire.ChatState, error) {
	var out wire.ChatState
	err := c.do(ctx, http.MethodPost, "/v1/cs/conversations/"+conv.String()+"/close", nil, &out)
	return out, err
}

// Canned lists the canned responses of the agent's (or admin's) shop.
func (c *Client) Canned(ctx context.Context, shop string) ([]wire.CannedResponse, error) {
	var out wire.CannedResponses
	err := c.do(ctx, http.MethodGet, "/v1/admin/shops/"+url.PathEscape(shop)+"/canned", nil, &out)
	return out.Responses, err
}

// Admin is a shop admin's HTTP client for the routing configuration.
type Admin struct {
	base, token string
	http        *http.Client
}

// NewAdmin returns an Admin for shop at the server's base URL, with an admin token.
func NewAdmin(baseURL, shop, token string) *Admin {
	return &Admin{base: strings.TrimRight(baseURL, "/") + "/v1/admin/shops/" + url.PathEscape(shop),
		token: token, http: &http.Client{}}
}

func (a *Admin) do(ctx context.Context, method, path string, in, out any) error {
	return doJSON(ctx, a.http, method, a.base+path, a.token, in, out)
}

// PutRouting replaces the shop's routing rules (any JSON-encodable document); a
// rejected document is a *wire.Error with every problem in Problems.
func (a *Admin) PutRouting(ctx context.Context, rules, out any) error {
	return a.do(ctx, http.MethodPut, "/routing", rules, out)
}

// Routing reads the shop's routing rules into out.
func (a *Admin) Routing(ctx context.Context, out any) error {
	return a.do(ctx, http.MethodGet, "/routing", nil, out)
}

// PutAgents replaces the shop's agents: {"agents": [{"agent_id", "skills", "capacity"}]}.
func (a *Admin) PutAgents(ctx context.Context, agents, out any) error {
	return a.do(ctx, http.MethodPut, "/agents", agents, out)
}

// PutCanned replaces the shop's canned responses; a rejected list is a *wire.Error
// with every problem in Problems (fields "responses[i].shortcut", ".text").
func (a *Admin) PutCanned(ctx context.Context, list []wire.CannedResponse) ([]wire.CannedResponse, error) {
	var out wire.CannedResponses
	err := a.do(ctx, http.MethodPut, "/canned", wire.CannedResponses{Responses: list}, &out)
	return out.Responses, err
}

// Canned lists the shop's canned responses.
func (a *Admin) Canned(ctx context.Context) ([]wire.CannedResponse, error) {
	var out wire.CannedResponses
	err := a.do(ctx, http.MethodGet, "/canned", nil, &out)
	return out.Responses, err
}

// DryRun answers who would get a chat now, and why.
func (a *Admin) DryRun(ctx context.Context, req wire.DryRunRequest) (wire.ChatState, error) {
	var out wire.ChatState
	err := a.do(ctx, http.MethodPost, "/routing/dry-run", req, &out)
	return out, err
}

// Audit reads the latest routing decisions into out.
func (a *Admin) Audit(ctx context.Context, limit int, out any) error {
	return a.do(ctx, http.MethodGet, "/audit?limit="+strconv.Itoa(limit), nil, out)
}

// Live reads the shop's queues and agents' load into out.
func (a *Admin) Live(ctx context.Context, out any) error {
	return a.do(ctx, http.MethodGet, "/live", nil, out)
}
