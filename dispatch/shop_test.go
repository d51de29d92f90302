package dispatch

import (
	"context"
	"log/slog"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/fanline/fanline/groupstream"
	"github.com/fanline/fanline/internal/ids"
	"github.com/fanline/fanline/internal/kv"
	"github.com/fanline/fanline/internal/metrics"
	"github.com/fanline/fanline/internal/queue"
	"github.com/fanline/fanline/internal/wire"
	"github.com/fanline/fanline/timeline"
)

// shops is a ShopRouter with one configured shop whose agent list is agents.
type shops struct {
	configured string
	agents     map[string]bool
}

func (s shops) OpenChat(shop, buyer string, chat uint64, req wire.OpenChatRequest) (wire.ChatState, string, error) {
	return wire.ChatState{ConversationID: wire.ID(chat), ShopID: shop, BuyerID: buyer, State: "queued"}, "", nil
}
func (s shops) Serving(string, uint64) string                           { return "" }
func (s shops) IsAgent(shop, user string) bool                          { return shop == s.configured && s.agents[user] }
func (s shops) Configured(shop string) bool                             { return shop == s.configured }
func (s shops) BuyerMessage(string, uint64)                             {}
func (s shops) AgentReplied(string, uint64, string)                     {}
func (nopPusher) Push(string, wire.Entry, string)                       {}
func (nopPusher) PushGroup(uint64, uint64, wire.Entry, map[string]bool) {}
func (nopPusher) GroupMembers(uint64, uint64, []string, []string)       {}
func (nopPusher) PushFrame(string, wire.ServerFrame)                    {}

type nopPusher struct{}

func newTestDispatcher(t *testing.T, router ShopRouter) (*Dispatcher, *pebble.DB) {
	t.Helper()
	db, err := kv.Open(t.TempDir(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return dispatcherOn(t, db, Config{Shops: router}), db
}

// dispatcherOn builds a Dispatcher with cfg on the embedded backends in db; its
// queue is closed when the test ends.
func dispatcherOn(t *testing.T, db *pebble.DB, cfg Config) *Dispatcher {
	t.Helper()
	q, err := queue.NewPebbleQueue(db, queue.PebbleQueueConfig{Topics: map[string]int{TopicSend: 1, TopicGroup: 1, TopicFanout: 1, TopicControl: 1, TopicDead: 1}, Groups: Groups})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	gen, _ := ids.NewGenerator(1, ids.GeneratorConfig{Mark: ids.NewPebbleMark(db)})
	d, err := New(cfg, q, groupstream.NewPebbleStore(db, groupstream.Config{}),
		timeline.NewPebbleStore(db, timeline.PebbleStoreConfig{}), NewPebbleDedup(db, true), gen, nopPusher{}, metrics.New())
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// keys counts the store's keys under prefix.
func keys(t *testing.T, db *pebble.DB, prefix byte) int {
	t.Helper()
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefix}, UpperBound: []byte{prefix + 1}})
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	n := 0
	for it.First(); it.Valid(); it.Next() {
		n++
	}
	return n
}

// TestOpenShopChatChecksFirst: a chat with a shop that has no customer service, or
// opened by someone who is not a buyer, allocates nothing; with a configured shop
// it allocates the conversation once.
func TestOpenShopChatChecksFirst(t *testing.T) {
	d, db := newTestDispatcher(t, shops{configured: "acme", agents: map[string]bool{"pat": true}})
	ctx := context.Background()
	carla := wire.Principal{ID: "carla", Role: wire.RoleBuyer}
	before := keys(t, db, kv.PrefixConversation)
	for _, tc := range []struct {
		who  wire.Principal
		shop string
		code wire.Code
	}{
		{carla, "nope", wire.CodeShopMissing},
		{carla, "bad shop id", wire.CodeShopMissing},
		{wire.Principal{ID: "pat", Role: wire.RoleBuyer}, "acme", wire.CodeForbidden},               // on acme's agent list
		{wire.Principal{ID: "ann", Role: wire.RoleAgent, Shop: "acme"}, "acme", wire.CodeForbidden}, // staff do not open chats
	} {
		_, err := d.OpenShopChat(ctx, tc.who, tc.shop, wire.OpenChatRequest{Entry: "product", Text: "hi"})
		if we := wire.AsError(err); we.Code != tc.code {
			t.Errorf("%+v opens with %s: %v, want %s", tc.who, tc.shop, err, tc.code)
		}
	}
	if after := keys(t, db, kv.PrefixConversation); after != before {
		t.Fatalf("refused opens wrote %d conversation keys", after-before)
	}
	st, err := d.OpenShopChat(ctx, carla, "acme", wire.OpenChatRequest{Entry: "product"})
	if err != nil || st.ConversationID == 0 {
		t.Fatalf("open: %+v %v", st, err)
	}
	if keys(t, db, kv.PrefixConversation) == before {
		t.Fatal("a configured shop's chat allocated nothing")
	}
}
