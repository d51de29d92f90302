package coldstore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fanline/fanline/coldstore"
	"github.com/fanline/fanline/internal/testharness"
)

// testObjects is the conformance suite every object store passes.
func testObjects(t *testing.T, o coldstore.Objects) {
	ctx := context.Background()
	put := func(key, v string) {
		t.Helper()
		if err := o.Put(ctx, key, strings.NewReader(v), int64(len(v))); err != nil {
			t.Fatalf("put %s: %v", key, err)
		}
	}
	get := func(key string, off, n int64) (string, error) {
		r, err := o.Get(ctx, key, off, n)
		if err != nil {
			return "", err
		}
		defer r.Close()
		b, err := io.ReadAll(r)
		return string(b), err
	}
	put("segments/1/a", "hello, cold world")
	put("segments/1/a", "0123456789") // replaced whole
	for _, c := range []struct {
		off, n int64
		want   string
	}{{0, -1, "0123456789"}, {3, 4, "3456"}, {8, 10, "89"}, {10, 5, ""}, {0, 0, ""}, {9, -1, "9"}} {
		if got, err := get("segments/1/a", c.off, c.n); err != nil || got != c.want {
			t.Fatalf("get [%d,+%d) = %q %v, want %q", c.off, c.n, got, err, c.want)
		}
	}
	if info, err := o.Head(ctx, "segments/1/a"); err != nil || info.Size != 10 || info.Key != "segments/1/a" {
		t.Fatalf("head: %+v %v", info, err)
	}
	if _, err := get("segments/1/missing", 0, -1); !errors.Is(err, coldstore.ErrNotExist) {
		t.Fatalf("get of a missing key: %v", err)
	}
	if _, err := o.Head(ctx, "segments/missing"); !errors.Is(err, coldstore.ErrNotExist) {
		t.Fatalf("head of a missing key: %v", err)
	}
	for _, bad := range []string{"", "/abs", "a/../b", "a//b", "dir/", ".hidden", "a b"} {
		if err := o.Put(ctx, bad, strings.NewReader("x"), 1); err == nil {
			t.Fatalf("put of invalid key %q accepted", bad)
		}
	}
	// Concurrent puts of distinct keys; list in key order by prefix.
	var wg sync.WaitGroup
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v := fmt.Sprintf("v%d", i)
			if err := o.Put(ctx, fmt.Sprintf("segments/2/%02d", i), strings.NewReader(v), int64(len(v))); err != nil {
				t.Errorf("put: %v", err)
			}
		}()
	}
	wg.Wait()
	put("segments/2.x", "not under segments/2/")
	put("segments/20/y", "under segments/2 but not segments/2/")
	var keys []string
	if err := o.List(ctx, "segments/2/", func(i coldstore.ObjectInfo) error { keys = append(keys, i.Key); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(keys) != 16 || keys[0] != "segments/2/00" || keys[15] != "segments/2/15" {
		t.Fatalf("list segments/2/: %v", keys)
	}
	keys = nil
	_ = o.List(ctx, "segments/2", func(i coldstore.ObjectInfo) error { keys = append(keys, i.Key); return nil })
	if len(keys) != 18 || keys[0] != "segments/2.x" || keys[17] != "segments/20/y" {
		t.Fatalf("list segments/2 (not a directory boundary): %v", keys)
	}
	stop := errors.New("stop")
	n := 0
	if err := o.List(ctx, "segments/", func(coldstore.ObjectInfo) error { n++; return stop }); err != stop || n != 1 {
		t.Fatalf("list stopped by f: %v after %d", err, n)
	}
	// A reader that fails midway leaves the old object.
	err := o.Put(ctx, "segments/1/a", io.MultiReader(strings.NewReader("new"), errReader{}), 10)
	if err == nil {
		t.Fatal("put of a failing reader succeeded")
	}
	if got, _ := get("segments/1/a", 0, -1); got != "0123456789" {
		t.Fatalf("after a failed put the object is %q", got)
	}
	big := bytes.Repeat([]byte("fanline"), 300000)
	if err := o.Put(ctx, "segments/3/big", bytes.NewReader(big), int64(len(big))); err != nil {
		t.Fatal(err)
	}
	if got, err := get("segments/3/big", 1<<20, 7); err != nil || got != string(big[1<<20:1<<20+7]) {
		t.Fatalf("ranged get of a large object: %q %v", got, err)
	}
	if err := o.Delete(ctx, "segments/1/a"); err != nil {
		t.Fatal(err)
	}
	if err := o.Delete(ctx, "segments/1/a"); err != nil {
		t.Fatalf("delete of a missing key: %v", err)
	}
	if _, err := o.Head(ctx, "segments/1/a"); !errors.Is(err, coldstore.ErrNotExist) {
		t.Fatalf("head after delete: %v", err)
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("test: reader failed") }

func TestDirObjects(t *testing.T) {
	d, err := coldstore.OpenDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	testObjects(t, d)
}

func openMinIO(t *testing.T, srv *testharness.MinIOServer) *coldstore.MinIO {
	t.Helper()
	m, err := coldstore.OpenMinIO(coldstore.MinIOConfig{Endpoint: srv.Addr, Bucket: "fanline-test", AccessKey: srv.AccessKey,
		SecretKey: srv.SecretKey, Region: "us-east-1", Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ { // twice: it is idempotent
		if _, err := m.EnsureBucket(context.Background(), "us-east-1"); err != nil {
			t.Fatal(err)
		}
	}
	return m
}

func TestMinIOObjects(t *testing.T) {
	testObjects(t, openMinIO(t, testharness.StartMinIO(t)))
}

// TestMinIOOutage: with the server down, operations answer ErrUnavailable within a
// few seconds; when it is back, everything stored is there.
func TestMinIOOutage(t *testing.T) {
	srv := testharness.StartMinIO(t)
	m := openMinIO(t, srv)
	ctx := context.Background()
	if err := m.Put(ctx, "segments/9/x", strings.NewReader("kept"), 4); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	start := time.Now()
	if _, err := m.Get(ctx, "segments/9/x", 0, -1); !errors.Is(err, coldstore.ErrUnavailable) {
		t.Fatalf("get during an outage: %v", err)
	}
	if err := m.Put(ctx, "segments/9/y", strings.NewReader("y"), 1); !errors.Is(err, coldstore.ErrUnavailable) {
		t.Fatalf("put during an outage: %v", err)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Fatalf("an outage took %v to answer", d)
	}
	srv.Start(t)
	if b, err := coldstore.ReadAll(ctx, m, "segments/9/x"); err != nil || string(b) != "kept" {
		t.Fatalf("after the outage: %q %v", b, err)
	}
}
