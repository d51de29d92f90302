package media

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fanline/fanline/coldstore"
	"github.com/fanline/fanline/internal/wire"
)

// CheckRequest validates an upload request's fields (not who may make it).
func (s *Store) CheckRequest(req wire.UploadRequest) error {
	if req.ConversationID == 0 {
		return wire.Errorf(wire.CodeMissingField, "conversation_id is required")
	}
	mt, _, _ := strings.Cut(req.MimeType, ";")
	if req.MimeType == "" {
		return wire.Errorf(wire.CodeMissingField, "mime_type is required")
	}
	if mt != req.MimeType || len(mt) > 255 || !strings.Contains(mt, "/") || mt != strings.ToLower(strings.TrimSpace(mt)) {
		return wire.Errorf(wire.CodeInvalidField, "mime_type must be a lower-case type/subtype without parameters")
	}
	if !s.allowed(mt) {
		return wire.Errorf(wire.CodeUnsupportedMedia, "uploads of %s are not allowed here", mt)
	}
	if req.Size <= 0 {
		return wire.Errorf(wire.CodeInvalidField, "size must be a positive number of bytes")
	}
	if req.Size > s.cfg.MaxBytes {
		return wire.Errorf(wire.CodeUploadTooLarge, "size is %d bytes, the limit is %d", req.Size, s.cfg.MaxBytes)
	}
	if len(req.Name) > 255 || strings.ContainsAny(req.Name, "/\\\x00") {
		return wire.Errorf(wire.CodeInvalidField, "name must be a file name of at most 255 bytes, without slashes")
	}
	if req.SHA256 != "" && (len(req.SHA256) != 64 || strings.Trim(req.SHA256, "0123456789abcdef") != "") {
		return wire.Errorf(wire.CodeInvalidField, "sha256 must be 64 lower-case hex digits")
	}
	return nil
}

// Create records a new upload by uploader (an inbox) and says how to send its
// bytes. The caller has checked that uploader may write in the conversation.
func (s *Store) Create(ctx context.Context, uploader string, req wire.UploadRequest) (wire.Upload, error) {
	if err := s.CheckRequest(req); err != nil {
		return wire.Upload{}, err
	}
	conv := uint64(req.ConversationID)
	if req.SHA256 != "" {
		if r, ok, err := s.same(ctx, conv, uploader, req); err != nil || ok {
			return wire.Upload{ObjectKey: r.Key, Uploaded: ok}, err
		}
	}
	k := newKey(conv)
	r := Record{Key: k.String(), Conv: conv, Uploader: uploader, MimeType: req.MimeType, Size: req.Size,
		Name: req.Name, SHA256: req.SHA256, CreatedAt: s.now().UTC()}
	// The sweep's marker first: a crash before the record leaves a marker the
	// sweep drops, never a record it would not find.
	if err := s.objs.Put(ctx, k.pending(), strings.NewReader(""), 0); err != nil {
		return wire.Upload{}, unavailable(err)
	}
	multipart := s.pre != nil && req.Size > s.cfg.PartSize
	if multipart {
		id, err := s.pre.StartMultipart(ctx, k.data(), req.MimeType)
		if err != nil {
			return wire.Upload{}, unavailable(err)
		}
		r.UploadID = id
	}
	if err := s.write(ctx, r); err != nil {
		return wire.Upload{}, err
	}
	if r.SHA256 != "" { // the next upload of these bytes finds this one (same)
		if err := s.index(ctx, r); err != nil {
			return wire.Upload{}, err
		}
	}
	s.m.MediaUploads.WithLabelValues("started").Inc()
	expires := s.now().Add(s.cfg.UploadTTL).UTC().Truncate(time.Second)
	up := wire.Upload{ObjectKey: r.Key, ExpiresAt: expires}
	switch {
	case multipart:
		up.Multipart = &wire.Multipart{PartSize: s.cfg.PartSize, Parts: int((req.Size + s.cfg.PartSize - 1) / s.cfg.PartSize)}
	case s.pre != nil:
		u, h, err := s.pre.PresignPut(ctx, k.data(), req.Size, req.MimeType, s.cfg.UploadTTL)
		if err != nil {
			return wire.Upload{}, unavailable(err)
		}
		up.UploadURL, up.Method, up.Headers = u, "PUT", flat(h)
	default:
		up.UploadURL = strings.TrimSuffix(s.cfg.PublicURL, "/") + "/v1/uploads/" + r.Key + "?token=" + s.token(r.Key, expires)
		up.Method = "PUT"
		up.Headers = map[string]string{"Content-Type": req.MimeType}
	}
	return up, nil
}

// same finds the uploader's stored object of req's bytes in the conversation.
func (s *Store) same(ctx context.Context, conv uint64, uploader string, req wire.UploadRequest) (Record, bool, error) {
	b, err := coldstore.ReadAll(ctx, s.objs, shaKey(conv, uploader, req.SHA256))
	if errors.Is(err, coldstore.ErrNotExist) {
		return Record{}, false, nil
	}
	if err != nil {
		return Record{}, false, unavailable(err)
	}
	r, err := s.Lookup(ctx, string(b))
	if err != nil {
		if we := wire.AsError(err); we.Code == wire.CodeMediaMissing {
			return Record{}, false, nil // swept since
		}
		return Record{}, false, err
	}
	if r.Uploader != uploader || r.Size != req.Size || r.MimeType != req.MimeType || r.SHA256 != req.SHA256 {
		return Record{}, false, nil
	}
	unlock := s.locks.lock(r.Key)
	defer unlock()
	if r, err = s.read(ctx, mustKey(r.Key)); err != nil { // as it is now, not as indexed
		if missing(err) {
			return Record{}, false, nil
		}
		return Record{}, false, err
	}
	if r, err = s.settle(ctx, r); err != nil {
		if c := wire.AsError(err).Code; c == wire.CodeMediaMissing || c == wire.CodeMediaMismatch {
			return Record{}, false, nil
		}
		return Record{}, false, err
	}
	if len(r.Messages) == 0 { // handed out again: its orphan TTL starts again
		r.CreatedAt = s.now().UTC()
		if err := s.write(ctx, r); err != nil {
			return Record{}, false, err
		}
	}
	return r, true, nil
}

// settle returns r stored, or why it is not: a presigned PUT tells fanline nothing,
// so whether it arrived is looked up (and checked) the first time it matters. The
// caller holds r's lock.
func (s *Store) settle(ctx context.Context, r Record) (Record, error) {
	if r.Stored {
		return r, nil
	}
	if s.pre == nil {
		return r, wire.Errorf(wire.CodeMediaMissing, "object %s has not been uploaded yet", r.Key)
	}
	// A multipart upload's object exists once its completion went through, even
	// if the record was not written after it.
	if _, err := s.stored(ctx, r, ""); err != nil {
		return r, err
	}
	r.Stored, r.UploadID = true, ""
	return r, nil
}

func flat(h map[string][]string) map[string]string {
	out := make(map[string]string, len(h))
	for k, v := range h {
		if len(v) > 0 {
			out[k] = v[0]
		}
	}
	return out
}

// token signs an embedded upload's key and expiry (its size and type are in its
// record).
func (s *Store) token(key string, expires time.Time) string {
	exp := strconv.FormatInt(expires.Unix(), 10)
	return exp + "." + s.sign(key, exp)
}

func (s *Store) sign(parts ...string) string {
	mac := hmac.New(sha256.New, s.cfg.Secret)
	mac.Write([]byte("fanline-upload\x00" + strings.Join(parts, "\x00")))
	return hex.EncodeToString(mac.Sum(nil)[:16])
}

// checkToken verifies an embedded upload's token, before anything is looked up.
func (s *Store) checkToken(key, token string) error {
	exp, sig, ok := strings.Cut(token, ".")
	unix, err := strconv.ParseInt(exp, 10, 64)
	if !ok || err != nil || !hmac.Equal([]byte(sig), []byte(s.sign(key, exp))) {
		return wire.Errorf(wire.CodeInvalidToken, "the upload URL's token is not valid for this object")
	}
	if s.now().After(time.Unix(unix, 0)) {
		return wire.Errorf(wire.CodeUploadExpired, "the upload URL expired; ask POST /v1/uploads for a new one")
	}
	return nil
}

// Put stores the bytes of an embedded upload (the PUT to the URL Create gave):
// exactly the size and type the upload was created with, checked against its
// sha256. It streams; nothing is held in memory.
func (s *Store) Put(ctx context.Context, key, token string, size int64, mime string, body io.Reader) (wire.MediaObject, error) {
	if s.pre != nil {
		return wire.MediaObject{}, wire.Errorf(wire.CodeNotFound, "uploads go to object storage directly here")
	}
	if err := s.checkToken(key, token); err != nil {
		return wire.MediaObject{}, err
	}
	r, err := s.Lookup(ctx, key)
	if err != nil {
		return wire.MediaObject{}, err
	}
	if size != r.Size {
		return wire.MediaObject{}, wire.Errorf(wire.CodeMediaMismatch, "the upload is %d bytes, Content-Length says %d", r.Size, size)
	}
	if m, _, _ := strings.Cut(mime, ";"); strings.TrimSpace(m) != r.MimeType {
		return wire.MediaObject{}, wire.Errorf(wire.CodeMediaMismatch, "the upload is %s, Content-Type says %q", r.MimeType, mime)
	}
	if r.Stored {
		return wire.MediaObject{}, wire.Errorf(wire.CodeConflict, "object %s is uploaded already", r.Key)
	}
	// The bytes stream in without a lock (the client sets the pace); one PUT of
	// an object at a time, and none once it is stored.
	done, ok := s.locks.receive(r.Key)
	if !ok {
		return wire.MediaObject{}, wire.Errorf(wire.CodeConflict, "object %s is being uploaded by another request", r.Key)
	}
	defer done()
	h := sha256.New()
	if err := s.objs.Put(ctx, mustKey(r.Key).data(), io.TeeReader(body, h), r.Size); err != nil {
		s.m.MediaUploads.WithLabelValues("failed").Inc()
		if errors.Is(err, coldstore.ErrUnavailable) {
			return wire.MediaObject{}, unavailable(err)
		}
		return wire.MediaObject{}, wire.Errorf(wire.CodeMediaMismatch, "the upload did not arrive whole: %v", err)
	}
	unlock := s.locks.lock(r.Key)
	defer unlock()
	if r, err = s.read(ctx, mustKey(r.Key)); err != nil { // swept meanwhile
		return wire.MediaObject{}, err
	}
	return s.stored(ctx, r, hex.EncodeToString(h.Sum(nil)))
}

func mustKey(s string) objectKey {
	k, _ := ParseKey(s)
	return k
}

// stored marks r's bytes in place once they check out (sum: their sha256 when
// known); bytes that do not match are deleted. The caller holds r's lock.
func (s *Store) stored(ctx context.Context, r Record, sum string) (wire.MediaObject, error) {
	k := mustKey(r.Key)
	info, err := s.objs.Head(ctx, k.data())
	if errors.Is(err, coldstore.ErrNotExist) {
		return wire.MediaObject{}, wire.Errorf(wire.CodeMediaMissing, "object %s has not been uploaded", r.Key)
	}
	if err != nil {
		return wire.MediaObject{}, unavailable(err)
	}
	mismatch := ""
	if info.Size != r.Size {
		mismatch = fmt.Sprintf("the stored object is %d bytes, the upload said %d", info.Size, r.Size)
	} else if r.SHA256 != "" {
		if sum == "" {
			if sum, err = s.hash(ctx, k.data()); err != nil {
				return wire.MediaObject{}, err
			}
		}
		if sum != r.SHA256 {
			mismatch = "the stored bytes do not have the sha256 the upload said"
		}
	}
	if mismatch != "" {
		s.m.MediaUploads.WithLabelValues("failed").Inc()
		if err := s.objs.Delete(ctx, k.data()); err != nil {
			return wire.MediaObject{}, unavailable(err)
		}
		return wire.MediaObject{}, wire.Errorf(wire.CodeMediaMismatch, "%s; upload it again", mismatch)
	}
	r.Stored, r.UploadID = true, ""
	if err := s.write(ctx, r); err != nil {
		return wire.MediaObject{}, err
	}
	s.m.MediaUploads.WithLabelValues("completed").Inc()
	s.m.MediaBytes.Add(float64(r.Size))
	return objectOf(r), nil
}

// index points the dedup index of r's bytes at r.
func (s *Store) index(ctx context.Context, r Record) error {
	return unavailable(s.objs.Put(ctx, shaKey(r.Conv, r.Uploader, r.SHA256), strings.NewReader(r.Key), int64(len(r.Key))))
}

func objectOf(r Record) wire.MediaObject {
	return wire.MediaObject{ObjectKey: r.Key, MimeType: r.MimeType, Size: r.Size, Name: r.Name, SHA256: r.SHA256}
}

func (s *Store) hash(ctx context.Context, key string) (string, error) {
	rc, err := s.objs.Get(ctx, key, 0, -1)
	if err != nil {
		return "", unavailable(err)
	}
	defer rc.Close()
	h := sha256.New()
	if _, err := io.Copy(h, rc); err != nil {
		return "", unavailable(err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Parts signs the URLs of a multipart upload's parts (numbers: which; none: all).
func (s *Store) Parts(ctx context.Context, uploader, key string, numbers []int) (wire.UploadParts, error) {
	r, err := s.Lookup(ctx, key)
	if err != nil || r.Uploader != uploader {
		return wire.UploadParts{}, orNotFound(err, key)
	}
	if r.UploadID == "" || s.pre == nil {
		return wire.UploadParts{}, wire.Errorf(wire.CodeConflict, "object %s is not a multipart upload under way", key)
	}
	count := int((r.Size + s.cfg.PartSize - 1) / s.cfg.PartSize)
	if len(numbers) == 0 {
		for n := 1; n <= count; n++ {
			numbers = append(numbers, n)
		}
	}
	if len(numbers) > count {
		return wire.UploadParts{}, wire.Errorf(wire.CodeInvalidField, "the upload has %d parts", count)
	}
	out := wire.UploadParts{ExpiresAt: s.now().Add(s.cfg.UploadTTL).UTC().Truncate(time.Second)}
	for _, n := range numbers {
		if n < 1 || n > count {
			return wire.UploadParts{}, wire.Errorf(wire.CodeInvalidField, "part numbers run from 1 to %d", count)
		}
		size := min(s.cfg.PartSize, r.Size-int64(n-1)*s.cfg.PartSize)
		u, h, err := s.pre.PresignPart(ctx, mustKey(key).data(), r.UploadID, n, size, s.cfg.UploadTTL)
		if err != nil {
			return wire.UploadParts{}, unavailable(err)
		}
		out.Parts = append(out.Parts, wire.PartURL{Number: n, Size: size, URL: u, Headers: flat(h)})
	}
	return out, nil
}

func orNotFound(err error, key string) error {
	if err != nil {
		return err
	}
	return notFound(key)
}

// Complete joins a multipart upload's parts and checks the object.
func (s *Store) Complete(ctx context.Context, uploader, key string, parts []wire.UploadedPart) (wire.MediaObject, error) {
	r, err := s.Lookup(ctx, key)
	if err != nil || r.Uploader != uploader {
		return wire.MediaObject{}, orNotFound(err, key)
	}
	unlock := s.locks.lock(r.Key)
	defer unlock()
	if r, err = s.read(ctx, mustKey(key)); err != nil {
		return wire.MediaObject{}, err
	}
	if r.Stored {
		return objectOf(r), nil // completed before: answer the same
	}
	if r.UploadID == "" || s.pre == nil {
		return wire.MediaObject{}, wire.Errorf(wire.CodeConflict, "object %s is not a multipart upload under way", key)
	}
	count := int((r.Size + s.cfg.PartSize - 1) / s.cfg.PartSize)
	if len(parts) != count {
		return wire.MediaObject{}, wire.Errorf(wire.CodeInvalidField, "the upload has %d parts, %d were given", count, len(parts))
	}
	cp := make([]coldstore.Part, len(parts))
	for i, p := range parts {
		if p.Number != i+1 || p.ETag == "" {
			return wire.MediaObject{}, wire.Errorf(wire.CodeInvalidField, "parts must be numbers 1 to %d in order, each with its etag", count)
		}
		cp[i] = coldstore.Part{Number: p.Number, ETag: p.ETag}
	}
	if err := s.pre.CompleteMultipart(ctx, mustKey(key).data(), r.UploadID, cp); err != nil {
		if errors.Is(err, coldstore.ErrUnavailable) {
			return wire.MediaObject{}, unavailable(err)
		}
		// Completed before, with the record not written after it (a crash, an
		// outage): the store no longer knows the upload, but has the object.
		if obj, serr := s.stored(ctx, r, ""); serr == nil {
			return obj, nil
		}
		s.m.MediaUploads.WithLabelValues("failed").Inc()
		return wire.MediaObject{}, wire.Errorf(wire.CodeMediaMismatch, "the parts do not make the upload: %v", err)
	}
	return s.stored(ctx, r, "")
}

// Attach records that message msgID of conv carries key, sent by sender (an inbox)
// as a body of mime and size: the object must be the sender's upload for that
// conversation, stored, and of that type and size. It is written before the send
// is acknowledged, so an object a message carries is never swept as an orphan.
func (s *Store) Attach(ctx context.Context, sender string, conv uint64, key, mime string, size int64, msgID uint64) error {
	k, ok := ParseKey(key)
	if !ok || k.conv != conv {
		return notFound(key)
	}
	unlock := s.locks.lock(k.String())
	defer unlock()
	r, err := s.read(ctx, k)
	if err != nil {
		return err
	}
	if r.Uploader != sender {
		return notFound(key)
	}
	if r, err = s.settle(ctx, r); err != nil {
		return err
	}
	if r.MimeType != mime || r.Size != size {
		return wire.Errorf(wire.CodeMediaMismatch, "object %s is %s of %d bytes; the message says %s of %d", key, r.MimeType, r.Size, mime, size)
	}
	if slices.Contains(r.Messages, msgID) || r.Newest == msgID {
		return nil
	}
	if len(r.Messages) < maxMessages {
		r.Messages = append(r.Messages, msgID)
	}
	r.Newest = max(r.Newest, msgID)
	return s.write(ctx, r)
}
