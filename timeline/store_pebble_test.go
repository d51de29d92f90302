package timeline_test

import (
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
		return timeline.NewPebbleStore(db)
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
}
