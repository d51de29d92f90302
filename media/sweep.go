package media

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fanline/fanline/coldstore"
	"github.com/fanline/fanline/internal/ids"
)

// Sweep looks at the uploads not yet known to be carried by a stored message (those
// with a pending marker): one started more than the orphan TTL ago that no stored
// message carries is deleted with all it stored (an unfinished multipart upload
// too); one a stored message carries loses its marker and is not looked at again.
// Its work grows with the uploads of the last TTL, not with all media. It returns
// how many uploads it deleted.
func (s *Store) Sweep(ctx context.Context) (int, error) {
	var pending []objectKey
	err := s.objs.List(ctx, "pending/", func(o coldstore.ObjectInfo) error {
		if k, ok := keyAt(o.Key, ""); ok {
			pending = append(pending, k)
		}
		return nil
	})
	if err != nil {
		return 0, unavailable(err)
	}
	cutoff := s.now().Add(-s.cfg.OrphanTTL)
	deleted := 0
	for _, k := range pending {
		r, err := s.read(ctx, k)
		if missing(err) { // a crash before the record, or during a delete
			if err := s.objs.Delete(ctx, k.pending()); err != nil {
				return deleted, unavailable(err)
			}
			continue
		}
		if err != nil {
			return deleted, err
		}
		if !r.CreatedAt.Before(cutoff) {
			continue
		}
		carried, err := s.carried(ctx, r)
		if err != nil {
			return deleted, err
		}
		if carried {
			if err := s.objs.Delete(ctx, k.pending()); err != nil {
				return deleted, unavailable(err)
			}
			continue
		}
		seen := r.Carriers()
		orphan := func(cur Record) bool { return cur.CreatedAt.Before(cutoff) && slices.Equal(cur.Carriers(), seen) }
		gone, err := s.delete(ctx, r, orphan)
		if err != nil {
			return deleted, err
		}
		if gone {
			deleted++
			s.m.MediaOrphans.Inc()
			s.log.Info("media: deleted upload", "object", r.Key, "conversation", r.Conv, "uploader", r.Uploader,
				"size", r.Size, "created", r.CreatedAt, "why", "no stored message carries it within media.orphan_ttl")
		}
	}
	return deleted, nil
}

// keyAt reads the object key back from a stored path "<dir>/<conv>/<id><suffix>"
// (a record, a pending marker).
func keyAt(path, suffix string) (objectKey, bool) {
	rest, ok := strings.CutSuffix(path, suffix)
	parts := strings.Split(rest, "/")
	if !ok || len(parts) != 3 {
		return objectKey{}, false
	}
	return ParseKey(parts[1] + "-" + parts[2])
}

// carried reports whether a stored message carries r.
func (s *Store) carried(ctx context.Context, r Record) (bool, error) {
	ids := r.Carriers()
	if s.cfg.MessageExists == nil {
		return len(ids) > 0, nil
	}
	for _, id := range ids {
		ok, err := s.cfg.MessageExists(ctx, id)
		if err != nil || ok {
			return ok, err
		}
	}
	return false, nil
}

// DeleteConversation deletes conv's media uploaded and sent no later than upTo:
// retention deleted the history that carried it.
func (s *Store) DeleteConversation(ctx context.Context, conv uint64, upTo time.Time) (int, error) {
	expired := func(r Record) bool {
		if r.CreatedAt.After(upTo) {
			return false
		}
		for _, m := range r.Carriers() {
			if ids.Time(m).After(upTo) {
				return false
			}
		}
		return true
	}
	var found []Record
	err := s.objs.List(ctx, "media/"+strconv.FormatUint(conv, 10)+"/", func(o coldstore.ObjectInfo) error {
		k, ok := keyAt(o.Key, ".rec")
		if !ok {
			return nil
		}
		r, err := s.read(ctx, k)
		if missing(err) {
			return nil
		}
		if err == nil && expired(r) {
			found = append(found, r)
		}
		return err
	})
	if err != nil {
		return 0, unavailable(err)
	}
	deleted := 0
	for _, r := range found {
		gone, err := s.delete(ctx, r, expired)
		if err != nil {
			return deleted, err
		}
		if gone {
			deleted++
			s.m.MediaExpired.Inc()
			s.log.Info("media: deleted object", "object", r.Key, "conversation", r.Conv, "uploader", r.Uploader,
				"size", r.Size, "why", "retention deleted the history that carried it")
		}
	}
	return deleted, nil
}

// delete removes an upload whose record, read again under its lock, still
// matches: bytes, thumbnails, dedup index, an unfinished multipart upload, its
// pending marker, and the record last, so a crash part-way leaves a record (or a
// marker) the next pass finds again. It reports whether it deleted.
func (s *Store) delete(ctx context.Context, r Record, match func(Record) bool) (bool, error) {
	unlock := s.locks.lock(r.Key)
	defer unlock()
	k := mustKey(r.Key)
	cur, err := s.read(ctx, k)
	if missing(err) {
		return false, nil
	}
	if err != nil || !match(cur) { // attached to a message meanwhile
		return false, err
	}
	if cur.UploadID != "" && s.pre != nil {
		if err := s.pre.AbortMultipart(ctx, k.data(), cur.UploadID); err != nil {
			return false, unavailable(err)
		}
	}
	keys := []string{k.data(), k.thumb(256), k.thumb(512)}
	if cur.SHA256 != "" {
		idx := shaKey(cur.Conv, cur.Uploader, cur.SHA256)
		if b, err := coldstore.ReadAll(ctx, s.objs, idx); err == nil && string(b) == cur.Key {
			keys = append(keys, idx)
		}
	}
	for _, key := range append(keys, k.pending(), k.record()) {
		if err := s.objs.Delete(ctx, key); err != nil {
			return false, unavailable(err)
		}
	}
	return true, nil
}

// Run sweeps orphans every interval until ctx ends.
func (s *Store) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if _, err := s.Sweep(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("media: orphan sweep failed; retried next interval", "err", err)
		}
	}
}

// SweepInterval is how often Run should sweep for a TTL: a tenth of it, between a
// second and an hour.
func SweepInterval(ttl time.Duration) time.Duration {
	return min(max(ttl/10, time.Second), time.Hour)
}
