// Package queue is fanline's durable partitioned log: the send stage, the fanout stage
// and every later stage of the pipeline read and write it through Queue.
//
// A topic has a fixed number of partitions; a record goes to the partition chosen by
// PartitionFor(key), so records with one key stay in order. A consumer group sees every
// record of every partition at least once, in partition order; handlers must therefore
// be idempotent. Produce returns only once the records are durable.
package queue

import (
	"context"
	"errors"
	"hash/fnv"
	"log/slog"
	"time"
)

// Record is one entry of a topic. Partition and Offset are set on consumed records.
type Record struct {
	Key       []byte
	Value     []byte
	Partition int
	Offset    uint64
}

// Handler processes a batch of records of one partition, in order. Returning nil commits
// the batch; an error retries the same batch with backoff. The handler of one partition
// is never called concurrently with itself; handlers of different partitions may run in
// parallel.
type Handler func(ctx context.Context, partition int, recs []Record) error

// Queue is a durable partitioned log.
type Queue interface {
	// Produce appends records to topic and returns once they are durable.
	Produce(ctx context.Context, topic string, recs ...Record) error
	// Consume feeds every partition of topic to h on behalf of group until ctx is
	// done, then waits for running handlers and returns ctx's error.
	Consume(ctx context.Context, topic, group string, h Handler) error
	// Tail feeds h the records appended to one partition of topic after the call,
	// until ctx is done, then returns ctx's error. No group and nothing committed: a
	// restarted tail starts at the end again and records may be missed across it, so
	// it suits hints (the push topic), never a pipeline stage.
	Tail(ctx context.Context, topic string, partition int, h Handler) error
	// Close releases the queue; Produce and Consume fail afterwards.
	Close() error
}

// ErrUnknownTopic is returned for a topic the queue was not configured with.
var ErrUnknownTopic = errors.New("queue: unknown topic")

// ErrNoPartition is returned by Tail for a partition the topic does not have.
var ErrNoPartition = errors.New("queue: no such partition")

// ErrClosed is returned after Close.
var ErrClosed = errors.New("queue: closed")

// PartitionFor maps a key to one of n partitions (FNV-1a). Every backend uses it, so a
// key lands on the same partition whatever the engine.
func PartitionFor(key []byte, n int) int {
	h := fnv.New32a()
	h.Write(key)
	return int(h.Sum32() % uint32(n))
}

// Backoff is the retry schedule of failed handlers: doubling from Min up to Max.
type Backoff struct {
	Min, Max time.Duration
}

// Next returns the delay after d.
func (b Backoff) Next(d time.Duration) time.Duration {
	if d < b.Min {
		return b.Min
	}
	if d *= 2; d > b.Max {
		return b.Max
	}
	return d
}

// DefaultBackoff is used when a config leaves it zero.
var DefaultBackoff = Backoff{Min: 10 * time.Millisecond, Max: 5 * time.Second}

// ConsumerConfig is what the consumers of every backend share.
type ConsumerConfig struct {
	// MaxBatch bounds how many records one handler call gets. Zero means 512.
	MaxBatch int
	// Backoff is the retry schedule for failing handlers. Zero means DefaultBackoff.
	Backoff Backoff
	// Logger receives handler failures. Nil means slog.Default().
	Logger *slog.Logger
}

func (c *ConsumerConfig) fill() {
	if c.MaxBatch <= 0 {
		c.MaxBatch = 512
	}
	if c.Backoff == (Backoff{}) {
		c.Backoff = DefaultBackoff
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// handle calls h on a batch until it succeeds, waiting c.Backoff between failures and
// logging each with attrs. It returns false if ctx ended first.
func (c *ConsumerConfig) handle(ctx context.Context, h Handler, part int, recs []Record, attrs ...any) bool {
	var delay time.Duration
	for {
		err := h(ctx, part, recs)
		if err == nil {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		delay = c.Backoff.Next(delay)
		c.Logger.Warn("queue: handler failed, retrying", append(attrs, "partition", part,
			"offset", recs[0].Offset, "retry_in", delay, "err", err)...)
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return false
		}
	}
}

// untilClosed returns a context that also ends when done is closed (the queue's Close).
func untilClosed(ctx context.Context, done <-chan struct{}) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		select {
		case <-done:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

// exitErr is what Consume and Tail return once ctx ended: ErrClosed if the queue was
// closed, ctx's error otherwise.
func exitErr(ctx context.Context, done <-chan struct{}) error {
	select {
	case <-done:
		return ErrClosed
	default:
		return ctx.Err()
	}
}
