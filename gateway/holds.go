package gateway

import (
	"context"
	"net/http"
	"net/url"
	"strconv"

	"github.com/fanline/fanline/dispatch"
	"github.com/fanline/fanline/internal/ids"
	"github.com/fanline/fanline/internal/wire"
	"github.com/gin-gonic/gin"
)

// Holder is what the gateway needs for legal holds (package dispatch says who may
// hold what). Service includes it.
type Holder interface {
	Holds(ctx context.Context, who wire.Principal, conv uint64) (wire.ConversationHolds, error)
	PutHold(ctx context.Context, who wire.Principal, conv uint64, req wire.HoldRequest) (wire.Hold, error)
	DeleteHold(ctx context.Context, who wire.Principal, conv uint64, req wire.HoldRequest) error
	ListHolds(ctx context.Context, who wire.Principal, after uint64, limit int) (wire.HoldList, error)
}

// holdRoutes are the legal-hold endpoints of a shop's admins and of platform
// operators, and the export of a conversation.
func (g *Gateway) holdRoutes() []Route {
	return []Route{
		{"GET", "/v1/conversations/:id/export", BuyersAdmins, costList, false, g.export},
		{"GET", "/v1/admin/shops/:shop_id/holds/:id", ShopAdmin, costRead, false, g.hold},
		{"PUT", "/v1/admin/shops/:shop_id/holds/:id", ShopAdmin, costAdminWrite, false, g.putHold},
		{"DELETE", "/v1/admin/shops/:shop_id/holds/:id", ShopAdmin, costAdminWrite, false, g.deleteHold},
		{"GET", "/v1/ops/holds", Operators, costList, false, g.listHolds},
		{"GET", "/v1/ops/holds/:id", Operators, costRead, false, g.hold},
		{"PUT", "/v1/ops/holds/:id", Operators, costAdminWrite, false, g.putHold},
		{"DELETE", "/v1/ops/holds/:id", Operators, costAdminWrite, false, g.deleteHold},
	}
}

func (g *Gateway) hold(c *gin.Context) {
	conv, e := pathID(c, "conversation id")
	if e != nil {
		g.fail(c, e)
		return
	}
	res, err := g.svc.Holds(c.Request.Context(), user(c), conv)
	if err != nil {
		g.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, res)
}

// holdRequest reads a hold's path id and its optional body.
func (g *Gateway) holdRequest(c *gin.Context) (uint64, wire.HoldRequest, bool) {
	var req wire.HoldRequest
	conv, e := pathID(c, "conversation id")
	if e != nil {
		g.fail(c, e)
		return 0, req, false
	}
	b, e := g.readBody(c, 16<<10)
	if e == nil && len(b) > 0 {
		e = wire.DecodeBody(b, &req, []string{"reason"})
	}
	if e != nil {
		g.fail(c, e)
		return 0, req, false
	}
	return conv, req, true
}

func (g *Gateway) putHold(c *gin.Context) {
	conv, req, ok := g.holdRequest(c)
	if !ok {
		return
	}
	res, err := g.svc.PutHold(c.Request.Context(), user(c), conv, req)
	if err != nil {
		g.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, res)
}

func (g *Gateway) deleteHold(c *gin.Context) {
	conv, req, ok := g.holdRequest(c)
	if !ok {
		return
	}
	if err := g.svc.DeleteHold(c.Request.Context(), user(c), conv, req); err != nil {
		g.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{})
}

func (g *Gateway) listHolds(c *gin.Context) {
	limit, e := queryInt(c, "limit", 1000)
	if e != nil {
		g.fail(c, e)
		return
	}
	var after uint64
	if s := c.Query("after"); s != "" {
		var err error
		if after, err = ids.Parse(s); err != nil {
			g.fail(c, wire.Errorf(wire.CodeInvalidField, "after must be a conversation id"))
			return
		}
	}
	res, err := g.svc.ListHolds(c.Request.Context(), user(c), after, limit)
	if err != nil {
		g.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, res)
}

// exportWriter sends the export's headers with its first bytes, so an error
// found before any (the caller may not read the conversation) is answered as an
// ordinary error.
type exportWriter struct {
	c       *gin.Context
	name    string
	ctype   string
	started bool
}

func (w *exportWriter) start() {
	if w.started {
		return
	}
	w.started = true
	h := w.c.Writer.Header()
	h.Set("Content-Type", w.ctype)
	h.Set("Content-Disposition", "attachment; filename*=UTF-8''"+url.PathEscape(w.name))
	h.Set("Cache-Control", "no-store")
	w.c.Status(http.StatusOK)
}

func (w *exportWriter) Write(b []byte) (int, error) {
	w.start()
	return w.c.Writer.Write(b)
}

// Flush sends what is buffered (dispatch.Export flushes after each page).
func (w *exportWriter) Flush() { w.c.Writer.Flush() }

func (g *Gateway) export(c *gin.Context) {
	conv, e := pathID(c, "conversation id")
	if e != nil {
		g.fail(c, e)
		return
	}
	format := c.DefaultQuery("format", dispatch.ExportJSONL)
	ctype := map[string]string{dispatch.ExportJSONL: "application/jsonl; charset=utf-8", dispatch.ExportCSV: "text/csv; charset=utf-8"}[format]
	if ctype == "" {
		g.fail(c, wire.Errorf(wire.CodeInvalidField, "format must be %s or %s", dispatch.ExportJSONL, dispatch.ExportCSV))
		return
	}
	who := user(c)
	w := &exportWriter{c: c, name: "conversation-" + strconv.FormatUint(conv, 10) + "." + format, ctype: ctype}
	page := func(ctx context.Context, before uint64, limit int) (wire.HistoryResult, error) {
		return g.svc.History(ctx, who, conv, before, limit)
	}
	err := dispatch.Export(c.Request.Context(), page, format, w)
	switch {
	case err != nil && !w.started:
		g.fail(c, err)
	case err != nil:
		// The answer is under way: cut it short, so the client sees a truncated
		// download rather than a complete one.
		g.log.Warn("gateway: export cut short", "conversation", conv, "user", who.ID, "err", err)
		panic(http.ErrAbortHandler)
	default:
		w.start()
	}
}
