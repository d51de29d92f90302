package groupstream

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// check verifies the cache's bookkeeping: the ring and the map hold the same
// entries, used is their sum and within the budget.
func (c *byteCache) check(t *testing.T) {
	t.Helper()
	c.mu.RLock()
	defer c.mu.RUnlock()
	if len(c.ring) != len(c.byKey) {
		t.Fatalf("%d ring entries, %d keys", len(c.ring), len(c.byKey))
	}
	var sum int64
	for i, e := range c.ring {
		if e.slot != i || c.byKey[e.key] != e {
			t.Fatalf("entry %v at slot %d says %d", e.key, i, e.slot)
		}
		if e.size > c.maxEntry {
			t.Fatalf("entry %v of %d bytes, over a quarter of %d", e.key, e.size, c.budget)
		}
		sum += e.size
	}
	if sum != c.used || c.used > c.budget {
		t.Fatalf("used %d, entries %d, budget %d", c.used, sum, c.budget)
	}
}

func TestByteCacheStaysWithinBudget(t *testing.T) {
	c := newByteCache(64 << 10)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 20000 {
		k := membersCacheKey(uint64(rng.IntN(500)))
		switch op := rng.IntN(10); {
		case op < 5:
			c.set(k, i, int64(rng.IntN(20<<10)))
		case op < 7:
			c.fill(k, i, int64(rng.IntN(8<<10)), c.gen(k))
		case op < 8:
			c.del(k)
		case op < 9:
			if v, ok := c.get(k); ok {
				c.resize(k, v, int64(rng.IntN(4<<10)-1<<10))
			}
		default:
			c.get(k)
		}
		if i%97 == 0 {
			c.check(t)
		}
	}
	c.check(t)
	if c.bytes() == 0 {
		t.Fatal("nothing cached")
	}
}

func TestByteCacheFillAndSet(t *testing.T) {
	c := newByteCache(1 << 20)
	k := convCacheKey(7)
	// A read that raced a write is not cached: it may be older than the write.
	g := c.gen(k)
	c.set(k, "new", 10)
	c.del(k)
	c.fill(k, "old", 10, g)
	if v, ok := c.get(k); ok {
		t.Fatalf("a stale read was cached: %v", v)
	}
	// A fill does not replace a cached value; a set does.
	c.set(k, "a", 10)
	c.fill(k, "b", 10, c.gen(k))
	if v, _ := c.get(k); v != "a" {
		t.Fatalf("after a fill: %v", v)
	}
	// A value over a quarter of the budget is not cached, and setting one drops
	// what the key held.
	c.set(k, "huge", 1<<18)
	if v, ok := c.get(k); ok {
		t.Fatalf("an oversized value replaced the old one: %v", v)
	}
	c.fill(k, "huge", 1<<18, c.gen(k))
	if _, ok := c.get(k); ok || c.bytes() != 0 {
		t.Fatalf("an oversized fill was cached (%d bytes)", c.bytes())
	}
	// Recently used entries survive a flood of new ones better than others.
	c = newByteCache(100 * (entryOverhead + 100))
	hot := pairCacheKey("hot")
	c.set(hot, 1, 100)
	for i := range 1000 {
		c.get(hot)
		c.set(pairCacheKey(fmt.Sprint(i)), i, 100)
		c.check(t)
	}
	if _, ok := c.get(hot); !ok {
		t.Fatal("the hot entry was evicted")
	}
}
