package dispatch

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/fanline/fanline/internal/queue"
	"github.com/fanline/fanline/internal/testharness"
)

// directConv returns the direct conversation of al and bea.
func directConv(t *testing.T, d *Dispatcher) uint64 {
	t.Helper()
	c, err := d.streams.DirectConversation(context.Background(), "al", "bea", func() uint64 { return nextID(t, d) })
	if err != nil {
		t.Fatal(err)
	}
	return c.ID
}

// records consumes (and commits) at least n records of topic for group.
func records(t *testing.T, d *Dispatcher, topic, group string, n int) []queue.Record {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	var out []queue.Record
	done := make(chan error, 1)
	go func() {
		done <- d.q.Consume(ctx, topic, group, func(_ context.Context, _ int, recs []queue.Record) error {
			mu.Lock()
			defer mu.Unlock()
			out = append(out, recs...)
			return nil
		})
	}()
	testharness.WaitFor(t, 10*time.Second, topic+" records", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(out) >= n
	})
	cancel()
	<-done
	mu.Lock()
	defer mu.Unlock()
	return out
}

// nextID is a fresh msg id from d's generator.
func nextID(t *testing.T, d *Dispatcher) uint64 {
	t.Helper()
	id, err := d.ids.Next()
	if err != nil {
		t.Fatal(err)
	}
	return id
}
