package e2e

import (
	"context"
	"fmt"
	"math/rand"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fanline/fanline/client"
	"github.com/fanline/fanline/internal/wire"
)

// TestTwoUsersTwoDevices: 2 users x 2 devices exchange 2,000 messages concurrently,
// with random duplicate resends. Every device ends with the 2,000 messages once each,
// each sender's messages in order, and unread counts right before and after mark-read.
func TestTwoUsersTwoDevices(t *testing.T) {
	ts := startServer(t, nil)
	ctx := context.Background()
	users := []string{"alice", "bob"}
	devices := map[string][]*client.Client{}
	for _, u := range users {
		devices[u] = []*client.Client{connect(t, ts.URL, u), connect(t, ts.URL, u)}
	}
	const perDevice = 500 // 4 sending devices -> 2,000 messages
	type sent struct {
		id  wire.ID
		seq int // position in the sending device's order
	}
	var mu sync.Mutex
	byDevice := map[string][]sent{} // "alice/0" -> messages in send order
	var wg sync.WaitGroup
	for _, u := range users {
		peer := map[string]string{"alice": "bob", "bob": "alice"}[u]
		for d, c := range devices[u] {
			wg.Add(1)
			go func(u string, d int, c *client.Client) {
				defer wg.Done()
				r := rand.New(rand.NewSource(int64(d + len(u))))
				dev := fmt.Sprintf("%s/%d", u, d)
				for i := 0; i < perDevice; i++ {
					req := wire.SendRequest{ClientMsgID: fmt.Sprintf("%s-%d-%d", u, d, i), To: peer, Type: "text", Body: text(dev + " " + strconv.Itoa(i))}
					res, err := c.Send(ctx, req)
					if err != nil {
						t.Errorf("%s send %d: %v", dev, i, err)
						return
					}
					if res.Duplicate {
						t.Errorf("%s send %d: first send answered as duplicate", dev, i)
					}
					if r.Intn(10) == 0 {
						// A duplicate resend, over the WebSocket or HTTP.
						var again wire.SendResult
						if r.Intn(2) == 0 {
							again, err = c.Send(ctx, req)
						} else {
							again, err = c.SendHTTP(ctx, req)
						}
						if err != nil || !again.Duplicate || again.MsgID != res.MsgID {
							t.Errorf("%s resend %d: %+v %v (original %s)", dev, i, again, err, res.MsgID)
						}
					}
					mu.Lock()
					byDevice[dev] = append(byDevice[dev], sent{res.MsgID, i})
					mu.Unlock()
				}
			}(u, d, c)
		}
	}
	// Read while sending: the clients' buffers are large, but a real app reads as it goes.
	got := map[*client.Client][]wire.Entry{}
	var rg sync.WaitGroup
	var gotMu sync.Mutex
	for _, u := range users {
		for _, c := range devices[u] {
			rg.Add(1)
			go func(c *client.Client) {
				defer rg.Done()
				es := collect(t, c, 4*perDevice, 2*time.Minute)
				gotMu.Lock()
				got[c] = es
				gotMu.Unlock()
			}(c)
		}
	}
	wg.Wait()
	rg.Wait()
	if t.Failed() {
		return
	}

	order := map[wire.ID]sent{}
	sender := map[wire.ID]string{}
	for dev, ms := range byDevice {
		for _, m := range ms {
			order[m.id] = m
			sender[m.id] = dev
		}
	}
	for _, u := range users {
		for d, c := range devices[u] {
			seen := map[wire.ID]bool{}
			last := map[string]int{}
			var prevSeq uint64
			for _, e := range got[c] {
				if e.Seq != prevSeq+1 {
					t.Fatalf("%s/%d: seq %d after %d", u, d, e.Seq, prevSeq)
				}
				prevSeq = e.Seq
				if e.Kind != wire.KindMessage {
					continue
				}
				if seen[e.MsgID] {
					t.Fatalf("%s/%d: message %s twice", u, d, e.MsgID)
				}
				seen[e.MsgID] = true
				m, ok := order[e.MsgID]
				if !ok {
					t.Fatalf("%s/%d: unknown message %s", u, d, e.MsgID)
				}
				dev := sender[e.MsgID]
				if p, ok := last[dev]; ok && m.seq <= p {
					t.Fatalf("%s/%d: %s's message %d after %d", u, d, dev, m.seq, p)
				}
				last[dev] = m.seq
				if !strings.HasPrefix(string(e.Body), `{"text":"`+dev) {
					t.Fatalf("%s/%d: body %s for %s", u, d, e.Body, dev)
				}
			}
			if len(seen) != 4*perDevice {
				t.Fatalf("%s/%d: %d distinct messages", u, d, len(seen))
			}
		}
	}

	// Unread: own messages read everything before them, so a user's unread is the
	// peer's messages after the user's last own message (in msg_id order).
	for _, u := range users {
		var lastOwn, newest wire.ID
		for id, dev := range sender {
			if strings.HasPrefix(dev, u+"/") && id > lastOwn {
				lastOwn = id
			}
			if id > newest {
				newest = id
			}
		}
		var want int64
		for id, dev := range sender {
			if !strings.HasPrefix(dev, u+"/") && id > lastOwn {
				want++
			}
		}
		c := devices[u][0]
		list, err := c.Conversations(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(list.Conversations) != 1 || list.Conversations[0].Unread != want || list.TotalUnread != want {
			t.Fatalf("%s: conversations %+v, want unread %d", u, list, want)
		}
		conv := list.Conversations[0].ConversationID
		if err := c.MarkRead(ctx, conv, newest); err != nil {
			t.Fatal(err)
		}
		list, _ = c.Conversations(ctx)
		if list.Conversations[0].Unread != 0 || list.TotalUnread != 0 {
			t.Fatalf("%s after mark-read: %+v", u, list)
		}
		if list.Conversations[0].LastMessage == nil || list.Conversations[0].LastMessage.MsgID != newest {
			t.Fatalf("%s: last message %+v, want %s", u, list.Conversations[0].LastMessage, newest)
		}
	}
	// Both read to the newest message: its sender sees it read by the peer.
	var newest wire.ID
	for id := range sender {
		newest = max(newest, id)
	}
	owner := strings.Split(sender[newest], "/")[0]
	rc, err := devices[owner][1].Receipts(ctx, newest)
	if err != nil || rc.ReadCount != 1 || rc.MemberCount != 1 || len(rc.Readers) != 1 {
		t.Fatalf("receipts of %s: %+v %v", newest, rc, err)
	}
}
