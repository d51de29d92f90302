package coldstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fanline/fanline/internal/ids"
	"github.com/fanline/fanline/internal/metrics"
	"github.com/fanline/fanline/internal/tier"
	"golang.org/x/time/rate"
)

// Warm is the warm store as the scheduler moves history out of it; the groupstream
// stores are one (groupstream.Archiver documents each step).
type Warm interface {
	ColdConversations(ctx context.Context, before uint64, f func(conv uint64, kind string) error) error
	Run(ctx context.Context, conv, before uint64, limit int) ([]tier.Record, error)
	Manifest(ctx context.Context, conv uint64) ([]tier.Segment, error)
	AddSegment(ctx context.Context, seg tier.Segment) error
	DeleteRun(ctx context.Context, seg tier.Segment, recs []tier.Record) error
	RemoveSegment(ctx context.Context, seg tier.Segment, recs []tier.Record) error
	ArchivedConversations(ctx context.Context, f func(conv uint64, kind string) error) error
}

// SchedulerConfig configures a Scheduler.
type SchedulerConfig struct {
	// After is the age past which messages move to segments; Interval the time
	// between passes.
	After, Interval time.Duration
	// SegmentMessages bounds the records of one segment.
	SegmentMessages int
	// MaxBytesPerSecond bounds the bytes moved per second: read from the warm store
	// and written to the object store.
	MaxBytesPerSecond int
	// BusyFraction bounds the share of time the mover works: after each slice of
	// work (PaceSlice) it rests (1-f)/f times as long as the slice took, so it
	// never takes more than about f of one core from live traffic, and never holds
	// one of the process's processors for long. 0 or 1: no rest.
	BusyFraction float64
	// PaceSlice is about the longest the mover works before it rests (default
	// 2 ms; see pacer).
	PaceSlice time.Duration
	// Rest waits d or until ctx ends (default: a timer). Tests replace it.
	Rest func(ctx context.Context, d time.Duration) error
	// Retention deletes expired segments of unheld conversations.
	Retention RetentionPolicy
	// Held reports whether a legal hold covers a conversation.
	Held func(ctx context.Context, conv uint64) (bool, error)
	// TimelineKeep and Trim drop user timeline entries older than TimelineKeep
	// each pass (Trim nil: the timeline store drops them itself).
	TimelineKeep time.Duration
	Trim         func(ctx context.Context, before time.Time) (int, error)
	// Expired, when set, is told after retention deleted a segment of conv whose
	// newest message was at upTo, so what went with that history (media) goes too.
	// An error stops the pass; the next one calls it again for the segments it
	// deletes then, so it must also catch up on earlier ones (a delete by age does).
	Expired func(ctx context.Context, conv uint64, upTo time.Time) error
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Scheduler moves conversations' old history from the warm store into segments on
// an object store, deletes segments past retention, and trims user timelines. It
// works one conversation at a time, so one mover runs per conversation.
type Scheduler struct {
	objs  Objects
	warm  Warm
	cache *BlockCache
	cfg   SchedulerConfig
	m     *metrics.Metrics
	log   *slog.Logger
	limit *rate.Limiter
	// pace spreads the mover's work (the pass's goroutine alone uses it, under mu).
	pace pacer
	// sweptAll is when a pass last swept every conversation's objects (under mu).
	sweptAll time.Time

	mu sync.Mutex // one pass at a time
}

// NewScheduler returns a scheduler moving history from warm to objs.
func NewScheduler(objs Objects, warm Warm, cache *BlockCache, cfg SchedulerConfig, m *metrics.Metrics, log *slog.Logger) *Scheduler {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.SegmentMessages <= 0 {
		cfg.SegmentMessages = 10000
	}
	if cfg.Rest == nil {
		cfg.Rest = rest
	}
	if cfg.PaceSlice <= 0 {
		cfg.PaceSlice = 2 * time.Millisecond
	}
	lim := rate.Inf
	if cfg.MaxBytesPerSecond > 0 {
		lim = rate.Limit(cfg.MaxBytesPerSecond)
	}
	return &Scheduler{objs: objs, warm: warm, cache: cache, cfg: cfg, m: m, log: log,
		limit: rate.NewLimiter(lim, max(cfg.MaxBytesPerSecond, 1)),
		pace:  pacer{f: cfg.BusyFraction, slice: cfg.PaceSlice, rest: cfg.Rest}}
}

// Run makes a pass every Interval until ctx ends; the caller owns the goroutine.
func (s *Scheduler) Run(ctx context.Context) {
	t := time.NewTicker(s.cfg.Interval)
	defer t.Stop()
	for {
		if _, err := s.Pass(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("cold tier pass failed; retried next interval", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// PassStats is what one pass did.
type PassStats struct {
	Segments, Messages, Deleted, Trimmed int
}

// Pass moves every conversation's history older than After, applies retention and
// trims timelines. A failed conversation is counted and logged and the others go
// on; the first error is returned.
func (s *Scheduler) Pass(ctx context.Context) (PassStats, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var st PassStats
	now := s.cfg.Now()
	before := ids.Before(now.Add(-s.cfg.After))
	var convs []uint64
	kinds := map[uint64]string{}
	err := s.warm.ColdConversations(ctx, before, func(conv uint64, kind string) error {
		convs = append(convs, conv)
		kinds[conv] = kind
		return nil
	})
	var first error
	fail := func(conv uint64, err error) {
		s.m.ColdMoveErrors.Inc()
		s.log.Warn("cold move failed; retried next pass", "conversation", conv, "err", err)
		if first == nil {
			first = err
		}
	}
	if err != nil {
		fail(0, err)
	}
	for _, conv := range convs {
		if err := s.move(ctx, conv, before, &st); err != nil {
			fail(conv, err)
		}
	}
	if now.Sub(s.sweptAll) >= sweepAllEvery {
		if err := s.sweepAll(ctx, now, convs); err != nil {
			fail(0, err)
		} else {
			s.sweptAll = now
		}
	}
	if n, err := s.retain(ctx, now); err != nil {
		fail(0, err)
	} else {
		st.Deleted = n
	}
	if s.cfg.Trim != nil && s.cfg.TimelineKeep > 0 {
		n, err := s.cfg.Trim(ctx, now.Add(-s.cfg.TimelineKeep))
		if err != nil && first == nil {
			first = fmt.Errorf("coldstore: trim timelines: %w", err)
		}
		st.Trimmed = n
	}
	return st, first
}

// move finishes conv's pending segment, if any, then moves its warm messages
// below before, a segment at a time.
func (s *Scheduler) move(ctx context.Context, conv, before uint64, st *PassStats) error {
	ctx = tier.WithPace(ctx, s.pace.step)
	s.pace.restart()
	segs, err := s.warm.Manifest(ctx, conv)
	if err != nil {
		return err
	}
	for _, seg := range segs {
		if seg.Pending {
			if err := s.finish(ctx, seg); err != nil {
				return err
			}
		}
	}
	if err := s.sweep(ctx, conv, segs); err != nil {
		return err
	}
	for {
		recs, err := s.warm.Run(ctx, conv, before, s.cfg.SegmentMessages)
		if err != nil || len(recs) == 0 {
			return err
		}
		if err := s.wait(ctx, runBytes(recs)); err != nil {
			return err
		}
		seg, err := s.write(ctx, conv, recs)
		if err != nil {
			return err
		}
		if err := s.warm.AddSegment(ctx, seg); err != nil {
			return err
		}
		if err := s.warm.DeleteRun(ctx, seg, recs); err != nil {
			return err
		}
		st.Segments++
		st.Messages += seg.Messages
		s.m.ColdSegments.Inc()
		s.m.ColdMessages.Add(float64(seg.Messages))
		s.log.Debug("moved history to cold", "conversation", conv, "segment", seg.Key, "messages", seg.Messages, "bytes", seg.Bytes)
		if err := s.pace.step(ctx); err != nil {
			return err
		}
	}
}

// pacer spreads the mover's work over time. The mover's steps (reading a run from
// the warm store, encoding and verifying a segment, deleting the run) each hold
// one of the process's processors for as long as they run, some for a hundred
// milliseconds a segment, and while they do live sends queue for the others (on
// a two-core node, for the one left): that, not the mover's share of the CPU,
// is what it costs live p99. So the mover calls step between small pieces of
// work (the warm stores through tier.Pace), and once it has worked for a slice it
// rests (1-f)/f times as long.
type pacer struct {
	f     float64
	slice time.Duration
	rest  func(context.Context, time.Duration) error
	since time.Time // when the current slice of work began
}

// restart begins a slice of work: after a rest, or a wait for the byte budget,
// which is not work.
func (p *pacer) restart() { p.since = time.Now() }

// step rests if the slice of work is over.
func (p *pacer) step(ctx context.Context) error {
	if p.f <= 0 || p.f >= 1 {
		return nil
	}
	busy := time.Since(p.since)
	if busy < p.slice {
		return nil
	}
	err := p.rest(ctx, time.Duration(float64(busy)*(1-p.f)/p.f))
	p.restart()
	return err
}

// rest waits d, or until ctx ends.
func rest(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// sweep deletes conv's segment objects that its manifest does not name: written
// by a move that failed or crashed before recording them, and not rewritten under
// the same key by the retry (its run started elsewhere), or left by a retention
// deletion cut short after the manifest entry went. It runs before conv's moves
// of the pass, under the pass's lock, so no move of conv is between its write and
// its record meanwhile.
func (s *Scheduler) sweep(ctx context.Context, conv uint64, segs []tier.Segment) error {
	named := make(map[string]bool, len(segs))
	for _, seg := range segs {
		named[seg.Key] = true
	}
	var stray []ObjectInfo
	err := s.objs.List(ctx, fmt.Sprintf("segments/%d/", conv), func(o ObjectInfo) error {
		if !named[o.Key] {
			stray = append(stray, o)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return s.deleteStray(ctx, conv, stray)
}

// A pass sweeps every conversation's segment objects once per sweepAllEvery (the
// first pass after a start does), so the strays of a conversation that never moves
// again go too: a retention deletion cut short after its manifest entry went, a
// move cut short whose conversation's warm history was deleted before the retry.
// Such a sweep deletes only objects older than strayAge (a move writes, verifies
// and records its segment in seconds), so it never races a move, even one of
// another process.
const (
	sweepAllEvery = 24 * time.Hour
	strayAge      = time.Hour
)

// sweepAll deletes the segment objects older than strayAge that their
// conversation's manifest does not name, for every conversation but those in swept
// (this pass's moves swept them). The listing is in key order, so each
// conversation's objects come together and only one conversation's are held.
func (s *Scheduler) sweepAll(ctx context.Context, now time.Time, swept []uint64) error {
	skip := make(map[uint64]bool, len(swept))
	for _, c := range swept {
		skip[c] = true
	}
	var conv uint64
	var objs []ObjectInfo
	flush := func() error {
		if len(objs) == 0 {
			return nil
		}
		segs, err := s.warm.Manifest(ctx, conv)
		if err != nil {
			return err
		}
		named := make(map[string]bool, len(segs))
		for _, seg := range segs {
			named[seg.Key] = true
		}
		var stray []ObjectInfo
		for _, o := range objs {
			if !named[o.Key] && now.Sub(o.ModTime) > strayAge {
				stray = append(stray, o)
			}
		}
		objs = objs[:0]
		return s.deleteStray(ctx, conv, stray)
	}
	err := s.objs.List(ctx, "segments/", func(o ObjectInfo) error {
		c, ok := segmentConv(o.Key)
		if !ok || skip[c] {
			return nil // not a segment's key, or swept by its move
		}
		if c != conv {
			if err := flush(); err != nil {
				return err
			}
			conv = c
		}
		objs = append(objs, o)
		return nil
	})
	if err != nil {
		return err
	}
	return flush()
}

// segmentConv returns the conversation of a key SegmentKey made.
func segmentConv(key string) (uint64, bool) {
	rest, ok := strings.CutPrefix(key, "segments/")
	if !ok {
		return 0, false
	}
	id, _, ok := strings.Cut(rest, "/")
	if !ok {
		return 0, false
	}
	conv, err := strconv.ParseUint(id, 10, 64)
	return conv, err == nil && conv != 0
}

// deleteStray deletes conv's segment objects stray, which no manifest names.
func (s *Scheduler) deleteStray(ctx context.Context, conv uint64, stray []ObjectInfo) error {
	for _, o := range stray {
		if err := s.objs.Delete(ctx, o.Key); err != nil {
			return err
		}
		s.m.ColdStray.Inc()
		s.log.Info("deleted a cold segment object no manifest names", "conversation", conv, "object", o.Key,
			"bytes", o.Size, "written", o.ModTime, "why", "a move or deletion was cut short before or after recording it")
	}
	return nil
}

// finish deletes the warm rows of a segment recorded before a crash or failure.
func (s *Scheduler) finish(ctx context.Context, seg tier.Segment) error {
	recs, err := s.records(ctx, seg)
	if err != nil {
		return err
	}
	return s.warm.DeleteRun(ctx, seg, recs)
}

// records reads every record of a segment back.
func (s *Scheduler) records(ctx context.Context, seg tier.Segment) ([]tier.Record, error) {
	r, err := OpenSegment(ctx, s.objs, seg.Key, s.cache)
	if err != nil {
		return nil, err
	}
	var recs []tier.Record
	err = r.All(ctx, func(rec tier.Record) error {
		recs = append(recs, rec)
		return nil
	})
	return recs, err
}

// SegmentKey is where the segment of conv starting at msg id first lives: a retried
// move of the same run writes the same object again.
func SegmentKey(conv, first uint64) string {
	return fmt.Sprintf("segments/%d/%020d.seg", conv, first)
}

// write encodes recs as a segment, stores it at the run's key and reads it back to
// verify it before anything refers to it.
func (s *Scheduler) write(ctx context.Context, conv uint64, recs []tier.Record) (tier.Segment, error) {
	data, stats, err := EncodeSegment(conv, recs, 0)
	if err != nil {
		return tier.Segment{}, err
	}
	if err := s.wait(ctx, len(data)); err != nil {
		return tier.Segment{}, err
	}
	key := SegmentKey(conv, stats.FirstMsgID)
	if err := s.objs.Put(ctx, key, bytes.NewReader(data), int64(len(data))); err != nil {
		return tier.Segment{}, err
	}
	if err := tier.Pace(ctx); err != nil {
		return tier.Segment{}, err
	}
	r, err := OpenSegment(ctx, s.objs, key, nil)
	if err != nil {
		return tier.Segment{}, err
	}
	if err := r.Verify(ctx, recs); err != nil {
		return tier.Segment{}, fmt.Errorf("coldstore: segment %s does not read back: %w", key, err)
	}
	return tier.Segment{
		Conv: conv, Key: key,
		FirstMsgID: stats.FirstMsgID, LastMsgID: stats.LastMsgID,
		FirstSeq: stats.FirstSeq, LastSeq: stats.LastSeq,
		MinAt: stats.MinAt, MaxAt: stats.MaxAt,
		Messages: stats.Messages, Stream: stats.Stream,
		Bytes: int64(len(data)), Created: s.cfg.Now().UTC(),
	}, nil
}

// runBytes is about what reading recs from the warm store moved: their documents
// and the keys and times beside them.
func runBytes(recs []tier.Record) int {
	n := 0
	for _, r := range recs {
		n += len(r.Data) + 32
	}
	return n
}

// wait takes n bytes from the rate budget.
func (s *Scheduler) wait(ctx context.Context, n int) error {
	defer s.pace.restart()
	for n > 0 {
		c := min(n, s.limit.Burst())
		if err := s.limit.WaitN(ctx, c); err != nil {
			return err
		}
		n -= c
	}
	return nil
}

// retain deletes segments past retention of conversations no hold covers. Every
// deletion is logged with what and why.
func (s *Scheduler) retain(ctx context.Context, now time.Time) (int, error) {
	if s.cfg.Retention == (RetentionPolicy{}) {
		return 0, nil
	}
	var convs []uint64
	kinds := map[uint64]string{}
	err := s.warm.ArchivedConversations(ctx, func(conv uint64, kind string) error {
		convs, kinds[conv] = append(convs, conv), kind
		return nil
	})
	if err != nil {
		return 0, err
	}
	n := 0
	for _, conv := range convs {
		segs, err := s.warm.Manifest(ctx, conv)
		if err != nil || len(segs) == 0 {
			if err != nil {
				return n, err
			}
			continue
		}
		held := false
		if s.cfg.Held != nil {
			if held, err = s.cfg.Held(ctx, conv); err != nil {
				return n, err
			}
		}
		for _, seg := range segs {
			if !s.cfg.Retention.Expired(kinds[conv], seg, held, now) {
				continue
			}
			if err := s.remove(ctx, seg); err != nil {
				return n, err
			}
			if s.cfg.Expired != nil {
				if err := s.cfg.Expired(ctx, conv, seg.MaxAt); err != nil {
					return n, err
				}
			}
			n++
			s.m.ColdDeleted.Inc()
			s.log.Info("retention deleted cold segment", "conversation", conv, "kind", kinds[conv], "segment", seg.Key,
				"messages", seg.Messages, "first_msg", seg.FirstMsgID, "last_msg", seg.LastMsgID,
				"newest", seg.MaxAt, "why", fmt.Sprintf("older than retention.%s and no legal hold", kinds[conv]))
		}
	}
	return n, nil
}

// remove deletes a segment: its warm bookkeeping first (then nothing refers to the
// object), then the object.
func (s *Scheduler) remove(ctx context.Context, seg tier.Segment) error {
	recs, err := s.records(ctx, seg)
	if err != nil && !errors.Is(err, ErrNotExist) {
		return err
	}
	if err := s.warm.RemoveSegment(ctx, seg, recs); err != nil {
		return err
	}
	return s.objs.Delete(ctx, seg.Key)
}
