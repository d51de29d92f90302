package media

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/fanline/fanline/coldstore"
	"github.com/fanline/fanline/internal/ids"
	"github.com/fanline/fanline/internal/wire"
)

// Sweep deletes the uploads no message refers to that are older than the orphan
// TTL, and multipart uploads left unfinished that long. It returns how many.
func (s *Store) Sweep(ctx context.Context) (int, error) {
	cutoff := s.now().Add(-s.cfg.OrphanTTL)
	return s.deleteWhere(ctx, "media/", func(r Record) bool { return len(r.Messages) == 0 && r.CreatedAt.Before(cutoff) },
		s.m.MediaOrphans, "orphan: no message refers to it within media.orphan_ttl")
}

// DeleteConversation deletes conv's media sent (or uploaded) no later than upTo:
// retention deleted the history that carried it.
func (s *Store) DeleteConversation(ctx context.Context, conv uint64, upTo time.Time) (int, error) {
	return s.deleteWhere(ctx, "media/"+strconv.FormatUint(conv, 10)+"/", func(r Record) bool {
		if r.CreatedAt.After(upTo) {
			return false
		}
		for _, m := range r.Messages {
			if ids.Time(m).After(upTo) {
				return false
			}
		}
		return true
	}, s.m.MediaExpired, "retention deleted the history that carried it")
}

type counter interface{ Inc() }

// deleteWhere deletes the objects under prefix whose record matches: bytes,
// thumbnails, dedup index, an unfinished multipart upload, and the record last, so
// a crash part-way leaves a record the next pass finds again.
func (s *Store) deleteWhere(ctx context.Context, prefix string, match func(Record) bool, n counter, why string) (int, error) {
	var found []Record
	err := s.objs.List(ctx, prefix, func(o coldstore.ObjectInfo) error {
		if !strings.HasSuffix(o.Key, ".rec") {
			return nil
		}
		parts := strings.Split(strings.TrimSuffix(o.Key, ".rec"), "/")
		if len(parts) != 3 {
			return nil
		}
		k, ok := ParseKey(parts[1] + "-" + parts[2])
		if !ok {
			return nil
		}
		r, err := s.read(ctx, k)
		if err != nil {
			if wire.AsError(err).Code == wire.CodeMediaMissing {
				return nil
			}
			return err
		}
		if match(r) {
			found = append(found, r)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	deleted := 0
	for _, r := range found {
		if err := s.delete(ctx, r, match); err != nil {
			return deleted, err
		}
		deleted++
		n.Inc()
		s.log.Info("media: deleted object", "object", r.Key, "conversation", r.Conv, "uploader", r.Uploader,
			"size", r.Size, "created", r.CreatedAt, "why", why)
	}
	return deleted, nil
}

func (s *Store) delete(ctx context.Context, r Record, match func(Record) bool) error {
	unlock := s.locks.Lock(r.Key)
	defer unlock()
	k := mustKey(r.Key)
	cur, err := s.read(ctx, k)
	if err != nil || !match(cur) { // attached to a message meanwhile
		if wire.AsError(err).Code == wire.CodeMediaMissing {
			return nil
		}
		return err
	}
	if cur.UploadID != "" && s.pre != nil {
		if err := s.pre.AbortMultipart(ctx, k.data(), cur.UploadID); err != nil {
			return err
		}
	}
	keys := []string{k.data(), k.thumb(256), k.thumb(512)}
	if cur.SHA256 != "" {
		idx := shaKey(cur.Conv, cur.Uploader, cur.SHA256)
		if b, err := coldstore.ReadAll(ctx, s.objs, idx); err == nil && string(b) == cur.Key {
			keys = append(keys, idx)
		}
	}
	for _, key := range append(keys, k.record()) {
		if err := s.objs.Delete(ctx, key); err != nil {
			return err
		}
	}
	return nil
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
