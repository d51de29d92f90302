package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fanline/fanline/client"
	"github.com/fanline/fanline/internal/testharness"
	"github.com/fanline/fanline/internal/wire"
	"github.com/twmb/franz-go/pkg/kfake"
)

// TestClusterOfProcesses runs fanline as three processes, two gateway nodes and one
// dispatch node, on a Kafka-protocol broker (kfake, spoken to through sarama) and a
// real Redis. Four users, two on each gateway, exchange 2,000 messages; the dispatch
// process is killed with SIGKILL midway and restarted. Every device must receive its
// whole timeline once, in order, and every acknowledged message must be stored once
// with the msg_id it was acknowledged with. Then a read-fanout group spanning both
// gateways: every member's device gets each message once, in stream order; and the
// customer-service scenario with the buyer and the agents on different gateways.
func TestClusterOfProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs three server processes")
	}
	broker, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer broker.Close()
	env := []string{
		"FANLINE_QUEUE_BACKEND=kafka",
		"FANLINE_KAFKA_BROKERS=" + strings.Join(broker.ListenAddrs(), ","),
		"FANLINE_KAFKA_REPLICATION=1",
		"FANLINE_PRESENCE_BACKEND=redis",
		"FANLINE_PRESENCE_TTL=10s",
		"FANLINE_DEDUP_BACKEND=redis",
		"FANLINE_REDIS_ADDR=" + testharness.StartRedis(t),
		"FANLINE_AUTH_JWT_SECRET=cluster-test-secret-0123456789abcdef",
		// A cluster turns dev mode off by default; the test's tokens come from it.
		"FANLINE_DEV_MODE=true",
		"FANLINE_LIMITS_RATE_PER_SECOND=-1",
		"FANLINE_LOG_LEVEL=warn",
		// Groups of more than two members are read-fanout: one stream, one push
		// record per partition, delivered by each gateway to its members.
		"FANLINE_FANOUT_WRITE_MAX_MEMBERS=2",
		"FANLINE_FANOUT_WRITE_BACK_MEMBERS=1",
	}
	migrate := exec.Command(testharness.Binary(t), "migrate")
	migrate.Env = append(os.Environ(), env...)
	if out, err := migrate.CombinedOutput(); err != nil {
		t.Fatalf("migrate: %v\n%s", err, out)
	}
	dir := t.TempDir()
	dispatchAddr := testharness.FreeAddr(t)
	dispatchEnv := append([]string{"FANLINE_ROLES=dispatch", "FANLINE_NODE_ID=0"}, env...)
	pipeline := testharness.StartServer(t, dispatchAddr, filepath.Join(dir, "dispatch"), dispatchEnv...)
	var gateways []string
	for node := 1; node <= 2; node++ {
		// As a Kubernetes Deployment runs them: one node_id, a name of their own.
		g := testharness.StartServer(t, testharness.FreeAddr(t), filepath.Join(dir, fmt.Sprintf("gateway-%d", node)),
			append([]string{"FANLINE_ROLES=gateway", "FANLINE_NODE_ID=1", fmt.Sprintf("FANLINE_NODE_NAME=gateway-pod-%d", node),
				"FANLINE_CLUSTER_DISPATCH_URL=" + pipeline.URL()}, env...)...)
		gateways = append(gateways, g.URL())
	}

	users := []string{"u0", "u1", "u2", "u3"} // u0, u2 on gateway 1; u1, u3 on gateway 2
	index := map[string]int{}
	clients := make([]*client.Client, len(users))
	for i, u := range users {
		index[u] = i
		// No backstop sync: what reaches a device is pushed through the other
		// gateway, or fetched when a push shows a gap.
		c, err := client.Connect(context.Background(), client.Config{URL: gateways[i%2], Token: token(t, gateways[i%2], u),
			BackstopSync: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		clients[i] = c
	}
	// Each device's stream of entries, collected as it arrives.
	var mu sync.Mutex
	got := make([][]wire.Entry, len(users))
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var readers sync.WaitGroup
	for i, c := range clients {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for {
				select {
				case e := <-c.Entries():
					mu.Lock()
					got[i] = append(got[i], e)
					mu.Unlock()
				case <-ctx.Done():
					return
				}
			}
		}()
	}

	const perUser = 500
	var acked atomic.Int64
	ackedIDs := make([]map[string]wire.ID, len(users)) // per sender: client_msg_id -> msg_id
	var senders sync.WaitGroup
	for i, c := range clients {
		ackedIDs[i] = map[string]wire.ID{}
		senders.Add(1)
		go func() {
			defer senders.Done()
			for k := 0; k < perUser; k++ {
				to := users[(i+1+k%3)%len(users)]
				cmid := fmt.Sprintf("%s-%04d", users[i], k)
				sctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
				res, err := c.Send(sctx, wire.SendRequest{ClientMsgID: cmid, To: to, Type: "text", Body: text(cmid)})
				cancel()
				if err != nil {
					t.Errorf("send %s: %v", cmid, err)
					return
				}
				mu.Lock()
				ackedIDs[i][cmid] = res.MsgID
				mu.Unlock()
				acked.Add(1)
			}
		}()
	}
	total := perUser * len(users)
	testharness.WaitFor(t, 2*time.Minute, "600 acks", func() bool { return acked.Load() >= 600 })
	pipeline.Kill()
	t.Logf("killed the dispatch process with %d of %d sends acknowledged", acked.Load(), total)
	testharness.StartServer(t, dispatchAddr, filepath.Join(dir, "dispatch"), dispatchEnv...)
	senders.Wait()
	if t.Failed() {
		return
	}

	// Every device ends up with its whole timeline: its own 500 messages and the ones
	// sent to it.
	want := make([]int, len(users))
	for i := range users {
		want[i] += perUser
		for k := 0; k < perUser; k++ {
			want[(i+1+k%3)%len(users)]++
		}
	}
	messages := func(i int) int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, e := range got[i] {
			if e.Kind == wire.KindMessage {
				n++
			}
		}
		return n
	}
	testharness.WaitFor(t, 2*time.Minute, "every device's timeline", func() bool {
		for i := range users {
			if messages(i) < want[i] {
				return false
			}
		}
		return true
	})
	stop()
	readers.Wait()
	for i, u := range users {
		seen := map[string]bool{}
		last := map[string]string{}
		n := 0
		for j, e := range got[i] {
			if e.Seq != uint64(j+1) {
				t.Fatalf("%s: entry %d has seq %d", u, j, e.Seq)
			}
			if e.Kind != wire.KindMessage {
				continue
			}
			n++
			if seen[e.ClientMsgID] {
				t.Fatalf("%s: %s delivered twice", u, e.ClientMsgID)
			}
			seen[e.ClientMsgID] = true
			if e.ClientMsgID <= last[e.From] {
				t.Fatalf("%s: %s after %s from %s", u, e.ClientMsgID, last[e.From], e.From)
			}
			last[e.From] = e.ClientMsgID
			if id := ackedIDs[index[e.From]][e.ClientMsgID]; id != e.MsgID {
				t.Fatalf("%s: %s acknowledged as %s, delivered as %s", u, e.ClientMsgID, id, e.MsgID)
			}
		}
		if n != want[i] {
			t.Fatalf("%s: %d messages, want %d", u, n, want[i])
		}
	}

	// A read-fanout group with members on both gateways. Its members were indexed
	// by the gateways through the relayed membership change.
	gctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	g, err := clients[0].CreateGroup(gctx, "everyone", "u1", "u2", "u3")
	if err != nil || g.Fanout != "read" {
		t.Fatalf("group: %+v %v", g, err)
	}
	const groupMsgs = 20
	for k := 0; k < groupMsgs; k++ {
		cmid := fmt.Sprintf("g-%02d", k)
		if _, err := clients[1].Send(gctx, wire.SendRequest{ClientMsgID: cmid, ConversationID: g.GroupID, Type: "text", Body: text(cmid)}); err != nil {
			t.Fatal(err)
		}
	}
	for i, c := range clients {
		var seqs []uint64
		for len(seqs) < groupMsgs {
			select {
			case e := <-c.Entries():
				if e.Kind != wire.KindMessage || e.ConversationID != g.GroupID {
					continue
				}
				if want := fmt.Sprintf("g-%02d", len(seqs)); e.ClientMsgID != want || (len(seqs) > 0 && e.GroupSeq <= seqs[len(seqs)-1]) {
					t.Fatalf("%s: group message %s (group_seq %d) where %s was due, after %v", users[i], e.ClientMsgID, e.GroupSeq, want, seqs)
				}
				seqs = append(seqs, e.GroupSeq)
			case <-gctx.Done():
				t.Fatalf("%s: %d of %d group messages", users[i], len(seqs), groupMsgs)
			}
		}
	}

	// The badge, through the internal API, agrees with the conversation list.
	for i, c := range clients {
		badge, err := c.Unread(gctx)
		if err != nil {
			t.Fatal(err)
		}
		list, err := c.Conversations(gctx)
		if err != nil || badge.TotalUnread != list.TotalUnread {
			t.Fatalf("%s: badge %+v, conversations total %d, %v", users[i], badge, list.TotalUnread, err)
		}
	}

	// Customer service across the nodes: admin and buyer on one gateway, the agents
	// on the other; routing, presence and cs events go through the dispatch node.
	customerServiceChat(t, gateways[0], gateways[1])
	// Typing frames go from one gateway through the dispatch node to the other.
	typing(t, gateways[0], gateways[1])
	cannedResponses(t, gateways[0], gateways[1])
}
