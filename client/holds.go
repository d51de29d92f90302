package client

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/fanline/fanline/internal/wire"
)

// Export streams conversation conv's whole history to w, oldest first (GET
// /v1/conversations/{id}/export): format "jsonl" (one entry per line) or "csv".
// Its members may export it, and a shop conversation's admins. The call has no
// timeout of its own: ctx bounds it.
func (c *Client) Export(ctx context.Context, conv wire.ID, format string, w io.Writer) error {
	u := c.base + "/v1/conversations/" + conv.String() + "/export?format=" + url.QueryEscape(format)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.cfg.Token)
	hc := *c.http
	hc.Timeout = 0
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var eb wire.ErrorBody
		if b, err := io.ReadAll(resp.Body); err == nil && json.Unmarshal(b, &eb) == nil && eb.Error != nil {
			return eb.Error
		}
		return fmt.Errorf("client: export of %s: HTTP %d", conv, resp.StatusCode)
	}
	if _, err := io.Copy(w, resp.Body); err != nil {
		return fmt.Errorf("client: export of %s cut short: %w", conv, err)
	}
	return nil
}

// Ops is a platform operator's HTTP client of the /v1/ops endpoints.
type Ops struct {
	base, token string
	http        *http.Client
}

// NewOps returns an Ops at the server's base URL, with an operator token.
func NewOps(baseURL, token string) *Ops {
	return &Ops{base: strings.TrimRight(baseURL, "/") + "/v1/ops", token: token, http: &http.Client{}}
}

func (o *Ops) do(ctx context.Context, method, path string, in, out any) error {
	return doJSON(ctx, o.http, method, o.base+path, o.token, in, out)
}

// Hold returns every legal hold on conv (none: not held).
func (o *Ops) Hold(ctx context.Context, conv wire.ID) (wire.ConversationHolds, error) {
	return getHold(ctx, o.do, conv)
}

// PutHold places the operators' hold on conv (or replaces its reason).
func (o *Ops) PutHold(ctx context.Context, conv wire.ID, reason string) (wire.Hold, error) {
	return putHold(ctx, o.do, conv, reason)
}

// DeleteHold removes the operators' hold on conv; reason is logged.
func (o *Ops) DeleteHold(ctx context.Context, conv wire.ID, reason string) error {
	return deleteHold(ctx, o.do, conv, reason)
}

// ListHolds lists held conversations after after (0: from the first), up to
// limit (0: the server's default) of them; NextAfter continues.
func (o *Ops) ListHolds(ctx context.Context, after wire.ID, limit int) (wire.HoldList, error) {
	q := url.Values{}
	if after != 0 {
		q.Set("after", after.String())
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var out wire.HoldList
	err := o.do(ctx, http.MethodGet, "/holds?"+q.Encode(), nil, &out)
	return out, err
}

// Hold returns the shop's legal hold on its conversation conv, if any.
func (a *Admin) Hold(ctx context.Context, conv wire.ID) (wire.ConversationHolds, error) {
	return getHold(ctx, a.do, conv)
}

// PutHold places the shop's hold on its conversation conv (or replaces its reason).
func (a *Admin) PutHold(ctx context.Context, conv wire.ID, reason string) (wire.Hold, error) {
	return putHold(ctx, a.do, conv, reason)
}

// DeleteHold removes the shop's hold on conv; reason is logged.
func (a *Admin) DeleteHold(ctx context.Context, conv wire.ID, reason string) error {
	return deleteHold(ctx, a.do, conv, reason)
}

// doer is the do of Ops and Admin: a JSON call under their base path.
type doer func(ctx context.Context, method, path string, in, out any) error

func getHold(ctx context.Context, do doer, conv wire.ID) (wire.ConversationHolds, error) {
	var out wire.ConversationHolds
	err := do(ctx, http.MethodGet, "/holds/"+conv.String(), nil, &out)
	return out, err
}

func putHold(ctx context.Context, do doer, conv wire.ID, reason string) (wire.Hold, error) {
	var out wire.Hold
	err := do(ctx, http.MethodPut, "/holds/"+conv.String(), wire.HoldRequest{Reason: reason}, &out)
	return out, err
}

func deleteHold(ctx context.Context, do doer, conv wire.ID, reason string) error {
	return do(ctx, http.MethodDelete, "/holds/"+conv.String(), wire.HoldRequest{Reason: reason}, nil)
}
