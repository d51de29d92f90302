package e2e

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fanline/fanline/client"
	"github.com/fanline/fanline/internal/auth"
	"github.com/fanline/fanline/internal/config"
	"github.com/fanline/fanline/internal/wire"
	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"
)

func wsURL(base string) string { return "ws" + strings.TrimPrefix(base, "http") + "/v1/ws" }

// TestWebSocketAuth: the token may come in the Authorization header, the
// subprotocol list (browsers) or a first auth frame; ?token= still works. Bad
// tokens, operators and foreign origins are refused.
func TestWebSocketAuth(t *testing.T) {
	ts := startServer(t, nil)
	ctx := context.Background()
	tok, err := client.DevToken(ctx, ts.URL, "ann", "", "")
	if err != nil {
		t.Fatal(err)
	}
	ops, _ := client.DevToken(ctx, ts.URL, "ops", wire.RoleOperator, "")
	readFrame := func(ws *websocket.Conn) wire.ServerFrame {
		t.Helper()
		ws.SetReadDeadline(time.Now().Add(5 * time.Second))
		var f wire.ServerFrame
		if err := ws.ReadJSON(&f); err != nil {
			t.Fatalf("read: %v", err)
		}
		return f
	}
	ping := func(ws *websocket.Conn) {
		t.Helper()
		ws.WriteJSON(map[string]string{"type": "ping", "id": "p"})
		if f := readFrame(ws); f.Type != wire.FramePong {
			t.Fatalf("ping answered %+v", f)
		}
	}

	// The subprotocol: the server selects "fanline".
	d := websocket.Dialer{Subprotocols: []string{"fanline", "bearer." + tok}}
	ws, resp, err := d.Dial(wsURL(ts.URL), nil)
	if err != nil || resp.Header.Get("Sec-WebSocket-Protocol") != "fanline" {
		t.Fatalf("subprotocol dial: %v %v", err, resp.Header)
	}
	ping(ws)
	ws.Close()

	// The first frame.
	ws, _, err = websocket.DefaultDialer.Dial(wsURL(ts.URL), nil)
	if err != nil {
		t.Fatal(err)
	}
	ws.WriteJSON(map[string]string{"type": "auth", "id": "a", "token": tok})
	if f := readFrame(ws); f.Type != wire.FrameAck || f.ID != "a" {
		t.Fatalf("auth frame answered %+v", f)
	}
	ping(ws)
	ws.WriteJSON(map[string]string{"type": "auth", "id": "b", "token": tok})
	if f := readFrame(ws); f.Type != wire.FrameError || f.Code != wire.CodeInvalidField {
		t.Fatalf("a second auth frame: %+v", f)
	}
	ws.Close()

	// A bad token in the first frame: an error frame, then close 4001.
	ws, _, err = websocket.DefaultDialer.Dial(wsURL(ts.URL), nil)
	if err != nil {
		t.Fatal(err)
	}
	ws.WriteJSON(map[string]string{"type": "auth", "token": "not.a.token"})
	if f := readFrame(ws); f.Type != wire.FrameError || f.Code != wire.CodeInvalidToken {
		t.Fatalf("bad auth frame answered %+v", f)
	}
	_, _, err = ws.ReadMessage()
	if ce, ok := err.(*websocket.CloseError); !ok || ce.Code != 4001 {
		t.Fatalf("after a bad token: %v", err)
	}
	ws.Close()
	// Something else first: refused the same way.
	ws, _, _ = websocket.DefaultDialer.Dial(wsURL(ts.URL), nil)
	ws.WriteJSON(map[string]string{"type": "ping"})
	if f := readFrame(ws); f.Code != wire.CodeMissingToken {
		t.Fatalf("ping first: %+v", f)
	}
	ws.Close()

	// ?token= is kept for old clients.
	ws, _, err = websocket.DefaultDialer.Dial(wsURL(ts.URL)+"?token="+tok, nil)
	if err != nil {
		t.Fatal(err)
	}
	ping(ws)
	ws.Close()

	// An operator has no conversations; a bad token in the request is refused before
	// the upgrade; a browser page of another origin may not connect.
	for name, h := range map[string]http.Header{
		"operator":       {"Authorization": {"Bearer " + ops}},
		"bad token":      {"Authorization": {"Bearer x.y.z"}},
		"foreign origin": {"Authorization": {"Bearer " + tok}, "Origin": {"https://evil.example.com"}},
	} {
		_, resp, err := websocket.DefaultDialer.Dial(wsURL(ts.URL), h)
		want := map[string]int{"operator": 403, "bad token": 401, "foreign origin": 403}[name]
		if err == nil || resp == nil || resp.StatusCode != want {
			t.Errorf("%s: %v, want HTTP %d", name, err, want)
		}
	}
	// The console's own origin is allowed.
	h := http.Header{"Authorization": {"Bearer " + tok}, "Origin": {ts.URL}}
	if ws, _, err := websocket.DefaultDialer.Dial(wsURL(ts.URL), h); err != nil {
		t.Fatalf("same origin: %v", err)
	} else {
		ws.Close()
	}
}

// TestConnectionCaps: a user's WebSockets on a node are capped; past the cap the
// handshake answers 429 with Retry-After.
func TestConnectionCaps(t *testing.T) {
	ts := startServer(t, func(c *config.Config) { c.Limits.MaxConnsPerUser = 2 })
	tok := token(t, ts.URL, "ann")
	h := http.Header{"Authorization": {"Bearer " + tok}}
	var open []*websocket.Conn
	for i := 0; i < 2; i++ {
		ws, _, err := websocket.DefaultDialer.Dial(wsURL(ts.URL), h)
		if err != nil {
			t.Fatal(err)
		}
		open = append(open, ws)
	}
	_, resp, err := websocket.DefaultDialer.Dial(wsURL(ts.URL), h)
	if err == nil || resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("a third connection: %v %v", err, resp)
	}
	open[0].Close()
	waitDial := time.Now().Add(5 * time.Second)
	for {
		ws, _, err := websocket.DefaultDialer.Dial(wsURL(ts.URL), h)
		if err == nil {
			ws.Close()
			break
		}
		if time.Now().After(waitDial) {
			t.Fatalf("after closing one: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	open[1].Close()
}

// TestAdminListener: with admin_addr, /metrics leaves the public port.
func TestAdminListener(t *testing.T) {
	ts := startServer(t, func(c *config.Config) { c.AdminAddr = "127.0.0.1:0"; c.DebugPprof = true })
	for path, want := range map[string]int{"/metrics": 404, "/debug/pprof/": 404, "/healthz": 200} {
		if got := status(t, "GET", ts.URL+path, "", nil); got != want {
			t.Errorf("public %s: %d, want %d", path, got, want)
		}
	}
	admin := "http://" + ts.srv.AdminAddr()
	for _, path := range []string{"/metrics", "/debug/pprof/"} {
		if got := status(t, "GET", admin+path, "", nil); got != 200 {
			t.Errorf("admin %s: %d", path, got)
		}
	}
}

// TestIdentityProviderTokens: with only an identity provider's JWKS configured, dev
// mode is off, RS256 tokens it signs work over HTTP and the WebSocket, and HS256
// tokens of any secret are refused.
func TestIdentityProviderTokens(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	b64 := base64.RawURLEncoding.EncodeToString
	jwks, _ := json.Marshal(map[string]any{"keys": []map[string]string{{"kty": "RSA", "kid": "k1", "use": "sig", "alg": "RS256",
		"n": b64(key.N.Bytes()), "e": b64(big.NewInt(int64(key.E)).Bytes())}}})
	file := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(file, jwks, 0o600); err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, func(c *config.Config) {
		c.Auth.JWKSFile, c.Auth.Issuer, c.Auth.Audience = file, "https://id.example.com", "fanline"
	})
	sign := func(sub, iss string) string {
		tk := jwt.NewWithClaims(jwt.SigningMethodRS256, auth.Claims{Role: wire.RoleBuyer, RegisteredClaims: jwt.RegisteredClaims{
			Subject: sub, Issuer: iss, Audience: jwt.ClaimStrings{"fanline"}, ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour))}})
		tk.Header["kid"] = "k1"
		s, err := tk.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	if got := status(t, "POST", ts.URL+"/v1/dev/token", "", map[string]string{"user_id": "x"}); got != 404 {
		t.Fatalf("dev token with an identity provider configured: %d", got)
	}
	ctx := context.Background()
	ann, err := client.Connect(ctx, client.Config{URL: ts.URL, Token: sign("ann", "https://id.example.com")})
	if err != nil {
		t.Fatal(err)
	}
	defer ann.Close()
	if _, err := ann.Send(ctx, wire.SendRequest{To: "bob", Type: "text", Body: text("hi")}); err != nil {
		t.Fatal(err)
	}
	if got := status(t, "GET", ts.URL+"/v1/sync", sign("ann", "https://other.example.com"), nil); got != 401 {
		t.Fatalf("a token of another issuer: %d", got)
	}
	hs, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, auth.Claims{Role: wire.RoleBuyer, RegisteredClaims: jwt.RegisteredClaims{
		Subject: "ann", Issuer: "https://id.example.com", Audience: jwt.ClaimStrings{"fanline"},
		ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour))}}).SignedString([]byte(strings.Repeat("s", 32)))
	if got := status(t, "GET", ts.URL+"/v1/sync", hs, nil); got != 401 {
		t.Fatalf("an HS256 token: %d", got)
	}
}

// TestOpenChatUnknownShop: opening a chat with a shop that has no customer service
// answers shop_not_found and leaves no conversation behind.
func TestOpenChatUnknownShop(t *testing.T) {
	ts := startServer(t, nil)
	ctx := context.Background()
	carla := connect(t, ts.URL, "carla")
	for i := 0; i < 3; i++ {
		_, err := carla.OpenChat(ctx, "nope-"+string(rune('a'+i)), wire.OpenChatRequest{Entry: "product", Text: "hello?"})
		wantCode(t, "open a chat with an unknown shop", err, wire.CodeShopMissing)
	}
	list, err := carla.Conversations(ctx)
	if err != nil || len(list.Conversations) != 0 {
		t.Fatalf("conversations after refused opens: %+v %v", list, err)
	}
}

// TestTrickledBody: a client that sends its body a byte at a time cannot hold a
// handler past gateway.read_timeout: the server closes the connection.
func TestTrickledBody(t *testing.T) {
	ts := startServer(t, func(c *config.Config) { c.Gateway.ReadTimeout = config.Duration(500 * time.Millisecond) })
	tok := token(t, ts.URL, "ann")
	conn, err := net.Dial("tcp", strings.TrimPrefix(ts.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /v1/messages HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Length: 1000\r\n\r\n{", tok)
	start := time.Now()
	buf := make([]byte, 4096)
	for time.Since(start) < 10*time.Second {
		if _, err := conn.Write([]byte(" ")); err != nil {
			break // closed by the server
		}
		conn.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		if _, err := conn.Read(buf); err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			break // answered and closed, or reset
		}
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("a trickled body held the connection for %v", took)
	}
}
