package timeline_test

import (
	"reflect"
	"testing"

	"github.com/fanline/fanline/internal/kv"
	"github.com/fanline/fanline/timeline"
	"github.com/fanline/fanline/timeline/timelinetest"
)

func TestPebbleStoreConformance(t *testing.T) {
	timelinetest.Run(t, func(t *testing.T) timeline.Store {
		db, err := kv.Open(t.TempDir(), nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return timeline.NewPebbleStore(db, timeline.PebbleStoreConfig{})
	})
}

func TestCursorRoundTrip(t *testing.T) {
	for _, seq := range []uint64{0, 1, 127, 128, 1 << 40} {
		c, err := timeline.ParseCursor(timeline.Cursor{Seq: seq}.String())
		if err != nil || c.Seq != seq {
			t.Errorf("seq %d: got %+v, %v", seq, c, err)
		}
	}
	for _, bad := range []string{"!", "AA", "Ag", "AgAA", "AoCAgICAgICAgICAAQ"} {
		if _, err := timeline.ParseCursor(bad); err == nil {
			t.Errorf("ParseCursor(%q) accepted", bad)
		}
	}
	if c, err := timeline.ParseCursor(""); err != nil || c.Seq != 0 {
		t.Errorf("empty cursor: %+v %v", c, err)
	}
	want := timeline.Cursor{Seq: 42, Groups: map[uint64]uint64{7: 0, 1 << 60: 300, 9: 1}}
	s := want.String()
	c, err := timeline.ParseCursor(s)
	if err != nil || !reflect.DeepEqual(c, want) {
		t.Errorf("cursor with groups: %+v %v", c, err)
	}
	for cut := 1; cut < len(s); cut++ {
		if _, err := timeline.ParseCursor(s[:cut]); err == nil {
			t.Errorf("truncated cursor %q accepted", s[:cut])
		}
	}
}
