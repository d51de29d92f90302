package coldstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Dir is the embedded object store: one file per object under a directory. Put
// writes a temporary file, fsyncs it, renames it into place and fsyncs the
// directory, so an object is whole or absent after a crash.
type Dir struct {
	root string // objects live under root/o, temporary files under root/tmp
}

var _ Objects = (*Dir)(nil)

// OpenDir opens (creating it if needed) an object store in dir. Temporary files a
// crash left behind are removed.
func OpenDir(dir string) (*Dir, error) {
	d := &Dir{root: dir}
	if err := os.RemoveAll(filepath.Join(dir, "tmp")); err != nil {
		return nil, fmt.Errorf("coldstore: %w", err)
	}
	for _, sub := range []string{"o", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o750); err != nil {
			return nil, fmt.Errorf("coldstore: %w", err)
		}
	}
	return d, nil
}

func (d *Dir) path(key string) (string, error) {
	if err := checkKey(key); err != nil {
		return "", err
	}
	return filepath.Join(d.root, "o", filepath.FromSlash(key)), nil
}

// Put implements Objects.
func (d *Dir) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	p, err := d.path(key)
	if err != nil {
		return err
	}
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	tmp := filepath.Join(d.root, "tmp", hex.EncodeToString(rnd[:]))
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o640)
	if err != nil {
		return fmt.Errorf("coldstore: %w", err)
	}
	defer os.Remove(tmp)
	n, err := io.Copy(f, io.LimitReader(r, size+1))
	if err == nil && n != size {
		err = fmt.Errorf("coldstore: put %s: got %d bytes, want %d", key, n, size)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	dir := filepath.Dir(p)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("coldstore: %w", err)
	}
	if err := os.Rename(tmp, p); err != nil {
		return fmt.Errorf("coldstore: %w", err)
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("coldstore: %w", err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("coldstore: sync %s: %w", dir, err)
	}
	return nil
}

// Get implements Objects.
func (d *Dir) Get(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	p, err := d.path(key)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrNotExist, key)
	}
	if err != nil {
		return nil, fmt.Errorf("coldstore: %w", err)
	}
	if offset < 0 {
		f.Close()
		return nil, fmt.Errorf("coldstore: get %s: negative offset %d", key, offset)
	}
	var r io.Reader = io.NewSectionReader(f, offset, 1<<62)
	if length >= 0 {
		r = io.NewSectionReader(f, offset, length)
	}
	return readCloser{r, f}, nil
}

type readCloser struct {
	io.Reader
	io.Closer
}

// Head implements Objects.
func (d *Dir) Head(ctx context.Context, key string) (ObjectInfo, error) {
	p, err := d.path(key)
	if err != nil {
		return ObjectInfo{}, err
	}
	st, err := os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) || (err == nil && st.IsDir()) {
		return ObjectInfo{}, fmt.Errorf("%w: %s", ErrNotExist, key)
	}
	if err != nil {
		return ObjectInfo{}, fmt.Errorf("coldstore: %w", err)
	}
	return ObjectInfo{Key: key, Size: st.Size(), ModTime: st.ModTime().UTC()}, nil
}

// List implements Objects.
func (d *Dir) List(ctx context.Context, prefix string, f func(ObjectInfo) error) error {
	base := filepath.Join(d.root, "o")
	// Walk only the deepest directory the prefix names.
	start := base
	if i := strings.LastIndex(prefix, "/"); i >= 0 {
		start = filepath.Join(base, filepath.FromSlash(prefix[:i]))
	}
	var found []ObjectInfo
	err := filepath.WalkDir(start, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if e.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(base, p)
		key := filepath.ToSlash(rel)
		if !strings.HasPrefix(key, prefix) {
			return nil
		}
		st, err := e.Info()
		if err != nil {
			return nil // deleted while listing
		}
		found = append(found, ObjectInfo{Key: key, Size: st.Size(), ModTime: st.ModTime().UTC()})
		return nil
	})
	if err != nil {
		return fmt.Errorf("coldstore: list %q: %w", prefix, err)
	}
	sort.Slice(found, func(i, j int) bool { return found[i].Key < found[j].Key })
	for _, o := range found {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := f(o); err != nil {
			return err
		}
	}
	return nil
}

// Delete implements Objects.
func (d *Dir) Delete(ctx context.Context, key string) error {
	p, err := d.path(key)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("coldstore: %w", err)
	}
	return nil
}
