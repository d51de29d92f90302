package queue_test

import (
	"testing"

	"github.com/fanline/fanline/internal/queue"
	"github.com/fanline/fanline/internal/queue/queuetest"
	"github.com/twmb/franz-go/pkg/kfake"
)

// kafkaCluster starts an in-process Kafka-protocol broker (kfake) for the test; the
// queue speaks to it only through sarama.
func kafkaCluster(t *testing.T) []string {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()
}

func TestKafkaQueueConformance(t *testing.T) {
	// Kafka keeps records by time, whoever has read them: groups need no declaring.
	queuetest.Run(t, func(t *testing.T, topics map[string]int, _ map[string][]string) func() queue.Queue {
		brokers := kafkaCluster(t)
		if err := queue.CreateKafkaTopics(brokers, topics, 1); err != nil {
			t.Fatal(err)
		}
		// Migrating twice is harmless.
		if err := queue.CreateKafkaTopics(brokers, topics, 1); err != nil {
			t.Fatal(err)
		}
		return func() queue.Queue {
			q, err := queue.NewKafkaQueue(queue.KafkaQueueConfig{Brokers: brokers, Topics: topics, ConsumerConfig: queue.ConsumerConfig{MaxBatch: 7}})
			if err != nil {
				t.Fatal(err)
			}
			return q
		}
	})
}

func TestKafkaQueueNeedsMigratedTopics(t *testing.T) {
	brokers := kafkaCluster(t)
	if _, err := queue.NewKafkaQueue(queue.KafkaQueueConfig{Brokers: brokers, Topics: map[string]int{"absent": 2}}); err == nil {
		t.Fatal("opened a queue on a topic nobody created")
	}
	if err := queue.CreateKafkaTopics(brokers, map[string]int{"t": 2}, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := queue.NewKafkaQueue(queue.KafkaQueueConfig{Brokers: brokers, Topics: map[string]int{"t": 3}}); err == nil {
		t.Fatal("opened a queue with the wrong partition count")
	}
	if err := queue.CreateKafkaTopics(brokers, map[string]int{"t": 3}, 1); err == nil {
		t.Fatal("migrate accepted a partition count change")
	}
}
