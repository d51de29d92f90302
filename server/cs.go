package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"time"

	csrouting "github.com/fanline/fanline/cs-routing"
	"github.com/fanline/fanline/dispatch"
	"github.com/fanline/fanline/gateway"
	"github.com/fanline/fanline/internal/wire"
)

// csService adapts the customer-service router to what the pipeline
// (dispatch.ShopRouter) and the API (gateway.CS) need, in wire types; chats are keyed
// by their conversation id.
type csService struct{ r *csrouting.Router }

var (
	_ dispatch.ShopRouter = csService{}
	_ gateway.CS          = csService{}
)

func chatID(id uint64) string { return strconv.FormatUint(id, 10) }

// chatState renders a router decision for clients.
func chatState(shop string, d csrouting.Decision) wire.ChatState {
	id, _ := strconv.ParseUint(d.Chat, 10, 64)
	return wire.ChatState{ConversationID: wire.ID(id), ShopID: shop, BuyerID: d.Buyer, State: d.State, AgentID: d.Agent,
		Skill: d.Skill, QueuePosition: d.Position, EstimatedWaitSeconds: int(time.Duration(d.EstimatedWait).Seconds()),
		Reason: d.Reason, Priority: d.Priority, Entry: d.Entry, ProductID: d.ProductID, OrderID: d.OrderID}
}

// csError maps router errors to client codes.
func csError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, csrouting.ErrUnknownShop):
		return wire.Errorf(wire.CodeShopMissing, "this shop has no customer service configured")
	case errors.Is(err, csrouting.ErrUnknownAgent):
		return wire.Errorf(wire.CodeAgentMissing, "no such agent in this shop")
	case errors.Is(err, csrouting.ErrUnknownChat):
		return wire.Errorf(wire.CodeConversationMissing, "no such chat in this shop")
	case errors.Is(err, csrouting.ErrUnavailable):
		return wire.Errorf(wire.CodeAgentUnavailable, "the agent is not online with capacity")
	case errors.Is(err, csrouting.ErrClosed):
		return wire.Errorf(wire.CodeChatClosed, "the chat is closed")
	case errors.Is(err, csrouting.ErrBadStatus):
		return wire.Errorf(wire.CodeInvalidField, "status must be online, busy, away or offline")
	case errors.Is(err, csrouting.ErrInvalid):
		return wire.Errorf(wire.CodeInvalidField, "%v", err)
	}
	return err
}

// OpenChat implements dispatch.ShopRouter.
func (s csService) OpenChat(shop, buyer string, chat uint64, req wire.OpenChatRequest) (wire.ChatState, string, error) {
	d, err := s.r.Open(shop, csrouting.OpenRequest{Buyer: buyer, Chat: chatID(chat), Entry: req.Entry,
		ProductID: req.ProductID, OrderID: req.OrderID, Text: req.Text})
	if err != nil {
		return wire.ChatState{}, "", csError(err)
	}
	return chatState(shop, d), d.AutoReply, nil
}

// Serving implements dispatch.ShopRouter.
func (s csService) Serving(shop string, chat uint64) string {
	d, err := s.r.Chat(shop, chatID(chat))
	if err != nil || d.State != csrouting.Assigned {
		return ""
	}
	return d.Agent
}

// IsAgent implements dispatch.ShopRouter.
func (s csService) IsAgent(shop, user string) bool { return s.r.IsAgent(shop, user) }

// Configured implements dispatch.ShopRouter.
func (s csService) Configured(shop string) bool { return s.r.Configured(shop) }

// BuyerMessage implements dispatch.ShopRouter.
func (s csService) BuyerMessage(shop string, chat uint64) { s.r.BuyerMessage(shop, chatID(chat)) }

// AgentReplied implements dispatch.ShopRouter.
func (s csService) AgentReplied(shop string, chat uint64, agent string) {
	s.r.AgentReplied(shop, chatID(chat), agent)
}

// SetStatus implements gateway.CS.
func (s csService) SetStatus(shop, agent, status string) error {
	return csError(s.r.SetStatus(shop, agent, status))
}

// Presence implements gateway.CS.
func (s csService) Presence(shop, agent string, connected bool) { s.r.Presence(shop, agent, connected) }

// AgentChats implements gateway.CS.
func (s csService) AgentChats(shop, agent string) ([]wire.ChatState, error) {
	ds, err := s.r.AgentChats(shop, agent)
	if err != nil {
		return nil, csError(err)
	}
	out := make([]wire.ChatState, len(ds))
	for i, d := range ds {
		out[i] = chatState(shop, d)
	}
	return out, nil
}

// Chat implements gateway.CS.
func (s csService) Chat(shop string, chat uint64) (wire.ChatState, error) {
	d, err := s.r.Chat(shop, chatID(chat))
	return chatState(shop, d), csError(err)
}

// Transfer implements gateway.CS.
func (s csService) Transfer(shop string, chat uint64, by, toAgent, toSkill string) (wire.ChatState, error) {
	d, err := s.r.Transfer(shop, chatID(chat), by, toAgent, toSkill)
	return chatState(shop, d), csError(err)
}

// Close implements gateway.CS.
func (s csService) Close(shop string, chat uint64, by string) (wire.ChatState, error) {
	d, err := s.r.Close(shop, chatID(chat), by)
	return chatState(shop, d), csError(err)
}

// decodeDoc parses an admin document strictly: an unknown field is a problem too.
func decodeDoc(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil && dec.More() {
		err = errors.New("data after the document")
	}
	if err == nil {
		if _, tail := dec.Token(); tail != io.EOF {
			err = errors.New("data after the document")
		}
	}
	if err != nil {
		return &wire.Error{Code: wire.CodeInvalidRules, Message: "the document is not valid JSON of the expected shape",
			Problems: []wire.Problem{{Field: "", Message: err.Error()}}}
	}
	return nil
}

func problems(ps []csrouting.Problem) error {
	e := &wire.Error{Code: wire.CodeInvalidRules, Message: strconv.Itoa(len(ps)) + " problem(s) found; nothing was changed"}
	for _, p := range ps {
		e.Problems = append(e.Problems, wire.Problem{Field: p.Field, Message: p.Message})
	}
	return e
}

// Rules implements gateway.CS.
func (s csService) Rules(shop string) (any, error) {
	r, err := s.r.Rules(shop)
	return r, csError(err)
}

// SetRules implements gateway.CS.
func (s csService) SetRules(shop string, body []byte) (any, error) {
	var rules csrouting.Rules
	if err := decodeDoc(body, &rules); err != nil {
		return nil, err
	}
	got, ps, err := s.r.SetRules(shop, rules)
	if err != nil {
		return nil, err
	}
	if len(ps) > 0 {
		return nil, problems(ps)
	}
	return got, nil
}

// DryRun implements gateway.CS.
func (s csService) DryRun(shop string, req wire.DryRunRequest) (wire.ChatState, error) {
	d, err := s.r.DryRun(shop, csrouting.OpenRequest{Buyer: req.BuyerID, Entry: req.Entry, Text: req.Text})
	return chatState(shop, d), csError(err)
}

// Agents implements gateway.CS.
func (s csService) Agents(shop string) (any, error) {
	return map[string]any{"agents": s.r.Agents(shop)}, nil
}

// SetAgents implements gateway.CS.
func (s csService) SetAgents(shop string, body []byte) (any, error) {
	var doc struct {
		Agents []csrouting.AgentConfig `json:"agents"`
	}
	return s.setDoc(body, &doc, func() ([]csrouting.Problem, error) { return s.r.SetAgents(shop, doc.Agents) },
		func() (any, error) { return s.Agents(shop) })
}

// setDoc decodes an admin's document into doc, applies it with set, and answers
// every problem found or, once stored, the document as answer reads it back.
func (s csService) setDoc(body []byte, doc any, set func() ([]csrouting.Problem, error), answer func() (any, error)) (any, error) {
	if err := decodeDoc(body, doc); err != nil {
		return nil, err
	}
	ps, err := set()
	if err != nil {
		return nil, err
	}
	if len(ps) > 0 {
		return nil, problems(ps)
	}
	return answer()
}

// Canned implements gateway.CS.
func (s csService) Canned(shop string) (any, error) {
	return map[string]any{"responses": s.r.Canned(shop)}, nil
}

// SetCanned implements gateway.CS.
func (s csService) SetCanned(shop string, body []byte) (any, error) {
	var doc struct {
		Responses []csrouting.Canned `json:"responses"`
	}
	return s.setDoc(body, &doc, func() ([]csrouting.Problem, error) { return s.r.SetCanned(shop, doc.Responses) },
		func() (any, error) { return s.Canned(shop) })
}

// Audit implements gateway.CS.
func (s csService) Audit(shop string, limit int) (any, error) {
	return map[string]any{"entries": s.r.Audit(shop, limit)}, nil
}

// Live implements gateway.CS.
func (s csService) Live(shop string) (any, error) {
	l, err := s.r.Live(shop)
	return l, csError(err)
}

// csNotifier pushes the router's events over the WebSocket: a chat's changes to its
// buyer and agents, live stats to the shop's agents and admins.
type csNotifier struct{ push pusher }

// Notify implements csrouting.Notifier; the hub never blocks.
func (n csNotifier) Notify(e csrouting.Event) {
	if e.Type == "live" {
		n.push.PushShop(e.Shop, wire.ServerFrame{Type: wire.FrameCS, Event: "live", Live: e.Live})
		return
	}
	st := chatState(e.Shop, e.Decision)
	for _, u := range []string{e.Agent, e.Previous} {
		if u != "" {
			n.push.PushFrame(wire.StaffInbox(e.Shop, u), wire.ServerFrame{Type: wire.FrameCS, Event: e.Type, Chat: &st})
		}
	}
	buyer := st.ForBuyer()
	n.push.PushFrame(e.Buyer, wire.ServerFrame{Type: wire.FrameCS, Event: e.Type, Chat: &buyer})
}
