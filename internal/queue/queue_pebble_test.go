package queue_test

import (
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/fanline/fanline/internal/kv"
	"github.com/fanline/fanline/internal/queue"
	"github.com/fanline/fanline/internal/queue/queuetest"
)

func TestPebbleQueueConformance(t *testing.T) {
	queuetest.Run(t, func(t *testing.T, topics map[string]int) func() queue.Queue {
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
			q, err := queue.NewPebbleQueue(db, queue.PebbleQueueConfig{Topics: topics, MaxBatch: 7})
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
