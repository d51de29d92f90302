package gateway

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/fanline/fanline/internal/wire"
)

// The internal API lets a gateway node that runs without the pipeline (roles:
// gateway) serve its clients from a dispatch node: each Service and CS call is one
// POST /internal/v1/<method> with a JSON rpcArgs body, answered with the JSON result
// or the usual error body. Callers authenticate with a key shared by the cluster
// (header X-Fanline-Node-Key); the API belongs on a private network all the same,
// and can run over TLS, with client certificates (RemoteConfig.TLS,
// InternalConfig.RequireClientCert).
//
// Every call carries a request id (header X-Fanline-Request-Id, made by Remote per
// call) that the answer repeats. An error that is not the caller's fault (code
// internal or unavailable, or an error without a code) is logged under that id on
// both sides, so one failure can be followed from the gateway to the dispatch node.

const (
	internalPrefix  = "/internal/v1/"
	nodeKeyHeader   = "X-Fanline-Node-Key"
	requestIDHeader = "X-Fanline-Request-Id"
)

// rpcArgs carries the arguments of every internal call; each method reads its own.
type rpcArgs struct {
	Who       wire.Principal           `json:"who,omitzero"`
	User      string                   `json:"user,omitempty"`
	From      string                   `json:"from,omitempty"`
	Shop      string                   `json:"shop,omitempty"`
	Agent     string                   `json:"agent,omitempty"`
	Status    string                   `json:"status,omitempty"`
	Users     []string                 `json:"users,omitempty"`
	By        string                   `json:"by,omitempty"`
	ToAgent   string                   `json:"to_agent,omitempty"`
	ToSkill   string                   `json:"to_skill,omitempty"`
	ID        uint64                   `json:"id,omitempty"`
	Before    uint64                   `json:"before,omitempty"`
	MsgID     uint64                   `json:"msg_id,omitempty"`
	Limit     int                      `json:"limit,omitempty"`
	Connected bool                     `json:"connected,omitempty"`
	Body      []byte                   `json:"body,omitempty"`
	Send      *wire.SendRequest        `json:"send,omitempty"`
	Sync      *wire.SyncRequest        `json:"sync,omitempty"`
	Receipts  *wire.ReceiptsQuery      `json:"receipts,omitempty"`
	Group     *wire.CreateGroupRequest `json:"group,omitempty"`
	Members   *wire.MembersRequest     `json:"members,omitempty"`
	OpenChat  *wire.OpenChatRequest    `json:"open_chat,omitempty"`
	DryRun    *wire.DryRunRequest      `json:"dry_run,omitempty"`
	After     uint64                   `json:"after,omitempty"`
	Hold      *wire.HoldRequest        `json:"hold,omitempty"`
	Key       string                   `json:"key,omitempty"`
	Side      int                      `json:"side,omitempty"`
	Upload    *wire.UploadRequest      `json:"upload,omitempty"`
	Parts     *wire.PartsRequest       `json:"parts,omitempty"`
	Complete  *wire.CompleteRequest    `json:"complete,omitempty"`
}

type rpcMethod func(ctx context.Context, a rpcArgs) (any, error)

// InternalConfig configures InternalHandler.
type InternalConfig struct {
	// Key is the cluster's node key callers must present. Required: with none,
	// every call is refused.
	Key string
	// PreviousKey is also accepted while the cluster's secret is rotated (gateways
	// still on the old secret present it). Empty means none.
	PreviousKey string
	// RequireClientCert refuses calls that did not come over TLS with a client
	// certificate the listener verified (its tls.Config has ClientCAs and a
	// ClientAuth that verifies what is given). Default false: the key suffices.
	RequireClientCert bool
	// Logger receives the errors answered that are not the caller's fault, with
	// their request id. Nil means slog.Default().
	Logger *slog.Logger
}

// validKey reports whether got is one of the keys (empty keys match nothing).
func validKey(got string, keys ...string) bool {
	ok := false
	for _, k := range keys {
		if k != "" && subtle.ConstantTimeCompare([]byte(got), []byte(k)) == 1 {
			ok = true
		}
	}
	return ok
}

// InternalHandler serves the internal API on svc and cs (nil without customer
// service).
func InternalHandler(svc Service, cs CS, cfg InternalConfig) http.Handler {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	methods := map[string]rpcMethod{
		"send": func(ctx context.Context, a rpcArgs) (any, error) { return svc.Send(ctx, a.Who, a.From, *a.Send) },
		"sync": func(ctx context.Context, a rpcArgs) (any, error) { return svc.Sync(ctx, a.Who, *a.Sync) },
		"conversations": func(ctx context.Context, a rpcArgs) (any, error) {
			return svc.Conversations(ctx, a.Who)
		},
		"unread": func(ctx context.Context, a rpcArgs) (any, error) { return svc.Unread(ctx, a.Who) },
		"history": func(ctx context.Context, a rpcArgs) (any, error) {
			return svc.History(ctx, a.Who, a.ID, a.Before, a.Limit)
		},
		"mark_read": func(ctx context.Context, a rpcArgs) (any, error) {
			return svc.MarkRead(ctx, a.Who, a.ID, a.MsgID)
		},
		"recall": func(ctx context.Context, a rpcArgs) (any, error) { return nil, svc.Recall(ctx, a.Who, a.MsgID) },
		"typing": func(ctx context.Context, a rpcArgs) (any, error) { return nil, svc.Typing(ctx, a.Who, a.ID) },
		"receipts": func(ctx context.Context, a rpcArgs) (any, error) {
			return svc.Receipts(ctx, a.Who, a.MsgID, *a.Receipts)
		},
		"user_groups_at": func(ctx context.Context, a rpcArgs) (any, error) { return svc.UserGroups(ctx, a.User) },
		// user_groups is what gateways before user_groups_at ask (the dispatch node
		// upgrades first): the ids alone.
		"user_groups": func(ctx context.Context, a rpcArgs) (any, error) {
			gs, err := svc.UserGroups(ctx, a.User)
			ids := make([]uint64, len(gs))
			for i, g := range gs {
				ids[i] = g.Group
			}
			return ids, err
		},
		"check_members": func(ctx context.Context, a rpcArgs) (any, error) {
			return svc.CheckMembers(ctx, a.ID, a.Users)
		},
		"create_group": func(ctx context.Context, a rpcArgs) (any, error) {
			return svc.CreateGroup(ctx, a.Who, *a.Group)
		},
		"group": func(ctx context.Context, a rpcArgs) (any, error) { return svc.Group(ctx, a.Who, a.ID) },
		"change_members": func(ctx context.Context, a rpcArgs) (any, error) {
			return svc.ChangeMembers(ctx, a.Who, a.ID, *a.Members)
		},
		"open_shop_chat": func(ctx context.Context, a rpcArgs) (any, error) {
			return svc.OpenShopChat(ctx, a.Who, a.Shop, *a.OpenChat)
		},
		"holds": func(ctx context.Context, a rpcArgs) (any, error) { return svc.Holds(ctx, a.Who, a.ID) },
		"put_hold": func(ctx context.Context, a rpcArgs) (any, error) {
			return svc.PutHold(ctx, a.Who, a.ID, *a.Hold)
		},
		"delete_hold": func(ctx context.Context, a rpcArgs) (any, error) {
			return nil, svc.DeleteHold(ctx, a.Who, a.ID, *a.Hold)
		},
		"list_holds": func(ctx context.Context, a rpcArgs) (any, error) {
			return svc.ListHolds(ctx, a.Who, a.After, a.Limit)
		},
	}
	for name, m := range mediaMethods(svc) {
		methods[name] = m
	}
	if cs != nil {
		csMethods := map[string]rpcMethod{
			"cs_status": func(_ context.Context, a rpcArgs) (any, error) { return nil, cs.SetStatus(a.Shop, a.Agent, a.Status) },
			"cs_presence": func(_ context.Context, a rpcArgs) (any, error) {
				cs.Presence(a.Shop, a.Agent, a.Connected)
				return nil, nil
			},
			"cs_agent_chats": func(_ context.Context, a rpcArgs) (any, error) { return cs.AgentChats(a.Shop, a.Agent) },
			"cs_chat":        func(_ context.Context, a rpcArgs) (any, error) { return cs.Chat(a.Shop, a.ID) },
			"cs_transfer": func(_ context.Context, a rpcArgs) (any, error) {
				return cs.Transfer(a.Shop, a.ID, a.By, a.ToAgent, a.ToSkill)
			},
			"cs_close":      func(_ context.Context, a rpcArgs) (any, error) { return cs.Close(a.Shop, a.ID, a.By) },
			"cs_rules":      func(_ context.Context, a rpcArgs) (any, error) { return cs.Rules(a.Shop) },
			"cs_set_rules":  func(_ context.Context, a rpcArgs) (any, error) { return cs.SetRules(a.Shop, a.Body) },
			"cs_dry_run":    func(_ context.Context, a rpcArgs) (any, error) { return cs.DryRun(a.Shop, *a.DryRun) },
			"cs_agents":     func(_ context.Context, a rpcArgs) (any, error) { return cs.Agents(a.Shop) },
			"cs_set_agents": func(_ context.Context, a rpcArgs) (any, error) { return cs.SetAgents(a.Shop, a.Body) },
			"cs_canned":     func(_ context.Context, a rpcArgs) (any, error) { return cs.Canned(a.Shop) },
			"cs_set_canned": func(_ context.Context, a rpcArgs) (any, error) { return cs.SetCanned(a.Shop, a.Body) },
			"cs_audit":      func(_ context.Context, a rpcArgs) (any, error) { return cs.Audit(a.Shop, a.Limit) },
			"cs_live":       func(_ context.Context, a rpcArgs) (any, error) { return cs.Live(a.Shop) },
		}
		for name, m := range csMethods {
			methods[name] = m
		}
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := requestID(r)
		w.Header().Set(requestIDHeader, id)
		fail := func(err *wire.Error) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(err.Code.Status())
			_ = json.NewEncoder(w).Encode(wire.ErrorBody{Error: err})
		}
		// A refused caller is a misconfigured node (or not a node): worth a warning.
		refuse := func(why string) {
			cfg.Logger.Warn("gateway: internal API call refused", "request_id", id, "remote", r.RemoteAddr, "why", why)
			fail(wire.Errorf(wire.CodeForbidden, "%s", why))
		}
		if cfg.RequireClientCert && (r.TLS == nil || len(r.TLS.VerifiedChains) == 0) {
			refuse("a client certificate signed by the cluster CA is required")
			return
		}
		if !validKey(r.Header.Get(nodeKeyHeader), cfg.Key, cfg.PreviousKey) {
			refuse("a node key is required")
			return
		}
		name := strings.TrimPrefix(r.URL.Path, internalPrefix)
		m, ok := methods[name]
		if !ok || r.Method != http.MethodPost {
			fail(wire.Errorf(wire.CodeNotFound, "no internal method %s %s", r.Method, r.URL.Path))
			return
		}
		var a rpcArgs
		if err := json.NewDecoder(r.Body).Decode(&a); err != nil {
			fail(wire.Errorf(wire.CodeBadJSON, "internal call: %v", err))
			return
		}
		out, err := callSafely(r.Context(), m, a)
		var b []byte
		if err == nil {
			if b, err = json.Marshal(out); err != nil {
				err = fmt.Errorf("gateway: internal %s: encoding the answer: %w", name, err)
			}
		}
		if err != nil {
			we := wire.AsError(err)
			if serverFault(err) {
				cfg.Logger.Error("gateway: internal API call failed", "request_id", id, "method", name, "code", we.Code, "err", err)
			}
			fail(we)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(append(b, '\n'))
	})
}

// serverFault reports whether err, the answer to an internal call, is the
// answering side's fault rather than the caller's: code internal or unavailable,
// or an error without a code.
func serverFault(err error) bool {
	var we *wire.Error
	if !errors.As(err, &we) {
		return true
	}
	return we.Code == wire.CodeInternal || we.Code == wire.CodeUnavailable
}

// newRequestID returns 16 random bytes in hex.
func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails
	return hex.EncodeToString(b[:])
}

// requestID is the call's request id: the caller's if it sent a plausible one
// (at most 64 letters, digits, '-' or '_'), else a new one.
func requestID(r *http.Request) string {
	id := r.Header.Get(requestIDHeader)
	if id == "" || len(id) > 64 || strings.ContainsFunc(id, func(c rune) bool {
		return (c < '0' || c > '9') && (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') && c != '-' && c != '_'
	}) {
		return newRequestID()
	}
	return id
}

// callSafely runs m, turning a missing argument (a caller's bug) into an error.
func callSafely(ctx context.Context, m rpcMethod, a rpcArgs) (out any, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = wire.Errorf(wire.CodeMissingField, "internal call is missing an argument: %v", r)
		}
	}()
	return m(ctx, a)
}

// RemoteConfig configures a Remote.
type RemoteConfig struct {
	// URL is the dispatch node's base URL, http:// or https://, e.g.
	// http://10.0.0.5:8080. Required.
	URL string
	// TLS is used for an https URL: RootCAs is the CA the dispatch node's
	// certificate must chain to (nil: the system roots), Certificates the client
	// certificate for a dispatch node that requires one. Nil means the system roots
	// and no client certificate; a MinVersion below TLS 1.2 is raised to it. It
	// must be nil with an http URL.
	TLS *tls.Config
	// Key is the cluster's node key. Required.
	Key string
	// Timeout bounds one call. Zero means 30 s.
	Timeout time.Duration
	// Logger receives the calls that failed by no fault of the caller (the
	// dispatch node unreachable, or answering internal or unavailable) with their
	// request id, and failed fire-and-forget calls (agent presence). Nil means
	// slog.Default().
	Logger *slog.Logger
	// OnUnreachable, when set, is called for each call that got no answer from
	// the dispatch node (for a metric).
	OnUnreachable func()
}

// Remote is the Service and CS of a gateway node without the pipeline: every call
// goes to a dispatch node's internal API. A dispatch node that cannot be reached
// answers CodeUnavailable, which clients retry.
type Remote struct {
	cfg  RemoteConfig
	http *http.Client
}

var (
	_ Service = (*Remote)(nil)
	_ CS      = (*Remote)(nil)
)

// NewRemote returns a client of the internal API at cfg.URL.
func NewRemote(cfg RemoteConfig) (*Remote, error) {
	if cfg.URL == "" || cfg.Key == "" {
		return nil, errors.New("gateway: a remote service needs the dispatch node's URL and the node key")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	cfg.URL = strings.TrimSuffix(cfg.URL, "/")
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("gateway: the dispatch node's URL %q is not an http:// or https:// URL", cfg.URL)
	}
	if cfg.TLS != nil && u.Scheme != "https" {
		return nil, errors.New("gateway: a TLS configuration for the dispatch node needs an https URL")
	}
	// Every client request of the node becomes one call: keep enough connections
	// open that a busy node does not open one per call.
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns, tr.MaxIdleConnsPerHost = 1024, 1024
	if u.Scheme == "https" {
		tc := &tls.Config{}
		if cfg.TLS != nil {
			tc = cfg.TLS.Clone()
		}
		tc.MinVersion = max(tc.MinVersion, tls.VersionTLS12)
		tr.TLSClientConfig = tc
	}
	return &Remote{cfg: cfg, http: &http.Client{Timeout: cfg.Timeout, Transport: tr}}, nil
}

// call posts a to method under a new request id and decodes the answer into out
// (may be nil). A failure that is not the caller's fault is logged with the id.
func (r *Remote) call(ctx context.Context, method string, a rpcArgs, out any) error {
	body, err := json.Marshal(a)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.cfg.URL+internalPrefix+method, bytes.NewReader(body))
	if err != nil {
		return err
	}
	id := newRequestID()
	req.Header.Set(nodeKeyHeader, r.cfg.Key)
	req.Header.Set(requestIDHeader, id)
	req.Header.Set("Content-Type", "application/json")
	resp, err := r.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		// The cause (refused, timed out, a certificate not trusted) is for the
		// operator, not the client.
		r.cfg.Logger.Error("gateway: dispatch node unreachable", "request_id", id, "method", method, "err", err)
		if r.cfg.OnUnreachable != nil {
			r.cfg.OnUnreachable()
		}
		return wire.Errorf(wire.CodeUnavailable, "the dispatch node is unreachable; retry")
	}
	defer resp.Body.Close()
	err = decodeAnswer(resp, method, out)
	if err != nil && ctx.Err() == nil && serverFault(err) {
		r.cfg.Logger.Error("gateway: call to the dispatch node failed", "request_id", id, "method", method, "err", err)
	}
	return err
}

// decodeAnswer decodes the dispatch node's answer to method into out (may be nil),
// or returns the error it carries.
func decodeAnswer(resp *http.Response, method string, out any) error {
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return wire.Errorf(wire.CodeUnavailable, "the dispatch node's answer was cut off; retry")
	}
	if resp.StatusCode != http.StatusOK {
		var eb wire.ErrorBody
		if json.Unmarshal(b, &eb) != nil || eb.Error == nil {
			return fmt.Errorf("gateway: internal %s: status %d", method, resp.StatusCode)
		}
		return eb.Error
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("gateway: internal %s: %w", method, err)
	}
	return nil
}

// bg bounds the CS calls, whose interface has no context.
func (r *Remote) bg() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), r.cfg.Timeout)
}

// remoteCall is call for methods returning a T.
func remoteCall[T any](ctx context.Context, r *Remote, method string, a rpcArgs) (T, error) {
	var out T
	err := r.call(ctx, method, a, &out)
	return out, err
}

// remoteCS is remoteCall for the CS methods.
func remoteCS[T any](r *Remote, method string, a rpcArgs) (T, error) {
	ctx, cancel := r.bg()
	defer cancel()
	return remoteCall[T](ctx, r, method, a)
}

// Send implements Service.
func (r *Remote) Send(ctx context.Context, who wire.Principal, from string, req wire.SendRequest) (wire.SendResult, error) {
	return remoteCall[wire.SendResult](ctx, r, "send", rpcArgs{Who: who, From: from, Send: &req})
}

// Sync implements Service.
func (r *Remote) Sync(ctx context.Context, who wire.Principal, req wire.SyncRequest) (wire.SyncResult, error) {
	return remoteCall[wire.SyncResult](ctx, r, "sync", rpcArgs{Who: who, Sync: &req})
}

// Conversations implements Service.
func (r *Remote) Conversations(ctx context.Context, who wire.Principal) (wire.ConversationList, error) {
	return remoteCall[wire.ConversationList](ctx, r, "conversations", rpcArgs{Who: who})
}

// Unread implements Service.
func (r *Remote) Unread(ctx context.Context, who wire.Principal) (wire.UnreadCounts, error) {
	return remoteCall[wire.UnreadCounts](ctx, r, "unread", rpcArgs{Who: who})
}

// History implements Service.
func (r *Remote) History(ctx context.Context, who wire.Principal, conv, before uint64, limit int) (wire.HistoryResult, error) {
	return remoteCall[wire.HistoryResult](ctx, r, "history", rpcArgs{Who: who, ID: conv, Before: before, Limit: limit})
}

// MarkRead implements Service.
func (r *Remote) MarkRead(ctx context.Context, who wire.Principal, conv, msgID uint64) (int, error) {
	return remoteCall[int](ctx, r, "mark_read", rpcArgs{Who: who, ID: conv, MsgID: msgID})
}

// Recall implements Service.
func (r *Remote) Recall(ctx context.Context, who wire.Principal, msgID uint64) error {
	return r.call(ctx, "recall", rpcArgs{Who: who, MsgID: msgID}, nil)
}

// Typing implements Service.
func (r *Remote) Typing(ctx context.Context, who wire.Principal, conv uint64) error {
	return r.call(ctx, "typing", rpcArgs{Who: who, ID: conv}, nil)
}

// Receipts implements Service.
func (r *Remote) Receipts(ctx context.Context, who wire.Principal, msgID uint64, q wire.ReceiptsQuery) (wire.Receipts, error) {
	return remoteCall[wire.Receipts](ctx, r, "receipts", rpcArgs{Who: who, MsgID: msgID, Receipts: &q})
}

// UserGroups implements Service.
func (r *Remote) UserGroups(ctx context.Context, inbox string) ([]wire.GroupVersion, error) {
	return remoteCall[[]wire.GroupVersion](ctx, r, "user_groups_at", rpcArgs{User: inbox})
}

// CheckMembers implements Service.
func (r *Remote) CheckMembers(ctx context.Context, group uint64, users []string) (wire.MemberCheck, error) {
	return remoteCall[wire.MemberCheck](ctx, r, "check_members", rpcArgs{ID: group, Users: users})
}

// CreateGroup implements Service.
func (r *Remote) CreateGroup(ctx context.Context, who wire.Principal, req wire.CreateGroupRequest) (wire.Group, error) {
	return remoteCall[wire.Group](ctx, r, "create_group", rpcArgs{Who: who, Group: &req})
}

// Group implements Service.
func (r *Remote) Group(ctx context.Context, who wire.Principal, id uint64) (wire.Group, error) {
	return remoteCall[wire.Group](ctx, r, "group", rpcArgs{Who: who, ID: id})
}

// ChangeMembers implements Service.
func (r *Remote) ChangeMembers(ctx context.Context, who wire.Principal, id uint64, req wire.MembersRequest) (wire.Group, error) {
	return remoteCall[wire.Group](ctx, r, "change_members", rpcArgs{Who: who, ID: id, Members: &req})
}

// OpenShopChat implements Service.
func (r *Remote) OpenShopChat(ctx context.Context, who wire.Principal, shop string, req wire.OpenChatRequest) (wire.ChatState, error) {
	return remoteCall[wire.ChatState](ctx, r, "open_shop_chat", rpcArgs{Who: who, Shop: shop, OpenChat: &req})
}

// Holds implements Service.
func (r *Remote) Holds(ctx context.Context, who wire.Principal, conv uint64) (wire.ConversationHolds, error) {
	return remoteCall[wire.ConversationHolds](ctx, r, "holds", rpcArgs{Who: who, ID: conv})
}

// PutHold implements Service.
func (r *Remote) PutHold(ctx context.Context, who wire.Principal, conv uint64, req wire.HoldRequest) (wire.Hold, error) {
	return remoteCall[wire.Hold](ctx, r, "put_hold", rpcArgs{Who: who, ID: conv, Hold: &req})
}

// DeleteHold implements Service.
func (r *Remote) DeleteHold(ctx context.Context, who wire.Principal, conv uint64, req wire.HoldRequest) error {
	return r.call(ctx, "delete_hold", rpcArgs{Who: who, ID: conv, Hold: &req}, nil)
}

// ListHolds implements Service.
func (r *Remote) ListHolds(ctx context.Context, who wire.Principal, after uint64, limit int) (wire.HoldList, error) {
	return remoteCall[wire.HoldList](ctx, r, "list_holds", rpcArgs{Who: who, After: after, Limit: limit})
}

// SetStatus implements CS.
func (r *Remote) SetStatus(shop, agent, status string) error {
	_, err := remoteCS[json.RawMessage](r, "cs_status", rpcArgs{Shop: shop, Agent: agent, Status: status})
	return err
}

// Presence implements CS. A lost presence change is corrected by the agent's next
// connection or status change; it is logged.
func (r *Remote) Presence(shop, agent string, connected bool) {
	if _, err := remoteCS[json.RawMessage](r, "cs_presence", rpcArgs{Shop: shop, Agent: agent, Connected: connected}); err != nil {
		r.cfg.Logger.Warn("gateway: agent presence not delivered", "shop", shop, "agent", agent, "connected", connected, "err", err)
	}
}

// AgentChats implements CS.
func (r *Remote) AgentChats(shop, agent string) ([]wire.ChatState, error) {
	return remoteCS[[]wire.ChatState](r, "cs_agent_chats", rpcArgs{Shop: shop, Agent: agent})
}

// Chat implements CS.
func (r *Remote) Chat(shop string, chat uint64) (wire.ChatState, error) {
	return remoteCS[wire.ChatState](r, "cs_chat", rpcArgs{Shop: shop, ID: chat})
}

// Transfer implements CS.
func (r *Remote) Transfer(shop string, chat uint64, by, toAgent, toSkill string) (wire.ChatState, error) {
	return remoteCS[wire.ChatState](r, "cs_transfer", rpcArgs{Shop: shop, ID: chat, By: by, ToAgent: toAgent, ToSkill: toSkill})
}

// Close implements CS.
func (r *Remote) Close(shop string, chat uint64, by string) (wire.ChatState, error) {
	return remoteCS[wire.ChatState](r, "cs_close", rpcArgs{Shop: shop, ID: chat, By: by})
}

// Rules implements CS.
func (r *Remote) Rules(shop string) (any, error) {
	return remoteCS[json.RawMessage](r, "cs_rules", rpcArgs{Shop: shop})
}

// SetRules implements CS.
func (r *Remote) SetRules(shop string, body []byte) (any, error) {
	return remoteCS[json.RawMessage](r, "cs_set_rules", rpcArgs{Shop: shop, Body: body})
}

// DryRun implements CS.
func (r *Remote) DryRun(shop string, req wire.DryRunRequest) (wire.ChatState, error) {
	return remoteCS[wire.ChatState](r, "cs_dry_run", rpcArgs{Shop: shop, DryRun: &req})
}

// Agents implements CS.
func (r *Remote) Agents(shop string) (any, error) {
	return remoteCS[json.RawMessage](r, "cs_agents", rpcArgs{Shop: shop})
}

// SetAgents implements CS.
func (r *Remote) SetAgents(shop string, body []byte) (any, error) {
	return remoteCS[json.RawMessage](r, "cs_set_agents", rpcArgs{Shop: shop, Body: body})
}

// Canned implements CS.
func (r *Remote) Canned(shop string) (any, error) {
	return remoteCS[json.RawMessage](r, "cs_canned", rpcArgs{Shop: shop})
}

// SetCanned implements CS.
func (r *Remote) SetCanned(shop string, body []byte) (any, error) {
	return remoteCS[json.RawMessage](r, "cs_set_canned", rpcArgs{Shop: shop, Body: body})
}

// Audit implements CS.
func (r *Remote) Audit(shop string, limit int) (any, error) {
	return remoteCS[json.RawMessage](r, "cs_audit", rpcArgs{Shop: shop, Limit: limit})
}

// Live implements CS.
func (r *Remote) Live(shop string) (any, error) {
	return remoteCS[json.RawMessage](r, "cs_live", rpcArgs{Shop: shop})
}
