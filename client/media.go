package client

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
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

// uploadTries is how often one PUT (the whole file, or one part) is tried.
const uploadTries = 4

// Upload stores size bytes of r as a media object of conversation conv and returns
// its object key, for the body of an image, video or file message. It does the
// whole exchange: POST /v1/uploads, then one PUT, or for a large file on object
// storage the parts (each retried on its own) and the completion. When r is an
// io.ReadSeeker its sha256 is sent along, so an identical file uploaded before is
// not sent again, and a failed PUT is retried; an io.ReaderAt's parts are read
// from it, other readers' parts are buffered one at a time.
func (c *Client) Upload(ctx context.Context, conv wire.ID, r io.Reader, size int64, mimeType, name string) (string, error) {
	req := wire.UploadRequest{ConversationID: conv, MimeType: mimeType, Size: size, Name: name}
	rs, seekable := r.(io.ReadSeeker)
	if seekable {
		h := sha256.New()
		if _, err := io.Copy(h, io.LimitReader(rs, size)); err != nil {
			return "", fmt.Errorf("client: upload: read: %w", err)
		}
		if _, err := rs.Seek(0, io.SeekStart); err != nil {
			return "", fmt.Errorf("client: upload: %w", err)
		}
		req.SHA256 = hex.EncodeToString(h.Sum(nil))
	}
	var up wire.Upload
	if err := c.do(ctx, http.MethodPost, "/v1/uploads", req, &up); err != nil {
		return "", err
	}
	switch {
	case up.Uploaded:
		return up.ObjectKey, nil
	case up.Multipart != nil:
		return up.ObjectKey, c.uploadParts(ctx, up, r, size)
	}
	body := func() (io.Reader, error) {
		if seekable {
			_, err := rs.Seek(0, io.SeekStart)
			return io.LimitReader(rs, size), err
		}
		return r, nil
	}
	tries := uploadTries
	if !seekable {
		tries = 1 // the bytes cannot be read again
	}
	_, err := c.putBytes(ctx, up.UploadURL, up.Headers, size, body, tries)
	var ae *answer
	if errors.As(err, &ae) && ae.status == http.StatusPreconditionFailed {
		// The URL only creates the object: an earlier try stored it, and its
		// answer was lost.
		err = nil
	}
	return up.ObjectKey, err
}

// uploadParts sends a multipart upload's parts in order and completes it.
func (c *Client) uploadParts(ctx context.Context, up wire.Upload, r io.Reader, size int64) error {
	var urls wire.UploadParts
	key := url.PathEscape(up.ObjectKey)
	if err := c.do(ctx, http.MethodPost, "/v1/uploads/"+key+"/parts", wire.PartsRequest{}, &urls); err != nil {
		return err
	}
	ra, _ := r.(io.ReaderAt)
	done := make([]wire.UploadedPart, 0, len(urls.Parts))
	for _, p := range urls.Parts {
		off := int64(p.Number-1) * up.Multipart.PartSize
		var part io.ReaderAt
		if ra != nil {
			part = io.NewSectionReader(ra, off, p.Size)
		} else {
			buf := make([]byte, p.Size)
			if _, err := io.ReadFull(r, buf); err != nil {
				return fmt.Errorf("client: upload: read part %d: %w", p.Number, err)
			}
			part = bytes.NewReader(buf)
		}
		body := func() (io.Reader, error) { return io.NewSectionReader(part, 0, p.Size), nil }
		etag, err := c.putBytes(ctx, p.URL, p.Headers, p.Size, body, uploadTries)
		var ae *answer
		if errors.As(err, &ae) && ae.status == http.StatusForbidden {
			// Its URL expired (a slow link): sign it again and retry.
			var again wire.UploadParts
			if err = c.do(ctx, http.MethodPost, "/v1/uploads/"+key+"/parts", wire.PartsRequest{Parts: []int{p.Number}}, &again); err == nil && len(again.Parts) == 1 {
				etag, err = c.putBytes(ctx, again.Parts[0].URL, again.Parts[0].Headers, p.Size, body, uploadTries)
			}
		}
		if err != nil {
			return fmt.Errorf("client: upload part %d of %d: %w", p.Number, len(urls.Parts), err)
		}
		done = append(done, wire.UploadedPart{Number: p.Number, ETag: etag})
	}
	return c.do(ctx, http.MethodPost, "/v1/uploads/"+key+"/complete", wire.CompleteRequest{Parts: done}, nil)
}

// putBytes sends one PUT of size bytes (body gives them afresh for each try) and
// returns the answer's ETag. Network errors and 5xx answers are retried with
// backoff; anything else is the answer.
func (c *Client) putBytes(ctx context.Context, target string, headers map[string]string, size int64, body func() (io.Reader, error), tries int) (string, error) {
	var last error
	for i := 0; i < tries; i++ {
		if i > 0 && !sleep(ctx, jitter(time.Duration(i)*300*time.Millisecond)) {
			return "", ctx.Err()
		}
		rd, err := body()
		if err != nil {
			return "", err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPut, target, rd)
		if err != nil {
			return "", err
		}
		req.ContentLength = size
		for k, v := range headers {
			if !strings.EqualFold(k, "Content-Length") {
				req.Header.Set(k, v)
			}
		}
		resp, err := c.transfer().Do(req)
		if err != nil {
			last = err
			continue
		}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		if resp.StatusCode >= 200 && resp.StatusCode < 300 {
			return resp.Header.Get("ETag"), nil
		}
		last = answerError(resp.StatusCode, b)
		if resp.StatusCode < 500 {
			return "", last
		}
	}
	return "", last
}

// answerError reads a fanline error body, or says what object storage answered.
func answerError(status int, b []byte) error {
	var eb wire.ErrorBody
	if json.Unmarshal(b, &eb) == nil && eb.Error != nil {
		return eb.Error
	}
	return &answer{status: status, body: string(bytes.TrimSpace(b))}
}

// answer is an HTTP answer from object storage that is not a success.
type answer struct {
	status int
	body   string
}

func (a *answer) Error() string {
	return fmt.Sprintf("client: object storage answered HTTP %d: %s", a.status, a.body)
}

// transfer is the HTTP client for bytes: no overall timeout (a large file takes
// what it takes; contexts bound it), and redirects not followed, so a bearer
// token never goes to object storage.
func (c *Client) transfer() *http.Client {
	return &http.Client{Transport: c.http.Transport,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// MediaInfo describes a download.
type MediaInfo struct {
	MimeType string
	Size     int64
}

// Download writes media object key (thumb > 0: its thumbnail of at most that many
// pixels a side, 256 or 512) to w. It follows the server's redirect to object
// storage without the bearer token.
func (c *Client) Download(ctx context.Context, key string, thumb int, w io.Writer) (MediaInfo, error) {
	u := c.base + "/v1/media/" + url.PathEscape(key)
	if thumb > 0 {
		u += "?thumb=" + strconv.Itoa(thumb)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return MediaInfo{}, err
	}
	req.Header.Set("Authorization", "Bearer "+c.cfg.Token)
	hc := c.transfer()
	resp, err := hc.Do(req)
	if err != nil {
		return MediaInfo{}, err
	}
	if resp.StatusCode == http.StatusFound {
		loc := resp.Header.Get("Location")
		resp.Body.Close()
		if loc == "" {
			return MediaInfo{}, errors.New("client: download: redirect without a location")
		}
		if req, err = http.NewRequestWithContext(ctx, http.MethodGet, loc, nil); err != nil {
			return MediaInfo{}, err
		}
		if resp, err = hc.Do(req); err != nil {
			return MediaInfo{}, err
		}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		return MediaInfo{}, answerError(resp.StatusCode, b)
	}
	n, err := io.Copy(w, resp.Body)
	if err == nil && resp.ContentLength >= 0 && n != resp.ContentLength {
		err = io.ErrUnexpectedEOF
	}
	return MediaInfo{MimeType: resp.Header.Get("Content-Type"), Size: n}, err
}
