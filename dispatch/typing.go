package dispatch

import (
	"context"

	"github.com/fanline/fanline/groupstream"
	"github.com/fanline/fanline/internal/wire"
)

// Typing tells conv's other participants that who is typing in it: a typing frame
// pushed to the devices connected now, never stored (a lost one costs nothing,
// the next comes within seconds). Who may send in a conversation may say they are
// typing in it:
//
//   - direct chats and small groups: to every other member;
//   - shop chats: the buyer's to the agent serving the chat, the serving agent's to
//     the buyer, from the shop (as the shop's messages are);
//   - read-fanout groups (thousands of members): to nobody, accepted and dropped,
//     since one member typing would cost a frame to every connected member.
func (d *Dispatcher) Typing(ctx context.Context, who wire.Principal, conv uint64) error {
	c, _, err := d.member(ctx, who, conv)
	if err != nil {
		return err
	}
	frame := wire.ServerFrame{Type: wire.FrameTyping, ConversationID: wire.ID(c.ID), From: who.ID}
	if c.Kind == groupstream.KindShop {
		agent, err := d.shopSender(c, who)
		if err != nil {
			return err
		}
		if agent != "" {
			frame.From = c.Shop
			d.push.PushFrame(c.Members[0], frame)
		} else if d.shops != nil {
			if serving := d.shops.Serving(c.Shop, c.ID); serving != "" {
				d.push.PushFrame(wire.StaffInbox(c.Shop, serving), frame)
			}
		}
		return nil
	}
	if c.FanoutMode() == groupstream.FanoutRead {
		return nil
	}
	members, err := d.streams.Members(ctx, c.ID)
	if err != nil {
		return err
	}
	for _, m := range members {
		if m.User != who.Inbox() {
			d.push.PushFrame(m.User, frame)
		}
	}
	return nil
}
