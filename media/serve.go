package media

import (
	"context"
	"errors"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/fanline/fanline/coldstore"
	"github.com/fanline/fanline/internal/wire"
)

// Open serves a stored object, or its thumbnail of side pixels (side > 0): a
// presigned URL, or its bytes.
func (s *Store) Open(ctx context.Context, r Record, side int) (wire.MediaFile, error) {
	if !r.Stored {
		unlock := s.locks.lock(r.Key)
		var err error
		r, err = s.read(ctx, mustKey(r.Key))
		if err == nil {
			r, err = s.settle(ctx, r)
		}
		unlock()
		if err != nil {
			return wire.MediaFile{}, err
		}
	}
	k := mustKey(r.Key)
	f := wire.MediaFile{MimeType: r.MimeType, Size: r.Size, Name: r.Name}
	obj := k.data()
	if side > 0 {
		var err error
		if obj, f, err = s.thumbnail(ctx, r, side); err != nil {
			return wire.MediaFile{}, err
		}
	}
	f.Disposition = disposition(f.MimeType, f.Name)
	if s.pre != nil {
		u, err := s.pre.PresignGet(ctx, obj, s.cfg.DownloadTTL, f.MimeType, f.Disposition)
		if err != nil {
			return wire.MediaFile{}, unavailable(err)
		}
		f.URL = u
		return f, nil
	}
	info, err := s.objs.Head(ctx, obj)
	if errors.Is(err, coldstore.ErrNotExist) {
		return wire.MediaFile{}, notFound(r.Key)
	}
	if err != nil {
		return wire.MediaFile{}, unavailable(err)
	}
	f.Size, f.ModTime = info.Size, info.ModTime
	f.Content = &objectReader{ctx: ctx, objs: s.objs, key: obj, size: info.Size}
	return f, nil
}

// inlineTypes are shown in the page that links them: raster images and video,
// which run nothing. Everything else (an SVG, HTML in a text file, a PDF's
// scripts) is a download, so an object's URL cannot run script on the
// storage's origin.
var inlineTypes = map[string]bool{"image/jpeg": true, "image/png": true, "image/gif": true, "image/webp": true,
	"image/heic": true, "image/heif": true, "image/avif": true, "video/mp4": true, "video/quicktime": true, "video/webm": true}

// disposition is the Content-Disposition an object of mime named name is served
// with (RFC 6266, with the UTF-8 form for names beyond ASCII).
func disposition(mime, name string) string {
	d := "attachment"
	if inlineTypes[mime] {
		d = "inline"
	}
	if name != "" {
		d += "; filename*=UTF-8''" + url.PathEscape(name)
	}
	return d
}

// Thumbnail sides served.
var thumbSides = map[int]bool{256: true, 512: true}

// ValidThumb reports whether side is a thumbnail size served.
func ValidThumb(side int) bool { return thumbSides[side] }

// thumbnail returns the key and description of r's thumbnail of side pixels,
// rendering and storing it on first request.
func (s *Store) thumbnail(ctx context.Context, r Record, side int) (string, wire.MediaFile, error) {
	k := mustKey(r.Key)
	f := wire.MediaFile{MimeType: r.MimeType}
	if r.Name != "" {
		f.Name = strings.TrimSuffix(r.Name, path.Ext(r.Name)) + "-" + strconv.Itoa(side) + path.Ext(r.Name)
	}
	if !ValidThumb(side) {
		return "", f, wire.Errorf(wire.CodeInvalidField, "thumb must be 256 or 512")
	}
	if r.MimeType != "image/jpeg" && r.MimeType != "image/png" {
		return "", f, wire.Errorf(wire.CodeThumbUnavailable, "thumbnails are made of JPEG and PNG images, not %s", r.MimeType)
	}
	if r.Size > s.cfg.ThumbMaxSourceBytes {
		return "", f, wire.Errorf(wire.CodeThumbUnavailable, "the image is %d bytes; thumbnails are made of images up to %d", r.Size, s.cfg.ThumbMaxSourceBytes)
	}
	key := k.thumb(side)
	if info, err := s.objs.Head(ctx, key); err == nil {
		f.Size = info.Size
		return key, f, nil
	} else if !errors.Is(err, coldstore.ErrNotExist) {
		return "", f, unavailable(err)
	}
	unlock := s.locks.lock(key)
	defer unlock()
	if info, err := s.objs.Head(ctx, key); err == nil { // rendered while we waited
		f.Size = info.Size
		return key, f, nil
	}
	select {
	case s.renders <- struct{}{}:
		defer func() { <-s.renders }()
	case <-ctx.Done():
		return "", f, ctx.Err()
	}
	src, err := coldstore.ReadAll(ctx, s.objs, k.data())
	if errors.Is(err, coldstore.ErrNotExist) { // deleted since (sweep, retention)
		return "", f, notFound(r.Key)
	}
	if err != nil {
		return "", f, unavailable(err)
	}
	start := time.Now()
	out, mime, err := Thumbnail(src, side)
	if err != nil {
		s.log.Info("media: no thumbnail", "object", r.Key, "err", err)
		return "", f, wire.Errorf(wire.CodeThumbUnavailable, "no thumbnail can be made of this image")
	}
	s.m.MediaRender.Observe(time.Since(start).Seconds())
	s.m.MediaThumbs.Inc()
	// Stored under the record's lock, so a deletion (which takes it) cannot run
	// between the check that the object is still there and the put.
	unlockRecord := s.locks.lock(r.Key)
	defer unlockRecord()
	if _, err := s.read(ctx, k); err != nil {
		return "", f, err
	}
	if err := s.objs.Put(ctx, key, strings.NewReader(string(out)), int64(len(out))); err != nil {
		return "", f, unavailable(err)
	}
	f.MimeType, f.Size = mime, int64(len(out))
	return key, f, nil
}
