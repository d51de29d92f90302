package coldstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/lifecycle"
)

// MinIOConfig reaches a MinIO (or any S3) bucket.
type MinIOConfig struct {
	Endpoint, Bucket, AccessKey, SecretKey, Region string
	Secure                                         bool
	// PublicURL is how clients reach the store (http(s)://host[:port]), for the
	// URLs it signs for them; a signature covers the host. Empty: Endpoint.
	PublicURL string
	// Timeout bounds one request, so an unreachable server answers
	// ErrUnavailable in about that long. Zero means 10s.
	Timeout time.Duration
}

// MinIO is the distributed object store: a bucket on MinIO/S3 through minio-go.
// S3 PUTs are atomic, so readers see a whole object or none.
type MinIO struct {
	c      *minio.Client
	signer *minio.Client // signs URLs for clients (signerFor)
	bucket string
}

var _ Objects = (*MinIO)(nil)

// OpenMinIO returns the object store of cfg's bucket. It does not create the bucket
// (EnsureBucket, run by `fanline migrate`, does).
func OpenMinIO(cfg MinIOConfig) (*MinIO, error) {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: cfg.Timeout / 2}).DialContext,
		ResponseHeaderTimeout: cfg.Timeout,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
	}
	c, err := minio.New(cfg.Endpoint, &minio.Options{
		Creds:     credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""),
		Secure:    cfg.Secure,
		Region:    cfg.Region,
		Transport: tr,
		// The scheduler retries on its next pass and clients retry a 503: one try
		// more here is enough, and keeps an outage's answer quick.
		MaxRetries: 2,
	})
	if err != nil {
		return nil, fmt.Errorf("coldstore: minio: %w", err)
	}
	signer, err := signerFor(cfg, c)
	if err != nil {
		return nil, err
	}
	return &MinIO{c: c, signer: signer, bucket: cfg.Bucket}, nil
}

// EnsureBucket creates the bucket if it does not exist and gives it a lifecycle
// rule that aborts multipart uploads left incomplete for a day. MinIO refuses that
// rule (it is not part of its lifecycle support) and instead aborts stale uploads
// itself (api stale_uploads_expiry, default 24h): ruled reports whether the rule was
// set. Running it again changes nothing.
func (m *MinIO) EnsureBucket(ctx context.Context, region string) (ruled bool, err error) {
	ok, err := m.c.BucketExists(ctx, m.bucket)
	if err != nil {
		return false, m.fail("bucket", err)
	}
	if !ok {
		if err := m.c.MakeBucket(ctx, m.bucket, minio.MakeBucketOptions{Region: region}); err != nil {
			if r := minio.ToErrorResponse(err); r.Code != "BucketAlreadyOwnedByYou" {
				return false, m.fail("bucket", err)
			}
		}
	}
	lc := lifecycle.NewConfiguration()
	lc.Rules = []lifecycle.Rule{{
		ID:                             "fanline-abort-incomplete-uploads",
		Status:                         "Enabled",
		AbortIncompleteMultipartUpload: lifecycle.AbortIncompleteMultipartUpload{DaysAfterInitiation: 1},
	}}
	if err := m.c.SetBucketLifecycle(ctx, m.bucket, lc); err != nil {
		// MinIO answers MalformedXML for a rule it does not support.
		if r := minio.ToErrorResponse(err); r.Code == "MalformedXML" || strings.Contains(err.Error(), "not well-formed") {
			return false, nil
		}
		return false, m.fail("bucket lifecycle", err)
	}
	return true, nil
}

// fail maps a minio-go error: a missing key is ErrNotExist, a refused request
// (access, bad request) stays a plain error, anything else is ErrUnavailable.
func (m *MinIO) fail(key string, err error) error {
	r := minio.ToErrorResponse(err)
	switch {
	case r.Code == "NoSuchKey" || r.Code == "NoSuchObject" || (r.StatusCode == http.StatusNotFound && r.Code != "NoSuchBucket"):
		return fmt.Errorf("%w: %s", ErrNotExist, key)
	case r.StatusCode >= 400 && r.StatusCode < 500 && r.StatusCode != http.StatusRequestTimeout && r.StatusCode != http.StatusTooManyRequests:
		return fmt.Errorf("coldstore: minio %s: %w", key, err)
	case errors.Is(err, context.Canceled):
		return err
	}
	return fmt.Errorf("%w: minio %s: %v", ErrUnavailable, key, err)
}

// Put implements Objects.
func (m *MinIO) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	if err := checkKey(key); err != nil {
		return err
	}
	_, err := m.c.PutObject(ctx, m.bucket, key, r, size, minio.PutObjectOptions{ContentType: "application/octet-stream"})
	if err != nil {
		return m.fail(key, err)
	}
	return nil
}

// Get implements Objects.
func (m *MinIO) Get(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	if err := checkKey(key); err != nil {
		return nil, err
	}
	if offset < 0 {
		return nil, fmt.Errorf("coldstore: get %s: negative offset %d", key, offset)
	}
	info, err := m.Head(ctx, key)
	if err != nil {
		return nil, err
	}
	if offset >= info.Size || length == 0 {
		return io.NopCloser(eofReader{}), nil
	}
	opts := minio.GetObjectOptions{}
	end := info.Size - 1
	if length > 0 {
		end = min(end, offset+length-1)
	}
	if err := opts.SetRange(offset, end); err != nil {
		return nil, fmt.Errorf("coldstore: get %s: %w", key, err)
	}
	o, err := m.c.GetObject(ctx, m.bucket, key, opts)
	if err != nil {
		return nil, m.fail(key, err)
	}
	return &minioReader{o: o, m: m, key: key}, nil
}

type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }

// minioReader maps the object's read errors like the store's.
type minioReader struct {
	o   *minio.Object
	m   *MinIO
	key string
}

func (r *minioReader) Read(p []byte) (int, error) {
	n, err := r.o.Read(p)
	if err != nil && err != io.EOF {
		err = r.m.fail(r.key, err)
	}
	return n, err
}

func (r *minioReader) Close() error { return r.o.Close() }

// Head implements Objects.
func (m *MinIO) Head(ctx context.Context, key string) (ObjectInfo, error) {
	if err := checkKey(key); err != nil {
		return ObjectInfo{}, err
	}
	st, err := m.c.StatObject(ctx, m.bucket, key, minio.StatObjectOptions{})
	if err != nil {
		return ObjectInfo{}, m.fail(key, err)
	}
	return ObjectInfo{Key: key, Size: st.Size, ModTime: st.LastModified.UTC()}, nil
}

// List implements Objects.
func (m *MinIO) List(ctx context.Context, prefix string, f func(ObjectInfo) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // stops the lister's goroutine when f stops early
	for o := range m.c.ListObjects(ctx, m.bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if o.Err != nil {
			return m.fail(prefix, o.Err)
		}
		if err := f(ObjectInfo{Key: o.Key, Size: o.Size, ModTime: o.LastModified.UTC()}); err != nil {
			return err
		}
	}
	return ctx.Err()
}

// Delete implements Objects.
func (m *MinIO) Delete(ctx context.Context, key string) error {
	if err := checkKey(key); err != nil {
		return err
	}
	if err := m.c.RemoveObject(ctx, m.bucket, key, minio.RemoveObjectOptions{}); err != nil {
		if err := m.fail(key, err); !errors.Is(err, ErrNotExist) {
			return err
		}
	}
	return nil
}
