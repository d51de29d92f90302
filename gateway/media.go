package gateway

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/fanline/fanline/internal/wire"
	"github.com/gin-gonic/gin"
)

// Mediator is what the gateway needs for media (package dispatch says who may
// touch what). Service includes it.
type Mediator interface {
	CreateUpload(ctx context.Context, who wire.Principal, req wire.UploadRequest) (wire.Upload, error)
	UploadParts(ctx context.Context, who wire.Principal, key string, req wire.PartsRequest) (wire.UploadParts, error)
	CompleteUpload(ctx context.Context, who wire.Principal, key string, req wire.CompleteRequest) (wire.MediaObject, error)
	// PutUpload stores an upload's bytes sent to fanline itself (the dir store);
	// token is the upload URL's.
	PutUpload(ctx context.Context, key, token string, size int64, mime string, body io.Reader) (wire.MediaObject, error)
	// Media answers a download: a URL to redirect to, or the bytes.
	Media(ctx context.Context, who wire.Principal, key string, side int) (wire.MediaFile, error)
}

// costUpload is what starting an upload, signing its parts or completing it
// costs; the bytes themselves are bounded by media.max_bytes.
const costUpload = 5

// mediaRoutes are the upload and download endpoints. The PUT of an upload's bytes
// carries its authorisation in the URL's signed token, so it needs no bearer token
// (the client may hand the URL to a background uploader).
func (g *Gateway) mediaRoutes() []Route {
	return []Route{
		{"POST", "/v1/uploads", Members, costUpload, false, g.createUpload},
		{"PUT", "/v1/uploads/:object_key", Public, 0, false, g.putUpload},
		{"POST", "/v1/uploads/:object_key/parts", Members, costUpload, false, g.uploadParts},
		{"POST", "/v1/uploads/:object_key/complete", Members, costUpload, false, g.completeUpload},
		{"GET", "/v1/media/:object_key", Members, costRead, false, g.media},
	}
}

func (g *Gateway) createUpload(c *gin.Context) {
	var req wire.UploadRequest
	if !g.bind(c, 16<<10, &req, wire.UploadFields) {
		return
	}
	res, err := g.svc.CreateUpload(c.Request.Context(), user(c), req)
	if err != nil {
		g.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, res)
}

func (g *Gateway) uploadParts(c *gin.Context) {
	var req wire.PartsRequest
	if !g.bind(c, 64<<10, &req, []string{"parts"}) {
		return
	}
	res, err := g.svc.UploadParts(c.Request.Context(), user(c), c.Param("object_key"), req)
	if err != nil {
		g.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, res)
}

func (g *Gateway) completeUpload(c *gin.Context) {
	var req wire.CompleteRequest
	if !g.bind(c, 256<<10, &req, []string{"parts"}) {
		return
	}
	res, err := g.svc.CompleteUpload(c.Request.Context(), user(c), c.Param("object_key"), req)
	if err != nil {
		g.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, res)
}

// putUpload streams an upload's body into the object store. The request's read
// deadline moves with its progress, so a large upload over a slow link is bounded
// by its idle time rather than by the server's whole-request read timeout.
func (g *Gateway) putUpload(c *gin.Context) {
	if c.Request.ContentLength < 0 {
		g.fail(c, wire.Errorf(wire.CodeMissingField, "send Content-Length (the upload's size); chunked uploads are not taken"))
		return
	}
	body := &progressReader{r: c.Request.Body, rc: http.NewResponseController(c.Writer), idle: g.cfg.TransferIdle}
	res, err := g.svc.PutUpload(c.Request.Context(), c.Param("object_key"), c.Query("token"), c.Request.ContentLength,
		c.GetHeader("Content-Type"), body)
	if err != nil {
		g.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, res)
}

// media answers a download: 302 to a short-lived URL on object storage, or the
// bytes with Range support.
func (g *Gateway) media(c *gin.Context) {
	side := 0
	if s := c.Query("thumb"); s != "" {
		var err error
		if side, err = strconv.Atoi(s); err != nil {
			g.fail(c, wire.Errorf(wire.CodeInvalidField, "thumb must be 256 or 512"))
			return
		}
	}
	f, err := g.svc.Media(c.Request.Context(), user(c), c.Param("object_key"), side)
	if err != nil {
		g.fail(c, err)
		return
	}
	h := c.Writer.Header()
	h.Set("Cache-Control", "private, no-store")
	if f.URL != "" {
		c.Redirect(http.StatusFound, f.URL)
		return
	}
	if f.Content == nil { // a gateway-only node cannot reach the dir store
		g.fail(c, wire.Errorf(wire.CodeUnavailable, "media bytes on coldstore.backend dir are served by the dispatch node; a split deployment needs coldstore.backend minio"))
		return
	}
	defer f.Content.Close()
	h.Set("Content-Type", f.MimeType)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "sandbox")
	h.Set("Content-Disposition", f.Disposition)
	content := &progressSeeker{ReadSeekCloser: f.Content, rc: http.NewResponseController(c.Writer), idle: g.cfg.TransferIdle}
	http.ServeContent(c.Writer, c.Request, "", f.ModTime, content)
}

// progressReader moves the request's read deadline on by idle after every read.
type progressReader struct {
	r    io.Reader
	rc   *http.ResponseController
	idle time.Duration
}

func (p *progressReader) Read(b []byte) (int, error) {
	_ = p.rc.SetReadDeadline(time.Now().Add(p.idle))
	return p.r.Read(b)
}

// progressSeeker moves the answer's write deadline on by idle before every read
// of the object (each read is followed by a write of what it read).
type progressSeeker struct {
	io.ReadSeekCloser
	rc   *http.ResponseController
	idle time.Duration
}

func (p *progressSeeker) Read(b []byte) (int, error) {
	_ = p.rc.SetWriteDeadline(time.Now().Add(p.idle))
	return p.ReadSeekCloser.Read(b)
}
