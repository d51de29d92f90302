package gateway

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/fanline/fanline/internal/testharness"
	"github.com/fanline/fanline/internal/wire"
)

// fakeService answers a few calls; the embedded nil interfaces make any other call
// panic, which the internal API turns into an error.
type fakeService struct {
	Service
	CS
}

func (fakeService) Send(_ context.Context, who wire.Principal, from string, req wire.SendRequest) (wire.SendResult, error) {
	if req.To == "" {
		return wire.SendResult{}, wire.Errorf(wire.CodeMissingField, "to or conversation_id is required")
	}
	// The principal crosses whole: role and shop too.
	dup := who == ann && from == "ann" && req.ClientMsgID == "again"
	return wire.SendResult{MsgID: 42, ConversationID: 7, Duplicate: dup}, nil
}

// CheckMembers answers that of group 9's users asked about, ann is a member.
func (fakeService) CheckMembers(_ context.Context, group uint64, users []string) (wire.MemberCheck, error) {
	out := wire.MemberCheck{Version: 3, Members: []string{}}
	for _, u := range users {
		if group == 9 && u == "ann" {
			out.Members = append(out.Members, u)
		}
	}
	return out, nil
}

var ann = wire.Principal{ID: "ann", Role: wire.RoleAgent, Shop: "acme"}

// UserGroups answers that ann is in groups 9 (at version 3) and 12 (at version 5).
func (fakeService) UserGroups(_ context.Context, inbox string) ([]wire.GroupVersion, error) {
	if inbox != "ann" {
		return nil, nil
	}
	return []wire.GroupVersion{{Group: 9, Version: 3}, {Group: 12, Version: 5}}, nil
}

func (fakeService) MarkRead(context.Context, wire.Principal, uint64, uint64) (int, error) {
	return 0, wire.Errorf(wire.CodeNotParticipant, "not yours")
}

func (fakeService) SetRules(shop string, body []byte) (any, error) {
	if shop != "acme" || !strings.Contains(string(body), "skills") {
		return nil, errors.New("unexpected call")
	}
	return nil, &wire.Error{Code: wire.CodeInvalidRules, Message: "2 problems",
		Problems: []wire.Problem{{Field: "skills[0].strategy", Message: "unknown"}, {Field: "entries.order", Message: "no skill"}}}
}

func (fakeService) Agents(shop string) (any, error) {
	return map[string]any{"agents": []string{shop + "-ann"}}, nil
}

// Unread fails as a broken store would: an error without a code.
func (fakeService) Unread(context.Context, wire.Principal) (wire.UnreadCounts, error) {
	return wire.UnreadCounts{}, errors.New("pebble: disk on fire")
}

// code is the wire code of err, failing the test if it has none.
func code(t *testing.T, err error) wire.Code {
	t.Helper()
	var we *wire.Error
	if !errors.As(err, &we) {
		t.Fatalf("not a wire error: %v", err)
	}
	return we.Code
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func TestInternalAPI(t *testing.T) {
	srv := httptest.NewServer(InternalHandler(fakeService{}, fakeService{}, InternalConfig{Key: "k3y", Logger: quiet}))
	defer srv.Close()
	r, err := NewRemote(RemoteConfig{URL: srv.URL, Key: "k3y", Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	res, err := r.Send(ctx, ann, "ann", wire.SendRequest{ClientMsgID: "again", To: "bob"})
	if err != nil || res.MsgID != 42 || res.ConversationID != 7 || !res.Duplicate {
		t.Fatalf("send: %+v %v", res, err)
	}
	code := func(err error) wire.Code { return code(t, err) }
	bad, _ := NewRemote(RemoteConfig{URL: srv.URL, Key: "wrong", Logger: quiet})
	if _, err := r.Send(ctx, ann, "ann", wire.SendRequest{}); code(err) != wire.CodeMissingField {
		t.Fatalf("a service error crosses as itself: %v", err)
	}
	if _, err := r.MarkRead(ctx, ann, 1, 2); code(err) != wire.CodeNotParticipant {
		t.Fatalf("mark read: %v", err)
	}
	_, err = r.SetRules("acme", []byte(`{"skills":[]}`))
	var we *wire.Error
	if !errors.As(err, &we) || we.Code != wire.CodeInvalidRules || len(we.Problems) != 2 || we.Problems[1].Field != "entries.order" {
		t.Fatalf("rules problems: %#v", err)
	}
	check, err := r.CheckMembers(ctx, 9, []string{"ann", "bob"})
	if err != nil || check.Version != 3 || len(check.Members) != 1 || check.Members[0] != "ann" {
		t.Fatalf("check members: %+v %v", check, err)
	}
	if _, err := bad.CheckMembers(ctx, 9, []string{"ann"}); code(err) != wire.CodeForbidden {
		t.Fatalf("check members with a wrong key: %v", err)
	}
	groups, err := r.UserGroups(ctx, "ann")
	if err != nil || len(groups) != 2 || groups[1] != (wire.GroupVersion{Group: 12, Version: 5}) {
		t.Fatalf("user groups: %+v %v", groups, err)
	}
	// A gateway older than user_groups_at asks user_groups: the ids alone.
	var old []uint64
	if err := r.call(ctx, "user_groups", rpcArgs{User: "ann"}, &old); err != nil || len(old) != 2 || old[0] != 9 || old[1] != 12 {
		t.Fatalf("user groups as an older gateway asks: %v %v", old, err)
	}
	agents, err := r.Agents("acme")
	if err != nil || !strings.Contains(string(agents.(json.RawMessage)), "acme-ann") {
		t.Fatalf("agents: %s %v", agents, err)
	}
	// A call the service does not answer, or with its arguments missing, is an
	// error, not a crash.
	if _, err := r.Conversations(ctx, ann); code(err) != wire.CodeMissingField {
		t.Fatalf("unanswered call: %v", err)
	}

	if _, err := bad.MarkRead(ctx, ann, 1, 2); code(err) != wire.CodeForbidden {
		t.Fatalf("wrong key: %v", err)
	}
	resp, err := http.Post(srv.URL+internalPrefix+"nope", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("keyless call: %d", resp.StatusCode)
	}

	srv.Close()
	if _, err := r.Send(ctx, ann, "ann", wire.SendRequest{To: "bob"}); code(err) != wire.CodeUnavailable {
		t.Fatalf("dispatch node down: %v", err)
	}
}

// TestInternalAPIOverTLS: a dispatch node serving the internal API with a
// certificate from the cluster's CA is reached by a Remote trusting that CA; a
// Remote trusting only the system roots gets unavailable; with the CA asked for
// client certificates, a gateway without one is refused.
func TestInternalAPIOverTLS(t *testing.T) {
	ca := testharness.NewCA(t)
	serve := func(cfg InternalConfig, tc *tls.Config) *httptest.Server {
		srv := httptest.NewUnstartedServer(InternalHandler(fakeService{}, fakeService{}, cfg))
		srv.TLS = tc
		srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes
		srv.StartTLS()
		t.Cleanup(srv.Close)
		return srv
	}
	remote := func(url string, tc *tls.Config) *Remote {
		r, err := NewRemote(RemoteConfig{URL: url, Key: "k3y", TLS: tc, Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	ctx := context.Background()
	serverCert := ca.Issue(t, "127.0.0.1").TLS
	srv := serve(InternalConfig{Key: "k3y", Logger: quiet},
		&tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{serverCert}})
	if !strings.HasPrefix(srv.URL, "https://127.0.0.1:") {
		t.Fatalf("server URL %s", srv.URL)
	}

	res, err := remote(srv.URL, &tls.Config{RootCAs: ca.Pool()}).Send(ctx, ann, "ann", wire.SendRequest{ClientMsgID: "again", To: "bob"})
	if err != nil || res.MsgID != 42 || !res.Duplicate {
		t.Fatalf("send over TLS: %+v %v", res, err)
	}
	if _, err := remote(srv.URL, nil).Send(ctx, ann, "ann", wire.SendRequest{To: "bob"}); code(t, err) != wire.CodeUnavailable {
		t.Fatalf("a certificate from an unknown CA is unavailable: %v", err)
	}
	if _, err := NewRemote(RemoteConfig{URL: "http://127.0.0.1:1", Key: "k3y", TLS: &tls.Config{}}); err == nil {
		t.Fatal("TLS for an http URL accepted")
	}

	// Mutual TLS: client certificates verified when given, required by the API.
	mutual := serve(InternalConfig{Key: "k3y", RequireClientCert: true, Logger: quiet},
		&tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{serverCert},
			ClientCAs: ca.Pool(), ClientAuth: tls.VerifyClientCertIfGiven})
	gwCert := ca.Issue(t, "gateway-1").TLS
	withCert := remote(mutual.URL, &tls.Config{RootCAs: ca.Pool(), Certificates: []tls.Certificate{gwCert}})
	if _, err := withCert.Send(ctx, ann, "ann", wire.SendRequest{To: "bob"}); err != nil {
		t.Fatalf("send with a client certificate: %v", err)
	}
	if _, err := remote(mutual.URL, &tls.Config{RootCAs: ca.Pool()}).Send(ctx, ann, "ann", wire.SendRequest{To: "bob"}); code(t, err) != wire.CodeForbidden {
		t.Fatalf("no client certificate: %v", err)
	}
	stranger := testharness.NewCA(t).Issue(t, "gateway-x").TLS
	if _, err := remote(mutual.URL, &tls.Config{RootCAs: ca.Pool(), Certificates: []tls.Certificate{stranger}}).
		Send(ctx, ann, "ann", wire.SendRequest{To: "bob"}); code(t, err) != wire.CodeUnavailable {
		t.Fatalf("a client certificate from another CA fails the handshake: %v", err)
	}
}

// syncBuffer is a log destination written by a server's goroutines and read by
// the test.
type syncBuffer struct {
	mu sync.Mutex // guards b
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestInternalErrorsLogged: an error of the dispatch side's making is logged
// there with the request id, method and cause, and on the gateway side with the
// same id; the answer carries the id; errors the caller caused are not logged.
func TestInternalErrorsLogged(t *testing.T) {
	var dispatchLog, gatewayLog syncBuffer
	srv := httptest.NewServer(InternalHandler(fakeService{}, fakeService{},
		InternalConfig{Key: "k3y", Logger: slog.New(slog.NewTextHandler(&dispatchLog, nil))}))
	defer srv.Close()
	r, err := NewRemote(RemoteConfig{URL: srv.URL, Key: "k3y", Logger: slog.New(slog.NewTextHandler(&gatewayLog, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	// Caused by the caller: nothing logged on either side.
	if _, err := r.MarkRead(ctx, ann, 1, 2); code(t, err) != wire.CodeNotParticipant {
		t.Fatalf("mark read: %v", err)
	}
	if _, err := r.Send(ctx, ann, "ann", wire.SendRequest{}); code(t, err) != wire.CodeMissingField {
		t.Fatalf("send: %v", err)
	}
	if dispatchLog.String() != "" || gatewayLog.String() != "" {
		t.Fatalf("client errors logged:\n%s\n%s", dispatchLog.String(), gatewayLog.String())
	}

	// The store fails: the client sees internal without the cause; both sides log
	// the same request id.
	_, err = r.Unread(ctx, ann)
	if code(t, err) != wire.CodeInternal || strings.Contains(err.Error(), "disk on fire") {
		t.Fatalf("unread: %v", err)
	}
	id := regexp.MustCompile(`request_id=([0-9a-f]{32})`)
	gw := id.FindStringSubmatch(gatewayLog.String())
	if gw == nil || !strings.Contains(gatewayLog.String(), "level=ERROR") || !strings.Contains(gatewayLog.String(), "method=unread") {
		t.Fatalf("gateway log: %s", gatewayLog.String())
	}
	d := dispatchLog.String()
	if !strings.Contains(d, "request_id="+gw[1]) || !strings.Contains(d, "level=ERROR") ||
		!strings.Contains(d, "method=unread") || !strings.Contains(d, "disk on fire") {
		t.Fatalf("dispatch log lacks request %s, method and cause: %s", gw[1], d)
	}

	// The answer repeats the caller's id, or makes one.
	post := func(reqID string) *http.Response {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+internalPrefix+"unread", strings.NewReader(`{"who":{"id":"ann"}}`))
		req.Header.Set(nodeKeyHeader, "k3y")
		if reqID != "" {
			req.Header.Set(requestIDHeader, reqID)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if resp := post("trace-0001"); resp.StatusCode != http.StatusInternalServerError || resp.Header.Get(requestIDHeader) != "trace-0001" {
		t.Fatalf("answer: %d %q", resp.StatusCode, resp.Header.Get(requestIDHeader))
	}
	if !strings.Contains(dispatchLog.String(), "request_id=trace-0001") {
		t.Fatalf("dispatch log: %s", dispatchLog.String())
	}
	if got := post("").Header.Get(requestIDHeader); !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(got) {
		t.Fatalf("made-up request id %q", got)
	}
	if got := post("bad id; level=ERROR").Header.Get(requestIDHeader); !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(got) {
		t.Fatalf("an implausible request id is replaced: %q", got)
	}

	// A caller without the node key is refused with a warning.
	stranger, _ := NewRemote(RemoteConfig{URL: srv.URL, Key: "wrong", Logger: quiet})
	if _, err := stranger.Unread(ctx, ann); code(t, err) != wire.CodeForbidden {
		t.Fatalf("wrong key: %v", err)
	}
	if d := dispatchLog.String(); !strings.Contains(d, "level=WARN") || !strings.Contains(d, "refused") {
		t.Fatalf("a refused caller is not logged: %s", d)
	}

	// Unreachable: logged on the gateway with a new request id.
	srv.Close()
	before := len(id.FindAllString(gatewayLog.String(), -1))
	if _, err := r.Group(ctx, ann, 1); code(t, err) != wire.CodeUnavailable {
		t.Fatalf("dispatch node down: %v", err)
	}
	g := gatewayLog.String()
	ids := id.FindAllStringSubmatch(g, -1)
	if len(ids) != before+1 || ids[len(ids)-1][1] == gw[1] || !strings.Contains(g, "unreachable") || !strings.Contains(g, "method=group") {
		t.Fatalf("gateway log after the dispatch node went away: %s", g)
	}
}

// TestInternalKeyRotation: while the secret is rotated the dispatch node accepts the
// node key of the previous secret too, and nothing else.
func TestInternalKeyRotation(t *testing.T) {
	srv := httptest.NewServer(InternalHandler(fakeService{}, fakeService{}, InternalConfig{Key: "new", PreviousKey: "old"}))
	defer srv.Close()
	ctx := context.Background()
	for key, want := range map[string]wire.Code{"new": wire.CodeNotParticipant, "old": wire.CodeNotParticipant, "other": wire.CodeForbidden} {
		r, err := NewRemote(RemoteConfig{URL: srv.URL, Key: key})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.MarkRead(ctx, ann, 1, 2); wire.AsError(err).Code != want {
			t.Errorf("key %q: %v, want %s", key, err, want)
		}
	}
}
