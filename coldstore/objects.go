// Package coldstore is the cold tier: an object store (a local directory, or MinIO/S3),
// the segment format that holds a conversation's old messages there, the scheduler
// that moves history from the warm stores into segments, and the reader that serves
// it back.
package coldstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// Errors of an object store.
var (
	// ErrNotExist is returned for a missing object.
	ErrNotExist = errors.New("coldstore: object does not exist")
	// ErrUnavailable wraps every failure to reach the object store (connection
	// refused, timeouts, 5xx answers): the operation may succeed when retried.
	ErrUnavailable = errors.New("coldstore: object store unavailable")
)

// ObjectInfo describes a stored object.
type ObjectInfo struct {
	Key     string
	Size    int64
	ModTime time.Time
}

// Objects is an object store: a flat namespace of keys ("segments/123/456") to
// immutable byte strings. Implementations are safe for concurrent use.
type Objects interface {
	// Put stores r's size bytes as key, replacing any object of that key. Readers
	// see the whole old object or the whole new one, never part of one; when Put
	// returns nil the object is durable.
	Put(ctx context.Context, key string, r io.Reader, size int64) error
	// Get reads length bytes of key from offset (length < 0: to the end); a range
	// that runs past the end is cut at it. A missing key is ErrNotExist.
	Get(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error)
	// Head describes key, or returns ErrNotExist.
	Head(ctx context.Context, key string) (ObjectInfo, error)
	// List calls f for every object whose key starts with prefix, in key order,
	// and stops at f's first error, which it returns.
	List(ctx context.Context, prefix string, f func(ObjectInfo) error) error
	// Delete removes key; deleting a missing key is not an error.
	Delete(ctx context.Context, key string) error
}

// checkKey refuses keys that are not relative slash-separated paths of
// [A-Za-z0-9._-] segments, so no key can escape a directory or collide with a
// backend's own names.
func checkKey(key string) error {
	if key == "" || len(key) > 512 || strings.HasPrefix(key, "/") || strings.HasSuffix(key, "/") {
		return fmt.Errorf("coldstore: invalid object key %q", key)
	}
	for _, seg := range strings.Split(key, "/") {
		if seg == "" || seg == "." || seg == ".." || strings.HasPrefix(seg, ".") {
			return fmt.Errorf("coldstore: invalid object key %q", key)
		}
		for _, r := range seg {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
				return fmt.Errorf("coldstore: invalid object key %q", key)
			}
		}
	}
	return nil
}

// ReadAll reads a whole object.
func ReadAll(ctx context.Context, o Objects, key string) ([]byte, error) {
	return readRange(ctx, o, key, 0, -1)
}

func readRange(ctx context.Context, o Objects, key string, offset, length int64) ([]byte, error) {
	r, err := o.Get(ctx, key, offset, length)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("%w: read %s: %v", ErrUnavailable, key, err)
	}
	return b, nil
}
