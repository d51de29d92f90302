package gateway

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/fanline/fanline/internal/auth"
	"github.com/fanline/fanline/internal/metrics"
	"github.com/fanline/fanline/internal/presence"
	"github.com/fanline/fanline/internal/wire"
)

// pagedHistory answers History with pages of a history of n messages (ids 1..n),
// failing from call failAt on (0: never) as a lost backend would.
type pagedHistory struct {
	Service
	n, failAt int
	calls     int
}

func (p *pagedHistory) History(_ context.Context, _ wire.Principal, conv, before uint64, limit int) (wire.HistoryResult, error) {
	p.calls++
	if p.failAt > 0 && p.calls >= p.failAt {
		return wire.HistoryResult{}, wire.Errorf(wire.CodeUnavailable, "the store is down")
	}
	top := uint64(p.n)
	if before != 0 && before-1 < top {
		top = before - 1
	}
	var out wire.HistoryResult
	for id := top; id >= 1 && len(out.Messages) < limit; id-- {
		out.Messages = append(out.Messages, wire.Entry{Kind: wire.KindMessage, ConversationID: wire.ID(conv), MsgID: wire.ID(id),
			From: "al", Type: "text", Body: []byte(`{"text":"x"}`), CreatedAt: time.Unix(int64(id), 0).UTC()})
	}
	out.HasMore = len(out.Messages) > 0 && uint64(out.Messages[len(out.Messages)-1].MsgID) > 1
	return out, nil
}

// TestExportCutShort: an export whose reads fail before the first byte answers the
// error; one that fails after it ends the download without its end, so the client
// sees a broken transfer, never a shorter export.
func TestExportCutShort(t *testing.T) {
	issuer, err := auth.NewIssuer(strings.Repeat("s", auth.MinSecretBytes), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := issuer.Issue(auth.User{ID: "al", Role: wire.RoleBuyer})
	get := func(svc *pagedHistory) (*http.Response, []byte, error) {
		g := New(Config{Logger: quiet, RatePerSecond: -1}, svc, issuer, presence.NewMemoryRegistry(), NewHub(metrics.New()), metrics.New())
		srv := httptest.NewServer(g.Handler())
		defer srv.Close()
		req, _ := http.NewRequest("GET", srv.URL+"/v1/conversations/7/export?format=csv", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp, b, err
	}
	resp, b, err := get(&pagedHistory{n: 1000})
	if err != nil || resp.StatusCode != 200 || strings.Count(string(b), "\n") != 1001 {
		t.Fatalf("whole export: %d, %d lines, %v", resp.StatusCode, strings.Count(string(b), "\n"), err)
	}
	resp, b, err = get(&pagedHistory{n: 1000, failAt: 1})
	if err != nil || resp.StatusCode != 503 || !strings.Contains(string(b), `"unavailable"`) {
		t.Fatalf("failing at once: %d %s %v", resp.StatusCode, b, err)
	}
	// The first pass reads 5 pages; the second fails at its third.
	resp, b, err = get(&pagedHistory{n: 1000, failAt: 8})
	if resp.StatusCode != 200 || err == nil || strings.Count(string(b), "\n") < 2 {
		t.Fatalf("failing mid-way: %d, %d lines read, %v (want a broken transfer)", resp.StatusCode, strings.Count(string(b), "\n"), err)
	}
}
