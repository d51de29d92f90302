package coldstore

import (
	"container/list"
	"context"
	"errors"
	"sync"
)

// BlockCache keeps recently read segment blocks, decompressed, and segment footers
// in memory, least recently used first out, within a bound on their total bytes.
// Concurrent misses of one entry fetch it once. It is safe for concurrent use; a
// nil *BlockCache caches nothing.
type BlockCache struct {
	max int64

	mu sync.Mutex
	// Guarded by mu. INVARIANT: bytes is the sum of the sizes in lru, and bytes <= max.
	bytes   int64
	lru     *list.List // of *cacheEntry, most recently used first
	entries map[cacheKey]*list.Element
	loading map[cacheKey]*cacheLoad
	hits    uint64
	misses  uint64
}

// cacheKey names a block by its segment's object key and its offset there (a
// footer by footerSlot).
type cacheKey struct {
	obj string
	off int64
}

type cacheEntry struct {
	key  cacheKey
	val  any
	size int64
}

// cacheLoad is a fetch in flight; done is closed when val and err are set.
type cacheLoad struct {
	done    chan struct{}
	val     any
	err     error
	waiters int // callers waiting on done, guarded by BlockCache.mu
}

// CacheStats is a snapshot of a BlockCache's counters.
type CacheStats struct {
	// Hits counts lookups served from memory (including by waiting for another
	// caller's fetch), Misses those that fetched from the object store.
	Hits, Misses uint64
	// Bytes is the total size of the entries held (decompressed block bytes, and
	// an estimate for footers), Entries their number.
	Bytes   int64
	Entries int
}

// NewBlockCache returns a cache holding at most maxBytes of entries; an entry
// larger than that is not kept.
func NewBlockCache(maxBytes int64) *BlockCache {
	return &BlockCache{
		max:     maxBytes,
		lru:     list.New(),
		entries: make(map[cacheKey]*list.Element),
		loading: make(map[cacheKey]*cacheLoad),
	}
}

// Stats returns the cache's counters (zeros for a nil cache).
func (c *BlockCache) Stats() CacheStats {
	if c == nil {
		return CacheStats{}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return CacheStats{Hits: c.hits, Misses: c.misses, Bytes: c.bytes, Entries: c.lru.Len()}
}

// get returns the entry k, calling fetch (which returns it and its size) on a
// miss. Failures are not cached. A caller waiting for another's fetch that the
// other's context ended retries with its own.
func (c *BlockCache) get(ctx context.Context, k cacheKey, fetch func() (any, int64, error)) (any, error) {
	if c == nil {
		v, _, err := fetch()
		return v, err
	}
	for {
		c.mu.Lock()
		if e, ok := c.entries[k]; ok {
			c.lru.MoveToFront(e)
			c.hits++
			c.mu.Unlock()
			return e.Value.(*cacheEntry).val, nil
		}
		if l, ok := c.loading[k]; ok {
			l.waiters++
			c.mu.Unlock()
			select {
			case <-l.done:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			if l.err == nil {
				c.mu.Lock()
				c.hits++
				c.mu.Unlock()
				return l.val, nil
			}
			if isContextErr(l.err) && ctx.Err() == nil {
				continue
			}
			return nil, l.err
		}
		l := &cacheLoad{done: make(chan struct{})}
		c.loading[k] = l
		c.misses++
		c.mu.Unlock()

		v, size, err := fetch()
		l.val, l.err = v, err
		c.mu.Lock()
		delete(c.loading, k)
		if err == nil {
			c.add(k, v, size)
		}
		c.mu.Unlock()
		close(l.done)
		return v, err
	}
}

func isContextErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// add inserts an entry, evicting the least recently used ones to stay within max.
// Called with c.mu held.
func (c *BlockCache) add(k cacheKey, v any, size int64) {
	if size > c.max {
		return
	}
	c.entries[k] = c.lru.PushFront(&cacheEntry{key: k, val: v, size: size})
	c.bytes += size
	for c.bytes > c.max {
		e := c.lru.Back().Value.(*cacheEntry)
		c.lru.Remove(c.lru.Back())
		delete(c.entries, e.key)
		c.bytes -= e.size
	}
}

// waiting returns how many callers wait for a fetch of k in flight (for tests).
func (c *BlockCache) waiting(k cacheKey) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if l, ok := c.loading[k]; ok {
		return l.waiters
	}
	return 0
}
