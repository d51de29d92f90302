package groupstream

import (
	"hash/maphash"
	"sync"
	"sync/atomic"
	"unsafe"
)

// defaultCacheBytes is Config.CacheBytes when zero.
const defaultCacheBytes = 64 << 20

// The kinds of cached values.
const (
	cacheConv    byte = iota + 1 // a Conversation, by id
	cachePair                    // a conversation id, by pair key
	cacheMembers                 // a group's []Member, by group id
	cacheReads                   // a group's *readIndex (Pebble) or *loadedIndex (Cassandra)
)

// cacheKey names one cached value.
type cacheKey struct {
	kind byte
	id   uint64 // conversation id (every kind but cachePair)
	pair string // cachePair's key
}

func convCacheKey(id uint64) cacheKey    { return cacheKey{kind: cacheConv, id: id} }
func membersCacheKey(id uint64) cacheKey { return cacheKey{kind: cacheMembers, id: id} }
func readsCacheKey(id uint64) cacheKey   { return cacheKey{kind: cacheReads, id: id} }
func pairCacheKey(pair string) cacheKey  { return cacheKey{kind: cachePair, pair: pair} }

// cacheEntry is one cached value and what it is accounted for.
type cacheEntry struct {
	key  cacheKey
	val  any
	size int64
	slot int         // index in byteCache.ring
	ref  atomic.Bool // set by a hit, cleared by the clock hand
}

// genStripes is how many write generations byteCache keeps (see fill).
const genStripes = 256

// byteCache is a CLOCK cache bounded in bytes: the sizes of its values, as
// estimated by their callers (strings and struct overhead), plus entryOverhead
// each, never pass budget once a call returns. A value larger than a quarter of the
// budget is not cached at all, so one huge group cannot flush everything else.
//
// Hits take the lock shared and set the entry's reference bit; the clock hand, run
// under the exclusive lock when an insertion passes the budget, evicts the first
// entry whose bit is clear, clearing bits as it goes.
//
// A value read from the backing store is put with fill, which refuses it when a
// write (set or del) to a key of its stripe happened since the reader took gen: the
// read may then be older than the value the writer put (and which eviction may
// already have dropped). Values that a writer commits are put with set.
type byteCache struct {
	budget   int64
	maxEntry int64 // budget / 4
	seed     maphash.Seed
	gens     [genStripes]atomic.Uint64 // bumped under mu by set and del

	mu    sync.RWMutex // guards used, byKey, ring and hand; hits take it shared
	used  int64        // INVARIANT: used <= budget when mu is free
	byKey map[cacheKey]*cacheEntry
	ring  []*cacheEntry
	hand  int
}

func newByteCache(budget int64) *byteCache {
	return &byteCache{budget: budget, maxEntry: budget / 4, seed: maphash.MakeSeed(), byKey: map[cacheKey]*cacheEntry{}}
}

func (c *byteCache) stripe(k cacheKey) int {
	if k.kind == cachePair {
		return int(maphash.String(c.seed, k.pair) % genStripes)
	}
	return int(k.id % genStripes)
}

// get returns the value cached at k.
func (c *byteCache) get(k cacheKey) (any, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	e := c.byKey[k]
	if e == nil {
		return nil, false
	}
	if !e.ref.Load() {
		e.ref.Store(true)
	}
	return e.val, true
}

// gen returns k's write generation, to pass to fill after reading the backing
// store.
func (c *byteCache) gen(k cacheKey) uint64 { return c.gens[c.stripe(k)].Load() }

// fill caches v, read from the backing store after gen returned g, unless k is
// cached already or a write to k's stripe happened since.
func (c *byteCache) fill(k cacheKey, v any, size int64, g uint64) {
	size += entryOverhead
	if size > c.maxEntry {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gens[c.stripe(k)].Load() != g || c.byKey[k] != nil {
		return
	}
	c.insertLocked(k, v, size)
}

// set caches v at k after a write committed it, replacing what k held; a value too
// large to cache drops k.
func (c *byteCache) set(k cacheKey, v any, size int64) {
	size += entryOverhead
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gens[c.stripe(k)].Add(1)
	if e := c.byKey[k]; e != nil {
		c.removeLocked(e)
	}
	if size <= c.maxEntry {
		c.insertLocked(k, v, size)
	}
}

// del drops k.
func (c *byteCache) del(k cacheKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gens[c.stripe(k)].Add(1)
	if e := c.byKey[k]; e != nil {
		c.removeLocked(e)
	}
}

// resize changes the accounted size of v cached at k by delta (a mutable value
// grew or shrank); it drops k when v no longer fits. v is a pointer (values are
// compared, so that a resize of a value evicted and replaced meanwhile does
// nothing).
func (c *byteCache) resize(k cacheKey, v any, delta int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.byKey[k]
	if e == nil || e.val != v {
		return
	}
	delta = max(delta, entryOverhead-e.size) // an estimate never shrinks below nothing
	e.size += delta
	c.used += delta
	if e.size > c.maxEntry {
		c.removeLocked(e)
	}
	c.evictLocked()
}

// bytes returns the accounted bytes.
func (c *byteCache) bytes() int64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.used
}

// insertLocked adds k, absent, then evicts down to the budget; the caller holds mu.
func (c *byteCache) insertLocked(k cacheKey, v any, size int64) {
	e := &cacheEntry{key: k, val: v, size: size, slot: len(c.ring)}
	c.byKey[k] = e
	c.ring = append(c.ring, e)
	c.used += size
	c.evictLocked()
}

// evictLocked runs the clock hand until used is within the budget; the caller holds
// mu (exclusively, so no hit sets a bit meanwhile and one turn clears them all).
func (c *byteCache) evictLocked() {
	for c.used > c.budget && len(c.ring) > 0 {
		if c.hand >= len(c.ring) {
			c.hand = 0
		}
		e := c.ring[c.hand]
		if e.ref.Load() {
			e.ref.Store(false)
			c.hand++
			continue
		}
		c.removeLocked(e) // the last entry moves to the hand: it is looked at next
	}
}

// removeLocked drops e; the caller holds mu.
func (c *byteCache) removeLocked(e *cacheEntry) {
	last := len(c.ring) - 1
	c.ring[e.slot] = c.ring[last]
	c.ring[e.slot].slot = e.slot
	c.ring[last] = nil
	c.ring = c.ring[:last]
	delete(c.byKey, e.key)
	c.used -= e.size
}

// Size estimates, in bytes: what the values hold (string bytes, slice backing
// arrays) plus their headers. They need not be exact, only proportional to the
// memory a value pins, so that nobody can make the cache hold much more than its
// budget.
const (
	// entryOverhead is a cacheEntry, its map slot and its ring slot.
	entryOverhead = int64(unsafe.Sizeof(cacheEntry{})+unsafe.Sizeof(cacheKey{})) + 48
	// readPositionOverhead is one member's read position in a readIndex: a map
	// slot (string header, value, bucket share) and a slot of the sorted slice.
	readPositionOverhead = 56
)

func convSize(c Conversation) int64 {
	n := int64(unsafe.Sizeof(c)) + int64(len(c.Kind)+len(c.Shop)+len(c.Name)+len(c.Owner))
	for _, m := range c.Members {
		n += int64(unsafe.Sizeof(m)) + int64(len(m))
	}
	return n
}

func membersSize(list []Member) int64 {
	n := int64(unsafe.Sizeof(list)) + int64(cap(list))*int64(unsafe.Sizeof(Member{}))
	for _, m := range list {
		n += int64(len(m.User) + len(m.Role))
	}
	return n
}

func pairSize(pair string) int64 { return int64(len(pair)) + 8 }

func readPositionSize(user string) int64 { return readPositionOverhead + int64(len(user)) }

// readIndexSize estimates x; the caller owns x or holds its lock.
func readIndexSize(x *readIndex) int64 {
	n := int64(unsafe.Sizeof(*x))
	for u := range x.byUser {
		n += readPositionSize(u)
	}
	return n
}
