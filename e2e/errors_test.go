package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fanline/fanline/internal/auth"
	"github.com/fanline/fanline/internal/config"
	"github.com/fanline/fanline/internal/testharness"
	"github.com/fanline/fanline/internal/wire"
	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"
)

const testSecret = "test-secret-test-secret-test-secret!"

func call(t *testing.T, method, url, token string, body string) (int, wire.ErrorBody, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var eb wire.ErrorBody
	json.Unmarshal(b, &eb)
	return resp.StatusCode, eb, b
}

// TestHTTPErrorCodes answers every client-caused error code over HTTP, with its status.
func TestHTTPErrorCodes(t *testing.T) {
	ts := startServer(t, func(c *config.Config) {
		off := false
		c.DevMode = &off
		c.Auth.JWTSecret = testSecret
		c.Limits.RatePerSecond, c.Limits.RateBurst = 1, 60
		c.Messages.RecallWindow = config.Duration(time.Millisecond)
	})
	iss, _ := auth.NewIssuer(testSecret, time.Hour)
	tok := func(u string) string {
		s, _ := iss.Issue(auth.User{ID: u, Role: wire.RoleBuyer})
		return s
	}
	ann, bob, cat := tok("ann"), tok("bob"), tok("cat")
	expired, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, auth.Claims{Role: "buyer", RegisteredClaims: jwt.RegisteredClaims{
		Subject: "ann", ExpiresAt: jwt.NewNumericDate(time.Now().Add(-time.Minute))}}).SignedString([]byte(testSecret))

	// One real message from ann to bob to refer to.
	_, _, b := call(t, "POST", ts.URL+"/v1/messages", ann, `{"client_msg_id":"m1","to":"bob","type":"text","body":{"text":"hi"}}`)
	var sent wire.SendResult
	if err := json.Unmarshal(b, &sent); err != nil || sent.MsgID == 0 {
		t.Fatalf("send: %s", b)
	}
	conv, msg := sent.ConversationID.String(), sent.MsgID.String()
	testharness.WaitFor(t, 10*time.Second, "fanout to bob", func() bool {
		code, _, _ := call(t, "POST", ts.URL+"/v1/conversations/"+conv+"/read", bob, `{"msg_id":"`+msg+`"}`)
		return code == 200
	})
	testharness.WaitFor(t, time.Second, "the recall window to pass", func() bool { return time.Since(sent.CreatedAt) > 5*time.Millisecond })

	big := `{"client_msg_id":"big","to":"bob","type":"text","body":{"text":"` + strings.Repeat("x", 70<<10) + `"}}`
	huge := `{"client_msg_id":"big","to":"bob","type":"text","body":{"text":"` + strings.Repeat("x", 100<<10) + `"}}`
	for _, tc := range []struct {
		name, method, path, token, body string
		code                            wire.Code
	}{
		{"no token", "GET", "/v1/sync", "", "", wire.CodeMissingToken},
		{"bad token", "GET", "/v1/sync", "xyz", "", wire.CodeInvalidToken},
		{"expired token", "GET", "/v1/sync", expired, "", wire.CodeTokenExpired},
		{"dev token off", "POST", "/v1/dev/token", "", `{"user_id":"x"}`, wire.CodeDevModeOff},
		{"no route", "GET", "/v1/nothing", ann, "", wire.CodeNotFound},
		{"wrong method", "DELETE", "/v1/messages", ann, "", wire.CodeMethodNotAllowed},
		{"malformed json", "POST", "/v1/messages", ann, `{"to":`, wire.CodeBadJSON},
		{"unknown field", "POST", "/v1/messages", ann, `{"client_msg_id":"a","to":"bob","type":"text","body":{"text":"x"},"urgent":true}`, wire.CodeUnknownField},
		{"missing client_msg_id", "POST", "/v1/messages", ann, `{"to":"bob","type":"text","body":{"text":"x"}}`, wire.CodeMissingField},
		{"missing type", "POST", "/v1/messages", ann, `{"client_msg_id":"a","to":"bob","body":{"text":"x"}}`, wire.CodeMissingField},
		{"missing body", "POST", "/v1/messages", ann, `{"client_msg_id":"a","to":"bob","type":"text"}`, wire.CodeMissingField},
		{"two targets", "POST", "/v1/messages", ann, `{"client_msg_id":"a","to":"bob","conversation_id":"` + conv + `","type":"text","body":{"text":"x"}}`, wire.CodeInvalidField},
		{"bad type", "POST", "/v1/messages", ann, `{"client_msg_id":"a","to":"bob","type":"sticker","body":{}}`, wire.CodeInvalidField},
		{"blank text", "POST", "/v1/messages", ann, `{"client_msg_id":"a","to":"bob","type":"text","body":{"text":"  "}}`, wire.CodeInvalidField},
		{"image without size", "POST", "/v1/messages", ann, `{"client_msg_id":"a","to":"bob","type":"image","body":{"url":"u","mime_type":"image/png"}}`, wire.CodeMissingField},
		{"video with image mime", "POST", "/v1/messages", ann, `{"client_msg_id":"a","to":"bob","type":"video","body":{"url":"u","mime_type":"image/png","size":1}}`, wire.CodeInvalidField},
		{"file without name", "POST", "/v1/messages", ann, `{"client_msg_id":"a","to":"bob","type":"file","body":{"object_key":"k","mime_type":"application/pdf","size":1}}`, wire.CodeMissingField},
		{"body not an object", "POST", "/v1/messages", ann, `{"client_msg_id":"a","to":"bob","type":"custom","body":[1]}`, wire.CodeInvalidField},
		{"bad client_msg_id", "POST", "/v1/messages", ann, `{"client_msg_id":"a b","to":"bob","type":"text","body":{"text":"x"}}`, wire.CodeInvalidField},
		{"bad user id", "POST", "/v1/messages", ann, `{"client_msg_id":"a","to":"bob smith","type":"text","body":{"text":"x"}}`, wire.CodeInvalidUserID},
		{"to self", "POST", "/v1/messages", ann, `{"client_msg_id":"a","to":"ann","type":"text","body":{"text":"x"}}`, wire.CodeInvalidRecipient},
		{"as someone else", "POST", "/v1/messages", ann, `{"client_msg_id":"a","to":"bob","from":"bob","type":"text","body":{"text":"x"}}`, wire.CodeSenderMismatch},
		{"oversize body", "POST", "/v1/messages", ann, big, wire.CodeMessageTooLarge},
		{"oversize request", "POST", "/v1/messages", ann, huge, wire.CodeMessageTooLarge},
		{"unknown conversation", "POST", "/v1/messages", ann, `{"client_msg_id":"a","conversation_id":"12345","type":"text","body":{"text":"x"}}`, wire.CodeConversationMissing},
		{"not a participant", "POST", "/v1/messages", cat, `{"client_msg_id":"a","conversation_id":"` + conv + `","type":"text","body":{"text":"x"}}`, wire.CodeNotParticipant},
		{"unknown group", "POST", "/v1/messages", ann, `{"client_msg_id":"a","group_id":"5","type":"text","body":{"text":"x"}}`, wire.CodeGroupMissing},
		{"bad cursor", "GET", "/v1/sync?cursor=zz", ann, "", wire.CodeInvalidCursor},
		{"bad limit", "GET", "/v1/sync?limit=0", ann, "", wire.CodeInvalidField},
		{"bad conversation id", "GET", "/v1/conversations/abc/messages", ann, "", wire.CodeInvalidField},
		{"history not a participant", "GET", "/v1/conversations/" + conv + "/messages", cat, "", wire.CodeNotParticipant},
		{"read missing msg_id", "POST", "/v1/conversations/" + conv + "/read", bob, `{}`, wire.CodeMissingField},
		{"read unknown message", "POST", "/v1/conversations/" + conv + "/read", bob, `{"msg_id":"77"}`, wire.CodeMessageMissing},
		{"recall by another", "POST", "/v1/messages/" + msg + "/recall", bob, "", wire.CodeNotSender},
		{"recall too late", "POST", "/v1/messages/" + msg + "/recall", ann, "", wire.CodeRecallWindowPassed},
		{"receipts of a stranger's message", "GET", "/v1/messages/" + msg + "/receipts", cat, "", wire.CodeMessageMissing},
		{"presence of bad id", "GET", "/v1/presence?users=a,b%20c", ann, "", wire.CodeInvalidUserID},
		{"presence of nobody", "GET", "/v1/presence", ann, "", wire.CodeInvalidField},
	} {
		status, eb, raw := call(t, tc.method, ts.URL+tc.path, tc.token, tc.body)
		if eb.Error == nil || eb.Error.Code != tc.code || status != tc.code.Status() || eb.Error.Message == "" {
			t.Errorf("%s: HTTP %d %s; want %d %s", tc.name, status, raw, tc.code.Status(), tc.code)
		}
	}

	// Rate limit: a burst of 60, then 429 with Retry-After.
	var codes []int
	dan := tok("dan")
	for i := 0; i < 62; i++ {
		status, _, _ := call(t, "POST", ts.URL+"/v1/messages", dan, fmt.Sprintf(`{"client_msg_id":"r%d","to":"bob","type":"text","body":{"text":"x"}}`, i))
		codes = append(codes, status)
	}
	if codes[0] != 200 || codes[61] != http.StatusTooManyRequests {
		t.Errorf("rate limit: statuses %v", codes)
	}
}

// TestOverloaded sheds sends past the in-flight limit with 503 overloaded.
func TestOverloaded(t *testing.T) {
	ts := startServer(t, func(c *config.Config) { c.Limits.MaxInFlightSends = 1 })
	var mu sync.Mutex
	seen := map[int]int{}
	var wg sync.WaitGroup
	for u := 0; u < 8; u++ {
		wg.Add(1)
		go func(u int) {
			defer wg.Done()
			tok := token(t, ts.URL, fmt.Sprintf("u%d", u))
			for i := 0; i < 30; i++ {
				status, eb, _ := call(t, "POST", ts.URL+"/v1/messages", tok, fmt.Sprintf(`{"client_msg_id":"o%d","to":"sink","type":"text","body":{"text":"x"}}`, i))
				if status != 200 && (eb.Error == nil || eb.Error.Code != wire.CodeOverloaded) {
					t.Errorf("status %d %+v", status, eb.Error)
				}
				mu.Lock()
				seen[status]++
				mu.Unlock()
			}
		}(u)
	}
	wg.Wait()
	if seen[200] == 0 || seen[http.StatusServiceUnavailable] == 0 {
		t.Fatalf("statuses %v: want both accepted and shed sends", seen)
	}
}

// TestWebSocketErrorCodes answers bad frames with error frames carrying the frame id,
// and keeps the connection open.
func TestWebSocketErrorCodes(t *testing.T) {
	ts := startServer(t, nil)
	ws := dialWS(t, ts.URL, token(t, ts.URL, "ann"))
	big := `{"type":"send","id":"big","message":{"client_msg_id":"b","to":"bob","type":"text","body":{"text":"` + strings.Repeat("x", 70<<10) + `"}}}`
	for _, tc := range []struct {
		frame, id string
		code      wire.Code
	}{
		{`{"type":`, "", wire.CodeBadJSON},
		{`{"type":"dance","id":"1"}`, "1", wire.CodeUnknownFrame},
		{`{"type":"ping","id":"2","extra":1}`, "2", wire.CodeUnknownField},
		{`{"id":"3"}`, "3", wire.CodeMissingField},
		{`{"type":"send","id":"4","message":{"client_msg_id":"a","to":"bob","type":"text","body":{"text":1}}}`, "4", wire.CodeInvalidField},
		{`{"type":"send","id":"5","message":{"client_msg_id":"a","to":"bob","from":"eve","type":"text","body":{"text":"x"}}}`, "5", wire.CodeSenderMismatch},
		{big, "big", wire.CodeMessageTooLarge},
		{`{"type":"sync","id":"6","cursor":"!!"}`, "6", wire.CodeInvalidCursor},
		{`{"type":"read","id":"7","conversation_id":"9","msg_id":"9"}`, "7", wire.CodeConversationMissing},
		{`{"type":"read","id":"8"}`, "8", wire.CodeMissingField},
	} {
		if err := ws.WriteMessage(websocket.TextMessage, []byte(tc.frame)); err != nil {
			t.Fatal(err)
		}
		f := readFrame(t, ws)
		if f.Type != wire.FrameError || f.ID != tc.id || f.Code != tc.code || f.Message == "" {
			t.Errorf("%.60s: got %+v, want error %s id %q", tc.frame, f, tc.code, tc.id)
		}
	}
	ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"ping","id":"p"}`))
	if f := readFrame(t, ws); f.Type != wire.FramePong || f.ID != "p" {
		t.Fatalf("after errors, ping answered with %+v", f)
	}
}

type rawFrame struct {
	Type    string          `json:"type"`
	ID      string          `json:"id"`
	Code    wire.Code       `json:"code"`
	Message string          `json:"message"`
	Result  json.RawMessage `json:"result"`
	Entry   *wire.Entry     `json:"entry"`
	Cursor  string          `json:"cursor"`
}

func dialWS(t *testing.T, url, tok string) *websocket.Conn {
	t.Helper()
	ws, _, err := websocket.DefaultDialer.Dial(strings.Replace(url, "http", "ws", 1)+"/v1/ws?token="+tok, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	return ws
}

func readFrame(t *testing.T, ws *websocket.Conn) rawFrame {
	t.Helper()
	ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, b, err := ws.ReadMessage()
	if err != nil {
		t.Fatalf("read frame: %v", err)
	}
	var f rawFrame
	if err := json.NewDecoder(bytes.NewReader(b)).Decode(&f); err != nil {
		t.Fatalf("frame %s: %v", b, err)
	}
	return f
}
