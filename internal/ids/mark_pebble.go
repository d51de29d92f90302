package ids

import (
	"fmt"

	"github.com/cockroachdb/pebble/v2"
	"github.com/fanline/fanline/internal/kv"
)

// PebbleMark keeps a Generator's high-water mark in the embedded store (one key under
// kv.PrefixIDs), written with a synced commit.
type PebbleMark struct {
	db *pebble.DB
}

var _ Mark = (*PebbleMark)(nil)

// NewPebbleMark returns the mark kept in db.
func NewPebbleMark(db *pebble.DB) *PebbleMark { return &PebbleMark{db: db} }

var markKey = kv.NewKey(kv.PrefixIDs, 'm')

// Load implements Mark.
func (m *PebbleMark) Load() (int64, error) {
	v, err := kv.GetU64(m.db, markKey)
	if err != nil {
		return 0, fmt.Errorf("ids: load mark: %w", err)
	}
	return int64(v), nil
}

// Store implements Mark.
func (m *PebbleMark) Store(ms int64) error {
	if err := m.db.Set(markKey, kv.U64Value(uint64(ms)), pebble.Sync); err != nil {
		return fmt.Errorf("ids: store mark: %w", err)
	}
	return nil
}
