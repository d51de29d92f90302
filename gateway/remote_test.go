package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

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

var ann = wire.Principal{ID: "ann", Role: wire.RoleAgent, Shop: "acme"}

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

func TestInternalAPI(t *testing.T) {
	srv := httptest.NewServer(InternalHandler(fakeService{}, fakeService{}, "k3y"))
	defer srv.Close()
	r, err := NewRemote(RemoteConfig{URL: srv.URL, Key: "k3y"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	res, err := r.Send(ctx, ann, "ann", wire.SendRequest{ClientMsgID: "again", To: "bob"})
	if err != nil || res.MsgID != 42 || res.ConversationID != 7 || !res.Duplicate {
		t.Fatalf("send: %+v %v", res, err)
	}
	code := func(err error) wire.Code {
		var we *wire.Error
		if !errors.As(err, &we) {
			t.Fatalf("not a wire error: %v", err)
		}
		return we.Code
	}
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
	agents, err := r.Agents("acme")
	if err != nil || !strings.Contains(string(agents.(json.RawMessage)), "acme-ann") {
		t.Fatalf("agents: %s %v", agents, err)
	}
	// A call the service does not answer, or with its arguments missing, is an
	// error, not a crash.
	if _, err := r.Conversations(ctx, ann); code(err) != wire.CodeMissingField {
		t.Fatalf("unanswered call: %v", err)
	}

	bad, _ := NewRemote(RemoteConfig{URL: srv.URL, Key: "wrong"})
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
