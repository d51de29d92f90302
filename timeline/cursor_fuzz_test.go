package timeline_test

import (
	"errors"
	"maps"
	"testing"

	"github.com/fanline/fanline/timeline"
)

// FuzzParseCursor checks the sync cursor, which clients send back as they got it (or
// not). No input panics; a rejected one is ErrBadCursor with the zero cursor. An
// accepted cursor's String parses back to an equal cursor and is canonical: encoding
// that again gives the same string. Seeds live in testdata/fuzz/FuzzParseCursor.
func FuzzParseCursor(f *testing.F) {
	f.Add("AQE")
	f.Add(timeline.Cursor{Seq: 42, Groups: map[uint64]uint64{7: 0, 1 << 60: 300}}.String())
	f.Fuzz(func(t *testing.T, s string) {
		c, err := timeline.ParseCursor(s)
		if err != nil {
			if !errors.Is(err, timeline.ErrBadCursor) || c.Seq != 0 || c.Groups != nil {
				t.Fatalf("ParseCursor(%q) = %+v, %v", s, c, err)
			}
			return
		}
		if s == "" && (c.Seq != 0 || c.Groups != nil) {
			t.Fatalf("empty cursor parsed as %+v", c)
		}
		if c.Groups != nil && len(c.Groups) == 0 {
			t.Fatalf("ParseCursor(%q): empty non-nil groups", s)
		}
		enc := c.String()
		c2, err := timeline.ParseCursor(enc)
		if err != nil {
			t.Fatalf("ParseCursor(%q) = %+v, whose String %q does not parse: %v", s, c, enc, err)
		}
		if c2.Seq != c.Seq || !maps.Equal(c2.Groups, c.Groups) {
			t.Fatalf("cursor %q: %+v, re-encoded %q: %+v", s, c, enc, c2)
		}
		if again := c2.String(); again != enc {
			t.Fatalf("cursor %q encodes as %q, then as %q", s, enc, again)
		}
	})
}
