package coldstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/fanline/fanline/internal/metrics"
	"github.com/fanline/fanline/internal/tier"
	"github.com/fanline/fanline/internal/wire"
)

// Reader serves records of segments to the warm stores' read path (it is a
// groupstream.Archive): the manifest entry names the object, the footer says which
// blocks hold what is asked for, and only those are fetched, through the block
// cache.
type Reader struct {
	objs  Objects
	cache *BlockCache
	m     *metrics.Metrics
}

// NewReader returns a reader of segments in objs.
func NewReader(objs Objects, cache *BlockCache, m *metrics.Metrics) *Reader {
	return &Reader{objs: objs, cache: cache, m: m}
}

func (r *Reader) open(ctx context.Context, seg tier.Segment) (*SegmentReader, func(), error) {
	start := time.Now()
	done := func() { r.m.ColdRead.Observe(time.Since(start).Seconds()) }
	sr, err := OpenSegment(ctx, r.objs, seg.Key, r.cache)
	if err != nil {
		done()
		return nil, nil, clientVisible(err)
	}
	return sr, done, nil
}

// clientVisible gives an object-store outage the client's error: 503 unavailable,
// for the cold page only (everything warm goes on working).
func clientVisible(err error) error {
	if errors.Is(err, ErrUnavailable) {
		return fmt.Errorf("%w: %w", &wire.Error{Code: wire.CodeUnavailable,
			Message: "this part of the history is in cold storage, which cannot be reached right now; retry later", RetryAfter: 5}, err)
	}
	return err
}

// Messages implements groupstream.Archive.
func (r *Reader) Messages(ctx context.Context, seg tier.Segment, ids []uint64) (map[uint64]tier.Record, error) {
	sr, done, err := r.open(ctx, seg)
	if err != nil {
		return nil, err
	}
	defer done()
	out, err := sr.Messages(ctx, ids)
	return out, clientVisible(err)
}

// Before implements groupstream.Archive.
func (r *Reader) Before(ctx context.Context, seg tier.Segment, before uint64, limit int) ([]tier.Record, error) {
	sr, done, err := r.open(ctx, seg)
	if err != nil {
		return nil, err
	}
	defer done()
	out, err := sr.Before(ctx, before, limit)
	return out, clientVisible(err)
}

// Stream implements groupstream.Archive.
func (r *Reader) Stream(ctx context.Context, seg tier.Segment, after uint64, limit int) ([]tier.Record, error) {
	sr, done, err := r.open(ctx, seg)
	if err != nil {
		return nil, err
	}
	defer done()
	out, err := sr.Stream(ctx, after, limit)
	return out, clientVisible(err)
}
