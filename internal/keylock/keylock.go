// Package keylock serialises work per key inside one process with a fixed set of
// mutexes striped by key hash. Locking several keys takes their stripes in ascending
// order, so two callers never deadlock; keys that share a stripe wait for each other.
//
// A Set is safe for concurrent use.
package keylock

import (
	"hash/fnv"
	"slices"
	"sync"
)

// Set is n mutexes striped by key hash.
type Set struct {
	mu []sync.Mutex
}

// New returns a set of n stripes.
func New(n int) *Set { return &Set{mu: make([]sync.Mutex, n)} }

// Stripe returns the index of key's stripe, for state guarded per stripe.
func (s *Set) Stripe(key string) int {
	h := fnv.New32a()
	h.Write([]byte(key))
	return int(h.Sum32() % uint32(len(s.mu)))
}

// Lock locks the stripes of keys in ascending order and returns the unlock.
func (s *Set) Lock(keys ...string) (unlock func()) {
	order := make([]int, 0, len(keys))
	for _, k := range keys {
		order = append(order, s.Stripe(k))
	}
	slices.Sort(order)
	order = slices.Compact(order)
	for _, i := range order {
		s.mu[i].Lock()
	}
	return func() {
		for _, i := range order {
			s.mu[i].Unlock()
		}
	}
}
