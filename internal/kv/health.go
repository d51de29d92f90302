package kv

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// The store's faults, as Health.Err and Health.Writable report them.
var (
	// ErrDamaged: the data directory is damaged (a checksum mismatch, a file the
	// manifest lists missing); the node must not serve on it.
	ErrDamaged = errors.New("kv: the data directory is damaged")
	// ErrFailed: Pebble failed in a way it cannot recover from (a WAL or MANIFEST
	// write failed).
	ErrFailed = errors.New("kv: the store failed")
	// ErrDiskFull: the disk has no room for new writes; it passes once it has.
	ErrDiskFull = errors.New("kv: the disk is full")
)

// recheck is how often Writable looks at the disk again.
const recheck = time.Second

// noSpaceRetry spaces out Pebble's retries of a flush or compaction that failed for
// want of space.
const noSpaceRetry = 50 * time.Millisecond

// probeBytes is what a probe writes to learn whether the disk has room again.
const probeBytes = 64 << 10

// Health is the one place that decides what a storage fault means for the node. Pebble
// reports faults through its event listener, its logger's Fatalf and the file system
// (vfs.OnDiskFull); Health classifies them:
//
//   - Damage (corruption found by a read, a compaction or Open) is fatal: it is logged
//     once, Err returns it from then on (the node is not ready, writes are refused)
//     and Config.OnFatal is called once, so the node stops instead of answering from
//     damaged data.
//   - A fatal Pebble error (its logger's Fatalf: a failed WAL or MANIFEST write, a
//     broken invariant) is logged once and ends the process with exit code 1, as
//     Pebble requires: it cannot go on, and the synced WAL holds everything
//     acknowledged.
//   - A full disk (a write failed with ENOSPC, or less free space than
//     Config.MinFreeBytes) is transient: Writable returns ErrDiskFull, so new work is
//     refused with a retryable answer while the pipeline finishes what was
//     acknowledged, until free space is back above the reserve and a probe write
//     succeeds.
//
// A Health is safe for concurrent use.
type Health struct {
	cfg  Config
	fs   vfs.FS // the file system under the store, without the ENOSPC watch
	dir  string
	log  *slog.Logger
	exit func(code int) // os.Exit; tests replace it

	failOnce sync.Once
	err      atomic.Pointer[error] // set once, by fail
	enospc   atomic.Bool           // a write failed with ENOSPC since the last good probe

	mu      sync.Mutex // guards full, checked and probed, and serialises refresh
	full    error      // ErrDiskFull with the reason, nil if the disk had room at checked
	checked time.Time
	probed  time.Time
}

// Config configures Open.
type Config struct {
	// Logger receives Pebble's log and the store's faults. Nil: discarded.
	Logger *slog.Logger
	// FS is the file system under the store. Nil means the operating system's;
	// tests inject faults with Pebble's vfs/errorfs.
	FS vfs.FS
	// MinFreeBytes is the free space kept in reserve for the work already accepted:
	// with less free space in the store's file system, Writable reports ErrDiskFull.
	// Zero or negative: no reserve (only a write failing with ENOSPC counts).
	MinFreeBytes int64
	// OnFatal is called once, on the goroutine that found it, when the data is
	// damaged. It must not block. Nil: Err reports it, nothing else happens.
	OnFatal func(error)
}

func newHealth(dir string, cfg Config) *Health {
	if cfg.FS == nil {
		cfg.FS = vfs.Default
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Health{cfg: cfg, fs: cfg.FS, dir: dir, log: log, exit: os.Exit}
}

// Err returns the fatal fault found in the store (wrapping ErrDamaged or ErrFailed),
// nil while there is none.
func (h *Health) Err() error {
	if p := h.err.Load(); p != nil {
		return *p
	}
	return nil
}

// Writable returns nil if the store takes new writes: no fatal fault, and the disk
// had room when last checked (at most a second ago). Otherwise it returns Err, or an
// error wrapping ErrDiskFull.
func (h *Health) Writable() error {
	if err := h.Err(); err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	// A new ENOSPC is looked at right away, then once a second like the rest.
	if time.Since(h.checked) >= recheck || (h.full == nil && h.enospc.Load() && time.Since(h.probed) >= recheck) {
		h.refresh()
	}
	return h.full
}

// refresh looks at the disk: after an ENOSPC a probe write must succeed, and free
// space must be above the reserve. The caller holds mu.
func (h *Health) refresh() {
	h.checked = time.Now()
	var full error
	if h.enospc.Load() {
		h.probed = h.checked
		if err := h.probe(); err != nil {
			full = fmt.Errorf("%w: a write failed with no space left, and a probe still does: %v", ErrDiskFull, err)
		} else {
			h.enospc.Store(false)
		}
	}
	if full == nil && h.cfg.MinFreeBytes > 0 {
		if u, err := h.fs.GetDiskUsage(h.dir); err == nil && u.AvailBytes < uint64(h.cfg.MinFreeBytes) {
			full = fmt.Errorf("%w: %d bytes free, below the reserve of %d (storage.min_free_bytes)", ErrDiskFull, u.AvailBytes, h.cfg.MinFreeBytes)
		}
	}
	switch {
	case full != nil && h.full == nil:
		h.log.Error("kv: the disk is full: new writes are refused (503 unavailable) until it has room", "dir", h.dir, "err", full.Error())
	case full == nil && h.full != nil:
		h.log.Info("kv: the disk has room again: new writes are accepted", "dir", h.dir)
	}
	h.full = full
}

// probe writes, syncs and removes a file in the store's directory.
func (h *Health) probe() error {
	name := h.fs.PathJoin(h.dir, "fanline-space-probe")
	f, err := h.fs.Create(name, vfs.WriteCategoryUnspecified)
	if err != nil {
		return err
	}
	_, err = f.Write(make([]byte, probeBytes))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if rerr := h.fs.Remove(name); err == nil {
		err = rerr
	}
	return err
}

// sawENOSPC records a write that failed for want of space. It runs while Pebble's
// writes wait for it (vfs.OnDiskFull), so it only sets a flag: the next Writable
// probes and logs.
func (h *Health) sawENOSPC() { h.enospc.Store(true) }

// fail records a fatal fault once: the log line, Err, and OnFatal for damage.
func (h *Health) fail(kind error, msg string, cause error) error {
	err := fmt.Errorf("%w: %v", kind, cause)
	h.failOnce.Do(func() {
		h.err.Store(&err)
		h.log.Error(msg, "dir", h.dir, "err", cause.Error())
		if kind == ErrDamaged && h.cfg.OnFatal != nil {
			h.cfg.OnFatal(err)
		}
	})
	return err
}

// damaged records damage found in the store.
func (h *Health) damaged(cause error) error {
	return h.fail(ErrDamaged, "kv: the data directory is damaged; the node stops: restore data_dir from a backup (docs/operations.md)", cause)
}

// isDamage reports whether an error from Pebble means damaged data: corruption, or
// (from Open) a file the manifest lists that is not there.
func isDamage(err error) bool {
	return pebble.IsCorruptionError(err) || errors.Is(err, os.ErrNotExist)
}

// isNoSpace reports whether err is a write that failed for want of space.
func isNoSpace(err error) bool { return errors.Is(err, syscall.ENOSPC) }

// listener is Pebble's event listener for the store: faults go to h.
func (h *Health) listener() *pebble.EventListener {
	return &pebble.EventListener{
		BackgroundError: func(err error) {
			switch {
			case pebble.IsCorruptionError(err):
				h.damaged(err)
			case isNoSpace(err):
				// A flush or compaction without room. Pebble retries a flush at
				// once, without backoff (thousands of times a second): pausing
				// its goroutine here spaces the retries out. Pebble calls this
				// with its DB mutex held, which reads never take and commits
				// take only to switch a full memtable (which could not be
				// flushed anyway).
				h.sawENOSPC()
				time.Sleep(noSpaceRetry)
			default:
				h.log.Error("kv: background error", "component", "pebble", "err", err.Error())
			}
		},
		DataCorruption: func(info pebble.DataCorruptionInfo) {
			h.damaged(fmt.Errorf("%s: %v", info.Path, info.Details))
		},
	}
}

// pebbleLogger is Pebble's logger for the store.
type pebbleLogger struct {
	log *slog.Logger
	h   *Health
}

func (l pebbleLogger) Infof(format string, args ...any) {
	l.log.Debug(fmt.Sprintf(format, args...), "component", "pebble")
}

func (l pebbleLogger) Errorf(format string, args ...any) {
	l.log.Error(fmt.Sprintf(format, args...), "component", "pebble")
}

// Fatalf must not return (Pebble's state is broken past it): it logs once and ends
// the process.
func (l pebbleLogger) Fatalf(format string, args ...any) {
	l.h.fail(ErrFailed, "kv: the store failed and cannot go on; the process exits (docs/operations.md)",
		fmt.Errorf("pebble: "+format, args...))
	l.h.exit(1)
}
