package dispatch

import (
	"context"
	"encoding/json"
	"strconv"
	"unicode/utf8"

	"github.com/fanline/fanline/groupstream"
	"github.com/fanline/fanline/internal/queue"
	"github.com/fanline/fanline/internal/wire"
)

// ShopRouter is the customer-service router as the pipeline needs it: who serves a
// shop conversation (a chat), and the events that move its timers.
type ShopRouter interface {
	// OpenChat routes a buyer's chat, returning its state and the shop's offline
	// reply when it is closed.
	OpenChat(shop, buyer string, chat uint64, req wire.OpenChatRequest) (wire.ChatState, string, error)
	// Serving is the agent serving a chat, or "".
	Serving(shop string, chat uint64) string
	// IsAgent reports whether user is one of the shop's agents.
	IsAgent(shop, user string) bool
	// Configured reports whether the shop's admins have set up customer service.
	Configured(shop string) bool
	// BuyerMessage and AgentReplied start and stop the chat's reply timer.
	BuyerMessage(shop string, chat uint64)
	AgentReplied(shop string, chat uint64, agent string)
}

// maxEntryLen bounds the entry context of an open request.
const maxEntryLen = 32

// OpenShopChat opens (or resumes) a buyer's chat with shop: the conversation is found
// or allocated, the router classifies and assigns it, and the request's text becomes
// the buyer's first message. A closed shop's offline reply is sent as from the shop.
// Nothing is allocated for a shop whose customer service is not configured.
func (d *Dispatcher) OpenShopChat(ctx context.Context, who wire.Principal, shop string, req wire.OpenChatRequest) (wire.ChatState, error) {
	if d.shops == nil {
		return wire.ChatState{}, wire.Errorf(wire.CodeUnavailable, "customer service is not configured on this node")
	}
	if who.Role != wire.RoleBuyer {
		return wire.ChatState{}, wire.Errorf(wire.CodeForbidden, "only buyers open chats with shops")
	}
	buyer := who.ID
	if !wire.ValidUserID(shop) || !d.shops.Configured(shop) {
		return wire.ChatState{}, wire.Errorf(wire.CodeShopMissing, "shop %q has no customer service", shop)
	}
	if req.Entry == "" || utf8.RuneCountInString(req.Entry) > maxEntryLen {
		return wire.ChatState{}, wire.Errorf(wire.CodeInvalidField, "entry must be 1-%d characters (product, order, refund, ...)", maxEntryLen)
	}
	if req.ClientMsgID != "" && !wire.ValidClientMsgID(req.ClientMsgID) {
		return wire.ChatState{}, wire.Errorf(wire.CodeInvalidField, "client_msg_id must be 1-64 characters of [A-Za-z0-9_.:@-]")
	}
	if d.shops.IsAgent(shop, buyer) {
		return wire.ChatState{}, wire.Errorf(wire.CodeForbidden, "%s is an agent of shop %s, not a buyer", buyer, shop)
	}
	if err := d.writable(); err != nil {
		return wire.ChatState{}, err
	}
	cid, err := d.newID()
	if err != nil {
		return wire.ChatState{}, err
	}
	c, err := d.streams.ShopConversation(ctx, buyer, shop, func() uint64 { return cid })
	if err != nil {
		return wire.ChatState{}, err
	}
	var first *wire.SendRequest
	if req.Text != "" {
		body, _ := json.Marshal(map[string]string{"text": req.Text})
		first = &wire.SendRequest{ClientMsgID: req.ClientMsgID, ConversationID: wire.ID(c.ID), Type: "text", Body: body}
		if first.ClientMsgID == "" {
			first.ClientMsgID = "open-" + strconv.FormatUint(cid, 36)
		}
		if e := validateSend(first, d.cfg.MaxBodyBytes); e != nil {
			return wire.ChatState{}, e
		}
	}
	st, autoReply, err := d.shops.OpenChat(shop, buyer, c.ID, req)
	if err != nil {
		return wire.ChatState{}, err
	}
	if first != nil {
		if _, err := d.Send(ctx, who, "", *first); err != nil {
			return wire.ChatState{}, err
		}
	}
	if autoReply != "" {
		if err := d.shopMessage(ctx, c, autoReply); err != nil {
			return wire.ChatState{}, err
		}
	}
	return st.ForBuyer(), nil
}

// shopMessage queues a text from the shop itself (no agent) into a shop conversation.
func (d *Dispatcher) shopMessage(ctx context.Context, c groupstream.Conversation, text string) error {
	body, _ := json.Marshal(map[string]string{"text": text})
	id, err := d.newID()
	if err != nil {
		return err
	}
	job := sendJob{MsgID: id, Conv: c.ID, ConvKind: c.Kind, From: c.Shop, ClientMsgID: "shop-" + strconv.FormatUint(id, 36),
		Type: "text", Body: body}
	return d.q.Produce(ctx, TopicSend, queue.Record{Key: []byte(c.Shop), Value: job.marshal()})
}

// shopSender resolves who may send into shop conversation c: its buyer, or the agent
// serving it (who writes as the shop). It returns the agent id, "" for the buyer.
func (d *Dispatcher) shopSender(c groupstream.Conversation, who wire.Principal) (string, error) {
	switch {
	case who.Role == wire.RoleBuyer && c.HasMember(who.ID):
		return "", nil
	case d.shopAgent(c, who) && d.shops.Serving(c.Shop, c.ID) == who.ID:
		return who.ID, nil
	case who.Staff() && who.Shop == c.Shop:
		return "", wire.Errorf(wire.CodeNotParticipant, "conversation %d is not assigned to you", c.ID)
	}
	return "", wire.Errorf(wire.CodeNotParticipant, "you are not in conversation %d", c.ID)
}

// shopAgent reports whether who is one of c's shop's agents: an agent token of that
// shop, for a user on the shop's agent list.
func (d *Dispatcher) shopAgent(c groupstream.Conversation, who wire.Principal) bool {
	return d.shops != nil && who.Role == wire.RoleAgent && who.Shop == c.Shop && d.shops.IsAgent(c.Shop, who.ID)
}

// shopReader reports whether who may read shop conversation c: its buyer, every agent
// of the shop (a chat moves between them and keeps its history) and the shop's
// admins. The token's role and shop decide, never the bare user id.
func (d *Dispatcher) shopReader(c groupstream.Conversation, who wire.Principal) bool {
	switch who.Role {
	case wire.RoleBuyer:
		return c.HasMember(who.ID)
	case wire.RoleAdmin:
		return who.Shop == c.Shop
	}
	return d.shopAgent(c, who)
}

// shopRecipients are a shop message's timelines: the buyer's, and the shop inboxes of
// the agent serving the chat and of the agent who wrote it.
func (d *Dispatcher) shopRecipients(c groupstream.Conversation, m groupstream.Message) []string {
	out := []string{c.Members[0]}
	if d.shops == nil {
		return out
	}
	serving := d.shops.Serving(c.Shop, c.ID)
	if serving != "" {
		out = append(out, wire.StaffInbox(c.Shop, serving))
	}
	if m.AgentID != "" && m.AgentID != serving {
		out = append(out, wire.StaffInbox(c.Shop, m.AgentID))
	}
	return out
}

// shopJobs are the fanout jobs of a shop message: the buyer sees the shop as the
// conversation's peer, agents the buyer.
func (d *Dispatcher) shopJobs(c groupstream.Conversation, m groupstream.Message) []queue.Record {
	var out []queue.Record
	for i, u := range d.shopRecipients(c, m) {
		peer := c.Members[0]
		if i == 0 {
			peer = c.Shop
		}
		out = append(out, messageRecord(m, c.Kind, u, peer))
	}
	return out
}
