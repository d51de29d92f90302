package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/fanline/fanline/client"
	"github.com/fanline/fanline/internal/config"
	"github.com/fanline/fanline/internal/testharness"
	"github.com/fanline/fanline/internal/wire"
	"github.com/fanline/fanline/server"
	"github.com/twmb/franz-go/pkg/kfake"
)

// exportIDs exports conv as c in format and returns the msg ids in order, the
// entries by id (jsonl) or rows (csv).
func exportIDs(t *testing.T, c *client.Client, conv wire.ID, format string) ([]wire.ID, map[wire.ID]string, error) {
	t.Helper()
	var buf bytes.Buffer
	if err := c.Export(context.Background(), conv, format, &buf); err != nil {
		return nil, nil, err
	}
	var ids []wire.ID
	rows := map[wire.ID]string{}
	if format == "csv" {
		recs, err := csv.NewReader(&buf).ReadAll()
		if err != nil || len(recs) == 0 || strings.Join(recs[0], ",") != "msg_id,created_at,from,agent_id,kind,type,text,recalled" {
			t.Fatalf("csv export: %v %v", recs, err)
		}
		for _, r := range recs[1:] {
			var id wire.ID
			if err := id.UnmarshalJSON([]byte(`"` + r[0] + `"`)); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, id)
			rows[id] = strings.Join(r[2:], ",")
		}
		return ids, rows, nil
	}
	sc := bufio.NewScanner(&buf)
	for sc.Scan() {
		var e wire.Entry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("jsonl line %q: %v", sc.Text(), err)
		}
		ids = append(ids, e.MsgID)
		rows[e.MsgID] = sc.Text()
	}
	return ids, rows, nil
}

// waitHistory waits until conv's history as c holds n entries.
func waitHistory(t *testing.T, c *client.Client, conv wire.ID, n int) {
	t.Helper()
	testharness.WaitFor(t, 15*time.Second, fmt.Sprintf("%d entries of history", n), func() bool {
		h, err := c.History(context.Background(), conv, 0, 500)
		return err == nil && len(h.Messages) >= n
	})
}

// shopChat configures shop acme on ts and opens a chat of buyer with it, with
// one message; it returns the conversation.
func shopChat(t *testing.T, url string, buyer *client.Client) wire.ID {
	t.Helper()
	ctx := context.Background()
	tok, err := client.DevToken(ctx, url, "boss", wire.RoleAdmin, "acme")
	if err != nil {
		t.Fatal(err)
	}
	admin := client.NewAdmin(url, "acme", tok)
	if err := admin.PutAgents(ctx, map[string]any{"agents": []map[string]any{{"agent_id": "ann", "skills": []string{"sales"}, "capacity": 5}}}, nil); err != nil {
		t.Fatal(err)
	}
	if err := admin.PutRouting(ctx, map[string]any{"skills": []map[string]any{{"name": "sales"}},
		"entries": map[string]any{"order": map[string]any{"skill": "sales"}}}, nil); err != nil {
		t.Fatal(err)
	}
	st, err := buyer.OpenChat(ctx, "acme", wire.OpenChatRequest{Entry: "order", Text: "where is my parcel"})
	if err != nil {
		t.Fatal(err)
	}
	return st.ConversationID
}

// TestExport: a conversation's members export its whole history, oldest first,
// in both formats, a recalled message without its body and a group's events in
// place; a shop's admin exports its shop's chat; a stranger, another shop's admin
// and a buyer not in the chat get 404, an agent and an operator 403.
func TestExport(t *testing.T) {
	ts := startServer(t, nil)
	ctx := context.Background()
	carla, dave := connect(t, ts.URL, "carla"), connect(t, ts.URL, "dave")
	var sent []wire.ID
	for i := range 620 { // more than three pages of the export's reads
		from, to := carla, "dave"
		if i%3 == 0 {
			from, to = dave, "carla"
		}
		res, err := from.Send(ctx, wire.SendRequest{To: to, Type: "text", Body: text(fmt.Sprint("m", i))})
		if err != nil {
			t.Fatal(err)
		}
		sent = append(sent, res.MsgID)
	}
	res, _ := carla.Send(ctx, wire.SendRequest{To: "dave", Type: "text", Body: text("hi")})
	direct := res.ConversationID
	sent = append(sent, res.MsgID)
	if err := carla.Recall(ctx, sent[5]); err != nil {
		t.Fatal(err)
	}
	waitHistory(t, carla, direct, 500)
	testharness.WaitFor(t, 15*time.Second, "the whole export", func() bool {
		ids, _, err := exportIDs(t, carla, direct, "jsonl")
		return err == nil && len(ids) == len(sent)
	})
	for _, format := range []string{"jsonl", "csv"} {
		for _, c := range []*client.Client{carla, dave} {
			ids, rows, err := exportIDs(t, c, direct, format)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(ids) != fmt.Sprint(sent) {
				t.Fatalf("%s export: %d messages, not the %d sent in order", format, len(ids), len(sent))
			}
			recalled, first := rows[sent[5]], rows[sent[1]]
			if format == "jsonl" && (!strings.Contains(recalled, `"recalled":true`) || strings.Contains(recalled, "body") ||
				!strings.Contains(first, `"body":{"text":"m1"}`)) {
				t.Errorf("jsonl: recalled %s, second %s", recalled, first)
			}
			if format == "csv" && (recalled != "carla,,message,,,true" || first != "carla,,message,text,m1,false") {
				t.Errorf("csv: recalled %s, second %s", recalled, first)
			}
		}
	}

	// A group's events are exported in place.
	g, err := carla.CreateGroup(ctx, "trip", "dave")
	if err != nil {
		t.Fatal(err)
	}
	gm, _ := carla.Send(ctx, wire.SendRequest{GroupID: g.GroupID, Type: "text", Body: text("hello group")})
	waitHistory(t, dave, g.GroupID, 2)
	ids, rows, err := exportIDs(t, dave, g.GroupID, "csv")
	if err != nil || len(ids) != 2 || !strings.HasPrefix(rows[ids[0]], "carla,,group_event,") || ids[1] != gm.MsgID {
		t.Fatalf("group export: %v %v %v", ids, rows, err)
	}

	// Headers, and who may export a shop's chat.
	req, _ := http.NewRequest("GET", ts.URL+"/v1/conversations/"+direct.String()+"/export?format=csv", nil)
	req.Header.Set("Authorization", "Bearer "+token(t, ts.URL, "dave"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if cd := resp.Header.Get("Content-Disposition"); resp.StatusCode != 200 || !strings.HasPrefix(cd, "attachment;") ||
		!strings.Contains(cd, "conversation-"+direct.String()+".csv") || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/csv") {
		t.Errorf("export answer %d, headers %v", resp.StatusCode, resp.Header)
	}
	chat := shopChat(t, ts.URL, carla)
	waitHistory(t, carla, chat, 1)
	boss := connectAs(t, ts.URL, "boss", wire.RoleAdmin, "acme")
	if ids, _, err := exportIDs(t, boss, chat, "jsonl"); err != nil || len(ids) != 1 {
		t.Errorf("acme's admin exports its chat: %v %v", ids, err)
	}
	for name, c := range map[string]*client.Client{
		"a stranger":         connect(t, ts.URL, "mallory"),
		"zeta's admin":       connectAs(t, ts.URL, "boss2", wire.RoleAdmin, "zeta"),
		"dave, not the chat": dave,
	} {
		_, _, err := exportIDs(t, c, chat, "jsonl")
		wantCode(t, name+" exports acme's chat", err, wire.CodeConversationMissing)
	}
	_, _, err = exportIDs(t, boss, direct, "csv")
	wantCode(t, "an admin exports a direct chat", err, wire.CodeConversationMissing)
	_, _, err = exportIDs(t, connectAs(t, ts.URL, "ann", wire.RoleAgent, "acme"), chat, "csv")
	wantCode(t, "an agent exports", err, wire.CodeForbidden)
	_, _, err = exportIDs(t, carla, direct, "xml")
	wantCode(t, "format xml", err, wire.CodeInvalidField)
}

// TestHolds: a shop's admin holds its shop's chats only, an operator any
// conversation; `fanline hold` adds, lists and removes the operators' holds.
func TestHolds(t *testing.T) {
	ts := startServer(t, nil)
	ctx := context.Background()
	carla := connect(t, ts.URL, "carla")
	res, err := carla.Send(ctx, wire.SendRequest{To: "dave", Type: "text", Body: text("hi")})
	if err != nil {
		t.Fatal(err)
	}
	direct := res.ConversationID
	chat := shopChat(t, ts.URL, carla)
	tok := func(user, role, shop string) string {
		s, err := client.DevToken(ctx, ts.URL, user, role, shop)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	acme := client.NewAdmin(ts.URL, "acme", tok("boss", wire.RoleAdmin, "acme"))
	zeta := client.NewAdmin(ts.URL, "zeta", tok("boss2", wire.RoleAdmin, "zeta"))
	opsTok := tok("olga", wire.RoleOperator, "")
	ops := client.NewOps(ts.URL, opsTok)

	if h, err := acme.PutHold(ctx, chat, "chargeback"); err != nil || h.Scope != "shop:acme" || h.By != "boss" || h.ConversationID != chat {
		t.Fatalf("acme holds its chat: %+v %v", h, err)
	}
	_, err = acme.PutHold(ctx, direct, "")
	wantCode(t, "acme holds a direct chat", err, wire.CodeConversationMissing)
	_, err = zeta.PutHold(ctx, chat, "")
	wantCode(t, "zeta holds acme's chat", err, wire.CodeConversationMissing)
	_, err = client.NewAdmin(ts.URL, "acme", tok("boss2", wire.RoleAdmin, "zeta")).Hold(ctx, chat)
	wantCode(t, "zeta's admin on acme's path", err, wire.CodeForbidden)
	_, err = client.NewOps(ts.URL, tok("carla", "", "")).ListHolds(ctx, 0, 0)
	wantCode(t, "a buyer lists holds", err, wire.CodeForbidden)
	err = acme.DeleteHold(ctx, direct, "")
	wantCode(t, "acme removes a hold on a direct chat", err, wire.CodeConversationMissing)

	// The CLI, with the operator's token from the environment.
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(testharness.Binary(t), append([]string{"hold"}, args...)...)
		cmd.Env = append(os.Environ(), "FANLINE_URL="+ts.URL, "FANLINE_TOKEN="+opsTok)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("fanline hold %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	if out := run("add", direct.String(), "--reason", "court order 7"); !strings.Contains(out, "court order 7") {
		t.Errorf("hold add printed %q", out)
	}
	run("add", chat.String())
	out := run("list")
	if !strings.Contains(out, direct.String()+"  ops") || !strings.Contains(out, "shop:acme") || strings.Count(out, "\n") != 4 {
		t.Errorf("hold list printed\n%s", out)
	}
	if h, err := acme.Hold(ctx, chat); err != nil || len(h.Holds) != 1 || h.Holds[0].Scope != "shop:acme" {
		t.Errorf("acme sees its own hold only: %+v %v", h, err)
	}
	run("remove", "--reason", "case closed", direct.String())
	if h, err := ops.Hold(ctx, direct); err != nil || len(h.Holds) != 0 {
		t.Errorf("after remove: %+v %v", h, err)
	}
	err = ops.DeleteHold(ctx, direct, "")
	wantCode(t, "removing a removed hold", err, wire.CodeHoldMissing)
	if err := acme.DeleteHold(ctx, chat, "settled"); err != nil {
		t.Fatal(err)
	}
	if out := run("list", chat.String()); !strings.Contains(out, "ops") || strings.Contains(out, "shop:acme") {
		t.Errorf("hold list %s printed\n%s", chat, out)
	}
	cmd := exec.Command(testharness.Binary(t), "hold", "add", "12345")
	cmd.Env = append(os.Environ(), "FANLINE_URL="+ts.URL, "FANLINE_TOKEN="+opsTok)
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "conversation 12345 does not exist") {
		t.Errorf("hold add of a missing conversation: %v %s", err, out)
	}
}

// TestExportAndHoldsSplit: on the split deployment the gateway-only node serves
// the export (paging history through the internal API) and the hold endpoints.
func TestExportAndHoldsSplit(t *testing.T) {
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
	}
	cfg, _ := config.Load("", nil)
	cluster(&cfg)
	if err := server.Migrate(cfg, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	disp := startServer(t, func(c *config.Config) {
		cluster(c)
		c.Roles = []string{config.RoleDispatch}
	})
	gw := startServer(t, func(c *config.Config) {
		cluster(c)
		c.Roles = []string{config.RoleGateway}
		c.Cluster.DispatchURL = disp.URL
	})
	ctx := context.Background()
	carla := connect(t, gw.URL, "carla")
	var sent []wire.ID
	var direct wire.ID
	for i := range 450 {
		res, err := carla.Send(ctx, wire.SendRequest{To: "dave", Type: "text", Body: text(fmt.Sprint("m", i))})
		if err != nil {
			t.Fatal(err)
		}
		sent, direct = append(sent, res.MsgID), res.ConversationID
	}
	waitHistory(t, carla, direct, 450)
	ids, _, err := exportIDs(t, carla, direct, "jsonl")
	if err != nil || fmt.Sprint(ids) != fmt.Sprint(sent) {
		t.Fatalf("split export: %d messages, %v", len(ids), err)
	}
	_, _, err = exportIDs(t, connect(t, gw.URL, "mallory"), direct, "csv")
	wantCode(t, "a stranger exports on the gateway node", err, wire.CodeConversationMissing)
	opsTok, err := client.DevToken(ctx, gw.URL, "olga", wire.RoleOperator, "")
	if err != nil {
		t.Fatal(err)
	}
	ops := client.NewOps(gw.URL, opsTok)
	if _, err := ops.PutHold(ctx, direct, "audit"); err != nil {
		t.Fatal(err)
	}
	list, err := ops.ListHolds(ctx, 0, 10)
	if err != nil || len(list.Conversations) != 1 || list.Conversations[0].Holds[0].Reason != "audit" {
		t.Fatalf("list on the gateway node: %+v %v", list, err)
	}
	if err := ops.DeleteHold(ctx, direct, "done"); err != nil {
		t.Fatal(err)
	}
	wantCode(t, "second remove on the gateway node", ops.DeleteHold(ctx, direct, ""), wire.CodeHoldMissing)
}
