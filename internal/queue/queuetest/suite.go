// Package queuetest is the conformance suite every queue.Queue backend runs.
package queuetest

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fanline/fanline/internal/queue"
)

// Factory prepares fresh backing state for one test and returns a function that opens a
// Queue on it with the given topics (name -> partitions), to be consumed by the given
// groups (topic -> group names; every record must reach each of them). Opening twice
// must give two views of the same durable state; the suite closes what it opens.
type Factory func(t *testing.T, topics map[string]int, groups map[string][]string) (open func() queue.Queue)

// Run runs the whole suite.
func Run(t *testing.T, f Factory) {
	t.Run("OrderPerKey", func(t *testing.T) { testOrderPerKey(t, f) })
	t.Run("ResumeAfterCommit", func(t *testing.T) { testResume(t, f) })
	t.Run("RetryFailedBatch", func(t *testing.T) { testRetry(t, f) })
	t.Run("GroupsIndependent", func(t *testing.T) { testGroups(t, f) })
	t.Run("UnknownTopic", func(t *testing.T) { testUnknownTopic(t, f) })
	t.Run("TailFromNow", func(t *testing.T) { testTail(t, f) })
}

// collector records what a consumer saw, by key.
type collector struct {
	mu   sync.Mutex
	seen map[string][]int
	n    int
}

func newCollector() *collector { return &collector{seen: map[string][]int{}} }

func (c *collector) handler(t *testing.T) queue.Handler {
	return func(ctx context.Context, part int, recs []queue.Record) error {
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, r := range recs {
			if r.Partition != part {
				t.Errorf("record of partition %d handed to partition %d", r.Partition, part)
			}
			v, err := strconv.Atoi(string(r.Value))
			if err != nil {
				t.Errorf("bad value %q", r.Value)
			}
			c.seen[string(r.Key)] = append(c.seen[string(r.Key)], v)
			c.n++
		}
		return nil
	}
}

func (c *collector) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// consume runs Consume in a goroutine and returns a stop function that waits for it.
func consume(t *testing.T, q queue.Queue, topic, group string, h queue.Handler) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- q.Consume(ctx, topic, group, h) }()
	return func() {
		cancel()
		select {
		case err := <-done:
			if err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("Consume: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("Consume did not return after cancel")
		}
	}
}

func produceKeys(t *testing.T, q queue.Queue, topic string, keys, perKey int) {
	t.Helper()
	var wg sync.WaitGroup
	for k := 0; k < keys; k++ {
		wg.Add(1)
		go func(k int) {
			defer wg.Done()
			for i := 0; i < perKey; i++ {
				rec := queue.Record{Key: []byte(fmt.Sprintf("key-%d", k)), Value: []byte(strconv.Itoa(i))}
				if err := q.Produce(context.Background(), topic, rec); err != nil {
					t.Errorf("Produce: %v", err)
					return
				}
			}
		}(k)
	}
	wg.Wait()
}

func checkInOrderOnce(t *testing.T, c *collector, keys, perKey int) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	for k := 0; k < keys; k++ {
		got := c.seen[fmt.Sprintf("key-%d", k)]
		if len(got) != perKey {
			t.Fatalf("key-%d: got %d records, want %d", k, len(got), perKey)
		}
		for i, v := range got {
			if v != i {
				t.Fatalf("key-%d: record %d is %d", k, i, v)
			}
		}
	}
}

func testOrderPerKey(t *testing.T, f Factory) {
	open := f(t, map[string]int{"orders": 4}, map[string][]string{"orders": {"g"}})
	q := open()
	defer q.Close()
	c := newCollector()
	stop := consume(t, q, "orders", "g", c.handler(t))
	produceKeys(t, q, "orders", 20, 50)
	waitFor(t, "1000 records", func() bool { return c.count() >= 1000 })
	stop()
	checkInOrderOnce(t, c, 20, 50)
	// Batched produce keeps order too.
	batch := make([]queue.Record, 100)
	for i := range batch {
		batch[i] = queue.Record{Key: []byte("batch"), Value: []byte(strconv.Itoa(i))}
	}
	if err := q.Produce(context.Background(), "orders", batch...); err != nil {
		t.Fatal(err)
	}
	c2 := newCollector()
	stop = consume(t, q, "orders", "g", c2.handler(t))
	waitFor(t, "batch", func() bool { return c2.count() >= 100 })
	stop()
	if got := c2.seen["batch"]; len(got) != 100 || got[0] != 0 || got[99] != 99 || c2.count() != 100 {
		t.Fatalf("batch delivered as %v (total %d)", got, c2.count())
	}
}

func testResume(t *testing.T, f Factory) {
	open := f(t, map[string]int{"resume": 2}, map[string][]string{"resume": {"g"}})
	q := open()
	produceKeys(t, q, "resume", 4, 25)
	c := newCollector()
	stop := consume(t, q, "resume", "g", c.handler(t))
	waitFor(t, "first 100", func() bool { return c.count() >= 100 })
	stop()
	q.Close()

	// A second open sees the same log; the group resumes after what it committed.
	q = open()
	defer q.Close()
	produceKeys(t, q, "resume", 4, 0)
	for k := 0; k < 4; k++ {
		rec := queue.Record{Key: []byte(fmt.Sprintf("key-%d", k)), Value: []byte("25")}
		if err := q.Produce(context.Background(), "resume", rec); err != nil {
			t.Fatal(err)
		}
	}
	c2 := newCollector()
	stop = consume(t, q, "resume", "g", c2.handler(t))
	waitFor(t, "4 new records", func() bool { return c2.count() >= 4 })
	stop()
	c2.mu.Lock()
	defer c2.mu.Unlock()
	for k, vs := range c2.seen {
		if len(vs) == 0 || vs[len(vs)-1] != 25 {
			t.Errorf("%s after resume: %v", k, vs)
		}
		// At-least-once: a redelivered tail is allowed, but never a gap or reorder.
		for i := 1; i < len(vs); i++ {
			if vs[i] != vs[i-1]+1 {
				t.Errorf("%s after resume out of order: %v", k, vs)
			}
		}
	}
}

func testRetry(t *testing.T, f Factory) {
	open := f(t, map[string]int{"retry": 1}, map[string][]string{"retry": {"g"}})
	q := open()
	defer q.Close()
	var mu sync.Mutex
	var calls int
	var got []string
	stop := consume(t, q, "retry", "g", func(ctx context.Context, part int, recs []queue.Record) error {
		mu.Lock()
		defer mu.Unlock()
		calls++
		if calls <= 2 {
			return errors.New("transient")
		}
		for _, r := range recs {
			got = append(got, string(r.Value))
		}
		return nil
	})
	if err := q.Produce(context.Background(), "retry", queue.Record{Key: []byte("k"), Value: []byte("a")}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "retried delivery", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) > 0
	})
	stop()
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(got, ",") != "a" || calls < 3 {
		t.Fatalf("got %v after %d calls", got, calls)
	}
}

func testGroups(t *testing.T, f Factory) {
	open := f(t, map[string]int{"fan": 3}, map[string][]string{"fan": {"a", "b"}})
	q := open()
	defer q.Close()
	a, b := newCollector(), newCollector()
	stopA := consume(t, q, "fan", "a", a.handler(t))
	stopB := consume(t, q, "fan", "b", b.handler(t))
	produceKeys(t, q, "fan", 6, 10)
	waitFor(t, "both groups", func() bool { return a.count() >= 60 && b.count() >= 60 })
	stopA()
	stopB()
	checkInOrderOnce(t, a, 6, 10)
	checkInOrderOnce(t, b, 6, 10)
}

func testUnknownTopic(t *testing.T, f Factory) {
	open := f(t, map[string]int{"known": 1}, nil)
	q := open()
	defer q.Close()
	err := q.Produce(context.Background(), "unknown", queue.Record{Key: []byte("k"), Value: []byte("1")})
	if !errors.Is(err, queue.ErrUnknownTopic) {
		t.Fatalf("Produce to unknown topic: %v", err)
	}
}

// testTail: a tail sees only what one partition gets after it started, in order.
func testTail(t *testing.T, f Factory) {
	const parts = 3
	open := f(t, map[string]int{"hints": parts}, nil)
	q := open()
	defer q.Close()
	key := []byte("node-a")
	part := queue.PartitionFor(key, parts)
	produce := func(key []byte, v string) {
		t.Helper()
		if err := q.Produce(context.Background(), "hints", queue.Record{Key: key, Value: []byte(v)}); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 5; i++ {
		produce(key, "old")
	}
	var mu sync.Mutex
	var got []string
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- q.Tail(ctx, "hints", part, func(_ context.Context, p int, recs []queue.Record) error {
			mu.Lock()
			defer mu.Unlock()
			for _, r := range recs {
				if p != part || r.Partition != part {
					t.Errorf("tail of partition %d got a record of %d", part, r.Partition)
				}
				got = append(got, string(r.Value))
			}
			return nil
		})
	}()
	// The tail starts at some point after Tail was called: probe until it is live.
	seen := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(got)
	}
	for probe := 0; seen() == 0; probe++ {
		if probe == 600 {
			t.Fatal("tail never saw a record")
		}
		produce(key, "probe")
		time.Sleep(50 * time.Millisecond)
	}
	other := []byte("other-0")
	for i := 1; queue.PartitionFor(other, parts) == part; i++ {
		other = []byte(fmt.Sprintf("other-%d", i))
	}
	produce(other, "elsewhere")
	for i := 0; i < 20; i++ {
		produce(key, strconv.Itoa(i))
	}
	waitFor(t, "20 records", func() bool { mu.Lock(); defer mu.Unlock(); return len(got) > 0 && got[len(got)-1] == "19" })
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Tail returned %v", err)
	}
	var after []string
	for _, v := range got {
		switch v {
		case "old", "elsewhere":
			t.Fatalf("tail saw %q: %v", v, got)
		case "probe":
		default:
			after = append(after, v)
		}
	}
	for i, v := range after {
		if v != strconv.Itoa(i) {
			t.Fatalf("tail out of order: %v", after)
		}
	}
	if err := q.Tail(context.Background(), "hints", parts, nil); !errors.Is(err, queue.ErrNoPartition) {
		t.Fatalf("Tail of a missing partition: %v", err)
	}
}
