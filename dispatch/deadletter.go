package dispatch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/fanline/fanline/internal/queue"
)

// TopicDead holds the records a stage could not decode, so that no record is dropped
// without a trace: each is a deadLetter naming where it came from and why. Nothing
// consumes it; groupDead is registered so the embedded queue keeps every record (it
// trims only topics no group reads), and on Kafka the topic's retention applies.
const (
	TopicDead = "dead"
	groupDead = "dead-letters"
)

// deadLetter is a record of the dead-letter topic (JSON: read by operators and tools).
type deadLetter struct {
	Topic     string    `json:"topic"`
	Partition int       `json:"partition"`
	Offset    uint64    `json:"offset"`
	Error     string    `json:"error"`
	At        time.Time `json:"at"`
	Key       []byte    `json:"key"`
	Value     []byte    `json:"value"`
}

// screen decodes a stage's batch with decode. A malformed record goes to the
// dead-letter topic, with a metric and a log line, and is left out of the batch. A
// record written by a newer version of fanline is not dropped: the stage handles the
// records before it and then fails with stop, so the queue retries from there (loudly)
// until a binary that reads it takes over. It returns the decodable records' indexes.
func (d *Dispatcher) screen(ctx context.Context, topic string, part int, recs []queue.Record, decode func(int, queue.Record) error) (ok []int, stop error, err error) {
	ok = make([]int, 0, len(recs))
	var dead []queue.Record
scan:
	for i, r := range recs {
		derr := decode(i, r)
		switch {
		case derr == nil:
			ok = append(ok, i)
		case errors.Is(derr, errNewerJob):
			d.m.RecordsRefused.WithLabelValues(topic).Inc()
			d.log.Error("dispatch: refusing a queue record written by a newer version; the stage waits here until a newer fanline runs it",
				"topic", topic, "partition", part, "offset", r.Offset, "err", derr)
			stop = fmt.Errorf("dispatch: %s partition %d offset %d: %w", topic, part, r.Offset, derr)
			break scan
		default:
			v, merr := json.Marshal(deadLetter{Topic: topic, Partition: part, Offset: r.Offset, Error: derr.Error(),
				At: time.Now().UTC(), Key: r.Key, Value: r.Value})
			if merr != nil {
				return nil, nil, merr
			}
			dead = append(dead, queue.Record{Key: r.Key, Value: v})
			d.log.Error("dispatch: undecodable queue record moved to the dead-letter topic",
				"topic", topic, "partition", part, "offset", r.Offset, "dead_topic", TopicDead, "err", derr)
		}
	}
	if len(dead) > 0 {
		if err := d.q.Produce(ctx, TopicDead, dead...); err != nil {
			return nil, nil, fmt.Errorf("dispatch: dead-letter records: %w", err)
		}
		d.m.DeadLetters.WithLabelValues(topic).Add(float64(len(dead)))
	}
	return ok, stop, nil
}
