package media

import (
	"context"
	"errors"
	"io"

	"github.com/fanline/fanline/coldstore"
)

// objectReader reads an object of known size as an io.ReadSeeker, so http.ServeContent
// can answer Range requests: each read after a seek opens one ranged Get from there.
type objectReader struct {
	ctx  context.Context
	objs coldstore.Objects
	key  string
	size int64
	off  int64
	rc   io.ReadCloser // open at off; nil after a seek
}

func (r *objectReader) Read(p []byte) (int, error) {
	if r.off >= r.size {
		return 0, io.EOF
	}
	if r.rc == nil {
		rc, err := r.objs.Get(r.ctx, r.key, r.off, -1)
		if err != nil {
			return 0, err
		}
		r.rc = rc
	}
	n, err := r.rc.Read(p)
	r.off += int64(n)
	if err == io.EOF && r.off < r.size {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

func (r *objectReader) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekCurrent:
		offset += r.off
	case io.SeekEnd:
		offset += r.size
	}
	if offset < 0 {
		return 0, errors.New("media: seek before the start")
	}
	if offset != r.off {
		_ = r.Close()
		r.off = offset
	}
	return offset, nil
}

func (r *objectReader) Close() error {
	if r.rc == nil {
		return nil
	}
	err := r.rc.Close()
	r.rc = nil
	return err
}
