package timeline

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
)

// Cursor is a device's sync position. Clients hold it as an opaque string.
type Cursor struct {
	// Seq is the last timeline seq the device has.
	Seq uint64
}

const cursorVersion = 1

// ErrBadCursor is returned for a string that is not a cursor this server made.
var ErrBadCursor = errors.New("timeline: invalid cursor")

// String encodes the cursor: base64url of a version byte and the uvarint seq.
func (c Cursor) String() string {
	b := binary.AppendUvarint([]byte{cursorVersion}, c.Seq)
	return base64.RawURLEncoding.EncodeToString(b)
}

// ParseCursor decodes a cursor; the empty string is the beginning.
func ParseCursor(s string) (Cursor, error) {
	if s == "" {
		return Cursor{}, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) < 2 || b[0] != cursorVersion {
		return Cursor{}, ErrBadCursor
	}
	seq, n := binary.Uvarint(b[1:])
	if n <= 0 || 1+n != len(b) {
		return Cursor{}, ErrBadCursor
	}
	return Cursor{Seq: seq}, nil
}
