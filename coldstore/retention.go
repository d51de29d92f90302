package coldstore

import (
	"time"

	"github.com/fanline/fanline/internal/tier"
)

// RetentionPolicy is how long each kind of conversation keeps its history; zero
// keeps it forever.
type RetentionPolicy struct {
	Direct, Group, Shop time.Duration
}

// Expired reports whether segment seg of a conversation of kind ("direct", "group"
// or "shop") is past retention at now: its newest message is older than the kind's
// limit. A held conversation never expires.
func (p RetentionPolicy) Expired(kind string, seg tier.Segment, held bool, now time.Time) bool {
	var keep time.Duration
	switch kind {
	case "direct":
		keep = p.Direct
	case "group":
		keep = p.Group
	case "shop":
		keep = p.Shop
	}
	return !held && keep > 0 && seg.MaxAt.Before(now.Add(-keep))
}
