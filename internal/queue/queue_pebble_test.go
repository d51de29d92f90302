package queue_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/fanline/fanline/internal/kv"
	"github.com/fanline/fanline/internal/queue"
	"github.com/fanline/fanline/internal/queue/queuetest"
	"github.com/fanline/fanline/internal/testharness"
)

func TestPebbleQueueConformance(t *testing.T) {
	queuetest.Run(t, func(t *testing.T, topics map[string]int, groups map[string][]string) func() queue.Queue {
		dir := t.TempDir()
		var db *pebble.DB
		t.Cleanup(func() {
			if db != nil {
				db.Close()
			}
		})
		return func() queue.Queue {
			if db != nil {
				db.Close()
			}
			var err error
			if db, err = kv.Open(dir, nil); err != nil {
				t.Fatal(err)
			}
			q, err := queue.NewPebbleQueue(db, queue.PebbleQueueConfig{Topics: topics, Groups: groups, ConsumerConfig: queue.ConsumerConfig{MaxBatch: 7}})
			if err != nil {
				t.Fatal(err)
			}
			return q
		}
	})
}

func TestPartitionForIsStable(t *testing.T) {
	// The mapping is part of the on-disk contract: changing it reorders a live log.
	for key, want := range map[string]int{"alice": 3, "bob": 0, "": 1} {
		if got := queue.PartitionFor([]byte(key), 4); got != want {
			t.Errorf("PartitionFor(%q, 4) = %d, want %d", key, got, want)
		}
	}
}

func TestPebbleQueueRefusesRepartitionWithBacklog(t *testing.T) {
	db, err := kv.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	open := func(n int) (*queue.PebbleQueue, error) {
		return queue.NewPebbleQueue(db, queue.PebbleQueueConfig{Topics: map[string]int{"t": n}})
	}
	q, err := open(4)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	consumed := make(chan struct{}, 10)
	go func() {
		defer close(done)
		q.Consume(ctx, "t", "g", func(context.Context, int, []queue.Record) error {
			consumed <- struct{}{}
			return nil
		})
	}()
	q.Produce(context.Background(), "t", queue.Record{Key: []byte("a"), Value: []byte("1")})
	<-consumed
	cancel()
	<-done
	// The group is known and has consumed everything; one more record stays unread.
	q.Produce(context.Background(), "t", queue.Record{Key: []byte("a"), Value: []byte("2")})
	q.Close()
	if _, err := open(8); err == nil || !strings.Contains(err.Error(), "not consumed") {
		t.Fatalf("repartition with a backlog: %v", err)
	}
	q, err = open(4)
	if err != nil {
		t.Fatalf("reopen with the recorded count: %v", err)
	}
	// Drain it; then the topic may be resized.
	ctx, cancel = context.WithCancel(context.Background())
	done = make(chan struct{})
	go func() {
		defer close(done)
		q.Consume(ctx, "t", "g", func(context.Context, int, []queue.Record) error {
			consumed <- struct{}{}
			return nil
		})
	}()
	<-consumed
	cancel()
	<-done
	q.Close()
	if q, err = open(8); err != nil {
		t.Fatalf("resize a drained topic: %v", err)
	}
	q.Close()
}

// TestPebbleQueueRetentionWaitsForDeclaredGroups: records consumed by one group stay
// until every declared group has read them, even one that connects late.
func TestPebbleQueueRetentionWaitsForDeclaredGroups(t *testing.T) {
	db, err := kv.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	q, err := queue.NewPebbleQueue(db, queue.PebbleQueueConfig{Topics: map[string]int{"t": 1},
		Groups: map[string][]string{"t": {"early", "late"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	drain := func(group string, want int) {
		t.Helper()
		ctx, cancel := context.WithCancel(context.Background())
		got := make(chan int, 100)
		done := make(chan struct{})
		go func() {
			defer close(done)
			q.Consume(ctx, "t", group, func(_ context.Context, _ int, recs []queue.Record) error {
				got <- len(recs)
				return nil
			})
		}()
		n := 0
		for n < want {
			select {
			case k := <-got:
				n += k
			case <-time.After(10 * time.Second):
				t.Fatalf("%s read %d of %d", group, n, want)
			}
		}
		cancel()
		<-done
		if n != want {
			t.Fatalf("%s read %d, want %d", group, n, want)
		}
	}
	for i := 0; i < 5; i++ {
		q.Produce(context.Background(), "t", queue.Record{Key: []byte("k"), Value: []byte{byte(i)}})
	}
	drain("early", 5)
	drain("late", 5) // still there: "late" was declared
	// Both have passed them now: they are deleted, so a new undeclared group sees none
	// of them, only what comes next.
	q.Produce(context.Background(), "t", queue.Record{Key: []byte("k"), Value: []byte{9}})
	drain("newcomer", 1)
}

// TestPebbleQueueTrimsTopicsWithoutGroups: a topic that no consumer group reads (the
// push topic, which gateways only tail) keeps its newest TailRetain records per
// partition instead of every record forever; a tail still gets what is produced.
func TestPebbleQueueTrimsTopicsWithoutGroups(t *testing.T) {
	db, err := kv.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	q, err := queue.NewPebbleQueue(db, queue.PebbleQueueConfig{Topics: map[string]int{"push": 2, "work": 1},
		Groups: map[string][]string{"work": {"g"}}, TailRetain: 100})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	ctx, cancel := context.WithCancel(context.Background())
	var tailed atomic.Int64
	tailing := make(chan struct{})
	go func() {
		defer close(tailing)
		q.Tail(ctx, "push", 0, func(_ context.Context, _ int, recs []queue.Record) error {
			tailed.Add(int64(len(recs)))
			return nil
		})
	}()
	defer func() { // the tail ends before the queue and the store close
		cancel()
		<-tailing
	}()
	for i := 0; i < 50; i++ {
		var recs []queue.Record
		for j := 0; j < 40; j++ {
			recs = append(recs, queue.Record{Key: []byte{byte(j)}, Value: []byte("push")})
		}
		if err := q.Produce(ctx, "push", recs...); err != nil {
			t.Fatal(err)
		}
		if err := q.Produce(ctx, "work", queue.Record{Key: []byte("k"), Value: []byte("w")}); err != nil {
			t.Fatal(err)
		}
	}
	count := func(prefix string) int {
		it, _ := db.NewIter(&pebble.IterOptions{})
		defer it.Close()
		n := 0
		for it.First(); it.Valid(); it.Next() {
			if strings.Contains(string(it.Key()), prefix) && it.Key()[0] == kv.PrefixQueue && it.Key()[1] == 'r' {
				n++
			}
		}
		return n
	}
	if n := count("push"); n > 2*100+40 {
		t.Fatalf("the push topic holds %d of 2,000 records; want at most its retention", n)
	}
	if n := count("work"); n != 50 {
		t.Fatalf("a topic with an unconsumed group holds %d of 50 records", n)
	}
	// The tail reads from the newest record when it starts: it gets what follows.
	testharness.WaitFor(t, 10*time.Second, "the tail to get a record", func() bool {
		var recs []queue.Record
		for j := 0; j < 8; j++ {
			recs = append(recs, queue.Record{Key: []byte{byte(j)}, Value: []byte("push")})
		}
		q.Produce(ctx, "push", recs...)
		return tailed.Load() > 0
	})
}
