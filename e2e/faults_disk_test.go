package e2e

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
)

// The small disk of the disk-full run: a tmpfs of smallDiskBytes under the node's
// data directory, whose node keeps smallDiskReserve free for accepted work
// (storage.min_free_bytes).
const (
	smallDiskBytes   = 512 << 20
	smallDiskReserve = 64 << 20
)

// smallDisk is a file system of its own that a filler file fills on demand.
type smallDisk struct {
	dir    string
	filler string
}

// mountSmallDisk mounts a tmpfs of size bytes on dir (created if missing), unmounted
// when the test ends; it fails where mounting is not allowed.
func mountSmallDisk(t *testing.T, dir string, size int64) (*smallDisk, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d", size), "tmpfs", dir).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("mount: %v: %s", err, out)
	}
	// Registered before the node starts, so it runs after the node is killed.
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return &smallDisk{dir: dir, filler: filepath.Join(dir, "filler")}, nil
}

// fill writes a filler file until the file system has at most leave bytes free
// (to the last byte with 0; the node keeps writing meanwhile, so the free space
// may end a little below leave).
func (d *smallDisk) fill(leave int64) error {
	f, err := os.OpenFile(d.filler, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	chunk := make([]byte, 1<<20)
	for {
		free, err := d.free()
		if err != nil {
			return err
		}
		n := free - leave
		if n <= 0 {
			return nil
		}
		if _, err := f.Write(chunk[:min(n, int64(len(chunk)))]); err != nil {
			if errors.Is(err, syscall.ENOSPC) {
				return nil // full to the last byte
			}
			return err
		}
	}
}

// empty deletes the filler file.
func (d *smallDisk) empty() error {
	if err := os.Remove(d.filler); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// free is the file system's free space in bytes.
func (d *smallDisk) free() (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(d.dir, &st); err != nil {
		return 0, err
	}
	return int64(st.Bavail) * st.Bsize, nil
}
