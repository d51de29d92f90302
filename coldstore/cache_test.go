package coldstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fanline/fanline/internal/tier"
)

func TestBlockCacheLRU(t *testing.T) {
	ctx := context.Background()
	c := NewBlockCache(100)
	fetches := 0
	get := func(name string, size int64) {
		t.Helper()
		v, err := c.get(ctx, cacheKey{name, 0}, func() (any, int64, error) {
			fetches++
			return name, size, nil
		})
		if err != nil || v != name {
			t.Fatalf("get %s = %v, %v", name, v, err)
		}
	}
	get("a", 40)
	get("b", 40)
	get("a", 40) // a is now the most recently used
	get("c", 40) // evicts b
	if st := c.Stats(); st.Bytes != 80 || st.Entries != 2 || st.Hits != 1 || st.Misses != 3 || fetches != 3 {
		t.Fatalf("stats %+v after %d fetches", st, fetches)
	}
	get("a", 40)
	get("b", 40)
	if fetches != 4 {
		t.Fatalf("%d fetches: a should have stayed, b have gone", fetches)
	}
	get("huge", 101) // larger than the cache: served, not kept
	get("huge", 101)
	if st := c.Stats(); fetches != 6 || st.Bytes > 100 {
		t.Fatalf("%d fetches, stats %+v", fetches, st)
	}
	// A failed fetch is not kept.
	boom := errors.New("boom")
	for range 2 {
		if _, err := c.get(ctx, cacheKey{"err", 0}, func() (any, int64, error) { return nil, 0, boom }); err != boom {
			t.Fatalf("got %v, want boom", err)
		}
	}
	if st := c.Stats(); st.Misses != 8 {
		t.Fatalf("misses %d, want 8", st.Misses)
	}
	var nilCache *BlockCache
	if v, err := nilCache.get(ctx, cacheKey{"x", 0}, func() (any, int64, error) { return 1, 1, nil }); v != 1 || err != nil || nilCache.Stats() != (CacheStats{}) {
		t.Fatal("a nil cache should fetch and count nothing")
	}
}

func TestBlockCacheSecondReadHits(t *testing.T) {
	ctx := context.Background()
	co := &countingObjects{Objects: openTestDir(t)}
	recs := testRecords(rand.New(rand.NewPCG(21, 22)), 500, 500, 0)
	ref := newReference(recs)
	cache := NewBlockCache(1 << 20)
	b, _, _ := EncodeSegment(1, recs, 1024)
	put(t, co, "s", b)
	co.reset()
	r, err := OpenSegment(ctx, co, "s", cache)
	if err != nil {
		t.Fatal(err)
	}
	id := ref.msgs[len(ref.msgs)/2].MsgID
	if _, ok, err := r.Message(ctx, id); !ok || err != nil {
		t.Fatal(ok, err)
	}
	if heads, gets := co.reset(); heads != 1 || len(gets) != 2 {
		t.Fatalf("first open and read: %d heads, gets %v", heads, gets)
	}
	st := cache.Stats()
	r2, err := OpenSegment(ctx, co, "s", cache)
	if err != nil {
		t.Fatal(err)
	}
	got, ok, err := r2.Message(ctx, id)
	if !ok || err != nil || !sameRecord(got, present(ref, id)) {
		t.Fatal(ok, err)
	}
	if heads, gets := co.reset(); heads != 0 || len(gets) != 0 {
		t.Fatalf("second open and read: %d heads, gets %v; want none", heads, gets)
	}
	if st2 := cache.Stats(); st2.Hits != st.Hits+2 || st2.Misses != st.Misses {
		t.Fatalf("stats %+v then %+v, want two more hits", st, st2)
	}
}

func present(ref reference, id uint64) tier.Record {
	for _, m := range ref.msgs {
		if m.MsgID == id {
			return m
		}
	}
	return tier.Record{}
}

func TestBlockCacheBoundUnderConcurrentReaders(t *testing.T) {
	ctx := context.Background()
	co := &countingObjects{Objects: openTestDir(t)}
	rng := rand.New(rand.NewPCG(23, 24))
	var refs []reference
	for i := range 3 {
		recs := testRecords(rng, 1500, 500, 4000)
		refs = append(refs, newReference(recs))
		b, _, _ := EncodeSegment(uint64(i), recs, 2048)
		put(t, co, fmt.Sprintf("s%d", i), b)
	}
	const bound = 12 << 10 // a few blocks
	cache := NewBlockCache(bound)
	var stop atomic.Bool
	var over atomic.Int64
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for !stop.Load() {
			if b := cache.Stats().Bytes; b > bound {
				over.Store(b)
			}
		}
	}()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 99))
			for range 150 {
				i := rng.IntN(len(refs))
				r, err := OpenSegment(ctx, co, fmt.Sprintf("s%d", i), cache)
				if err != nil {
					errs <- err
					return
				}
				want := refs[i].msgs[rng.IntN(len(refs[i].msgs))]
				got, ok, err := r.Message(ctx, want.MsgID)
				if err != nil || !ok || !sameRecord(got, want) {
					errs <- fmt.Errorf("Message(%d) = %v, %v", want.MsgID, ok, err)
					return
				}
				page, err := r.Stream(ctx, refs[i].stream[rng.IntN(len(refs[i].stream)-1)].Seq, 20)
				if err != nil || len(page) == 0 {
					errs <- fmt.Errorf("Stream: %d records, %v", len(page), err)
					return
				}
			}
		}()
	}
	wg.Wait()
	stop.Store(true)
	<-sampled
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	st := cache.Stats()
	if over.Load() != 0 || st.Bytes > bound {
		t.Fatalf("cache held %d bytes, bound %d", max(over.Load(), st.Bytes), bound)
	}
	if st.Hits == 0 || st.Misses < 50 {
		t.Fatalf("stats %+v: want hits, and misses from evictions", st)
	}
}

// gatedObjects holds Gets of one offset until gate is closed.
type gatedObjects struct {
	Objects
	off  int64
	gate chan struct{}
	n    atomic.Int32 // Gets of off
}

func (g *gatedObjects) Get(ctx context.Context, key string, off, length int64) (io.ReadCloser, error) {
	if off == g.off {
		g.n.Add(1)
		<-g.gate
	}
	return g.Objects.Get(ctx, key, off, length)
}

func TestBlockCacheFetchesOnceForConcurrentMisses(t *testing.T) {
	ctx := context.Background()
	recs := testRecords(rand.New(rand.NewPCG(25, 26)), 300, 0, 0)
	ref := newReference(recs)
	d := openTestDir(t)
	r0, _ := writeSegment(t, d, "s", recs, 1024, nil)
	bi := r0.f.blocks[1]
	g := &gatedObjects{Objects: d, off: bi.off, gate: make(chan struct{})}
	cache := NewBlockCache(1 << 20)
	r, err := OpenSegment(ctx, g, "s", cache)
	if err != nil {
		t.Fatal(err)
	}
	const n = 6
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, ok, err := r.Message(ctx, bi.firstMsg)
			if err != nil || !ok || !sameRecord(got, present(ref, bi.firstMsg)) {
				errs <- fmt.Errorf("Message = %v, %v", ok, err)
			}
		}()
	}
	waitFor := func(want int) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for cache.waiting(cacheKey{"s", bi.off}) < want && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		if w := cache.waiting(cacheKey{"s", bi.off}); w != want {
			t.Fatalf("%d callers waiting, want %d", w, want)
		}
	}
	waitFor(n - 1) // one of them fetches
	// A caller whose context ends stops waiting; the others go on.
	short, cancel := context.WithCancel(ctx)
	done := make(chan error)
	go func() { _, _, err := r.Message(short, bi.firstMsg); done <- err }()
	waitFor(n)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled waiter: %v", err)
	}
	close(g.gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if got := g.n.Load(); got != 1 {
		t.Fatalf("%d Gets of the block, want 1", got)
	}
	if st := cache.Stats(); st.Misses != 2 || st.Hits != n-1 { // footer and block; the waiters
		t.Fatalf("stats %+v", st)
	}
}

// A fetch whose caller's context ends is retried by a waiter whose context lives.
func TestBlockCacheWaiterRetriesAfterCanceledFetch(t *testing.T) {
	c := NewBlockCache(100)
	k := cacheKey{"k", 0}
	started, release := make(chan struct{}), make(chan struct{})
	first, cancel := context.WithCancel(context.Background())
	firstDone := make(chan error)
	go func() {
		_, err := c.get(first, k, func() (any, int64, error) {
			close(started)
			<-release
			return nil, 0, first.Err()
		})
		firstDone <- err
	}()
	<-started
	second := make(chan any)
	go func() {
		v, _ := c.get(context.Background(), k, func() (any, int64, error) { return "mine", 4, nil })
		second <- v
	}()
	deadline := time.Now().Add(10 * time.Second)
	for c.waiting(k) < 1 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	cancel()
	close(release)
	if err := <-firstDone; !errors.Is(err, context.Canceled) {
		t.Fatalf("first: %v", err)
	}
	if v := <-second; v != "mine" {
		t.Fatalf("second got %v, want its own fetch's value", v)
	}
}
