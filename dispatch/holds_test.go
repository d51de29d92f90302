package dispatch

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/fanline/fanline/internal/wire"
)

// TestHolds: an operator holds any conversation and sees every hold; a shop's
// admin holds only its shop's conversations and sees its own hold; buyers hold
// nothing; every change is logged with who and why.
func TestHolds(t *testing.T) {
	d, _ := newTestDispatcher(t, shops{configured: "acme"})
	var logged bytes.Buffer
	d.log = slog.New(slog.NewJSONHandler(&logged, nil))
	ctx := context.Background()
	chat, err := d.streams.ShopConversation(ctx, "carla", "acme", func() uint64 { return nextID(t, d) })
	if err != nil {
		t.Fatal(err)
	}
	direct := directConv(t, d)
	ops := wire.Principal{ID: "olga", Role: wire.RoleOperator}
	boss := wire.Principal{ID: "boss", Role: wire.RoleAdmin, Shop: "acme"}
	zeta := wire.Principal{ID: "boss2", Role: wire.RoleAdmin, Shop: "zeta"}
	put := func(who wire.Principal, conv uint64) error {
		_, err := d.PutHold(ctx, who, conv, wire.HoldRequest{})
		return err
	}
	code := func(err error) wire.Code {
		if err == nil {
			return ""
		}
		return wire.AsError(err).Code
	}

	if h, err := d.PutHold(ctx, boss, chat.ID, wire.HoldRequest{Reason: "chargeback #12"}); err != nil || h.Scope != "shop:acme" || h.By != "boss" {
		t.Fatalf("admin hold: %+v %v", h, err)
	}
	if _, err := d.PutHold(ctx, ops, chat.ID, wire.HoldRequest{}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.PutHold(ctx, ops, direct, wire.HoldRequest{Reason: "court order"}); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]wire.Code{
		"zeta's admin on acme's chat": code(put(zeta, chat.ID)),
		"acme's admin on a direct":    code(put(boss, direct)),
		"a buyer":                     code(put(wire.Principal{ID: "carla", Role: wire.RoleBuyer}, chat.ID)),
		"a missing conversation":      code(put(ops, 12345)),
		"a long reason": code(func() error {
			_, err := d.PutHold(ctx, ops, direct, wire.HoldRequest{Reason: strings.Repeat("x", 1001)})
			return err
		}()),
	} {
		want := wire.CodeConversationMissing
		switch name {
		case "a buyer":
			want = wire.CodeForbidden
		case "a long reason":
			want = wire.CodeInvalidField
		}
		if c != want {
			t.Errorf("%s: %q, want %q", name, c, want)
		}
	}
	if h, err := d.Holds(ctx, boss, chat.ID); err != nil || len(h.Holds) != 1 || h.Holds[0].Reason != "chargeback #12" {
		t.Errorf("admin's view: %+v %v", h, err)
	}
	if h, err := d.Holds(ctx, ops, chat.ID); err != nil || len(h.Holds) != 2 {
		t.Errorf("operator's view: %+v %v", h, err)
	}
	if _, err := d.Holds(ctx, zeta, chat.ID); code(err) != wire.CodeConversationMissing {
		t.Errorf("zeta reads acme's holds: %v", err)
	}
	list, err := d.ListHolds(ctx, ops, 0, 1)
	if err != nil || len(list.Conversations) != 1 || list.NextAfter == 0 {
		t.Fatalf("first page: %+v %v", list, err)
	}
	rest, err := d.ListHolds(ctx, ops, uint64(list.NextAfter), 1)
	if err != nil || len(rest.Conversations) != 1 || rest.NextAfter != 0 || rest.Conversations[0].ConversationID == list.Conversations[0].ConversationID {
		t.Fatalf("second page: %+v %v", rest, err)
	}
	if _, err := d.ListHolds(ctx, boss, 0, 10); code(err) != wire.CodeForbidden {
		t.Errorf("an admin lists every hold: %v", err)
	}

	if err := d.DeleteHold(ctx, boss, chat.ID, wire.HoldRequest{Reason: "settled"}); err != nil {
		t.Fatal(err)
	}
	if err := d.DeleteHold(ctx, boss, chat.ID, wire.HoldRequest{}); code(err) != wire.CodeHoldMissing {
		t.Errorf("second delete: %v", err)
	}
	if h, err := d.Holds(ctx, ops, chat.ID); err != nil || len(h.Holds) != 1 || h.Holds[0].Scope != "ops" {
		t.Errorf("after the admin's delete: %+v %v", h, err)
	}
	for _, want := range []string{
		`"msg":"dispatch: legal hold placed","conversation":` + wire.ID(chat.ID).String() + `,"scope":"shop:acme","by":"boss","role":"admin","reason":"chargeback #12"`,
		`"msg":"dispatch: legal hold removed","conversation":` + wire.ID(chat.ID).String() + `,"scope":"shop:acme","by":"boss","role":"admin","reason":"settled","placed_by":"boss"`,
	} {
		if !strings.Contains(logged.String(), want) {
			t.Errorf("log lacks %s:\n%s", want, logged.String())
		}
	}
}
