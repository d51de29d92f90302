package coldstore

import (
	"time"

	"github.com/fanline/fanline/internal/tier"
)

// RetentionPolicy is how long each kind of conversation's history is kept
// (config retention.direct, retention.group, retention.shop). Zero keeps it
// forever.
type RetentionPolicy struct {
	Direct, Group, Shop time.Duration
}

// keep returns the retention of conversations of kind ("direct", "group" or
// "shop"); an unknown kind is kept forever.
func (p RetentionPolicy) keep(kind string) time.Duration {
	switch kind {
	case "direct":
		return p.Direct
	case "group":
		return p.Group
	case "shop":
		return p.Shop
	}
	return 0
}

// Expired reports whether retention deletes seg, a segment of a conversation of
// kind, at now: its newest message (MaxAt) is older than now minus the kind's
// retention. A held conversation's segments (a legal hold), and those of a kind
// kept forever, never expire.
func (p RetentionPolicy) Expired(kind string, seg tier.Segment, held bool, now time.Time) bool {
	keep := p.keep(kind)
	if held || keep <= 0 {
		return false
	}
	return seg.MaxAt.Before(now.Add(-keep))
}
