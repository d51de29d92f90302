// Package deduptest is the conformance suite every dispatch.Dedup backend runs.
package deduptest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/fanline/fanline/dispatch"
)

// Factory returns a fresh, empty Dedup for one test.
type Factory func(t *testing.T) dispatch.Dedup

// Run runs the whole suite.
func Run(t *testing.T, f Factory) {
	t.Run("FirstReservationWins", func(t *testing.T) { testFirstWins(t, f(t)) })
	t.Run("Expiry", func(t *testing.T) { testExpiry(t, f(t)) })
	t.Run("ConcurrentReserve", func(t *testing.T) { testConcurrent(t, f(t)) })
}

var ctx = context.Background()

func reserve(t *testing.T, d dispatch.Dedup, sender, cmid string, id uint64, ttl time.Duration) (uint64, bool) {
	t.Helper()
	held, existed, err := d.Reserve(ctx, sender, cmid, id, ttl)
	if err != nil {
		t.Fatal(err)
	}
	return held, existed
}

func testFirstWins(t *testing.T, d dispatch.Dedup) {
	if held, existed := reserve(t, d, "ann", "c1", 10, time.Hour); held != 10 || existed {
		t.Fatalf("first reservation: %d %v", held, existed)
	}
	if held, existed := reserve(t, d, "ann", "c1", 11, time.Hour); held != 10 || !existed {
		t.Fatalf("second reservation: %d %v", held, existed)
	}
	if held, existed := reserve(t, d, "bob", "c1", 12, time.Hour); held != 12 || existed {
		t.Fatalf("another sender's client_msg_id: %d %v", held, existed)
	}
}

func testExpiry(t *testing.T, d dispatch.Dedup) {
	reserve(t, d, "ann", "short", 20, 50*time.Millisecond)
	reserve(t, d, "ann", "long", 21, time.Hour)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := d.Sweep(ctx, time.Now()); err != nil {
			t.Fatal(err)
		}
		held, existed, err := d.Reserve(ctx, "ann", "short", 22, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if !existed {
			if held != 22 {
				t.Fatalf("fresh reservation after expiry holds %d", held)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a reservation outlived its TTL by seconds")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if held, existed := reserve(t, d, "ann", "long", 23, time.Hour); held != 21 || !existed {
		t.Fatalf("unexpired reservation lost: %d %v", held, existed)
	}
}

func testConcurrent(t *testing.T, d dispatch.Dedup) {
	var wg sync.WaitGroup
	held := make([]uint64, 16)
	winners := make([]bool, 16)
	for i := range held {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			h, existed, err := d.Reserve(ctx, "ann", "race", uint64(100+i), time.Hour)
			if err != nil {
				t.Error(err)
			}
			held[i], winners[i] = h, !existed
		}(i)
	}
	wg.Wait()
	n := 0
	for i := range held {
		if held[i] != held[0] {
			t.Fatalf("reservations disagree: %v", held)
		}
		if winners[i] {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d reservations won", n)
	}
}
