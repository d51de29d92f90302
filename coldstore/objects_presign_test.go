package coldstore_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fanline/fanline/coldstore"
	"github.com/fanline/fanline/internal/testharness"
)

// do sends one request to a signed URL with its headers and returns the status,
// the body and the ETag.
func do(t *testing.T, method, url string, h http.Header, body []byte, extra map[string]string) (int, []byte, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = int64(len(body))
	for k, v := range h {
		if k != "Content-Length" {
			req.Header[k] = v
		}
	}
	for k, v := range extra {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b, resp.Header.Get("ETag")
}

// TestMinIOPresign is what media needs of a presigning store: a PUT bound to its
// size and type, a GET with the type and file name it answers with and ranges,
// multipart uploads, and URLs that expire.
func TestMinIOPresign(t *testing.T) {
	m := openMinIO(t, testharness.StartMinIO(t))
	ctx := context.Background()
	var p coldstore.Presigner = m

	u, h, err := p.PresignPut(ctx, "media/1/a", 5, "text/plain", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if st, body, _ := do(t, "PUT", u, h, []byte("hello!"), nil); st < 400 {
		t.Fatalf("a PUT longer than signed: %d %s", st, body)
	}
	if st, body, _ := do(t, "PUT", u, h, []byte("hello"), map[string]string{"Content-Type": "image/png"}); st < 400 {
		t.Fatalf("a PUT of another type than signed: %d %s", st, body)
	}
	if _, err := m.Head(ctx, "media/1/a"); err == nil {
		t.Fatal("a refused PUT stored the object")
	}
	if st, body, _ := do(t, "PUT", u, h, []byte("hello"), nil); st != http.StatusOK {
		t.Fatalf("the signed PUT: %d %s", st, body)
	}
	if st, body, _ := do(t, "PUT", u, h, []byte("HELLO"), nil); st != http.StatusPreconditionFailed {
		t.Fatalf("the signed PUT again, over the stored object: %d %s, want 412", st, body)
	}
	if got, err := coldstore.ReadAll(ctx, m, "media/1/a"); err != nil || string(got) != "hello" {
		t.Fatalf("after a second PUT: %q %v", got, err)
	}
	if st, _, _ := do(t, "PUT", u, http.Header{"Content-Type": {"text/plain"}}, []byte("hello"), nil); st < 400 {
		t.Fatalf("a PUT without the If-None-Match it was signed with: %d", st)
	}
	g, err := p.PresignGet(ctx, "media/1/a", time.Minute, "text/plain", "attachment; filename*=UTF-8''gr%C3%BC%C3%9Fe.txt")
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(g)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(b) != "hello" || resp.Header.Get("Content-Type") != "text/plain" ||
		!strings.Contains(resp.Header.Get("Content-Disposition"), "gr%C3%BC%C3%9Fe.txt") {
		t.Fatalf("the signed GET: %s %q %v", resp.Status, b, resp.Header)
	}
	if st, body, _ := do(t, "GET", g, nil, nil, map[string]string{"Range": "bytes=1-3"}); st != http.StatusPartialContent || string(body) != "ell" {
		t.Fatalf("a ranged signed GET: %d %q", st, body)
	}

	// Multipart: a 5 MiB part (S3's smallest but the last) and a 1-byte one.
	whole := bytes.Repeat([]byte("0123456789abcdef"), 5<<16)
	whole = append(whole, 'z')
	id, err := p.StartMultipart(ctx, "media/1/big", "application/zip")
	if err != nil {
		t.Fatal(err)
	}
	var parts []coldstore.Part
	for n, part := range [][]byte{whole[:5<<20], whole[5<<20:]} {
		u, h, err := p.PresignPart(ctx, "media/1/big", id, n+1, int64(len(part)), time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		st, body, etag := do(t, "PUT", u, h, part, nil)
		if st != http.StatusOK || etag == "" {
			t.Fatalf("part %d: %d %s", n+1, st, body)
		}
		parts = append(parts, coldstore.Part{Number: n + 1, ETag: etag})
	}
	if err := p.CompleteMultipart(ctx, "media/1/big", id, parts); err != nil {
		t.Fatal(err)
	}
	if got, err := coldstore.ReadAll(ctx, m, "media/1/big"); err != nil || !bytes.Equal(got, whole) {
		t.Fatalf("the joined object: %d bytes %v, want %d", len(got), err, len(whole))
	}
	id, err = p.StartMultipart(ctx, "media/1/dropped", "application/zip")
	if err != nil {
		t.Fatal(err)
	}
	for range 2 { // aborting again (or an unknown upload) is not an error
		if err := p.AbortMultipart(ctx, "media/1/dropped", id); err != nil {
			t.Fatal(err)
		}
	}

	u, h, err = p.PresignPut(ctx, "media/1/late", 4, "text/plain", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	if st, _, _ := do(t, "PUT", u, h, []byte("late"), nil); st != http.StatusForbidden {
		t.Fatalf("a PUT after the URL expired: %d, want 403", st)
	}
}

// TestMinIOPublicURL: URLs are signed for the host clients reach the store by,
// which the signature covers.
func TestMinIOPublicURL(t *testing.T) {
	srv := testharness.StartMinIO(t)
	openMinIO(t, srv) // the bucket
	_, port, _ := strings.Cut(srv.Addr, ":")
	m, err := coldstore.OpenMinIO(coldstore.MinIOConfig{Endpoint: srv.Addr, Bucket: "fanline-test", AccessKey: srv.AccessKey,
		SecretKey: srv.SecretKey, Region: "us-east-1", PublicURL: "http://localhost:" + port})
	if err != nil {
		t.Fatal(err)
	}
	u, h, err := m.PresignPut(context.Background(), "media/2/a", 2, "text/plain", time.Minute)
	if err != nil || !strings.HasPrefix(u, "http://localhost:"+port+"/") {
		t.Fatalf("signed for %q %v, want the public host", u, err)
	}
	if st, body, _ := do(t, "PUT", u, h, []byte("hi"), nil); st != http.StatusOK {
		t.Fatalf("a PUT by the public URL: %d %s", st, body)
	}
	for _, bad := range []string{"minio:9000", "ftp://x", "http://x/path"} {
		if _, err := coldstore.OpenMinIO(coldstore.MinIOConfig{Endpoint: srv.Addr, Bucket: "b", AccessKey: "a", SecretKey: "s", PublicURL: bad}); err == nil {
			t.Fatalf("public url %q accepted", bad)
		}
	}
}
