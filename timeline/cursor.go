package timeline

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"maps"
	"slices"
)

// Cursor is a device's sync position. Clients hold it as an opaque string.
type Cursor struct {
	// Seq is the last timeline seq the device has.
	Seq uint64
	// Groups holds, per read-fanout group, the stream seq up to which the device
	// has every entry of that group.
	Groups map[uint64]uint64
}

// Cursor encodings: version 1 is the timeline seq alone; version 2 adds the group
// positions.
const (
	cursorV1 = 1
	cursorV2 = 2
)

// ErrBadCursor is returned for a string that is not a cursor this server made.
var ErrBadCursor = errors.New("timeline: invalid cursor")

// String encodes the cursor: base64url of a version byte, the uvarint seq and, when
// there are group positions, their count and (group, seq) pairs in group order.
func (c Cursor) String() string {
	if len(c.Groups) == 0 {
		b := binary.AppendUvarint([]byte{cursorV1}, c.Seq)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	b := binary.AppendUvarint([]byte{cursorV2}, c.Seq)
	b = binary.AppendUvarint(b, uint64(len(c.Groups)))
	for _, g := range slices.Sorted(maps.Keys(c.Groups)) {
		b = binary.AppendUvarint(b, g)
		b = binary.AppendUvarint(b, c.Groups[g])
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// maxCursorGroups bounds the group positions a cursor may carry.
const maxCursorGroups = 1 << 16

// ParseCursor decodes a cursor; the empty string is the beginning.
func ParseCursor(s string) (Cursor, error) {
	if s == "" {
		return Cursor{}, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) < 2 || (b[0] != cursorV1 && b[0] != cursorV2) {
		return Cursor{}, ErrBadCursor
	}
	version := b[0]
	b = b[1:]
	next := func() (uint64, bool) {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			return 0, false
		}
		b = b[n:]
		return v, true
	}
	var c Cursor
	var ok bool
	if c.Seq, ok = next(); !ok {
		return Cursor{}, ErrBadCursor
	}
	if version == cursorV2 {
		n, ok := next()
		// Every pair takes at least two bytes: a count the rest cannot hold is
		// refused before anything is allocated for it.
		if !ok || n == 0 || n > maxCursorGroups || n > uint64(len(b)/2) {
			return Cursor{}, ErrBadCursor
		}
		c.Groups = make(map[uint64]uint64, n)
		for range n {
			g, ok1 := next()
			pos, ok2 := next()
			if !ok1 || !ok2 {
				return Cursor{}, ErrBadCursor
			}
			c.Groups[g] = pos
		}
	}
	if len(b) != 0 {
		return Cursor{}, ErrBadCursor
	}
	return c, nil
}
