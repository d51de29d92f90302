package testharness

import (
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
)

// DiskFull is a file system fault for a Pebble store in one directory: while on,
// every write of data to a new file there (a flush's or compaction's SST, a probe)
// fails with ENOSPC, as on a full disk where the WAL still writes into the space
// Pebble reserved for it (a failed WAL or MANIFEST write is fatal to Pebble, and is
// not what this models).
type DiskFull struct {
	dir string
	on  atomic.Bool
}

// NewDiskFull returns the fault, off, for the store in dir.
func NewDiskFull(dir string) *DiskFull { return &DiskFull{dir: dir} }

// FS wraps fs with the fault.
func (d *DiskFull) FS(fs vfs.FS) vfs.FS { return errorfs.Wrap(fs, d) }

// Set turns the fault on or off.
func (d *DiskFull) Set(on bool) { d.on.Store(on) }

// String implements errorfs.Injector.
func (d *DiskFull) String() string { return "disk full" }

// MaybeError implements errorfs.Injector.
func (d *DiskFull) MaybeError(op errorfs.Op) error {
	if !d.on.Load() || op.Path == d.dir {
		return nil
	}
	switch op.Kind {
	case errorfs.OpCreate, errorfs.OpFileWrite, errorfs.OpFileWriteAt, errorfs.OpFilePreallocate,
		errorfs.OpFileSync, errorfs.OpFileSyncData, errorfs.OpFileSyncTo:
	default:
		return nil
	}
	base := filepath.Base(op.Path)
	if strings.HasSuffix(base, ".log") || strings.HasPrefix(base, "MANIFEST") || strings.HasPrefix(base, "marker") {
		return nil
	}
	return &os.PathError{Op: "write", Path: op.Path, Err: syscall.ENOSPC}
}
