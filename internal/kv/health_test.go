package kv

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/fanline/fanline/internal/testharness"
)

// logged is a JSON log in a buffer, for counting lines.
func logged() (*slog.Logger, *bytes.Buffer) {
	var buf bytes.Buffer
	return slog.New(slog.NewJSONHandler(&buf, nil)), &buf
}

// writeSST stores n keys in a new store in dir and flushes them into an SST, which
// it returns.
func writeSST(t *testing.T, dir string, n int) string {
	t.Helper()
	db, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		if err := db.Set(NewKey(PrefixQueue, 'x').U64(uint64(i)), bytes.Repeat([]byte("v"), 100), pebble.NoSync); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	ssts, _ := filepath.Glob(filepath.Join(dir, "*.sst"))
	if len(ssts) != 1 {
		t.Fatalf("%d SST files, want 1", len(ssts))
	}
	return ssts[0]
}

// TestDamageFoundByReadsIsFatalOnce: blocks of an SST overwritten behind Pebble's back
// make reads fail with an error, never a panic; the damage is logged once, OnFatal
// runs once, Err and Writable report ErrDamaged however often it is met again.
func TestDamageFoundByReadsIsFatalOnce(t *testing.T) {
	dir := t.TempDir()
	sst := writeSST(t, dir, 5000)
	st, err := os.Stat(sst)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(sst, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(bytes.Repeat([]byte{0xff}, int(st.Size()/2)), 0); err != nil {
		t.Fatal(err)
	}
	f.Close()

	log, buf := logged()
	var fatal atomic.Int32
	db, h, err := OpenWithHealth(dir, Config{Logger: log, OnFatal: func(err error) {
		if !errors.Is(err, ErrDamaged) {
			t.Errorf("OnFatal with %v", err)
		}
		fatal.Add(1)
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for i := 0; i < 3; i++ {
		it, err := db.NewIter(nil)
		if err != nil {
			t.Fatal(err)
		}
		for it.First(); it.Valid(); it.Next() {
		}
		if err := it.Close(); !pebble.IsCorruptionError(err) {
			t.Fatalf("reading the damaged SST: %v, want a corruption error", err)
		}
	}
	testharness.WaitFor(t, 5*time.Second, "OnFatal", func() bool { return fatal.Load() > 0 })
	if n := fatal.Load(); n != 1 {
		t.Fatalf("OnFatal ran %d times", n)
	}
	if err := h.Err(); !errors.Is(err, ErrDamaged) {
		t.Fatalf("Err = %v", err)
	}
	if err := h.Writable(); !errors.Is(err, ErrDamaged) {
		t.Fatalf("Writable = %v", err)
	}
	if n := strings.Count(buf.String(), `"msg":"kv: the data directory is damaged`); n != 1 {
		t.Fatalf("%d damage lines:\n%s", n, buf)
	}
}

// TestMissingSSTAtOpen: an SST the manifest lists is gone; Open fails with
// ErrDamaged, logged once.
func TestMissingSSTAtOpen(t *testing.T) {
	dir := t.TempDir()
	if err := os.Remove(writeSST(t, dir, 100)); err != nil {
		t.Fatal(err)
	}
	log, buf := logged()
	fatal := 0
	_, _, err := OpenWithHealth(dir, Config{Logger: log, OnFatal: func(error) { fatal++ }})
	if !errors.Is(err, ErrDamaged) || fatal != 1 {
		t.Fatalf("open: %v, OnFatal %d times", err, fatal)
	}
	if n := strings.Count(buf.String(), `"msg":"kv: the data directory is damaged`); n != 1 {
		t.Fatalf("%d damage lines:\n%s", n, buf)
	}
}

// TestDiskFullIsTransient: a flush that fails with ENOSPC makes Writable report
// ErrDiskFull (logged once, not fatal); once writes succeed again Writable clears, the
// flush completes, and every write committed before, during and after is there after
// a reopen.
func TestDiskFullIsTransient(t *testing.T) {
	dir := t.TempDir()
	full := testharness.NewDiskFull(dir)
	log, buf := logged()
	db, h, err := OpenWithHealth(dir, Config{Logger: log, FS: full.FS(vfs.Default),
		OnFatal: func(err error) { t.Errorf("OnFatal(%v) for a full disk", err) }})
	if err != nil {
		t.Fatal(err)
	}
	key := func(i int) []byte { return NewKey(PrefixQueue, 'x').U64(uint64(i)) }
	n := 0
	put := func() {
		t.Helper()
		if err := db.Set(key(n), []byte(fmt.Sprint(n)), pebble.Sync); err != nil {
			t.Fatal(err)
		}
		n++
	}
	for range 100 {
		put()
	}
	if err := h.Writable(); err != nil {
		t.Fatalf("Writable before the disk filled: %v", err)
	}
	full.Set(true)
	flushed, err := db.AsyncFlush()
	if err != nil {
		t.Fatal(err)
	}
	testharness.WaitFor(t, 10*time.Second, "Writable to report the full disk", func() bool {
		return errors.Is(h.Writable(), ErrDiskFull)
	})
	put() // what the stages still write goes to the WAL
	select {
	case <-flushed:
		t.Fatal("the flush finished on a full disk")
	default:
	}
	full.Set(false)
	testharness.WaitFor(t, 10*time.Second, "Writable to clear", func() bool { return h.Writable() == nil })
	select {
	case <-flushed:
	case <-time.After(10 * time.Second):
		t.Fatal("the flush did not finish once the disk had room")
	}
	put()
	if h.Err() != nil {
		t.Fatalf("a full disk became fatal: %v", h.Err())
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if c := strings.Count(buf.String(), `"msg":"kv: the disk is full`); c != 1 {
		t.Fatalf("%d disk-full lines:\n%s", c, buf)
	}
	if !strings.Contains(buf.String(), `"msg":"kv: the disk has room again`) {
		t.Fatalf("no line when the disk had room again:\n%s", buf)
	}
	db, err = Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for i := 0; i < n; i++ {
		if v, ok, err := Get(db, key(i)); err != nil || !ok || string(v) != fmt.Sprint(i) {
			t.Fatalf("key %d after the reopen: %q %v %v", i, v, ok, err)
		}
	}
}

// TestReserve: less free space than MinFreeBytes is a full disk.
func TestReserve(t *testing.T) {
	for _, tc := range []struct {
		reserve int64
		full    bool
	}{{1 << 62, true}, {1, false}, {0, false}, {-1, false}} {
		db, h, err := OpenWithHealth(t.TempDir(), Config{MinFreeBytes: tc.reserve})
		if err != nil {
			t.Fatal(err)
		}
		if err := h.Writable(); errors.Is(err, ErrDiskFull) != tc.full {
			t.Errorf("reserve %d: Writable = %v, want full=%v", tc.reserve, err, tc.full)
		}
		db.Close()
	}
}

// TestFatalfEndsTheProcess: Pebble's Fatalf (it cannot go on) is logged once and
// exits with code 1.
func TestFatalfEndsTheProcess(t *testing.T) {
	log, buf := logged()
	h := newHealth(t.TempDir(), Config{Logger: log})
	var codes []int
	h.exit = func(code int) { codes = append(codes, code) }
	l := pebbleLogger{h.log, h}
	l.Fatalf("fatal commit error: %v", syscall.ENOSPC)
	l.Fatalf("again")
	if len(codes) != 2 || codes[0] != 1 {
		t.Fatalf("exit codes %v", codes)
	}
	if !errors.Is(h.Err(), ErrFailed) {
		t.Fatalf("Err = %v", h.Err())
	}
	if c := strings.Count(buf.String(), `"msg":"kv: the store failed`); c != 1 {
		t.Fatalf("%d lines:\n%s", c, buf)
	}
}
