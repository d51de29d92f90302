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
	OpenChat(shop, buyer string, chat uint64, entry, text string) (wire.ChatState, string, error)
	// Serving is the agent serving a chat, or "".
	Serving(shop string, chat uint64) string
	// IsAgent reports whether user is one of the shop's agents.
	IsAgent(shop, user string) bool
	// BuyerMessage and AgentReplied start and stop the chat's reply timer.
	BuyerMessage(shop string, chat uint64)
	AgentReplied(shop string, chat uint64, agent string)
}

// maxEntryLen bounds the entry context of an open request.
const maxEntryLen = 32

// OpenShopChat opens (or resumes) buyer's chat with shop: the conversation is found or
// allocated, the router classifies and assigns it, and the request's text becomes the
// buyer's first message. A closed shop's offline reply is sent as from the shop.
func (d *Dispatcher) OpenShopChat(ctx context.Context, buyer, shop string, req wire.OpenChatRequest) (wire.ChatState, error) {
	if d.shops == nil {
		return wire.ChatState{}, wire.Errorf(wire.CodeUnavailable, "customer service is not configured on this node")
	}
	if !wire.ValidUserID(shop) {
		return wire.ChatState{}, wire.Errorf(wire.CodeShopMissing, "%q is not a shop id", shop)
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
	c, err := d.streams.ShopConversation(ctx, buyer, shop, d.ids.Next)
	if err != nil {
		return wire.ChatState{}, err
	}
	var first *wire.SendRequest
	if req.Text != "" {
		body, _ := json.Marshal(map[string]string{"text": req.Text})
		first = &wire.SendRequest{ClientMsgID: req.ClientMsgID, ConversationID: wire.ID(c.ID), Type: "text", Body: body}
		if first.ClientMsgID == "" {
			first.ClientMsgID = "open-" + strconv.FormatUint(d.ids.Next(), 36)
		}
		if e := validateSend(first, d.cfg.MaxBodyBytes); e != nil {
			return wire.ChatState{}, e
		}
	}
	st, autoReply, err := d.shops.OpenChat(shop, buyer, c.ID, req.Entry, req.Text)
	if err != nil {
		return wire.ChatState{}, err
	}
	if first != nil {
		if _, err := d.Send(ctx, buyer, "", *first); err != nil {
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
	id := d.ids.Next()
	job := sendJob{MsgID: id, Conv: c.ID, ConvKind: c.Kind, From: c.Shop, ClientMsgID: "shop-" + strconv.FormatUint(id, 36),
		Type: "text", Body: body}
	return d.q.Produce(ctx, TopicSend, queue.Record{Key: []byte(c.Shop), Value: job.marshal()})
}

// shopSender resolves who may send into shop conversation c: its buyer, or the agent
// serving it (who writes as the shop). It returns the agent id, "" for the buyer.
func (d *Dispatcher) shopSender(c groupstream.Conversation, user string) (string, error) {
	if c.HasMember(user) {
		return "", nil
	}
	if d.shops != nil && d.shops.Serving(c.Shop, c.ID) == user {
		return user, nil
	}
	if d.shops != nil && d.shops.IsAgent(c.Shop, user) {
		return "", wire.Errorf(wire.CodeNotParticipant, "conversation %d is not assigned to you", c.ID)
	}
	return "", wire.Errorf(wire.CodeNotParticipant, "you are not in conversation %d", c.ID)
}

// shopReader reports whether user may read shop conversation c: its buyer and every
// agent of the shop (a chat moves between them and keeps its history).
func (d *Dispatcher) shopReader(c groupstream.Conversation, user string) bool {
	return c.HasMember(user) || (d.shops != nil && d.shops.IsAgent(c.Shop, user))
}

// shopRecipients are a shop message's timelines: the buyer, the agent serving the
// chat and the agent who wrote it.
func (d *Dispatcher) shopRecipients(c groupstream.Conversation, m groupstream.Message) []string {
	out := []string{c.Members[0]}
	if d.shops == nil {
		return out
	}
	if a := d.shops.Serving(c.Shop, c.ID); a != "" {
		out = append(out, a)
	}
	if m.AgentID != "" && (len(out) == 1 || out[1] != m.AgentID) {
		out = append(out, m.AgentID)
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
