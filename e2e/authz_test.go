package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fanline/fanline/client"
	"github.com/fanline/fanline/internal/testharness"
	"github.com/fanline/fanline/internal/wire"
	"github.com/gorilla/websocket"
)

// The principals of the authorisation matrix, in its column order.
var principals = []struct{ name, user, role, shop string }{
	{"anonymous", "", "", ""},
	{"buyer", "carla", wire.RoleBuyer, ""},      // the chat's buyer, the group's owner
	{"stranger", "mallory", wire.RoleBuyer, ""}, // a buyer in neither
	{"agent", "ann", wire.RoleAgent, "acme"},    // acme's agent serving the chat
	{"agent@zeta", "pat", wire.RoleAgent, "zeta"},
	{"pat-buyer", "pat", wire.RoleBuyer, ""}, // on acme's agent list, with a buyer token
	{"admin", "boss", wire.RoleAdmin, "acme"},
	{"admin@zeta", "boss2", wire.RoleAdmin, "zeta"},
	{"operator", "ops", wire.RoleOperator, ""},
}

// authzMatrix is the expected status of every route for each principal above. pat
// is on acme's agent list: with a buyer token, or an agent token of another shop, he
// reads nothing of acme's (the first two rows of the bug this table closes are the
// history and receipts rows).
var authzMatrix = map[string]string{
	//                                       anon buyer strgr agent a@zeta patB admin ad@zeta oper
	"GET /healthz":                                  "200 200 200 200 200 200 200 200 200",
	"GET /readyz":                                   "200 200 200 200 200 200 200 200 200",
	"GET /metrics":                                  "200 200 200 200 200 200 200 200 200",
	"GET /":                                         "200 200 200 200 200 200 200 200 200",
	"GET /console/*file":                            "200 200 200 200 200 200 200 200 200",
	"GET /demo/shop/:shop_id":                       "200 200 200 200 200 200 200 200 200",
	"POST /v1/dev/token":                            "200 200 200 200 200 200 200 200 200",
	"GET /v1/ws":                                    "101 101 101 101 101 101 101 101 403",
	"POST /v1/messages":                             "401 200 403 200 403 403 403 403 403",
	"GET /v1/sync":                                  "401 200 200 200 200 200 200 200 403",
	"GET /v1/conversations":                         "401 200 200 200 200 200 200 200 403",
	"GET /v1/unread":                                "401 200 200 200 200 200 200 200 403",
	"GET /v1/conversations/:id/messages":            "401 200 403 200 403 403 200 403 403",
	"POST /v1/conversations/:id/read":               "401 200 403 200 403 403 404 403 403",
	"POST /v1/messages/:id/recall":                  "401 200 404 403 404 404 403 404 403",
	"GET /v1/messages/:id/receipts":                 "401 200 404 200 404 404 200 404 403",
	"GET /v1/presence":                              "401 200 200 200 200 200 200 200 403",
	"POST /v1/groups":                               "401 200 200 403 403 200 403 403 403",
	"GET /v1/groups/:id":                            "401 200 403 403 403 403 403 403 403",
	"POST /v1/groups/:id/members":                   "401 200 403 403 403 403 403 403 403",
	"POST /v1/shops/:shop_id/chats":                 "401 200 200 403 403 403 403 403 403",
	"PUT /v1/agents/me/status":                      "401 403 403 200 404 403 403 403 403",
	"GET /v1/agents/me/conversations":               "401 403 403 200 404 403 403 403 403",
	"POST /v1/cs/conversations/:id/transfer":        "401 403 403 200 404 403 200 404 403",
	"POST /v1/cs/conversations/:id/close":           "401 403 403 200 404 403 200 404 403",
	"GET /v1/admin/shops/:shop_id/routing":          "401 403 403 403 403 403 200 403 403",
	"PUT /v1/admin/shops/:shop_id/routing":          "401 403 403 403 403 403 200 403 403",
	"POST /v1/admin/shops/:shop_id/routing/dry-run": "401 403 403 403 403 403 200 403 403",
	"GET /v1/admin/shops/:shop_id/agents":           "401 403 403 200 403 403 200 403 403",
	"PUT /v1/admin/shops/:shop_id/agents":           "401 403 403 403 403 403 200 403 403",
	"GET /v1/admin/shops/:shop_id/canned":           "401 403 403 200 403 403 200 403 403",
	"PUT /v1/admin/shops/:shop_id/canned":           "401 403 403 403 403 403 200 403 403",
	"GET /v1/admin/shops/:shop_id/audit":            "401 403 403 403 403 403 200 403 403",
	"GET /v1/admin/shops/:shop_id/live":             "401 403 403 403 403 403 200 403 403",
	"GET /v1/conversations/:id/export":              "401 200 404 403 403 404 200 404 403",
	"GET /v1/admin/shops/:shop_id/holds/:id":        "401 403 403 403 403 403 200 403 403",
	"PUT /v1/admin/shops/:shop_id/holds/:id":        "401 403 403 403 403 403 200 403 403",
	"DELETE /v1/admin/shops/:shop_id/holds/:id":     "401 403 403 403 403 403 200 403 403",
	"GET /v1/ops/holds":                             "401 403 403 403 403 403 403 403 200",
	"GET /v1/ops/holds/:id":                         "401 403 403 403 403 403 403 403 200",
	"PUT /v1/ops/holds/:id":                         "401 403 403 403 403 403 403 403 200",
	"DELETE /v1/ops/holds/:id":                      "401 403 403 403 403 403 403 403 200",
	// The upload's own URL token authorises its PUT, whoever sends it; only the
	// uploader (carla) finds her upload: it is not multipart (409 for parts), and
	// completing a stored upload again answers it.
	"POST /v1/uploads":                      "401 200 403 200 403 403 403 403 403",
	"PUT /v1/uploads/:object_key":           "200 200 200 200 200 200 200 200 200",
	"POST /v1/uploads/:object_key/parts":    "401 409 404 404 404 404 404 404 403",
	"POST /v1/uploads/:object_key/complete": "401 200 404 404 404 404 404 404 403",
	"GET /v1/media/:object_key":             "401 200 404 200 404 404 200 404 403",
}

// TestAuthorizationMatrix calls every route of the served API as every principal and
// checks each status against authzMatrix; a route without a row, or a row without a
// route, fails.
func TestAuthorizationMatrix(t *testing.T) {
	ts := startServer(t, nil)
	ctx := context.Background()
	tokens := map[string]string{}
	for _, p := range principals[1:] {
		tok, err := client.DevToken(ctx, ts.URL, p.user, p.role, p.shop)
		if err != nil {
			t.Fatal(err)
		}
		tokens[p.name] = tok
	}
	rules := map[string]any{"skills": []map[string]any{{"name": "sales"}}, "entries": map[string]any{"product": map[string]any{"skill": "sales"}}}
	agents := map[string]any{"agents": []map[string]any{{"agent_id": "ann", "skills": []string{"sales"}, "capacity": 100},
		{"agent_id": "pat", "skills": []string{"sales"}, "capacity": 1}}}
	admin := client.NewAdmin(ts.URL, "acme", tokens["admin"])
	if err := admin.PutAgents(ctx, agents, nil); err != nil {
		t.Fatal(err)
	}
	if err := admin.PutRouting(ctx, rules, nil); err != nil {
		t.Fatal(err)
	}
	zeta := client.NewAdmin(ts.URL, "zeta", tokens["admin@zeta"])
	if err := zeta.PutAgents(ctx, map[string]any{"agents": []map[string]any{{"agent_id": "zed", "skills": []string{"sales"}, "capacity": 1}}}, nil); err != nil {
		t.Fatal(err)
	}
	if err := zeta.PutRouting(ctx, rules, nil); err != nil {
		t.Fatal(err)
	}
	ann, err := client.Connect(ctx, client.Config{URL: ts.URL, Token: tokens["agent"], BackstopSync: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer ann.Close()
	if err := ann.SetStatus(ctx, "online"); err != nil {
		t.Fatal(err)
	}
	carla, err := client.Connect(ctx, client.Config{URL: ts.URL, Token: tokens["buyer"], BackstopSync: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer carla.Close()
	// openChat opens a chat of buyer with acme, assigned to ann, with buyer's first message.
	var buyers int
	openChat := func(text string) wire.ID {
		buyers++
		b := carla
		if buyers > 1 {
			b = connect(t, ts.URL, "buyer"+strconv.Itoa(buyers))
		}
		st, err := b.OpenChat(ctx, "acme", wire.OpenChatRequest{Entry: "product", Text: text})
		if err != nil || st.AgentID != "ann" {
			t.Fatalf("open chat: %+v %v", st, err)
		}
		return st.ConversationID
	}
	chat := openChat("my secret address is 1 Elm St")
	var hist wire.HistoryResult
	testharness.WaitFor(t, 10*time.Second, "the buyer's first message", func() bool {
		hist, err = carla.History(ctx, chat, 0, 10)
		return err == nil && len(hist.Messages) == 1
	})
	msg := hist.Messages[0].MsgID
	// The agent's inbox has the message, so the agent can mark it read.
	testharness.WaitFor(t, 10*time.Second, "ann's copy", func() bool {
		res, err := ann.SyncPage(ctx, "", 10)
		return err == nil && len(res.Entries) > 0
	})
	recallable, err := carla.Send(ctx, wire.SendRequest{ConversationID: chat, Type: "text", Body: text("oops")})
	if err != nil {
		t.Fatal(err)
	}
	group, err := carla.CreateGroup(ctx, "family", "dave")
	if err != nil {
		t.Fatal(err)
	}

	// A file carla sent in the chat, and uploads of hers waiting for their bytes.
	sent, err := carla.Upload(ctx, chat, strings.NewReader("hi!"), 3, "text/plain", "hi.txt")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := carla.Send(ctx, wire.SendRequest{ConversationID: chat, Type: "file",
		Body: []byte(`{"object_key":"` + sent + `","mime_type":"text/plain","size":3,"name":"hi.txt"}`)}); err != nil {
		t.Fatal(err)
	}
	pending := func() string {
		up := postUpload(t, ts.URL, tokens["buyer"], wire.UploadRequest{ConversationID: chat, MimeType: "text/plain", Size: 3})
		return strings.TrimPrefix(up.UploadURL, ts.URL)
	}

	var n int
	unique := func() string { n++; return "m" + strconv.Itoa(n) }
	// call builds the request of a route: its path with parameters, and a valid body.
	call := func(method, path string) (string, any) {
		id := func(v wire.ID) string { return strconv.FormatUint(uint64(v), 10) }
		switch method + " " + path {
		case "POST /v1/dev/token":
			return path, map[string]string{"user_id": "someone"}
		case "POST /v1/messages":
			return path, map[string]any{"client_msg_id": unique(), "conversation_id": id(chat), "type": "text", "body": map[string]string{"text": "hi"}}
		case "GET /v1/presence":
			return path + "?users=carla", nil
		case "GET /console/*file":
			return "/console/app.js", nil
		case "POST /v1/conversations/:id/read":
			return strings.Replace(path, ":id", id(chat), 1), map[string]string{"msg_id": id(msg)}
		case "POST /v1/messages/:id/recall":
			return strings.Replace(path, ":id", id(recallable.MsgID), 1), nil
		case "GET /v1/messages/:id/receipts":
			return strings.Replace(path, ":id", id(msg), 1), nil
		case "POST /v1/groups":
			return path, map[string]any{"name": "g", "members": []string{"erin"}}
		case "POST /v1/groups/:id/members":
			return strings.Replace(path, ":id", id(group.GroupID), 1), map[string]any{"add": []string{"erin"}}
		case "POST /v1/shops/:shop_id/chats":
			return strings.Replace(path, ":shop_id", "acme", 1), map[string]any{"entry": "product"}
		case "PUT /v1/agents/me/status":
			return path, map[string]string{"status": "online"}
		case "POST /v1/cs/conversations/:id/transfer":
			return strings.Replace(path, ":id", id(openChat("transfer me")), 1), map[string]string{"agent_id": "ann"}
		case "POST /v1/cs/conversations/:id/close":
			return strings.Replace(path, ":id", id(openChat("close me")), 1), map[string]any{}
		case "PUT /v1/admin/shops/:shop_id/routing":
			return strings.Replace(path, ":shop_id", "acme", 1), rules
		case "PUT /v1/admin/shops/:shop_id/agents":
			return strings.Replace(path, ":shop_id", "acme", 1), agents
		case "PUT /v1/admin/shops/:shop_id/canned":
			return strings.Replace(path, ":shop_id", "acme", 1), map[string]any{"responses": []map[string]string{{"shortcut": "hi", "text": "Hello"}}}
		case "POST /v1/admin/shops/:shop_id/routing/dry-run":
			return strings.Replace(path, ":shop_id", "acme", 1), map[string]string{"entry": "product"}
		case "POST /v1/uploads":
			return path, map[string]any{"conversation_id": id(chat), "mime_type": "text/plain", "size": 3}
		case "PUT /v1/uploads/:object_key":
			return pending(), rawBody{"text/plain", "abc"}
		case "POST /v1/uploads/:object_key/parts", "POST /v1/uploads/:object_key/complete":
			return strings.Replace(path, ":object_key", sent, 1), map[string]any{}
		case "GET /v1/media/:object_key":
			return strings.Replace(path, ":object_key", sent, 1), nil
		}
		path = strings.Replace(path, ":shop_id", "acme", 1)
		if strings.HasPrefix(path, "/v1/groups/") {
			return strings.Replace(path, ":id", id(group.GroupID), 1), nil
		}
		return strings.Replace(path, ":id", id(chat), 1), nil
	}

	routes := ts.srv.Routes()
	seen := map[string]bool{}
	for _, rt := range routes {
		key := rt.Method + " " + rt.Path
		seen[key] = true
		row, ok := authzMatrix[key]
		if !ok {
			t.Errorf("route %s (%s) has no row in the authorisation matrix", key, rt.Access)
			continue
		}
		want := strings.Fields(row)
		if len(want) != len(principals) {
			t.Fatalf("row %s has %d cells for %d principals", key, len(want), len(principals))
		}
		for i, p := range principals {
			got := 0
			if rt.Path == "/v1/ws" {
				got = dialStatus(t, ts.URL, tokens[p.name])
			} else {
				path, body := call(rt.Method, rt.Path)
				got = status(t, rt.Method, ts.URL+path, tokens[p.name], body)
			}
			if strconv.Itoa(got) != want[i] {
				t.Errorf("%s as %s: got %d, want %s", key, p.name, got, want[i])
			}
		}
	}
	for key := range authzMatrix {
		if !seen[key] {
			t.Errorf("the matrix has a row for %s, which is not served", key)
		}
	}
	t.Logf("authorisation matrix: %d routes x %d principals checked", len(routes), len(principals))
}

// rawBody is a request body sent as it is, of a content type.
type rawBody struct{ mime, body string }

// status makes one request and returns its HTTP status. A body is sent as JSON,
// or a rawBody as it is.
func status(t *testing.T, method, url, token string, body any) int {
	t.Helper()
	var rd io.Reader
	raw, isRaw := body.(rawBody)
	switch {
	case isRaw:
		rd = strings.NewReader(raw.body)
	case body != nil:
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, url, rd)
	if isRaw {
		req.Header.Set("Content-Type", raw.mime)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// dialStatus opens a WebSocket with the token in the handshake and returns the
// handshake's HTTP status (101 when it upgraded).
func dialStatus(t *testing.T, base, token string) int {
	t.Helper()
	h := http.Header{}
	if token != "" {
		h.Set("Authorization", "Bearer "+token)
	}
	ws, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(base, "http")+"/v1/ws", h)
	if err == nil {
		ws.Close()
	}
	if resp == nil {
		t.Fatalf("dial: %v", err)
	}
	return resp.StatusCode
}

// TestShopChatClaims is the reported leak: pat is on acme's agent list; a buyer
// token for pat and an agent token for pat in another shop read nothing of an acme
// chat, neither its history nor by sync or push, while pat's acme token does.
func TestShopChatClaims(t *testing.T) {
	ts := startServer(t, nil)
	ctx := context.Background()
	adminTok, err := client.DevToken(ctx, ts.URL, "boss", wire.RoleAdmin, "acme")
	if err != nil {
		t.Fatal(err)
	}
	admin := client.NewAdmin(ts.URL, "acme", adminTok)
	if err := admin.PutAgents(ctx, map[string]any{"agents": []map[string]any{
		{"agent_id": "pat", "skills": []string{"sales"}, "capacity": 5}}}, nil); err != nil {
		t.Fatal(err)
	}
	if err := admin.PutRouting(ctx, map[string]any{"skills": []map[string]any{{"name": "sales"}},
		"entries": map[string]any{"order": map[string]any{"skill": "sales"}}}, nil); err != nil {
		t.Fatal(err)
	}
	agent := connectAs(t, ts.URL, "pat", wire.RoleAgent, "acme")
	if err := agent.SetStatus(ctx, "online"); err != nil {
		t.Fatal(err)
	}
	asBuyer := connectAs(t, ts.URL, "pat", wire.RoleBuyer, "")
	elsewhere := connectAs(t, ts.URL, "pat", wire.RoleAgent, "zeta")
	buyer := connectAs(t, ts.URL, "carla", "", "")
	chat, err := buyer.OpenChat(ctx, "acme", wire.OpenChatRequest{Entry: "order", Text: "my secret address is 1 Elm St"})
	if err != nil || chat.AgentID != "pat" {
		t.Fatalf("open: %+v %v", chat, err)
	}
	var got []wire.Entry
	testharness.WaitFor(t, 10*time.Second, "pat's acme token to get the message", func() bool {
		messagesOf(agent, chat.ConversationID, &got)
		return len(got) == 1
	})
	if h, err := agent.History(ctx, chat.ConversationID, 0, 10); err != nil || len(h.Messages) != 1 {
		t.Fatalf("pat's acme token reads the history: %+v %v", h, err)
	}
	for name, c := range map[string]*client.Client{"pat's buyer token": asBuyer, "pat's zeta token": elsewhere} {
		_, err := c.History(ctx, chat.ConversationID, 0, 10)
		wantCode(t, name+" reads the history", err, wire.CodeNotParticipant)
		_, err = c.Receipts(ctx, got[0].MsgID)
		wantCode(t, name+" reads receipts", err, wire.CodeMessageMissing)
		res, err := c.SyncPage(ctx, "", 100)
		if err != nil {
			t.Fatal(err)
		}
		var leaked []wire.Entry
		messagesOf(c, chat.ConversationID, &leaked)
		for _, e := range res.Entries {
			if e.ConversationID == chat.ConversationID {
				leaked = append(leaked, e)
			}
		}
		if len(leaked) > 0 {
			t.Fatalf("%s got the chat's entries: %+v", name, leaked)
		}
	}
}
