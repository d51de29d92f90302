package queue

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/IBM/sarama"
)

// KafkaQueueConfig configures a KafkaQueue.
type KafkaQueueConfig struct {
	// Brokers are the bootstrap brokers, host:port. Required.
	Brokers []string
	// Topics maps each topic to its partition count. Required; the topics must exist
	// with these counts (CreateKafkaTopics, run by `fanline migrate`).
	Topics map[string]int
	// ClientID names this process to the brokers. Zero means "fanline".
	ClientID string
	// InstanceID, when set, makes this process a static member of its consumer
	// groups: restarted after a crash, it takes its partitions back at once instead
	// of waiting for the broker to give up on its dead self. It must be unique among
	// the processes consuming a group and stable across restarts (the node id).
	// Empty: dynamic membership.
	InstanceID string
	// OnError, when set, is told of every failed produce and consumer-group error
	// (for a metric); the caller's error handling is unchanged.
	OnError func(error)
	// ConsumerConfig's Logger also receives consumer-group failures.
	ConsumerConfig
}

// KafkaQueue is the distributed Queue on Kafka, through sarama.
//
// Produce uses an idempotent producer with acks=all and places each record on
// PartitionFor(key) itself, so a key maps to the same partition as on the embedded
// queue. Consume joins a consumer group; a batch's offsets are marked only after its
// handler returned nil (and committed by sarama shortly after and on exit), so a crash
// or rebalance redelivers, never skips.
type KafkaQueue struct {
	cfg      KafkaQueueConfig
	client   sarama.Client
	producer sarama.SyncProducer

	done chan struct{} // closed by Close
	once sync.Once
}

var _ Queue = (*KafkaQueue)(nil)

func (cfg *KafkaQueueConfig) sarama() *sarama.Config {
	c := sarama.NewConfig()
	c.ClientID = cfg.ClientID
	c.Version = sarama.V2_8_0_0
	c.Producer.Idempotent = true
	c.Producer.RequiredAcks = sarama.WaitForAll
	c.Producer.Return.Successes = true
	c.Producer.Partitioner = sarama.NewManualPartitioner
	c.Producer.Retry.Max = 10
	c.Producer.Retry.Backoff = 100 * time.Millisecond
	c.Net.MaxOpenRequests = 1 // required by the idempotent producer; keeps per-key order
	c.Consumer.Offsets.Initial = sarama.OffsetOldest
	c.Consumer.Offsets.AutoCommit.Enable = true
	c.Consumer.Offsets.AutoCommit.Interval = 200 * time.Millisecond
	c.Consumer.Return.Errors = true
	c.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{sarama.NewBalanceStrategyRange()}
	c.Consumer.Group.InstanceId = cfg.InstanceID
	c.Metadata.AllowAutoTopicCreation = false
	return c
}

// NewKafkaQueue connects to the brokers and checks every topic exists with its
// partition count.
func NewKafkaQueue(cfg KafkaQueueConfig) (*KafkaQueue, error) {
	if len(cfg.Brokers) == 0 || len(cfg.Topics) == 0 {
		return nil, errors.New("queue: kafka needs brokers and topics")
	}
	if cfg.ClientID == "" {
		cfg.ClientID = "fanline"
	}
	cfg.fill()
	client, err := sarama.NewClient(cfg.Brokers, cfg.sarama())
	if err != nil {
		return nil, fmt.Errorf("queue: kafka: %w", err)
	}
	for topic, n := range cfg.Topics {
		parts, err := client.Partitions(topic)
		if err != nil {
			client.Close()
			return nil, fmt.Errorf("queue: kafka topic %q: %w (create it with `fanline migrate`)", topic, err)
		}
		if len(parts) != n {
			client.Close()
			return nil, fmt.Errorf("queue: kafka topic %q has %d partitions, config says %d", topic, len(parts), n)
		}
	}
	producer, err := sarama.NewSyncProducerFromClient(client)
	if err != nil {
		client.Close()
		return nil, fmt.Errorf("queue: kafka producer: %w", err)
	}
	return &KafkaQueue{cfg: cfg, client: client, producer: producer, done: make(chan struct{})}, nil
}

// CreateKafkaTopics creates the topics that do not exist yet, with their partition
// counts and the given replication factor. Existing topics are left alone; one with a
// different partition count is an error. It is idempotent: `fanline migrate` runs it.
func CreateKafkaTopics(brokers []string, topics map[string]int, replication int16) error {
	cfg := (&KafkaQueueConfig{ClientID: "fanline-migrate"}).sarama()
	admin, err := sarama.NewClusterAdmin(brokers, cfg)
	if err != nil {
		return fmt.Errorf("queue: kafka admin: %w", err)
	}
	defer admin.Close()
	existing, err := admin.ListTopics()
	if err != nil {
		return fmt.Errorf("queue: kafka list topics: %w", err)
	}
	for topic, n := range topics {
		if d, ok := existing[topic]; ok {
			if int(d.NumPartitions) != n {
				return fmt.Errorf("queue: kafka topic %q exists with %d partitions, not %d", topic, d.NumPartitions, n)
			}
			continue
		}
		err := admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: int32(n), ReplicationFactor: replication}, false)
		if err != nil && !errors.Is(err, sarama.ErrTopicAlreadyExists) {
			return fmt.Errorf("queue: kafka create topic %q: %w", topic, err)
		}
	}
	return nil
}

// Produce implements Queue.
func (q *KafkaQueue) Produce(ctx context.Context, topic string, recs ...Record) error {
	n, ok := q.cfg.Topics[topic]
	if !ok {
		return fmt.Errorf("%w %q", ErrUnknownTopic, topic)
	}
	select {
	case <-q.done:
		return ErrClosed
	default:
	}
	if len(recs) == 0 {
		return nil
	}
	msgs := make([]*sarama.ProducerMessage, len(recs))
	for i, r := range recs {
		msgs[i] = &sarama.ProducerMessage{Topic: topic, Key: sarama.ByteEncoder(r.Key), Value: sarama.ByteEncoder(r.Value),
			Partition: int32(PartitionFor(r.Key, n))}
	}
	if err := q.producer.SendMessages(msgs); err != nil {
		q.failed(err)
		return fmt.Errorf("queue: kafka produce: %w", err)
	}
	return nil
}

// failed reports err to OnError.
func (q *KafkaQueue) failed(err error) {
	if q.cfg.OnError != nil {
		q.cfg.OnError(err)
	}
}

// Consume implements Queue.
func (q *KafkaQueue) Consume(ctx context.Context, topic, group string, h Handler) error {
	if _, ok := q.cfg.Topics[topic]; !ok {
		return fmt.Errorf("%w %q", ErrUnknownTopic, topic)
	}
	ctx, cancel := untilClosed(ctx, q.done)
	defer cancel()
	cg, err := sarama.NewConsumerGroup(q.cfg.Brokers, group, q.cfg.sarama())
	if err != nil {
		return fmt.Errorf("queue: kafka group %q: %w", group, err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for err := range cg.Errors() {
			q.failed(err)
			q.cfg.Logger.Warn("queue: kafka consumer group", "topic", topic, "group", group, "err", err)
		}
	}()
	defer wg.Wait()  // then the error reader ends
	defer cg.Close() // commits what was marked, closes Errors()
	handler := &kafkaHandler{q: q, topic: topic, group: group, h: h}
	var delay time.Duration
	for ctx.Err() == nil {
		// Consume returns at every rebalance; join again.
		if err := cg.Consume(ctx, []string{topic}, handler); err != nil && ctx.Err() == nil {
			q.failed(err)
			delay = q.cfg.Backoff.Next(delay)
			q.cfg.Logger.Warn("queue: kafka consume failed, retrying", "topic", topic, "group", group, "retry_in", delay, "err", err)
			select {
			case <-time.After(delay):
			case <-ctx.Done():
			}
			continue
		}
		delay = 0
	}
	return exitErr(ctx, q.done)
}

// Tail implements Queue with a plain partition consumer from the newest offset. A
// broker that cannot be reached is retried with backoff (the tail then resumes from
// the newest offset again).
func (q *KafkaQueue) Tail(ctx context.Context, topic string, part int, h Handler) error {
	n, ok := q.cfg.Topics[topic]
	if !ok {
		return fmt.Errorf("%w %q", ErrUnknownTopic, topic)
	}
	if part < 0 || part >= n {
		return fmt.Errorf("%w: %s/%d", ErrNoPartition, topic, part)
	}
	ctx, cancel := untilClosed(ctx, q.done)
	defer cancel()
	var delay time.Duration
	for ctx.Err() == nil {
		err := q.tail(ctx, topic, part, h)
		if err == nil || ctx.Err() != nil {
			break
		}
		delay = q.cfg.Backoff.Next(delay)
		q.cfg.Logger.Warn("queue: kafka tail failed, retrying", "topic", topic, "partition", part, "retry_in", delay, "err", err)
		select {
		case <-time.After(delay):
		case <-ctx.Done():
		}
	}
	return exitErr(ctx, q.done)
}

// tail follows one partition until ctx is done (nil) or the consumer fails.
func (q *KafkaQueue) tail(ctx context.Context, topic string, part int, h Handler) error {
	// Its own client: a fetch waiting on the producer's connection would hold up
	// produce requests (one request in flight per connection, for idempotence).
	c, err := sarama.NewConsumer(q.cfg.Brokers, q.cfg.sarama())
	if err != nil {
		return fmt.Errorf("queue: kafka consumer: %w", err)
	}
	defer c.Close()
	pc, err := c.ConsumePartition(topic, int32(part), sarama.OffsetNewest)
	if err != nil {
		return fmt.Errorf("queue: kafka tail %s/%d: %w", topic, part, err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for err := range pc.Errors() {
			q.cfg.Logger.Warn("queue: kafka tail", "topic", topic, "partition", part, "err", err)
		}
	}()
	defer wg.Wait()  // then the error reader ends
	defer pc.Close() // closes Errors()
	for {
		batch := nextBatch(ctx, pc.Messages(), q.cfg.MaxBatch)
		if batch == nil {
			if ctx.Err() != nil {
				return nil
			}
			return errors.New("queue: kafka tail: the partition consumer stopped")
		}
		if !q.cfg.handle(ctx, h, part, records(batch), "topic", topic, "tail", true) {
			return nil
		}
	}
}

// nextBatch waits for a message, then takes those already waiting, up to max. It
// returns nil once msgs is closed or ctx is done.
func nextBatch(ctx context.Context, msgs <-chan *sarama.ConsumerMessage, max int) []*sarama.ConsumerMessage {
	var batch []*sarama.ConsumerMessage
	select {
	case m, ok := <-msgs:
		if !ok {
			return nil
		}
		batch = append(batch, m)
	case <-ctx.Done():
		return nil
	}
	for len(batch) < max {
		select {
		case m, ok := <-msgs:
			if !ok {
				return batch
			}
			batch = append(batch, m)
		default:
			return batch
		}
	}
	return batch
}

func records(batch []*sarama.ConsumerMessage) []Record {
	recs := make([]Record, len(batch))
	for i, m := range batch {
		recs[i] = Record{Key: m.Key, Value: m.Value, Partition: int(m.Partition), Offset: uint64(m.Offset)}
	}
	return recs
}

// kafkaHandler feeds one claimed partition at a time to the Handler, in batches.
type kafkaHandler struct {
	q     *KafkaQueue
	topic string
	group string
	h     Handler
}

func (k *kafkaHandler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (k *kafkaHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }

// ConsumeClaim runs for one partition until the session ends. A batch is retried
// until its handler succeeds or the session ends (then another member, or this one
// after rejoining, gets it again from the last marked offset).
func (k *kafkaHandler) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	ctx := sess.Context()
	for {
		batch := nextBatch(ctx, claim.Messages(), k.q.cfg.MaxBatch)
		if batch == nil || !k.q.cfg.handle(ctx, k.h, int(claim.Partition()), records(batch), "topic", k.topic, "group", k.group) {
			return nil
		}
		sess.MarkMessage(batch[len(batch)-1], "")
	}
}

// Close stops consumers and the producer.
func (q *KafkaQueue) Close() error {
	var err error
	q.once.Do(func() {
		close(q.done)
		err = errors.Join(q.producer.Close(), q.client.Close())
	})
	return err
}
