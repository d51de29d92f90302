package media

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"strings"
	"testing"

	"github.com/fanline/fanline/coldstore"
	"github.com/fanline/fanline/internal/wire"
)

func gradient(w, h int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.RGBA{uint8(x), uint8(y), uint8(x + y), 255})
		}
	}
	return img
}

func encodePNG(t testing.TB, img image.Image) []byte {
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func encodeJPEG(t testing.TB, img image.Image) []byte {
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, nil); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// bombPNG is a valid PNG header that claims w x h pixels (with a correct CRC) and
// no image data worth the name.
func bombPNG(t testing.TB, w, h uint32) []byte { return claimPNG(t, w, h, 8) }

// claimPNG is bombPNG with the bit depth given (8 or 16).
func claimPNG(t testing.TB, w, h uint32, depth byte) []byte {
	b := encodePNG(t, gradient(1, 1))
	// IHDR: length(4) "IHDR"(4) at offset 8; width, height and bit depth follow.
	binary.BigEndian.PutUint32(b[16:], w)
	binary.BigEndian.PutUint32(b[20:], h)
	b[24] = depth
	binary.BigEndian.PutUint32(b[29:], crc32.ChecksumIEEE(b[12:29]))
	return b
}

func TestThumbnail(t *testing.T) {
	for _, c := range []struct {
		name       string
		src        []byte
		side       int
		w, h       int
		mime, kind string
	}{
		{"landscape jpeg", encodeJPEG(t, gradient(1200, 900)), 256, 256, 192, "image/jpeg", "jpeg"},
		{"portrait png", encodePNG(t, gradient(300, 1000)), 512, 153, 512, "image/png", "png"},
		{"small png", encodePNG(t, gradient(100, 50)), 256, 100, 50, "image/png", "png"},
	} {
		out, mime, err := Thumbnail(c.src, c.side)
		if err != nil || mime != c.mime {
			t.Fatalf("%s: %s %v", c.name, mime, err)
		}
		cfg, kind, err := image.DecodeConfig(bytes.NewReader(out))
		if err != nil || kind != c.kind || cfg.Width != c.w || cfg.Height != c.h {
			t.Fatalf("%s: %s %dx%d %v, want %s %dx%d", c.name, kind, cfg.Width, cfg.Height, err, c.kind, c.w, c.h)
		}
	}
	for name, src := range map[string][]byte{
		"a decompression bomb": bombPNG(t, 100000, 100000),
		"36 MP of 16-bit RGBA": claimPNG(t, 6000, 6000, 16), // 288 MB decoded
		"garbage":              []byte("not an image at all"),
		"a truncated png":      encodePNG(t, gradient(64, 64))[:60],
		"a gif":                []byte("GIF89a\x01\x00\x01\x00\x00\x00\x00;"),
	} {
		if _, _, err := Thumbnail(src, 256); !errors.Is(err, ErrNoThumbnail) {
			t.Fatalf("%s: %v, want ErrNoThumbnail", name, err)
		}
	}
	// 36 MP passes the pixel cap, but 16-bit RGBA would take 288 MB: refused
	// before decoding.
	if _, _, err := Thumbnail(claimPNG(t, 6000, 6000, 16), 256); !errors.Is(err, ErrNoThumbnail) || !strings.Contains(err.Error(), "to decode") {
		t.Fatalf("a 16-bit 36 MP PNG: %v, want refused by the decode budget", err)
	}
}

// TestThumbnailStored: a thumbnail is made once and then served from the store;
// a damaged image gets thumbnail_unavailable.
func TestThumbnailStored(t *testing.T) {
	s, d := newDirStore(t)
	ctx := context.Background()
	put := func(body []byte) Record {
		up, err := s.Create(ctx, "ann", wire.UploadRequest{ConversationID: 5, MimeType: "image/jpeg", Size: int64(len(body)), Name: "chart.jpg"})
		if err == nil {
			_, err = s.Put(ctx, up.ObjectKey, tokenOf(t, up), int64(len(body)), "image/jpeg", bytes.NewReader(body))
		}
		if err != nil {
			t.Fatal(err)
		}
		r, _ := s.Lookup(ctx, up.ObjectKey)
		return r
	}
	r := put(encodeJPEG(t, gradient(800, 600)))
	for range 2 {
		f, err := s.Open(ctx, r, 512)
		if err != nil || f.MimeType != "image/jpeg" || f.Name != "chart-512.jpg" {
			t.Fatalf("thumb: %+v %v", f, err)
		}
		f.Content.Close()
	}
	if _, err := d.Head(ctx, mustKey(r.Key).thumb(512)); err != nil {
		t.Fatalf("the thumbnail is not stored: %v", err)
	}
	bad := put([]byte("\xff\xd8\xff not really a jpeg"))
	if _, err := s.Open(ctx, bad, 256); codeOf(err) != wire.CodeThumbUnavailable {
		t.Fatalf("a damaged image: %v", err)
	}
}

// FuzzThumbnail: no input panics or decodes past MaxThumbPixels; what comes out
// decodes and fits the side.
func FuzzThumbnail(f *testing.F) {
	f.Add(encodePNG(f, gradient(40, 30)), 256)
	f.Add(encodeJPEG(f, gradient(300, 20)), 256)
	f.Add(bombPNG(f, 70000, 70000), 512)
	f.Fuzz(func(t *testing.T, src []byte, side int) {
		side = 256 + (side&1)*256
		out, _, err := Thumbnail(src, side)
		if err != nil {
			if !errors.Is(err, ErrNoThumbnail) {
				t.Fatalf("error outside ErrNoThumbnail: %v", err)
			}
			return
		}
		cfg, _, err := image.DecodeConfig(bytes.NewReader(out))
		if err != nil || cfg.Width > side || cfg.Height > side || cfg.Width < 1 || cfg.Height < 1 {
			t.Fatalf("thumbnail %dx%d %v for side %d", cfg.Width, cfg.Height, err, side)
		}
	})
}

// FuzzUploadRequest: the upload request as the gateway decodes it; whatever is
// accepted is within bounds.
func FuzzUploadRequest(f *testing.F) {
	f.Add([]byte(`{"conversation_id":"7","mime_type":"image/png","size":1024,"name":"a.png"}`))
	f.Add([]byte(`{"conversation_id":"7","mime_type":"application/zip","size":104857601}`))
	f.Add([]byte(`{"conversation_id":7,"mime_type":"image/*","size":-1,"sha256":"00"}`))
	d, err := coldstore.OpenDir(f.TempDir())
	if err != nil {
		f.Fatal(err)
	}
	s, err := New(Config{Objects: d, Secret: []byte("k"), PublicURL: "http://x"}, nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var req wire.UploadRequest
		if e := wire.DecodeBody(data, &req, wire.UploadFields); e != nil {
			return
		}
		if err := s.CheckRequest(req); err != nil {
			if wire.AsError(err).Code == wire.CodeInternal {
				t.Fatalf("internal error for %q: %v", data, err)
			}
			return
		}
		if req.ConversationID == 0 || req.Size <= 0 || req.Size > s.cfg.MaxBytes || !s.allowed(req.MimeType) ||
			len(req.Name) > 255 || (req.SHA256 != "" && len(req.SHA256) != 64) {
			t.Fatalf("accepted %+v", req)
		}
	})
}
