package groupstream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
	"github.com/fanline/fanline/internal/kv"
)

var _ Announcer = (*PebbleStore)(nil)

// errStop ends a scan early.
var errStop = errors.New("groupstream: stop scanning")

// putAnnouncement adds a to the batch of the change it announces.
func putAnnouncement(b *pebble.Batch, a Announcement) {
	v, _ := json.Marshal(a)
	_ = b.Set(announcementKey(a.Group, a.Version), v, nil)
}

// Announcements implements Announcer.
func (s *PebbleStore) Announcements(ctx context.Context, group uint64, limit int) ([]Announcement, error) {
	prefix := kv.NewKey(kv.PrefixConversation, 'a')
	if group != 0 {
		prefix = prefix.U64(group)
	}
	var out []Announcement
	err := s.scan(prefix, func(_, v []byte) error {
		if limit > 0 && len(out) == limit {
			return errStop
		}
		var a Announcement
		if err := json.Unmarshal(v, &a); err != nil {
			return fmt.Errorf("groupstream: announcement: %w", err)
		}
		out = append(out, a)
		return nil
	})
	if err != nil && !errors.Is(err, errStop) {
		return nil, err
	}
	return out, nil
}

// Announced implements Announcer. The delete need not be synced: one lost in a crash
// is announced again, and announcing is idempotent.
func (s *PebbleStore) Announced(ctx context.Context, group, version uint64) error {
	if err := s.db.Delete(announcementKey(group, version), pebble.NoSync); err != nil {
		return fmt.Errorf("groupstream: announced: %w", err)
	}
	return nil
}
