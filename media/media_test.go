package media

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/fanline/fanline/coldstore"
	"github.com/fanline/fanline/internal/metrics"
	"github.com/fanline/fanline/internal/wire"
)

func newDirStore(t *testing.T) (*Store, *coldstore.Dir) {
	t.Helper()
	d, err := coldstore.OpenDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{Objects: d, Secret: []byte("test secret"), PublicURL: "http://fanline.test"}, metrics.New())
	if err != nil {
		t.Fatal(err)
	}
	return s, d
}

func codeOf(err error) wire.Code {
	if err == nil {
		return ""
	}
	return wire.AsError(err).Code
}

func tokenOf(t *testing.T, up wire.Upload) string {
	t.Helper()
	u, err := url.Parse(up.UploadURL)
	if err != nil || u.Host != "fanline.test" || u.Path != "/v1/uploads/"+up.ObjectKey {
		t.Fatalf("upload url %q", up.UploadURL)
	}
	return u.Query().Get("token")
}

func keys(t *testing.T, d *coldstore.Dir) []string {
	var out []string
	if err := d.List(context.Background(), "", func(o coldstore.ObjectInfo) error { out = append(out, o.Key); return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestEmbeddedUpload: the PUT to fanline must carry a valid, unexpired token and
// exactly the size, type and bytes (sha256) the upload was created with.
func TestEmbeddedUpload(t *testing.T) {
	s, d := newDirStore(t)
	ctx := context.Background()
	body := []byte("a size chart")
	n := func() int64 { return int64(len(body)) }
	sum := sha256.Sum256(body)
	req := wire.UploadRequest{ConversationID: 7, MimeType: "text/plain", Size: int64(len(body)), SHA256: hex.EncodeToString(sum[:])}
	up, err := s.Create(ctx, "ann", req)
	if err != nil || up.Method != "PUT" || up.Headers["Content-Type"] != "text/plain" {
		t.Fatalf("create: %+v %v", up, err)
	}
	tok := tokenOf(t, up)
	other, err := s.Create(ctx, "ann", wire.UploadRequest{ConversationID: 7, MimeType: "text/plain", Size: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(ctx, "7-0123456789abcdef", tok, n(), "text/plain", bytes.NewReader(body)); codeOf(err) != wire.CodeInvalidToken {
		t.Fatalf("a token for an unknown key: %v, want invalid_token (nothing said of whether the key exists)", err)
	}
	forged := tok[:len(tok)-1] + "0" // its signature's last hex digit changed
	if strings.HasSuffix(tok, "0") {
		forged = tok[:len(tok)-1] + "1"
	}
	put := func(token string, size int64, mime string, b []byte) error {
		_, err := s.Put(ctx, up.ObjectKey, token, size, mime, bytes.NewReader(b))
		return err
	}
	for _, c := range []struct {
		name  string
		token string
		size  int64
		mime  string
		b     []byte
		want  wire.Code
	}{
		{"a forged token", forged, n(), "text/plain", body, wire.CodeInvalidToken},
		{"no token", "", n(), "text/plain", body, wire.CodeInvalidToken},
		{"another object's token", tokenOf(t, other), n(), "text/plain", body, wire.CodeInvalidToken},
		{"another length", tok, n() + 1, "text/plain", append(body, '!'), wire.CodeMediaMismatch},
		{"another type", tok, n(), "image/png", body, wire.CodeMediaMismatch},
		{"a short body", tok, n(), "text/plain", body[:3], wire.CodeMediaMismatch},
		{"other bytes", tok, n(), "text/plain", bytes.ToUpper(body), wire.CodeMediaMismatch},
	} {
		if err := put(c.token, c.size, c.mime, c.b); codeOf(err) != c.want {
			t.Fatalf("%s: %v, want %s", c.name, err, c.want)
		}
		if r, err := s.Lookup(ctx, up.ObjectKey); err != nil || r.Stored {
			t.Fatalf("%s: record %+v %v, want not stored", c.name, r, err)
		}
		if _, err := d.Head(ctx, mustKey(up.ObjectKey).data()); err == nil {
			t.Fatalf("%s left bytes stored", c.name)
		}
	}
	if err := put(tok, n(), "text/plain; charset=utf-8", body); err != nil {
		t.Fatal(err)
	}
	if err := put(tok, n(), "text/plain", body); codeOf(err) != wire.CodeConflict {
		t.Fatalf("a second PUT: %v, want conflict", err)
	}
	again, err := s.Create(ctx, "ann", req)
	if err != nil || !again.Uploaded || again.ObjectKey != up.ObjectKey {
		t.Fatalf("the same bytes again: %+v %v", again, err)
	}
	if other, err := s.Create(ctx, "bea", req); err != nil || other.Uploaded {
		t.Fatalf("another uploader's same bytes: %+v %v, want a new upload", other, err)
	}

	late, err := s.Create(ctx, "ann", wire.UploadRequest{ConversationID: 7, MimeType: "text/plain", Size: 1})
	if err != nil {
		t.Fatal(err)
	}
	s.now = func() time.Time { return time.Now().Add(s.cfg.UploadTTL + time.Second) }
	if _, err := s.Put(ctx, late.ObjectKey, tokenOf(t, late), 1, "text/plain", strings.NewReader("x")); codeOf(err) != wire.CodeUploadExpired {
		t.Fatalf("an expired URL: %v, want upload_expired", err)
	}
}

func TestCheckRequest(t *testing.T) {
	s, _ := newDirStore(t)
	ok := wire.UploadRequest{ConversationID: 1, MimeType: "image/jpeg", Size: 10}
	for _, c := range []struct {
		edit func(*wire.UploadRequest)
		want wire.Code
	}{
		{func(*wire.UploadRequest) {}, ""},
		{func(r *wire.UploadRequest) { r.MimeType = "application/pdf" }, ""},
		{func(r *wire.UploadRequest) { r.ConversationID = 0 }, wire.CodeMissingField},
		{func(r *wire.UploadRequest) { r.MimeType = "" }, wire.CodeMissingField},
		{func(r *wire.UploadRequest) { r.MimeType = "Image/JPEG" }, wire.CodeInvalidField},
		{func(r *wire.UploadRequest) { r.MimeType = "text/plain; charset=utf-8" }, wire.CodeInvalidField},
		{func(r *wire.UploadRequest) { r.MimeType = "application/x-msdownload" }, wire.CodeUnsupportedMedia},
		{func(r *wire.UploadRequest) { r.Size = 0 }, wire.CodeInvalidField},
		{func(r *wire.UploadRequest) { r.Size = 100<<20 + 1 }, wire.CodeUploadTooLarge},
		{func(r *wire.UploadRequest) { r.Name = "../etc/passwd" }, wire.CodeInvalidField},
		{func(r *wire.UploadRequest) { r.SHA256 = "abc" }, wire.CodeInvalidField},
	} {
		r := ok
		c.edit(&r)
		if err := s.CheckRequest(r); codeOf(err) != c.want {
			t.Fatalf("%+v: %v, want %q", r, err, c.want)
		}
	}
}

// TestAttach: a message carries only its sender's stored upload for that
// conversation, of the size and type the body says; the first time is recorded.
func TestAttach(t *testing.T) {
	s, _ := newDirStore(t)
	ctx := context.Background()
	up, err := s.Create(ctx, "ann", wire.UploadRequest{ConversationID: 7, MimeType: "image/png", Size: 3})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Attach(ctx, "ann", 7, up.ObjectKey, "image/png", 3, 100); codeOf(err) != wire.CodeMediaMissing {
		t.Fatalf("before the upload: %v", err)
	}
	if _, err := s.Put(ctx, up.ObjectKey, tokenOf(t, up), 3, "image/png", strings.NewReader("png")); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		sender string
		conv   uint64
		key    string
		mime   string
		size   int64
		want   wire.Code
	}{
		{"bea", 7, up.ObjectKey, "image/png", 3, wire.CodeMediaMissing},
		{"ann", 8, up.ObjectKey, "image/png", 3, wire.CodeMediaMissing},
		{"ann", 7, up.ObjectKey + "x", "image/png", 3, wire.CodeMediaMissing},
		{"ann", 7, up.ObjectKey, "image/jpeg", 3, wire.CodeMediaMismatch},
		{"ann", 7, up.ObjectKey, "image/png", 4, wire.CodeMediaMismatch},
		{"ann", 7, up.ObjectKey, "image/png", 3, ""},
		{"ann", 7, up.ObjectKey, "image/png", 3, ""},
	} {
		if err := s.Attach(ctx, c.sender, c.conv, c.key, c.mime, c.size, 100); codeOf(err) != c.want {
			t.Fatalf("%+v: %v", c, err)
		}
	}
	if r, err := s.Lookup(ctx, up.ObjectKey); err != nil || len(r.Messages) != 1 || r.Messages[0] != 100 {
		t.Fatalf("record: %+v %v", r, err)
	}
}

// TestSweep: uploads no message carries go after the orphan TTL with everything
// stored for them; sent ones and young ones stay. Retention deletes a
// conversation's media up to a time.
func TestSweep(t *testing.T) {
	s, d := newDirStore(t)
	ctx := context.Background()
	upload := func(conv uint64, body string) string {
		t.Helper()
		sum := sha256.Sum256([]byte(body))
		up, err := s.Create(ctx, "ann", wire.UploadRequest{ConversationID: wire.ID(conv), MimeType: "image/png",
			Size: int64(len(body)), SHA256: hex.EncodeToString(sum[:])})
		if err == nil {
			_, err = s.Put(ctx, up.ObjectKey, tokenOf(t, up), int64(len(body)), "image/png", strings.NewReader(body))
		}
		if err != nil {
			t.Fatal(err)
		}
		return up.ObjectKey
	}
	orphan, sent := upload(7, "orphan"), upload(7, "sent")
	if err := s.Attach(ctx, "ann", 7, sent, "image/png", 4, 1); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Sweep(ctx); err != nil || n != 0 {
		t.Fatalf("a sweep before the TTL deleted %d %v", n, err)
	}
	s.now = func() time.Time { return time.Now().Add(s.cfg.OrphanTTL + time.Minute) }
	young := upload(7, "young")
	if n, err := s.Sweep(ctx); err != nil || n != 1 {
		t.Fatalf("sweep: %d %v, want the orphan", n, err)
	}
	if _, err := s.Lookup(ctx, orphan); codeOf(err) != wire.CodeMediaMissing {
		t.Fatalf("the orphan after the sweep: %v", err)
	}
	if _, err := s.Lookup(ctx, young); err != nil {
		t.Fatalf("a young upload after the sweep: %v", err)
	}
	left := keys(t, d)
	if len(left) != 7 { // the sent and the young object, each with its record and dedup index; the young one's pending marker
		t.Fatalf("left after the sweep: %v", left)
	}
	other := upload(9, "other conversation")
	if err := s.Attach(ctx, "ann", 9, other, "image/png", int64(len("other conversation")), 2); err != nil {
		t.Fatal(err)
	}
	if n, err := s.DeleteConversation(ctx, 7, time.Now().Add(-time.Hour)); err != nil || n != 0 {
		t.Fatalf("retention of older history deleted %d %v", n, err)
	}
	if n, err := s.DeleteConversation(ctx, 7, time.Now().Add(time.Hour)); err != nil || n != 1 {
		t.Fatalf("retention deleted %d %v, want the sent one (the young one is newer)", n, err)
	}
	if _, err := s.Lookup(ctx, other); err != nil {
		t.Fatalf("another conversation's media: %v", err)
	}
}

// TestOpenRanges: the bytes served on the embedded store seek and read ranges.
func TestOpenRanges(t *testing.T) {
	s, _ := newDirStore(t)
	ctx := context.Background()
	body := strings.Repeat("0123456789", 1000)
	up, err := s.Create(ctx, "ann", wire.UploadRequest{ConversationID: 3, MimeType: "text/plain", Size: int64(len(body)), Name: "digits.txt"})
	if err == nil {
		_, err = s.Put(ctx, up.ObjectKey, tokenOf(t, up), int64(len(body)), "text/plain", strings.NewReader(body))
	}
	if err != nil {
		t.Fatal(err)
	}
	r, _ := s.Lookup(ctx, up.ObjectKey)
	f, err := s.Open(ctx, r, 0)
	if err != nil || f.Content == nil || f.Size != int64(len(body)) || f.Name != "digits.txt" {
		t.Fatalf("open: %+v %v", f, err)
	}
	defer f.Content.Close()
	if _, err := f.Content.Seek(9995, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	tail, err := io.ReadAll(f.Content)
	if err != nil || string(tail) != "56789" {
		t.Fatalf("tail: %q %v", tail, err)
	}
	if n, err := f.Content.Seek(-10, io.SeekEnd); err != nil || n != 9990 {
		t.Fatal(n, err)
	}
	b := make([]byte, 3)
	if _, err := io.ReadFull(f.Content, b); err != nil || string(b) != "012" {
		t.Fatalf("after seek from the end: %q %v", b, err)
	}
	if _, err := s.Open(ctx, r, 256); codeOf(err) != wire.CodeThumbUnavailable {
		t.Fatalf("a thumbnail of text: %v", err)
	}
}

// TestSweepFailedSend: an upload attached to a message that was never stored (the
// send failed after the attach) goes like an orphan; one whose message is stored
// keeps, and is not looked at again. Past 64 messages the newest still counts.
func TestSweepFailedSend(t *testing.T) {
	s, d := newDirStore(t)
	stored := map[uint64]bool{}
	s.cfg.MessageExists = func(_ context.Context, id uint64) (bool, error) { return stored[id], nil }
	ctx := context.Background()
	upload := func() string {
		up, err := s.Create(ctx, "ann", wire.UploadRequest{ConversationID: 7, MimeType: "text/plain", Size: 2})
		if err == nil {
			_, err = s.Put(ctx, up.ObjectKey, tokenOf(t, up), 2, "text/plain", strings.NewReader("ok"))
		}
		if err != nil {
			t.Fatal(err)
		}
		return up.ObjectKey
	}
	lost, kept := upload(), upload()
	if err := s.Attach(ctx, "ann", 7, lost, "text/plain", 2, 10); err != nil {
		t.Fatal(err)
	}
	for id := uint64(100); id < 100+maxMessages+5; id++ {
		if err := s.Attach(ctx, "ann", 7, kept, "text/plain", 2, id); err != nil {
			t.Fatal(err)
		}
	}
	newest := uint64(100 + maxMessages + 4)
	stored[newest] = true // only the newest of kept's messages is stored
	if r, _ := s.Lookup(ctx, kept); len(r.Messages) != maxMessages || r.Newest != newest {
		t.Fatalf("kept's record lists %d messages, newest %d", len(r.Messages), r.Newest)
	}
	s.now = func() time.Time { return time.Now().Add(s.cfg.OrphanTTL + time.Minute) }
	if n, err := s.Sweep(ctx); err != nil || n != 1 {
		t.Fatalf("sweep: %d %v, want the upload of the lost send", n, err)
	}
	if _, err := s.Lookup(ctx, lost); codeOf(err) != wire.CodeMediaMissing {
		t.Fatalf("the lost send's upload: %v", err)
	}
	for _, k := range keys(t, d) {
		if strings.HasPrefix(k, "pending/") {
			t.Fatalf("a pending marker is left: %s", k)
		}
	}
	if _, err := s.Lookup(ctx, "07-"+strings.Split(kept, "-")[1]); codeOf(err) != wire.CodeMediaMissing {
		t.Fatalf("a key with a leading zero: %v, want media_not_found", err)
	}
}

// TestSameRefreshesTTL: an unsent upload handed out again by its sha256 starts its
// orphan TTL again.
func TestSameRefreshesTTL(t *testing.T) {
	s, _ := newDirStore(t)
	ctx := context.Background()
	sum := sha256.Sum256([]byte("ok"))
	req := wire.UploadRequest{ConversationID: 7, MimeType: "text/plain", Size: 2, SHA256: hex.EncodeToString(sum[:])}
	up, err := s.Create(ctx, "ann", req)
	if err == nil {
		_, err = s.Put(ctx, up.ObjectKey, tokenOf(t, up), 2, "text/plain", strings.NewReader("ok"))
	}
	if err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(s.cfg.OrphanTTL - time.Minute)
	s.now = func() time.Time { return later }
	if again, err := s.Create(ctx, "ann", req); err != nil || !again.Uploaded || again.ObjectKey != up.ObjectKey {
		t.Fatalf("again: %+v %v", again, err)
	}
	s.now = func() time.Time { return later.Add(2 * time.Minute) }
	if n, err := s.Sweep(ctx); err != nil || n != 0 {
		t.Fatalf("the upload handed out again was swept: %d %v", n, err)
	}
}
