package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fanline/fanline/client"
	"github.com/fanline/fanline/internal/config"
	"github.com/fanline/fanline/internal/testharness"
	"github.com/fanline/fanline/internal/wire"
	"github.com/fanline/fanline/server"
	"github.com/gorilla/websocket"
	"github.com/twmb/franz-go/pkg/kfake"
)

// readFanout makes groups of more than two members read-fanout.
func readFanout(c *config.Config) { c.Fanout.WriteMaxMembers, c.Fanout.WriteBackMembers = 2, 1 }

// rawSocket is a device that reads the server's frames as they come, without the
// SDK's syncing: what the gateway pushes to it and nothing else. Its reader
// goroutine ends when the socket closes (at the test's cleanup).
type rawSocket struct {
	t       *testing.T
	entries chan wire.Entry
	done    chan error // the reader's end
}

func dialRaw(t *testing.T, base, user string) (*rawSocket, error) {
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(base, "http")+"/v1/ws?token="+token(t, base, user), nil)
	if err != nil {
		return nil, err
	}
	s := &rawSocket{t: t, entries: make(chan wire.Entry, 1024), done: make(chan error, 1)}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			_, b, err := ws.ReadMessage()
			if err != nil {
				s.done <- err
				return
			}
			var f wire.ServerFrame
			if err := json.Unmarshal(b, &f); err != nil {
				s.done <- fmt.Errorf("frame %s: %w", b, err)
				return
			}
			if f.Type == wire.FrameMessage && f.Entry != nil {
				select {
				case s.entries <- *f.Entry:
				case <-stop:
					return
				}
			}
		}
	}()
	t.Cleanup(func() {
		close(stop)
		ws.Close()
		wg.Wait()
	})
	return s, nil
}

// next returns the next pushed entry, or false after timeout.
func (s *rawSocket) next(timeout time.Duration) (wire.Entry, bool) {
	s.t.Helper()
	select {
	case e := <-s.entries:
		return e, true
	case err := <-s.done:
		s.t.Fatalf("socket: %v", err)
	case <-time.After(timeout):
	}
	return wire.Entry{}, false
}

// until reads pushed entries until the message msg arrives and returns the ones
// before it.
func (s *rawSocket) until(msg wire.ID) []wire.Entry {
	s.t.Helper()
	var before []wire.Entry
	for {
		e, ok := s.next(20 * time.Second)
		if !ok {
			s.t.Fatalf("no message %s", msg)
		}
		if e.MsgID == msg {
			return before
		}
		before = append(before, e)
	}
}

// groupMessagesIn returns the message entries of group g among es.
func groupMessagesIn(es []wire.Entry, g wire.ID) []wire.Entry {
	var out []wire.Entry
	for _, e := range es {
		if e.Kind == wire.KindMessage && e.ConversationID == g {
			out = append(out, e)
		}
	}
	return out
}

// sendText sends text from c to a group or a user and returns the ack.
func sendText(t *testing.T, c *client.Client, group wire.ID, to, body string) wire.SendResult {
	t.Helper()
	res, err := c.Send(context.Background(), wire.SendRequest{GroupID: group, To: to, Type: "text", Body: text(body)})
	if err != nil {
		t.Fatalf("send %s: %v", body, err)
	}
	return res
}

// waitGroupMessage waits for message id of group g on c.
func waitGroupMessage(t *testing.T, c *client.Client, g, id wire.ID) {
	t.Helper()
	for {
		if e := nextMessage(t, c); e.ConversationID == g && e.MsgID == id {
			return
		}
	}
}

// TestRemovedMemberGetsNoPush: in a read-fanout group, a member removed gets none of
// the group's messages sent after the removal's ack on their open WebSocket, while
// the remaining members get them. The gateway checks its group index once per
// membership version, not per message.
func TestRemovedMemberGetsNoPush(t *testing.T) {
	ts := startServer(t, readFanout)
	owner, al := connect(t, ts.URL, "owner"), connect(t, ts.URL, "al")
	bob, err := dialRaw(t, ts.URL, "bob")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	g, err := owner.CreateGroup(ctx, "big", "al", "bob", "cy")
	if err != nil || g.Fanout != "read" {
		t.Fatalf("create: %+v %v", g, err)
	}
	m1 := sendText(t, owner, g.GroupID, "", "before")
	bob.until(m1.MsgID)
	if _, err := owner.ChangeMembers(ctx, g.GroupID, wire.MembersRequest{Remove: []string{"bob"}}); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		waitGroupMessage(t, al, g.GroupID, sendText(t, owner, g.GroupID, "", fmt.Sprint("after-", i)).MsgID)
	}
	marker := sendText(t, owner, 0, "bob", "marker")
	if got := groupMessagesIn(bob.until(marker.MsgID), g.GroupID); len(got) > 0 {
		t.Fatalf("bob, removed, got the group's messages %+v", got)
	}
	// Versions 1 (created) and 2 (bob removed): one check each.
	if n := metric(t, ts.URL, `fanline_group_member_checks_total{result="ok"}`); n != 2 {
		t.Fatalf("%v membership checks, want 2", n)
	}
}

// holdingProxy stands between a gateway node and the dispatch node: it passes every
// internal call through, but holds the answer to a held user's group lookup until
// the test releases it (the gateway reads a connecting user's groups, then
// registers the connection: the race a membership change can fall into).
type holdingProxy struct {
	proxy *httputil.ReverseProxy
	mu    sync.Mutex
	holds map[string]*hold
}

type hold struct {
	answered chan struct{} // closed when the dispatch node has answered
	release  chan struct{} // closed by the test
}

func newHoldingProxy(t *testing.T, target string) *httptest.Server {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &holdingProxy{proxy: httputil.NewSingleHostReverseProxy(u), holds: map[string]*hold{}}
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	return srv
}

// holdGroups arms a hold on user's next group lookup.
func (p *holdingProxy) holdGroups(user string) *hold {
	p.mu.Lock()
	defer p.mu.Unlock()
	h := &hold{answered: make(chan struct{}), release: make(chan struct{})}
	p.holds[user] = h
	return h
}

func (p *holdingProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !strings.HasSuffix(r.URL.Path, "/user_groups_at") {
		p.proxy.ServeHTTP(w, r)
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	var args struct {
		User string `json:"user"`
	}
	_ = json.Unmarshal(body, &args)
	p.mu.Lock()
	h := p.holds[args.User]
	delete(p.holds, args.User)
	p.mu.Unlock()
	if h == nil {
		p.proxy.ServeHTTP(w, r)
		return
	}
	rec := httptest.NewRecorder()
	p.proxy.ServeHTTP(rec, r)
	close(h.answered)
	<-h.release
	for k, vs := range rec.Header() {
		w.Header()[k] = vs
	}
	w.WriteHeader(rec.Code)
	_, _ = w.Write(rec.Body.Bytes())
}

// TestRemovedWhileConnectingSplit runs the split deployment in-process (a dispatch
// node and a gateway-only node on a Kafka-protocol broker and Redis; the gateway
// reaches the dispatch node through a proxy) and removes a member of a read-fanout
// group while their device connects: after the gateway read their groups, before it
// registered the connection, and after it heard of the removal. None of the group's
// later messages may reach that device.
func TestRemovedWhileConnectingSplit(t *testing.T) {
	broker, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer broker.Close()
	redisAddr := testharness.StartRedis(t)
	yes := true
	cluster := func(c *config.Config) {
		c.Queue.Backend, c.Kafka.Brokers, c.Kafka.Replication = "kafka", broker.ListenAddrs(), 1
		c.Presence.Backend, c.Dedup.Backend, c.Redis.Addr = "redis", "redis", redisAddr
		c.Auth.JWTSecret = "split-test-secret-0123456789abcdef"
		c.DevMode = &yes
		readFanout(c)
	}
	cfg, _ := config.Load("", nil)
	cluster(&cfg)
	if err := server.Migrate(cfg, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	dispatchNode := startServer(t, func(c *config.Config) {
		cluster(c)
		c.Roles = []string{config.RoleDispatch}
	})
	proxySrv := newHoldingProxy(t, dispatchNode.URL)
	proxy := proxySrv.Config.Handler.(*holdingProxy)
	gw := startServer(t, func(c *config.Config) {
		cluster(c)
		c.Roles = []string{config.RoleGateway}
		c.Cluster.DispatchURL = proxySrv.URL
	})
	ctx := context.Background()
	owner, al := connect(t, gw.URL, "owner"), connect(t, gw.URL, "al")
	g, err := owner.CreateGroup(ctx, "big", "al", "bob", "cy")
	if err != nil || g.Fanout != "read" {
		t.Fatalf("create: %+v %v", g, err)
	}
	waitGroupMessage(t, al, g.GroupID, sendText(t, owner, g.GroupID, "", "before").MsgID)

	h := proxy.holdGroups("bob")
	type dialed struct {
		s   *rawSocket
		err error
	}
	bobCh := make(chan dialed, 1)
	go func() {
		s, err := dialRaw(t, gw.URL, "bob")
		bobCh <- dialed{s, err}
	}()
	select {
	case <-h.answered: // the gateway has bob's groups, the group among them
	case <-time.After(30 * time.Second):
		t.Fatal("the gateway never looked up bob's groups")
	}
	if _, err := owner.ChangeMembers(ctx, g.GroupID, wire.MembersRequest{Remove: []string{"bob"}}); err != nil {
		close(h.release)
		t.Fatal(err)
	}
	// Pushed after the removal's hint: the gateway has heard of it, with no
	// connection of bob's to apply it to.
	waitGroupMessage(t, al, g.GroupID, sendText(t, owner, g.GroupID, "", "removed").MsgID)
	close(h.release)
	d := <-bobCh
	if d.err != nil {
		t.Fatal(d.err)
	}
	bob := d.s
	// bob's connection is registered once a direct message reaches it.
	var seen []wire.Entry
	testharness.WaitFor(t, 30*time.Second, "a direct message to reach bob", func() bool {
		probe := sendText(t, owner, 0, "bob", "probe")
		for {
			e, ok := bob.next(2 * time.Second)
			if !ok {
				return false
			}
			seen = append(seen, e)
			if e.MsgID == probe.MsgID {
				return true
			}
		}
	})
	after := sendText(t, owner, g.GroupID, "", "after")
	waitGroupMessage(t, al, g.GroupID, after.MsgID)
	marker := sendText(t, owner, 0, "bob", "marker")
	seen = append(seen, bob.until(marker.MsgID)...)
	if got := groupMessagesIn(seen, g.GroupID); len(got) > 0 {
		t.Fatalf("bob, removed while connecting, got the group's messages %+v", got)
	}
}
