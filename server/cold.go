package server

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/fanline/fanline/coldstore"
	"github.com/fanline/fanline/groupstream"
	"github.com/fanline/fanline/internal/config"
	"github.com/fanline/fanline/internal/metrics"
	"github.com/prometheus/client_golang/prometheus"
)

// objects opens the configured object store (cold segments, media).
func (s *Server) objects() (coldstore.Objects, error) {
	switch s.cfg.Coldstore.Backend {
	case "dir":
		return coldstore.OpenDir(filepath.Join(s.cfg.DataDir, "cold"))
	case "minio":
		m, err := coldstore.OpenMinIO(minioConfig(s.cfg))
		if err != nil {
			return nil, err
		}
		// The bucket is migrate's to make; a missing one is said at start, not
		// found by the first move.
		if _, err := m.Head(context.Background(), "fanline-bucket-check"); err != nil && !errors.Is(err, coldstore.ErrNotExist) {
			return nil, fmt.Errorf("server: object store %s bucket %q: %w (run fanline migrate to create the bucket)", s.cfg.Minio.Endpoint, s.cfg.Minio.Bucket, err)
		}
		return m, nil
	default:
		return nil, fmt.Errorf("server: coldstore.backend must be dir or minio, not %q", s.cfg.Coldstore.Backend)
	}
}

func minioConfig(cfg config.Config) coldstore.MinIOConfig {
	return coldstore.MinIOConfig{Endpoint: cfg.Minio.Endpoint, Bucket: cfg.Minio.Bucket, AccessKey: cfg.Minio.AccessKey,
		SecretKey: cfg.Minio.SecretKey, Secure: cfg.Minio.Secure, Region: cfg.Minio.Region, PublicURL: cfg.Media.PublicURL}
}

// coldTier builds the cold tier of the dispatch role: the object store, the block
// cache and reader streams falls through to, and the scheduler that moves history
// out of streams (and trims timelines with trim, when the timeline store needs it).
func (s *Server) coldTier(m *metrics.Metrics, streams groupstream.Store, trim func(context.Context, time.Time) (int, error)) error {
	objs, err := s.objects()
	if err != nil {
		return err
	}
	s.objs = objs
	cfg := s.cfg.Coldstore
	cache := coldstore.NewBlockCache(int64(cfg.CacheBytes))
	m.Registry.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "fanline_cold_cache_hits_total",
			Help: "Reads of cold blocks answered from the local block cache."}, func() float64 { return float64(cache.Stats().Hits) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "fanline_cold_cache_misses_total",
			Help: "Reads of cold blocks fetched from the object store."}, func() float64 { return float64(cache.Stats().Misses) }))
	streams.SetArchive(coldstore.NewReader(objs, cache, m))
	s.cold = coldstore.NewScheduler(objs, streams, cache, coldstore.SchedulerConfig{
		After:             time.Duration(cfg.After),
		Interval:          time.Duration(cfg.Interval),
		SegmentMessages:   cfg.SegmentMessages,
		MaxBytesPerSecond: cfg.MaxBytesPerSecond,
		BusyFraction:      cfg.BusyFraction,
		Retention: coldstore.RetentionPolicy{Direct: time.Duration(s.cfg.Retention.Direct),
			Group: time.Duration(s.cfg.Retention.Group), Shop: time.Duration(s.cfg.Retention.Shop)},
		Held: func(ctx context.Context, conv uint64) (bool, error) {
			holds, err := streams.Holds(ctx, conv)
			return len(holds) > 0, err
		},
		TimelineKeep: time.Duration(cfg.TimelineKeep),
		Trim:         trim,
		Expired:      s.mediaExpired,
	}, m, s.log)
	return nil
}
