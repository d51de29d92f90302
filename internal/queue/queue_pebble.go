package queue

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/fanline/fanline/internal/kv"
)

// PebbleQueueConfig configures a PebbleQueue.
type PebbleQueueConfig struct {
	// Topics maps each topic to its partition count. Required.
	Topics map[string]int
	// Groups lists, per topic, the consumer groups that must read every record: a
	// record is deleted only once each of them (and every other group that has
	// committed on that partition) has passed it, even before they first connect.
	// A group not listed that starts late begins at the oldest retained record.
	Groups map[string][]string
	// TailRetain is how many of the newest records a partition keeps when no group
	// has ever consumed it (a topic that is only tailed, like the push topic): older
	// ones are deleted, and a tail that fell behind them skips them. Zero means
	// 10,000.
	TailRetain int
	ConsumerConfig
}

// PebbleQueue is the embedded Queue: a log per partition in the shared Pebble database.
//
// Keys: q r <topic> <partition> <offset> -> record; q o <group> <topic> <partition> ->
// next offset to read. One writer goroutine takes every pending Produce, assigns offsets
// and commits them in one synced batch (group commit); consumers read only up to the
// partition's visible head, which the writer advances after the commit, so a consumer
// never sees a gap. Records that every known group has committed are deleted.
type PebbleQueue struct {
	db  *pebble.DB
	cfg PebbleQueueConfig

	parts map[string][]*pebblePartition // fixed after New

	reqs chan *produceReq
	done chan struct{} // closed by Close
	wg   sync.WaitGroup
	once sync.Once
}

var _ Queue = (*PebbleQueue)(nil)

type pebblePartition struct {
	mu sync.Mutex // guards the fields below
	// INVARIANT: every record with offset < head is committed in Pebble; the writer
	// goroutine is the only one that advances head.
	head      uint64
	committed map[string]uint64 // group -> next offset to read
	deleted   uint64            // records below this were deleted
	waiters   []chan struct{}
}

type produceReq struct {
	topic string
	recs  []Record
	err   chan error
}

// NewPebbleQueue opens the queue stored in db and starts its writer.
func NewPebbleQueue(db *pebble.DB, cfg PebbleQueueConfig) (*PebbleQueue, error) {
	if len(cfg.Topics) == 0 {
		return nil, fmt.Errorf("queue: no topics configured")
	}
	cfg.fill()
	if cfg.TailRetain <= 0 {
		cfg.TailRetain = 10000
	}
	q := &PebbleQueue{
		db:    db,
		cfg:   cfg,
		parts: map[string][]*pebblePartition{},
		reqs:  make(chan *produceReq, 1024),
		done:  make(chan struct{}),
	}
	for topic, n := range cfg.Topics {
		if n <= 0 || len(topic) == 0 || len(topic) > 255 {
			return nil, fmt.Errorf("queue: bad topic %q with %d partitions", topic, n)
		}
		if err := q.checkPartitions(topic, n); err != nil {
			return nil, err
		}
		ps := make([]*pebblePartition, n)
		for i := range ps {
			p, err := q.recoverPartition(topic, i)
			if err != nil {
				return nil, err
			}
			for _, g := range cfg.Groups[topic] {
				if _, ok := p.committed[g]; !ok {
					p.committed[g] = p.deleted
				}
			}
			ps[i] = p
		}
		q.parts[topic] = ps
	}
	q.wg.Add(1)
	go q.writer()
	return q, nil
}

func partitionsKey(topic string) kv.Key { return kv.NewKey(kv.PrefixQueue, 'n').Str(topic) }

// checkPartitions records a topic's partition count the first time and refuses to
// open it with another count while it holds unconsumed records: keys would move to
// other partitions, so a key's records could be read out of order, and records in a
// removed partition never. A drained topic may be resized.
func (q *PebbleQueue) checkPartitions(topic string, n int) error {
	was, err := kv.GetU64(q.db, partitionsKey(topic))
	if err != nil {
		return fmt.Errorf("queue: %w", err)
	}
	if was != 0 && was != uint64(n) {
		for i := 0; i < int(was); i++ {
			p, err := q.recoverPartition(topic, i)
			if err != nil {
				return err
			}
			for group, off := range p.committed {
				if off < p.head {
					return fmt.Errorf("queue: topic %q has %d partitions on disk and %d configured, and group %q has not consumed partition %d; "+
						"go back to %d partitions until it is drained", topic, was, n, group, i, was)
				}
			}
		}
	}
	if was != uint64(n) {
		if err := q.db.Set(partitionsKey(topic), kv.U64Value(uint64(n)), pebble.Sync); err != nil {
			return fmt.Errorf("queue: %w", err)
		}
	}
	return nil
}

func recordPrefix(topic string, partition int) kv.Key {
	return kv.NewKey(kv.PrefixQueue, 'r').Str(topic).U64(uint64(partition))
}

func offsetKey(group, topic string, partition int) kv.Key {
	return kv.NewKey(kv.PrefixQueue, 'o').Str(group).Str(topic).U64(uint64(partition))
}

// recoverPartition finds the partition's head: one past its last record, or the largest
// committed offset when retention deleted every record.
func (q *PebbleQueue) recoverPartition(topic string, partition int) (*pebblePartition, error) {
	p := &pebblePartition{committed: map[string]uint64{}}
	prefix := recordPrefix(topic, partition)
	it, err := q.db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: kv.PrefixEnd(prefix)})
	if err != nil {
		return nil, err
	}
	if it.Last() {
		p.head = binary.BigEndian.Uint64(it.Key()[len(prefix):]) + 1
	}
	hasRecords := it.First()
	if hasRecords {
		p.deleted = binary.BigEndian.Uint64(it.Key()[len(prefix):])
	}
	if err := it.Close(); err != nil {
		return nil, err
	}
	oprefix := kv.NewKey(kv.PrefixQueue, 'o')
	it, err = q.db.NewIter(&pebble.IterOptions{LowerBound: oprefix, UpperBound: kv.PrefixEnd(oprefix)})
	if err != nil {
		return nil, err
	}
	for it.First(); it.Valid(); it.Next() {
		k := it.Key()[2:]
		group := string(k[1 : 1+k[0]])
		k = k[1+k[0]:]
		t := string(k[1 : 1+k[0]])
		k = k[1+k[0]:]
		if t != topic || binary.BigEndian.Uint64(k) != uint64(partition) {
			continue
		}
		off := binary.BigEndian.Uint64(it.Value())
		p.committed[group] = off
		if off > p.head {
			p.head = off
		}
	}
	if !hasRecords {
		p.deleted = p.head
	}
	return p, it.Close()
}

// Produce implements Queue.
func (q *PebbleQueue) Produce(ctx context.Context, topic string, recs ...Record) error {
	if _, ok := q.parts[topic]; !ok {
		return fmt.Errorf("%w %q", ErrUnknownTopic, topic)
	}
	if len(recs) == 0 {
		return nil
	}
	req := &produceReq{topic: topic, recs: recs, err: make(chan error, 1)}
	select {
	case q.reqs <- req:
	case <-q.done:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	// Once handed over, the request is committed or failed by the writer; wait for it
	// even if ctx ends, so the caller never mistakes a durable record for a lost one.
	return <-req.err
}

// writer owns offset assignment. Each round takes every waiting request and commits
// them in one synced batch.
func (q *PebbleQueue) writer() {
	defer q.wg.Done()
	for {
		var batch []*produceReq
		select {
		case r := <-q.reqs:
			batch = append(batch, r)
		case <-q.done:
			q.failPending()
			return
		}
	drain:
		for len(batch) < 4096 {
			select {
			case r := <-q.reqs:
				batch = append(batch, r)
			default:
				break drain
			}
		}
		q.commitRound(batch)
	}
}

func (q *PebbleQueue) failPending() {
	for {
		select {
		case r := <-q.reqs:
			r.err <- ErrClosed
		default:
			return
		}
	}
}

type partKey struct {
	topic string
	part  int
}

func (q *PebbleQueue) commitRound(reqs []*produceReq) {
	b := q.db.NewBatch()
	heads := map[partKey]uint64{}
	var val []byte
	for _, r := range reqs {
		ps := q.parts[r.topic]
		for _, rec := range r.recs {
			pk := partKey{r.topic, PartitionFor(rec.Key, len(ps))}
			off, ok := heads[pk]
			if !ok {
				p := ps[pk.part]
				p.mu.Lock()
				off = p.head
				p.mu.Unlock()
			}
			val = binary.AppendUvarint(val[:0], uint64(len(rec.Key)))
			val = append(val, rec.Key...)
			val = append(val, rec.Value...)
			_ = b.Set(recordPrefix(r.topic, pk.part).U64(off), val, nil)
			heads[pk] = off + 1
		}
	}
	err := b.Commit(pebble.Sync)
	_ = b.Close()
	if err == nil {
		trim := q.db.NewBatch()
		for pk, head := range heads {
			p := q.parts[pk.topic][pk.part]
			p.mu.Lock()
			p.head = head
			for _, w := range p.waiters {
				select {
				case w <- struct{}{}:
				default:
				}
			}
			from, to := p.trimTails(uint64(q.cfg.TailRetain))
			p.mu.Unlock()
			deleteRecords(trim, pk.topic, pk.part, from, to)
		}
		if !trim.Empty() {
			if err := trim.Commit(pebble.NoSync); err != nil {
				q.cfg.Logger.Warn("queue: trimming tailed records failed", "err", err)
			}
		}
		_ = trim.Close()
	} else {
		err = fmt.Errorf("queue: commit: %w", err)
	}
	for _, r := range reqs {
		r.err <- err
	}
}

// trimTails moves deleted up to keep the newest retain records of a partition that
// no group consumes, and returns the offsets to delete. The caller holds p.mu.
func (p *pebblePartition) trimTails(retain uint64) (from, to uint64) {
	if len(p.committed) > 0 || p.head-p.deleted <= retain {
		return 0, 0
	}
	from, p.deleted = p.deleted, p.head-retain
	return from, p.deleted
}

// deleteRecords adds the deletion of offsets [from, to) of a partition to b. Records
// are written once and never overwritten, so each is deleted with a SingleDelete,
// which compaction drops together with the record. (Range tombstones would be cheaper
// to write but every new iterator pays to fragment them all, which made reads cost
// O(commits) under light load.)
func deleteRecords(b *pebble.Batch, topic string, part int, from, to uint64) {
	prefix := recordPrefix(topic, part)
	for off := from; off < to; off++ {
		_ = b.SingleDelete(append(kv.Key(nil), prefix...).U64(off), nil)
	}
}

// Consume implements Queue.
func (q *PebbleQueue) Consume(ctx context.Context, topic, group string, h Handler) error {
	ps, ok := q.parts[topic]
	if !ok {
		return fmt.Errorf("%w %q", ErrUnknownTopic, topic)
	}
	if len(group) == 0 || len(group) > 255 {
		return fmt.Errorf("queue: bad group name %q", group)
	}
	ctx, cancel := untilClosed(ctx, q.done)
	defer cancel()
	var wg sync.WaitGroup
	for i := range ps {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			q.consumePartition(ctx, topic, group, i, h)
		}(i)
	}
	wg.Wait()
	return exitErr(ctx, q.done)
}

func (q *PebbleQueue) consumePartition(ctx context.Context, topic, group string, part int, h Handler) {
	p := q.parts[topic][part]
	p.mu.Lock()
	next, ok := p.committed[group]
	if !ok {
		// A new group starts at the oldest retained record.
		next = p.deleted
		p.committed[group] = next
	}
	p.mu.Unlock()
	q.follow(ctx, topic, part, next, h, func(next uint64) { q.commitOffset(topic, group, part, next) }, "group", group)
}

// Tail implements Queue.
func (q *PebbleQueue) Tail(ctx context.Context, topic string, part int, h Handler) error {
	ps, ok := q.parts[topic]
	if !ok {
		return fmt.Errorf("%w %q", ErrUnknownTopic, topic)
	}
	if part < 0 || part >= len(ps) {
		return fmt.Errorf("%w: %s/%d", ErrNoPartition, topic, part)
	}
	ctx, cancel := untilClosed(ctx, q.done)
	defer cancel()
	p := ps[part]
	p.mu.Lock()
	next := p.head
	p.mu.Unlock()
	q.follow(ctx, topic, part, next, h, nil, "tail", true)
	return exitErr(ctx, q.done)
}

// follow feeds h the records of one partition from offset next until ctx is done,
// calling done (may be nil) with the next offset after each handled batch. A reader
// that fell behind deleted records (a tail, which no deletion waits for) skips them.
func (q *PebbleQueue) follow(ctx context.Context, topic string, part int, next uint64, h Handler, done func(uint64), attrs ...any) {
	p := q.parts[topic][part]
	wake := make(chan struct{}, 1)
	p.mu.Lock()
	p.waiters = append(p.waiters, wake)
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		for i, w := range p.waiters {
			if w == wake {
				p.waiters = append(p.waiters[:i], p.waiters[i+1:]...)
				break
			}
		}
		p.mu.Unlock()
	}()

	prefix := recordPrefix(topic, part)
	for ctx.Err() == nil {
		p.mu.Lock()
		head := p.head
		next = max(next, p.deleted)
		p.mu.Unlock()
		if next >= head {
			select {
			case <-wake:
			case <-ctx.Done():
			}
			continue
		}
		recs, err := q.read(prefix, part, next, head)
		if err != nil {
			// The log itself is unreadable: a broken invariant or a failing disk.
			q.cfg.Logger.Error("queue: read failed", "topic", topic, "partition", part, "offset", next, "err", err)
			select {
			case <-time.After(q.cfg.Backoff.Max):
			case <-ctx.Done():
			}
			continue
		}
		if !q.cfg.handle(ctx, h, part, recs, append([]any{"topic", topic}, attrs...)...) {
			return
		}
		next = recs[len(recs)-1].Offset + 1
		if done != nil {
			done(next)
		}
	}
}

func (q *PebbleQueue) read(prefix kv.Key, part int, from, head uint64) ([]Record, error) {
	if head-from > uint64(q.cfg.MaxBatch) {
		head = from + uint64(q.cfg.MaxBatch)
	}
	it, err := q.db.NewIter(&pebble.IterOptions{
		LowerBound: append(kv.Key(nil), prefix...).U64(from),
		UpperBound: append(kv.Key(nil), prefix...).U64(head),
	})
	if err != nil {
		return nil, err
	}
	recs := make([]Record, 0, head-from)
	for it.First(); it.Valid(); it.Next() {
		v := it.Value()
		klen, n := binary.Uvarint(v)
		if n <= 0 || uint64(len(v)-n) < klen {
			it.Close()
			return nil, fmt.Errorf("queue: corrupt record at %x", it.Key())
		}
		recs = append(recs, Record{
			Key:       append([]byte(nil), v[n:n+int(klen)]...),
			Value:     append([]byte(nil), v[n+int(klen):]...),
			Partition: part,
			Offset:    binary.BigEndian.Uint64(it.Key()[len(prefix):]),
		})
	}
	if err := it.Close(); err != nil {
		return nil, err
	}
	if uint64(len(recs)) != head-from {
		return nil, fmt.Errorf("queue: partition %d: read %d records in [%d, %d)", part, len(recs), from, head)
	}
	return recs, nil
}

// commitOffset records group's position and deletes records every known group has
// passed. Both writes are unsynced: a lost commit means redelivery, which handlers
// tolerate, and the deletion is ordered after the commit in the WAL.
func (q *PebbleQueue) commitOffset(topic, group string, part int, next uint64) {
	p := q.parts[topic][part]
	p.mu.Lock()
	p.committed[group] = next
	low := next
	for _, off := range p.committed {
		if off < low {
			low = off
		}
	}
	from := p.deleted
	if low > p.deleted {
		p.deleted = low
	}
	p.mu.Unlock()

	b := q.db.NewBatch()
	_ = b.Set(offsetKey(group, topic, part), kv.U64Value(next), nil)
	deleteRecords(b, topic, part, from, low)
	if err := b.Commit(pebble.NoSync); err != nil {
		q.cfg.Logger.Warn("queue: offset commit failed", "topic", topic, "group", group, "err", err)
	}
	_ = b.Close()
}

// Close stops the writer; pending Produce calls fail with ErrClosed and consumers stop.
// The caller owns the Pebble database and closes it after.
func (q *PebbleQueue) Close() error {
	q.once.Do(func() { close(q.done) })
	q.wg.Wait()
	return nil
}
