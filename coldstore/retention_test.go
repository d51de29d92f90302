package coldstore

import (
	"testing"
	"time"

	"github.com/fanline/fanline/internal/tier"
)

func TestRetentionExpired(t *testing.T) {
	day := 24 * time.Hour
	p := RetentionPolicy{Direct: 30 * day, Group: 365 * day}
	max := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	seg := tier.Segment{MinAt: max.Add(-10 * day), MaxAt: max}
	for _, c := range []struct {
		kind string
		held bool
		now  time.Time
		want bool
	}{
		{"direct", false, max, false},
		{"direct", false, max.Add(29 * day), false},
		{"direct", false, max.Add(30 * day), false}, // exactly the retention: kept
		{"direct", false, max.Add(30*day + time.Nanosecond), true},
		{"direct", false, max.Add(1000 * day), true},
		{"direct", true, max.Add(1000 * day), false}, // a legal hold
		{"direct", false, max.Add(-day), false},      // a clock behind the segment
		{"group", false, max.Add(30*day + time.Second), false},
		{"group", false, max.Add(366 * day), true},
		{"group", true, max.Add(366 * day), false},
		{"shop", false, max.Add(10000 * day), false}, // 0: forever
		{"shop", true, max.Add(10000 * day), false},
		{"channel", false, max.Add(10000 * day), false}, // unknown kind: kept
	} {
		if got := p.Expired(c.kind, seg, c.held, c.now); got != c.want {
			t.Errorf("%s held=%v at %s: expired %v, want %v", c.kind, c.held, c.now.Sub(max), got, c.want)
		}
	}
	if (RetentionPolicy{}).Expired("direct", seg, false, max.Add(100000*day)) {
		t.Error("the zero policy deletes history")
	}
}
