package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	neturl "net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fanline/fanline/client"
	"github.com/fanline/fanline/coldstore"
	"github.com/fanline/fanline/internal/config"
	"github.com/fanline/fanline/internal/testharness"
	"github.com/fanline/fanline/internal/wire"
	"github.com/fanline/fanline/server"
)

// The media tests' TTLs: long enough for the uploads that are sent, short enough
// to watch an unsent one expire and be swept.
const (
	mediaUploadTTL = 8 * time.Second
	mediaOrphanTTL = 12 * time.Second
)

func mediaConfig(cfg *config.Config) {
	cfg.Media.UploadTTL = config.Duration(mediaUploadTTL)
	cfg.Media.OrphanTTL = config.Duration(mediaOrphanTTL)
}

// TestMedia is the media scenario on the embedded object store (fanline takes the
// upload's bytes itself).
func TestMedia(t *testing.T) {
	var data string
	ts := startServer(t, func(cfg *config.Config) { mediaConfig(cfg); data = cfg.DataDir })
	root := filepath.Join(data, "cold", "o")
	mediaScenario(t, ts.URL, false, func() []string {
		var keys []string
		_ = filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
			if err == nil && !e.IsDir() {
				rel, _ := filepath.Rel(root, p)
				keys = append(keys, filepath.ToSlash(rel))
			}
			return nil
		})
		return keys
	})
}

// TestMediaMinIO is the media scenario on MinIO: clients upload and download with
// presigned URLs, the 40 MiB file in parts.
func TestMediaMinIO(t *testing.T) {
	srv, objs := mediaMinIO(t)
	// Clients reach MinIO through a proxy (the public URL) that fails the first PUT
	// of each upload's second part, which the SDK retries.
	target, _ := neturl.Parse("http://" + srv.Addr)
	rp := httputil.NewSingleHostReverseProxy(target)
	var failed atomic.Int32
	failedParts := map[string]bool{}
	var mu sync.Mutex
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if q := r.URL.Query(); r.Method == http.MethodPut && q.Get("partNumber") == "2" {
			mu.Lock()
			first := !failedParts[q.Get("uploadId")]
			failedParts[q.Get("uploadId")] = true
			mu.Unlock()
			if first {
				io.Copy(io.Discard, r.Body)
				failed.Add(1)
				http.Error(w, "injected failure", http.StatusServiceUnavailable)
				return
			}
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(proxy.Close)
	ts := startServer(t, func(cfg *config.Config) {
		mediaConfig(cfg)
		onMinIO(cfg, srv)
		cfg.Media.PublicURL = proxy.URL
	})
	defer func() {
		if failed.Load() == 0 {
			t.Error("no part PUT failed: the retry went untested")
		}
	}()
	mediaScenario(t, ts.URL, true, func() []string {
		var keys []string
		_ = objs.List(context.Background(), "", func(o coldstore.ObjectInfo) error {
			keys = append(keys, o.Key)
			return nil
		})
		return keys
	})
}

// mediaMinIO starts a MinIO server with the bucket fanline uses.
func mediaMinIO(t *testing.T) (*testharness.MinIOServer, *coldstore.MinIO) {
	t.Helper()
	srv := testharness.StartMinIO(t)
	objs, err := coldstore.OpenMinIO(coldstore.MinIOConfig{Endpoint: srv.Addr, Bucket: "fanline", AccessKey: srv.AccessKey,
		SecretKey: srv.SecretKey, Region: "us-east-1"})
	if err == nil {
		_, err = objs.EnsureBucket(context.Background(), "us-east-1")
	}
	if err != nil {
		t.Fatal(err)
	}
	return srv, objs
}

// onMinIO points cfg's object store at srv.
func onMinIO(cfg *config.Config, srv *testharness.MinIOServer) {
	cfg.Coldstore.Backend = "minio"
	cfg.Minio.Endpoint, cfg.Minio.AccessKey, cfg.Minio.SecretKey = srv.Addr, srv.AccessKey, srv.SecretKey
}

// TestMediaPublicURLChecked: a MinIO public URL that does not answer stops the
// start, saying so, rather than handing clients URLs they cannot reach.
func TestMediaPublicURLChecked(t *testing.T) {
	srv, _ := mediaMinIO(t)
	cfg, err := config.Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Addr, cfg.DataDir = "127.0.0.1:0", t.TempDir()
	onMinIO(&cfg, srv)
	cfg.Media.PublicURL = "http://" + testharness.FreeAddr(t) // nothing listens there
	s, err := server.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err == nil {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_ = s.Run(ctx)
		t.Fatal("started with an unreachable media.public_url")
	}
	if !strings.Contains(err.Error(), "media.public_url") {
		t.Fatalf("the error does not name media.public_url: %v", err)
	}
}

// mediaScenario: a buyer uploads a 3 MiB PNG and a 40 MiB file and sends both in a
// shop chat; the shop's agent downloads both byte for byte and a 256 px thumbnail;
// a buyer of another chat and an agent of another shop get 404; uploads too large
// or of a refused type store nothing; an expired upload URL is refused; a recalled
// image is the uploader's alone; an upload never sent is swept after its TTL.
func mediaScenario(t *testing.T, url string, presigned bool, objects func() []string) {
	ctx := context.Background()
	bea := connect(t, url, "bea")
	conv := shopChat(t, url, bea)
	ann := connectAs(t, url, "ann", wire.RoleAgent, "acme")
	if err := ann.SetStatus(ctx, "online"); err != nil {
		t.Fatal(err)
	}
	testharness.WaitFor(t, 10*time.Second, "ann serves the chat", func() bool {
		mine, err := ann.AgentChats(ctx)
		return err == nil && len(mine) == 1 && mine[0].ConversationID == conv
	})

	// Started first, used last: its URL will have expired.
	stale := postUpload(t, url, token(t, url, "bea"), wire.UploadRequest{ConversationID: conv, MimeType: "text/plain", Size: 5})
	staleAt := time.Now()
	orphan, err := bea.Upload(ctx, conv, strings.NewReader("never sent"), 10, "text/plain", "note.txt")
	if err != nil {
		t.Fatal(err)
	}

	photo, w, h := noisePNG(t, 1024, 800)
	if len(photo) < 3<<20 {
		t.Fatalf("the test photo is %d bytes, want at least 3 MiB", len(photo))
	}
	big := make([]byte, 40<<20)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range big {
		big[i] = byte(rng.Uint32())
	}
	photoKey, err := bea.Upload(ctx, conv, bytes.NewReader(photo), int64(len(photo)), "image/png", "broken.png")
	if err != nil {
		t.Fatalf("upload the photo: %v", err)
	}
	// A reader that is not an io.ReadSeeker: no sha256, parts buffered.
	bigKey, err := bea.Upload(ctx, conv, io.MultiReader(bytes.NewReader(big)), int64(len(big)), "application/zip", "manual.zip")
	if err != nil {
		t.Fatalf("upload the 40 MiB file: %v", err)
	}
	again, err := bea.Upload(ctx, conv, bytes.NewReader(photo), int64(len(photo)), "image/png", "broken.png")
	if err != nil || again != photoKey {
		t.Fatalf("the same photo uploaded again is %q %v, want the stored %q", again, err, photoKey)
	}
	send := func(c *client.Client, typ string, body map[string]any) (wire.SendResult, error) {
		b, _ := json.Marshal(body)
		return c.Send(ctx, wire.SendRequest{ConversationID: conv, Type: typ, Body: b})
	}
	if _, err := send(bea, "image", map[string]any{"object_key": photoKey, "mime_type": "image/png", "size": len(photo) + 1}); code(err) != wire.CodeMediaMismatch {
		t.Fatalf("a body of the wrong size: %v, want media_mismatch", err)
	}
	if _, err := send(ann, "image", map[string]any{"object_key": photoKey, "mime_type": "image/png", "size": len(photo)}); code(err) != wire.CodeMediaMissing {
		t.Fatalf("someone else's upload sent: %v, want media_not_found", err)
	}
	if _, err := send(bea, "image", map[string]any{"object_key": photoKey, "mime_type": "image/png", "size": len(photo),
		"width": w, "height": h}); err != nil {
		t.Fatal(err)
	}
	if _, err := send(bea, "file", map[string]any{"object_key": bigKey, "mime_type": "application/zip", "size": len(big), "name": "manual.zip"}); err != nil {
		t.Fatal(err)
	}

	download := func(c *client.Client, key string, thumb int) ([]byte, error) {
		var buf bytes.Buffer
		_, err := c.Download(ctx, key, thumb, &buf)
		return buf.Bytes(), err
	}
	for key, want := range map[string][]byte{photoKey: photo, bigKey: big} {
		got, err := download(ann, key, 0)
		if err != nil || sha256.Sum256(got) != sha256.Sum256(want) {
			t.Fatalf("the agent's download of %s: %d bytes %v, want %d identical", key, len(got), err, len(want))
		}
	}
	thumb, err := download(ann, photoKey, 256)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(thumb))
	if err != nil || img.Bounds().Dx() != 256 || img.Bounds().Dy() != 200 {
		t.Fatalf("thumbnail: %v %v, want 256x200", err, img)
	}
	if _, err := download(ann, bigKey, 256); code(err) != wire.CodeThumbUnavailable {
		t.Fatalf("a thumbnail of a zip: %v, want thumbnail_unavailable", err)
	}
	if !presigned { // the embedded store answers ranges itself
		req, _ := http.NewRequest(http.MethodGet, url+"/v1/media/"+bigKey, nil)
		req.Header.Set("Authorization", "Bearer "+token(t, url, "bea"))
		req.Header.Set("Range", "bytes=1000-1999")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		part, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(part, big[1000:2000]) {
			t.Fatalf("a range of the file: %s, %d bytes", resp.Status, len(part))
		}
	}

	cy := connect(t, url, "cy")
	shopChat(t, url, cy)
	zed := connectAs(t, url, "zed", wire.RoleAgent, "other")
	for name, c := range map[string]*client.Client{"a buyer of another chat": cy, "an agent of another shop": zed} {
		for _, key := range []string{photoKey, bigKey, photoKey + "0", "nonsense"} {
			if _, err := download(c, key, 0); code(err) != wire.CodeMediaMissing {
				t.Fatalf("%s downloads %s: %v, want media_not_found (404)", name, key, err)
			}
		}
		if _, err := c.Upload(ctx, conv, strings.NewReader("x"), 1, "text/plain", ""); code(err) != wire.CodeNotParticipant {
			t.Fatalf("%s uploads into the chat: %v, want not_participant", name, err)
		}
	}

	before := len(objects())
	for _, c := range []struct {
		req  wire.UploadRequest
		want wire.Code
	}{
		{wire.UploadRequest{ConversationID: conv, MimeType: "application/zip", Size: 100<<20 + 1}, wire.CodeUploadTooLarge},
		{wire.UploadRequest{ConversationID: conv, MimeType: "application/x-msdownload", Size: 10}, wire.CodeUnsupportedMedia},
	} {
		var e *wire.Error
		if _, err := uploadRequest(url, token(t, url, "bea"), c.req); !errors.As(err, &e) || e.Code != c.want {
			t.Fatalf("upload %+v: %v, want %s", c.req, err, c.want)
		}
	}
	if after := len(objects()); after != before {
		t.Fatalf("refused uploads stored objects: %d before, %d after", before, after)
	}

	// A recalled image stays its uploader's, and nobody else's.
	recalled, err := bea.Upload(ctx, conv, bytes.NewReader(photo[:1<<20]), 1<<20, "image/png", "")
	if err != nil {
		t.Fatal(err)
	}
	res, err := send(bea, "image", map[string]any{"object_key": recalled, "mime_type": "image/png", "size": 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := download(ann, recalled, 0); err != nil {
		t.Fatalf("before the recall: %v", err)
	}
	if err := bea.Recall(ctx, res.MsgID); err != nil {
		t.Fatal(err)
	}
	if _, err := download(ann, recalled, 0); code(err) != wire.CodeMediaMissing {
		t.Fatalf("the agent after the recall: %v, want media_not_found", err)
	}
	if _, err := download(bea, recalled, 0); err != nil {
		t.Fatalf("the uploader after the recall: %v", err)
	}

	time.Sleep(time.Until(staleAt.Add(mediaUploadTTL + time.Second)))
	req, _ := http.NewRequest(stale.Method, stale.UploadURL, strings.NewReader("stale"))
	for k, v := range stale.Headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("a PUT to an expired upload URL: %s, want 403", resp.Status)
	}

	testharness.WaitFor(t, mediaOrphanTTL+10*time.Second, "the unsent upload swept, with all it stored", func() bool {
		if _, err := download(bea, orphan, 0); code(err) != wire.CodeMediaMissing {
			return false
		}
		for _, k := range objects() {
			if strings.Contains(k, strings.ReplaceAll(orphan, "-", "/")) {
				return false
			}
		}
		return true
	})
	if _, err := download(ann, photoKey, 0); err != nil {
		t.Fatalf("a sent photo after the sweep: %v", err)
	}
}

func code(err error) wire.Code {
	var e *wire.Error
	if errors.As(err, &e) {
		return e.Code
	}
	if err != nil {
		return wire.Code("other: " + err.Error())
	}
	return ""
}

// uploadRequest is a bare POST /v1/uploads.
func uploadRequest(url, tok string, req wire.UploadRequest) (wire.Upload, error) {
	b, _ := json.Marshal(req)
	hr, _ := http.NewRequest(http.MethodPost, url+"/v1/uploads", bytes.NewReader(b))
	hr.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(hr)
	if err != nil {
		return wire.Upload{}, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		var eb wire.ErrorBody
		if json.Unmarshal(body, &eb) == nil && eb.Error != nil {
			return wire.Upload{}, eb.Error
		}
		return wire.Upload{}, fmt.Errorf("%s: %s", resp.Status, body)
	}
	var up wire.Upload
	return up, json.Unmarshal(body, &up)
}

func postUpload(t *testing.T, url, tok string, req wire.UploadRequest) wire.Upload {
	t.Helper()
	up, err := uploadRequest(url, tok, req)
	if err != nil {
		t.Fatal(err)
	}
	return up
}

// noisePNG is a w x h PNG of random pixels (it does not compress: 4 bytes a pixel).
func noisePNG(t *testing.T, w, h int) ([]byte, int, int) {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	rng := rand.New(rand.NewPCG(3, 4))
	for y := range h {
		for x := range w {
			v := rng.Uint32()
			img.SetNRGBA(x, y, color.NRGBA{uint8(v), uint8(v >> 8), uint8(v >> 16), uint8(v >> 24)})
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), w, h
}

// TestMediaOfArchivedChat: once a chat's messages moved to cold segments, its media
// is still downloadable by the other member, and a recall of the cold message still
// takes it away from them.
func TestMediaOfArchivedChat(t *testing.T) {
	ts := startServer(t, func(c *config.Config) {
		c.Coldstore.After = config.Duration(time.Second)
		c.Coldstore.Interval = config.Duration(500 * time.Millisecond)
	})
	ctx := context.Background()
	bea, bob := connect(t, ts.URL, "bea"), connect(t, ts.URL, "bob")
	first, err := bea.Send(ctx, wire.SendRequest{To: "bob", Type: "text", Body: text("here is the photo")})
	if err != nil {
		t.Fatal(err)
	}
	photo, _, _ := noisePNG(t, 64, 64)
	key, err := bea.Upload(ctx, first.ConversationID, bytes.NewReader(photo), int64(len(photo)), "image/png", "")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(map[string]any{"object_key": key, "mime_type": "image/png", "size": len(photo)})
	res, err := bea.Send(ctx, wire.SendRequest{ConversationID: first.ConversationID, Type: "image", Body: body})
	if err != nil {
		t.Fatal(err)
	}
	testharness.WaitFor(t, 30*time.Second, "both messages cold", func() bool {
		return metric(t, ts.URL, "fanline_cold_messages_total") >= 2
	})
	var got bytes.Buffer
	if _, err := bob.Download(ctx, key, 0, &got); err != nil || !bytes.Equal(got.Bytes(), photo) {
		t.Fatalf("bob's download of archived media: %d bytes %v", got.Len(), err)
	}
	if err := bea.Recall(ctx, res.MsgID); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.Download(ctx, key, 0, io.Discard); code(err) != wire.CodeMediaMissing {
		t.Fatalf("after the recall of the cold message: %v, want media_not_found", err)
	}
}
