package coldstore

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// Presigner is an object store that clients reach directly, with URLs it signs for
// one request each (MinIO/S3): media bytes then never pass through fanline. The dir
// store is not one; fanline serves its bytes itself.
type Presigner interface {
	// PresignPut signs a PUT of exactly size bytes of type mime as key, valid for
	// ttl, that only creates the object: once key exists, the URL is refused (412),
	// so what was stored and checked cannot be replaced by it. The client must send
	// the returned headers as they are.
	PresignPut(ctx context.Context, key string, size int64, mime string, ttl time.Duration) (string, http.Header, error)
	// PresignGet signs a GET of key valid for ttl; the answer carries mime as its
	// Content-Type and disposition (when set) as its Content-Disposition.
	PresignGet(ctx context.Context, key string, ttl time.Duration, mime, disposition string) (string, error)
	// StartMultipart begins a multipart upload of key and returns its id.
	StartMultipart(ctx context.Context, key, mime string) (string, error)
	// PresignPart signs the PUT of part number (1-based) of size bytes.
	PresignPart(ctx context.Context, key, uploadID string, number int, size int64, ttl time.Duration) (string, http.Header, error)
	// CompleteMultipart joins the parts, in number order, into key.
	CompleteMultipart(ctx context.Context, key, uploadID string, parts []Part) error
	// AbortMultipart drops an unfinished upload and its parts; an unknown id is
	// not an error.
	AbortMultipart(ctx context.Context, key, uploadID string) error
}

// Part is one uploaded part of a multipart upload: its number and the ETag the
// store answered its PUT with.
type Part struct {
	Number int    `json:"number"`
	ETag   string `json:"etag"`
}

var _ Presigner = (*MinIO)(nil)

// signerFor returns the client that signs URLs for clients: one addressed at
// publicURL (the host clients reach the store by; a signature covers the host),
// or the store's own client when publicURL is empty. Signing needs no request
// when the region is known.
func signerFor(cfg MinIOConfig, own *minio.Client) (*minio.Client, error) {
	if cfg.PublicURL == "" {
		return own, nil
	}
	u, err := url.Parse(cfg.PublicURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
		return nil, fmt.Errorf("coldstore: minio public url %q must be http(s)://host[:port]", cfg.PublicURL)
	}
	region := cfg.Region
	if region == "" {
		region = "us-east-1"
	}
	return minio.New(u.Host, &minio.Options{Creds: credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""),
		Secure: u.Scheme == "https", Region: region})
}

func (m *MinIO) sign(ctx context.Context, method, key string, ttl time.Duration, params url.Values, h http.Header) (string, error) {
	if err := checkKey(key); err != nil {
		return "", err
	}
	u, err := m.signer.PresignHeader(ctx, method, m.bucket, key, ttl, params, h)
	if err != nil {
		return "", fmt.Errorf("coldstore: presign %s %s: %w", method, key, err)
	}
	return u.String(), nil
}

// sizedHeaders are the headers a presigned PUT binds: its length and, when set,
// its type. A PUT that sends other values fails the signature check.
func sizedHeaders(size int64, mime string) http.Header {
	h := http.Header{"Content-Length": {strconv.FormatInt(size, 10)}}
	if mime != "" {
		h.Set("Content-Type", mime)
	}
	return h
}

// PresignPut implements Presigner.
func (m *MinIO) PresignPut(ctx context.Context, key string, size int64, mime string, ttl time.Duration) (string, http.Header, error) {
	h := sizedHeaders(size, mime)
	h.Set("If-None-Match", "*")
	u, err := m.sign(ctx, http.MethodPut, key, ttl, nil, h)
	return u, h, err
}

// PresignGet implements Presigner.
func (m *MinIO) PresignGet(ctx context.Context, key string, ttl time.Duration, mime, disposition string) (string, error) {
	params := url.Values{}
	if mime != "" {
		params.Set("response-content-type", mime)
	}
	if disposition != "" {
		params.Set("response-content-disposition", disposition)
	}
	return m.sign(ctx, http.MethodGet, key, ttl, params, nil)
}

// StartMultipart implements Presigner.
func (m *MinIO) StartMultipart(ctx context.Context, key, mime string) (string, error) {
	if err := checkKey(key); err != nil {
		return "", err
	}
	id, err := m.core().NewMultipartUpload(ctx, m.bucket, key, minio.PutObjectOptions{ContentType: mime})
	if err != nil {
		return "", m.fail(key, err)
	}
	return id, nil
}

// PresignPart implements Presigner.
func (m *MinIO) PresignPart(ctx context.Context, key, uploadID string, number int, size int64, ttl time.Duration) (string, http.Header, error) {
	h := sizedHeaders(size, "")
	params := url.Values{"uploadId": {uploadID}, "partNumber": {strconv.Itoa(number)}}
	u, err := m.sign(ctx, http.MethodPut, key, ttl, params, h)
	return u, h, err
}

// CompleteMultipart implements Presigner.
func (m *MinIO) CompleteMultipart(ctx context.Context, key, uploadID string, parts []Part) error {
	cp := make([]minio.CompletePart, len(parts))
	for i, p := range parts {
		cp[i] = minio.CompletePart{PartNumber: p.Number, ETag: p.ETag}
	}
	if _, err := m.core().CompleteMultipartUpload(ctx, m.bucket, key, uploadID, cp, minio.PutObjectOptions{}); err != nil {
		return m.fail(key, err)
	}
	return nil
}

// AbortMultipart implements Presigner.
func (m *MinIO) AbortMultipart(ctx context.Context, key, uploadID string) error {
	err := m.core().AbortMultipartUpload(ctx, m.bucket, key, uploadID)
	if r := minio.ToErrorResponse(err); err != nil && r.Code != "NoSuchUpload" {
		return m.fail(key, err)
	}
	return nil
}

func (m *MinIO) core() minio.Core { return minio.Core{Client: m.c} }
