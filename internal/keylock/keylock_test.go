package keylock

import (
	"fmt"
	"sync"
	"testing"
)

// TestLockManyKeys: callers locking overlapping key sets in opposite orders neither
// deadlock nor run one key's critical section twice at once (the race detector and
// the final counts would see it).
func TestLockManyKeys(t *testing.T) {
	s := New(8)
	const n, rounds, workers = 20, 200, 8
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprint("k", i)
	}
	counts := make([]int, n) // counts[i] is guarded by keys[i]'s stripe
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < rounds; i++ {
				a, b := (w+i)%n, (n-1)-(i%n)
				unlock := s.Lock(keys[b], keys[a], keys[b])
				counts[a]++
				if b != a {
					counts[b]++
				}
				unlock()
			}
		}(w)
	}
	wg.Wait()
	want := 0
	for w := 0; w < workers; w++ {
		for i := 0; i < rounds; i++ {
			want += 2
			if (w+i)%n == (n-1)-(i%n) {
				want--
			}
		}
	}
	total := 0
	for _, c := range counts {
		total += c
	}
	if total != want {
		t.Fatalf("%d increments, want %d", total, want)
	}
	for _, k := range keys {
		if i := s.Stripe(k); i < 0 || i >= 8 || New(8).Stripe(k) != i {
			t.Fatalf("stripe of %s: %d, not stable or out of range", k, i)
		}
	}
}
