// Package media keeps the photos, videos and files of media messages in the object
// store the cold tier uses (coldstore.Objects): uploads, their records, downloads,
// thumbnails and the sweep of uploads no message refers to.
//
// An object's key, as clients see it, is "<conversation>-<16 hex digits>". Its bytes
// live at media/<conversation>/<hex>, its record (who uploaded it for which
// conversation, its type and size, the messages that carry it) beside them at
// media/<conversation>/<hex>.rec, and its thumbnails at thumbs/<conversation>/<hex>-<side>.
// Records live in the object store too, so media needs no table in any warm store
// and works the same on every backend.
//
// Who may do what is the caller's to decide (package dispatch checks membership);
// this package checks what the bytes are.
package media

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fanline/fanline/coldstore"
	"github.com/fanline/fanline/internal/metrics"
	"github.com/fanline/fanline/internal/wire"
)

// DefaultAllowedTypes are the types uploads may have unless configured: raster
// images (no SVG: it can carry script), common video, pdf, office documents, zip
// and text. A configured pattern "type/*" allows a whole top-level type.
var DefaultAllowedTypes = []string{
	"image/jpeg", "image/png", "image/gif", "image/webp", "image/heic", "image/heif", "image/avif",
	"video/mp4", "video/quicktime", "video/webm", "application/pdf",
	"application/msword", "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
	"application/vnd.ms-excel", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
	"application/vnd.ms-powerpoint", "application/vnd.openxmlformats-officedocument.presentationml.presentation",
	"application/zip", "text/plain", "text/csv",
}

// Config configures a Store.
type Config struct {
	// Objects holds the bytes and records. Required.
	Objects coldstore.Objects
	// Secret signs the upload URLs fanline serves itself (the dir store). Required
	// there.
	Secret []byte
	// PublicURL is the base clients reach fanline's API by (http(s)://host[:port]),
	// for those upload URLs.
	PublicURL string
	// AllowedTypes are the mime types uploads may have. Empty: DefaultAllowedTypes.
	AllowedTypes []string
	// MaxBytes bounds one upload. Zero means 100 MiB.
	MaxBytes int64
	// PartSize is the size from which an upload to a presigning store is
	// multipart, and the size of its parts. Zero means 16 MiB; S3 needs >= 5 MiB.
	PartSize int64
	// UploadTTL, DownloadTTL: how long signed URLs hold. Zero: 15 min, 5 min.
	UploadTTL, DownloadTTL time.Duration
	// OrphanTTL is how long an upload no message refers to is kept. Zero: 24 h.
	OrphanTTL time.Duration
	// ThumbMaxSourceBytes bounds the sources thumbnailed. Zero means 50 MiB.
	ThumbMaxSourceBytes int64
	// MessageExists tells whether a message is stored (in any tier). The sweep
	// asks it about the messages an upload was attached to: one whose send failed
	// after the attach leaves an upload no stored message carries, deleted like
	// an orphan. Nil: every attached message counts as stored.
	MessageExists func(ctx context.Context, msgID uint64) (bool, error)
	// Logger is the structured log. Nil means slog.Default().
	Logger *slog.Logger
}

// Store is the media service on one object store. It is safe for concurrent use.
type Store struct {
	cfg     Config
	objs    coldstore.Objects
	pre     coldstore.Presigner // nil: fanline serves the bytes itself
	m       *metrics.Metrics
	log     *slog.Logger
	locks   keyLocks      // one writer per record (and thumbnail)
	renders chan struct{} // bounds concurrent thumbnail decodes (memory)
	now     func() time.Time
}

// New builds a Store; objects that implement coldstore.Presigner get presigned URLs.
func New(cfg Config, m *metrics.Metrics) (*Store, error) {
	if cfg.Objects == nil {
		return nil, errors.New("media: no object store")
	}
	if len(cfg.AllowedTypes) == 0 {
		cfg.AllowedTypes = DefaultAllowedTypes
	}
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = 100 << 20
	}
	if cfg.PartSize <= 0 {
		cfg.PartSize = 16 << 20
	}
	if cfg.UploadTTL <= 0 {
		cfg.UploadTTL = 15 * time.Minute
	}
	if cfg.DownloadTTL <= 0 {
		cfg.DownloadTTL = 5 * time.Minute
	}
	if cfg.OrphanTTL <= 0 {
		cfg.OrphanTTL = 24 * time.Hour
	}
	if cfg.ThumbMaxSourceBytes <= 0 {
		cfg.ThumbMaxSourceBytes = 50 << 20
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Store{cfg: cfg, objs: cfg.Objects, m: m, log: cfg.Logger, renders: make(chan struct{}, 2), now: time.Now}
	s.pre, _ = cfg.Objects.(coldstore.Presigner)
	if s.pre == nil {
		if len(cfg.Secret) == 0 {
			return nil, errors.New("media: serving uploads needs a secret to sign their URLs")
		}
		if err := checkPublicURL(cfg.PublicURL); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func checkPublicURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" {
		return fmt.Errorf("media: public_url %q must be an http(s)://host[:port][/path] URL clients reach fanline by", s)
	}
	return nil
}

// Presigned reports whether clients move bytes to and from the object store
// directly (MinIO/S3) rather than through fanline.
func (s *Store) Presigned() bool { return s.pre != nil }

// Record is what the store knows of one upload.
type Record struct {
	Key       string    `json:"key"`
	Conv      uint64    `json:"conversation_id,string"`
	Uploader  string    `json:"uploader"` // the uploader's inbox (wire.Principal.Inbox)
	MimeType  string    `json:"mime_type"`
	Size      int64     `json:"size"`
	Name      string    `json:"name,omitempty"`
	SHA256    string    `json:"sha256,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	// UploadID is the object store's id of a multipart upload under way.
	UploadID string `json:"upload_id,omitempty"`
	// Stored: the bytes are in place and were checked (size, and sha256 if given).
	Stored bool `json:"stored,omitempty"`
	// Messages are the first messages that carry the object (a bounded few), and
	// Newest the latest one (past the bound too): who may see either may download.
	Messages []uint64 `json:"messages,omitempty"`
	Newest   uint64   `json:"newest,omitempty,string"`
}

// Carriers are the messages the record names.
func (r Record) Carriers() []uint64 {
	if r.Newest == 0 || slices.Contains(r.Messages, r.Newest) {
		return r.Messages
	}
	return append(slices.Clone(r.Messages), r.Newest)
}

// maxMessages bounds the messages a record lists; past it Newest follows the
// latest.
const maxMessages = 64

// keys of an object: its bytes, record, dedup index and thumbnails.
type objectKey struct {
	conv uint64
	id   string // 16 hex digits
}

// ParseKey reads a client's object key ("<conversation>-<16 hex digits>").
func ParseKey(s string) (objectKey, bool) {
	c, id, ok := strings.Cut(s, "-")
	conv, err := strconv.ParseUint(c, 10, 64)
	if !ok || err != nil || conv == 0 || c != strconv.FormatUint(conv, 10) || len(id) != 16 || strings.Trim(id, "0123456789abcdef") != "" {
		return objectKey{}, false
	}
	return objectKey{conv, id}, true
}

func (k objectKey) String() string { return strconv.FormatUint(k.conv, 10) + "-" + k.id }
func (k objectKey) data() string   { return "media/" + strconv.FormatUint(k.conv, 10) + "/" + k.id }
func (k objectKey) record() string { return k.data() + ".rec" }

// pending marks an upload the sweep has to look at: until it is carried by a
// message that was stored, or deleted.
func (k objectKey) pending() string {
	return "pending/" + strconv.FormatUint(k.conv, 10) + "/" + k.id
}
func (k objectKey) thumb(side int) string {
	return "thumbs/" + strconv.FormatUint(k.conv, 10) + "/" + k.id + "-" + strconv.Itoa(side)
}

// shaKey is the dedup index of an uploader's object of given bytes in a
// conversation: it holds the object's key.
func shaKey(conv uint64, uploader, sum string) string {
	h := sha256.Sum256([]byte(uploader))
	return "media/" + strconv.FormatUint(conv, 10) + "/sha-" + hex.EncodeToString(h[:8]) + "-" + sum
}

func newKey(conv uint64) objectKey {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return objectKey{conv, hex.EncodeToString(b[:])}
}

func notFound(key string) error {
	return wire.Errorf(wire.CodeMediaMissing, "no media object %q", key)
}

// missing reports whether err says an object or record does not exist.
func missing(err error) bool { return err != nil && wire.AsError(err).Code == wire.CodeMediaMissing }

// unavailable maps an object store outage to the client's 503.
func unavailable(err error) error {
	if errors.Is(err, coldstore.ErrUnavailable) {
		return &wire.Error{Code: wire.CodeUnavailable, Message: "media storage is unreachable; retry shortly", RetryAfter: 5}
	}
	return err
}

// Lookup reads the record of a client's object key; media_not_found when there is
// none.
func (s *Store) Lookup(ctx context.Context, key string) (Record, error) {
	k, ok := ParseKey(key)
	if !ok {
		return Record{}, notFound(key)
	}
	return s.read(ctx, k)
}

func (s *Store) read(ctx context.Context, k objectKey) (Record, error) {
	b, err := coldstore.ReadAll(ctx, s.objs, k.record())
	if errors.Is(err, coldstore.ErrNotExist) {
		return Record{}, notFound(k.String())
	}
	if err != nil {
		return Record{}, unavailable(err)
	}
	var r Record
	if err := json.Unmarshal(b, &r); err != nil {
		return Record{}, fmt.Errorf("media: record %s: %w", k, err)
	}
	return r, nil
}

func (s *Store) write(ctx context.Context, r Record) error {
	k, _ := ParseKey(r.Key)
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return unavailable(s.objs.Put(ctx, k.record(), strings.NewReader(string(b)), int64(len(b))))
}

// allowed reports whether uploads of mime are allowed.
func (s *Store) allowed(mime string) bool {
	for _, p := range s.cfg.AllowedTypes {
		if p == mime || (strings.HasSuffix(p, "/*") && strings.HasPrefix(mime, strings.TrimSuffix(p, "*"))) {
			return true
		}
	}
	return false
}
