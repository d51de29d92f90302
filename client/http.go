package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/fanline/fanline/internal/wire"
)

// Error is an error answered by the server: a code from docs/protocol.md and a message.
type Error = wire.Error

// DevToken asks a dev-mode server for a token (POST /v1/dev/token). Role "" is buyer.
func DevToken(ctx context.Context, baseURL, userID, role, shopID string) (string, error) {
	body := map[string]string{"user_id": userID}
	if role != "" {
		body["role"] = role
	}
	if shopID != "" {
		body["shop_id"] = shopID
	}
	var out struct {
		Token string `json:"token"`
	}
	err := doJSON(ctx, http.DefaultClient, http.MethodPost, strings.TrimRight(baseURL, "/")+"/v1/dev/token", "", body, &out)
	return out.Token, err
}

func doJSON(ctx context.Context, hc *http.Client, method, url, token string, in, out any) error {
	var rd io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		var eb wire.ErrorBody
		if json.Unmarshal(b, &eb) == nil && eb.Error != nil {
			return eb.Error
		}
		return fmt.Errorf("client: %s %s: HTTP %d", method, url, resp.StatusCode)
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(b, out)
}

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	return doJSON(ctx, c.http, method, c.base+path, c.cfg.Token, in, out)
}

// SendHTTP sends once over HTTP (POST /v1/messages), without retries.
func (c *Client) SendHTTP(ctx context.Context, req wire.SendRequest) (wire.SendResult, error) {
	var out wire.SendResult
	err := c.do(ctx, http.MethodPost, "/v1/messages", req, &out)
	return out, err
}

// SyncPage fetches one page of the timeline after cursor (GET /v1/sync). It does not
// move the client's own cursor.
func (c *Client) SyncPage(ctx context.Context, cursor string, limit int) (wire.SyncResult, error) {
	q := url.Values{}
	if cursor != "" {
		q.Set("cursor", cursor)
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var out wire.SyncResult
	err := c.do(ctx, http.MethodGet, "/v1/sync?"+q.Encode(), nil, &out)
	return out, err
}

// Conversations lists the user's conversations with unread counts.
func (c *Client) Conversations(ctx context.Context) (wire.ConversationList, error) {
	var out wire.ConversationList
	err := c.do(ctx, http.MethodGet, "/v1/conversations", nil, &out)
	return out, err
}

// Unread returns the user's unread counts (the badge): the total and each
// conversation with unread messages.
func (c *Client) Unread(ctx context.Context) (wire.UnreadCounts, error) {
	var out wire.UnreadCounts
	err := c.do(ctx, http.MethodGet, "/v1/unread", nil, &out)
	return out, err
}

// History pages a conversation's messages, newest first; before 0 is the newest.
func (c *Client) History(ctx context.Context, conv wire.ID, before wire.ID, limit int) (wire.HistoryResult, error) {
	q := url.Values{}
	if before != 0 {
		q.Set("before", before.String())
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var out wire.HistoryResult
	err := c.do(ctx, http.MethodGet, "/v1/conversations/"+conv.String()+"/messages?"+q.Encode(), nil, &out)
	return out, err
}

// MarkRead marks conv read up to msg.
func (c *Client) MarkRead(ctx context.Context, conv, msg wire.ID) error {
	return c.do(ctx, http.MethodPost, "/v1/conversations/"+conv.String()+"/read", wire.ReadRequest{MsgID: msg}, nil)
}

// Recall recalls one of the user's messages.
func (c *Client) Recall(ctx context.Context, msg wire.ID) error {
	return c.do(ctx, http.MethodPost, "/v1/messages/"+msg.String()+"/recall", nil, nil)
}

// Receipts tells who has read a message. A large group's message answers with
// counts only; ReaderPage lists its readers.
func (c *Client) Receipts(ctx context.Context, msg wire.ID) (wire.Receipts, error) {
	var out wire.Receipts
	err := c.do(ctx, http.MethodGet, "/v1/messages/"+msg.String()+"/receipts", nil, &out)
	return out, err
}

// ReaderPage returns receipts with up to limit readers after the user id after;
// Receipts.NextAfter names the next page.
func (c *Client) ReaderPage(ctx context.Context, msg wire.ID, after string, limit int) (wire.Receipts, error) {
	q := url.Values{"readers": {"true"}}
	if after != "" {
		q.Set("after", after)
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var out wire.Receipts
	err := c.do(ctx, http.MethodGet, "/v1/messages/"+msg.String()+"/receipts?"+q.Encode(), nil, &out)
	return out, err
}

// Presence reports online/offline for users.
func (c *Client) Presence(ctx context.Context, users ...string) (map[string]string, error) {
	var out struct {
		Presence map[string]string `json:"presence"`
	}
	err := c.do(ctx, http.MethodGet, "/v1/presence?users="+url.QueryEscape(strings.Join(users, ",")), nil, &out)
	return out.Presence, err
}

// CreateGroup creates a group owned by the user (POST /v1/groups).
//
// It sends a client_group_id of its own and retries a lost answer or a retryable
// refusal (a few times, with backoff) under it, so a retry never makes a second
// group.
func (c *Client) CreateGroup(ctx context.Context, name string, members ...string) (wire.Group, error) {
	req := wire.CreateGroupRequest{Name: name, Members: members, ClientGroupID: NewClientMsgID()}
	var err error
	for try := 0; try < 4; try++ {
		if try > 0 && !sleep(ctx, jitter(time.Duration(try)*200*time.Millisecond)) {
			return wire.Group{}, ctx.Err()
		}
		var out wire.Group
		if err = c.do(ctx, http.MethodPost, "/v1/groups", req, &out); err == nil {
			return out, nil
		}
		var we *wire.Error
		if errors.As(err, &we) && !retryable(we.Code) {
			return wire.Group{}, err
		}
	}
	return wire.Group{}, err
}

// Group describes a group the user belongs to.
func (c *Client) Group(ctx context.Context, id wire.ID) (wire.Group, error) {
	var out wire.Group
	err := c.do(ctx, http.MethodGet, "/v1/groups/"+id.String(), nil, &out)
	return out, err
}

// ChangeMembers adds, removes, promotes or demotes members of a group.
func (c *Client) ChangeMembers(ctx context.Context, id wire.ID, req wire.MembersRequest) (wire.Group, error) {
	var out wire.Group
	err := c.do(ctx, http.MethodPost, "/v1/groups/"+id.String()+"/members", req, &out)
	return out, err
}
