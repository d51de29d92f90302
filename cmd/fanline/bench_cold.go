package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/fanline/fanline/coldstore"
	"github.com/fanline/fanline/groupstream"
	"github.com/fanline/fanline/internal/ids"
	"github.com/fanline/fanline/internal/kv"
	"github.com/fanline/fanline/internal/metrics"
)

// coldAbout describes the cold scenario in the usage list.
const coldAbout = "in process: --messages over --conversations direct chats moved to cold segments; bytes and history page latency per tier"

// benchCold measures the cold tier without a server: it stores --messages in the
// embedded warm store, reads history pages from it, moves everything into segments
// in a local object directory with the scheduler, and reads the same pages from
// cold (block cache empty, then warm).
func benchCold(args []string) error {
	fs := flag.NewFlagSet("bench cold", flag.ContinueOnError)
	n := fs.Int("messages", 1_000_000, "messages stored, then moved")
	convs := fs.Int("conversations", 100, "direct conversations they are spread over")
	dir := fs.String("dir", "", "working directory (default: a temporary one, removed after)")
	pages := fs.Int("pages", 300, "history pages read per measurement")
	seedOnly := fs.Bool("seed-only", false, "store the messages in --dir and stop: --dir is then a server data directory with a backlog to move")
	mc := coldstore.MinIOConfig{Region: "us-east-1"}
	fs.StringVar(&mc.Endpoint, "minio-endpoint", "", "segments on this MinIO/S3 server (host:port) instead of a local directory")
	fs.StringVar(&mc.Bucket, "minio-bucket", "fanline-bench", "with --minio-endpoint: the bucket (made if missing)")
	fs.StringVar(&mc.AccessKey, "minio-access-key", os.Getenv("FANLINE_MINIO_ACCESS_KEY"), "with --minio-endpoint (default $FANLINE_MINIO_ACCESS_KEY)")
	fs.StringVar(&mc.SecretKey, "minio-secret-key", os.Getenv("FANLINE_MINIO_SECRET_KEY"), "with --minio-endpoint (default $FANLINE_MINIO_SECRET_KEY)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	work := *dir
	if work == "" {
		d, err := os.MkdirTemp("", "fanline-bench-cold")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		work = d
	}
	ctx := context.Background()
	db, err := kv.Open(filepath.Join(work, "pebble"), nil)
	if err != nil {
		return err
	}
	defer db.Close()
	store := groupstream.NewPebbleStore(db, groupstream.Config{})
	objs, err := benchObjects(ctx, mc, filepath.Join(work, "cold"))
	if err != nil {
		return err
	}
	m := metrics.New()

	// Messages of 40 days ago, 1 ms apart, spread over the conversations.
	next := ids.Before(time.Now().Add(-40 * 24 * time.Hour))
	newID := func() uint64 { next += 1 << 22; return next }
	conv := make([]uint64, *convs)
	for i := range conv {
		c, err := store.DirectConversation(ctx, "buyer-"+fmt.Sprint(i), "peer-"+fmt.Sprint(i), newID)
		if err != nil {
			return err
		}
		conv[i] = c.ID
	}
	start := time.Now()
	batch := make([]groupstream.Message, 0, 1000)
	for i := 0; i < *n; i++ {
		id := newID()
		c := i % *convs
		batch = append(batch, groupstream.Message{ID: id, ConversationID: conv[c], From: "buyer-" + fmt.Sprint(c),
			ClientMsgID: fmt.Sprintf("cm-%d", i), Type: "text", CreatedAt: ids.Time(id),
			Body: []byte(fmt.Sprintf(`{"text":"Hello, is the order %d shipped yet? The tracking page still says it is being prepared."}`, 1_000_000+i))})
		if len(batch) == cap(batch) || i == *n-1 {
			if _, err := store.PutMessages(ctx, batch); err != nil {
				return err
			}
			batch = batch[:0]
		}
	}
	fmt.Printf("stored %d messages in %d conversations in %v\n", *n, *convs, time.Since(start).Round(time.Millisecond))
	if *seedOnly {
		if *dir == "" {
			return errors.New("bench cold: --seed-only needs --dir")
		}
		return nil
	}
	compact := func() error { return db.Compact(ctx, []byte{0}, []byte{0xff}, true) }
	if err := compact(); err != nil {
		return err
	}
	warmBefore, err := tableBytes(db)
	if err != nil {
		return err
	}

	rng := rand.New(rand.NewPCG(1, 2))
	type page struct {
		conv, before uint64
	}
	var plan []page
	for i := 0; i < *pages; i++ {
		c := conv[rng.IntN(len(conv))]
		// A random page of the conversation's history: before a random id of it.
		before := ids.Before(ids.Time(next).Add(-time.Duration(rng.Int64N(int64(time.Duration(*n) * time.Millisecond)))))
		plan = append(plan, page{c, before})
	}
	measure := func() (p50, p99 time.Duration, err error) {
		var lat []time.Duration
		for _, p := range plan {
			s := time.Now()
			if _, _, err := store.History(ctx, p.conv, p.before, 50); err != nil {
				return 0, 0, err
			}
			lat = append(lat, time.Since(s))
		}
		slices.Sort(lat)
		return lat[len(lat)/2], lat[len(lat)*99/100], nil
	}
	wp50, wp99, err := measure()
	if err != nil {
		return err
	}

	cache := coldstore.NewBlockCache(64 << 20)
	store.SetArchive(coldstore.NewReader(objs, cache, m))
	sched := coldstore.NewScheduler(objs, store, cache, coldstore.SchedulerConfig{After: 30 * 24 * time.Hour, Interval: time.Hour},
		m, slog.New(slog.NewTextHandler(io.Discard, nil)))
	start = time.Now()
	st, err := sched.Pass(ctx)
	if err != nil {
		return err
	}
	moveTime := time.Since(start)
	if st.Messages != *n {
		return fmt.Errorf("bench cold: the pass moved %d of %d messages", st.Messages, *n)
	}
	if err := compact(); err != nil {
		return err
	}
	warmAfter, err := tableBytes(db)
	if err != nil {
		return err
	}
	cold, err := segmentBytes(ctx, objs)
	if err != nil {
		return err
	}

	store.SetArchive(coldstore.NewReader(objs, coldstore.NewBlockCache(64<<20), m))
	cp50, cp99, err := measure() // every footer and block fetched once
	if err != nil {
		return err
	}
	hp50, hp99, err := measure() // the same pages again: cached
	if err != nil {
		return err
	}
	perMsg := func(b int64) float64 { return float64(b) / float64(*n) }
	fmt.Printf("moved\t%d messages in %d segments in %v (%.0f messages/s)\n", st.Messages, st.Segments,
		moveTime.Round(time.Millisecond), float64(st.Messages)/moveTime.Seconds())
	fmt.Printf("warm bytes\tbefore %d (%.1f B/message), after %d (%.1f B/message: the msg id -> conversation pointers)\n",
		warmBefore, perMsg(warmBefore), warmAfter, perMsg(warmAfter))
	fmt.Printf("cold bytes\t%d (%.1f B/message, %.1fx smaller than warm)\n", cold, perMsg(cold), float64(warmBefore)/float64(max(cold, 1)))
	fmt.Printf("history page (50)\twarm p50 %v p99 %v; cold, cache empty p50 %v p99 %v; cold, cached p50 %v p99 %v\n",
		wp50, wp99, cp50, cp99, hp50, hp99)
	return nil
}

// tableBytes is the size of the warm store's tables (what compaction keeps; the
// write-ahead log is left out).
func tableBytes(db *pebble.DB) (int64, error) {
	n, err := db.EstimateDiskUsage([]byte{0}, []byte{0xff})
	return int64(n), err
}

// benchObjects is the object store the segments go to: a MinIO bucket when mc
// names a server (its segments of earlier runs deleted first), else a directory.
func benchObjects(ctx context.Context, mc coldstore.MinIOConfig, dir string) (coldstore.Objects, error) {
	if mc.Endpoint == "" {
		return coldstore.OpenDir(dir)
	}
	m, err := coldstore.OpenMinIO(mc)
	if err != nil {
		return nil, err
	}
	if _, err := m.EnsureBucket(ctx, mc.Region); err != nil {
		return nil, err
	}
	var old []string
	if err := m.List(ctx, "segments/", func(o coldstore.ObjectInfo) error { old = append(old, o.Key); return nil }); err != nil {
		return nil, err
	}
	for _, k := range old {
		if err := m.Delete(ctx, k); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// segmentBytes sums the sizes of the segments stored.
func segmentBytes(ctx context.Context, objs coldstore.Objects) (int64, error) {
	var n int64
	err := objs.List(ctx, "segments/", func(o coldstore.ObjectInfo) error { n += o.Size; return nil })
	return n, err
}
