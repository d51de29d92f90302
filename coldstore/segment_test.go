package coldstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fanline/fanline/internal/tier"
)

// countingObjects records the requests made of an object store.
type countingObjects struct {
	Objects
	mu    sync.Mutex
	heads int
	gets  []getCall
}

type getCall struct{ off, length int64 }

func (c *countingObjects) Head(ctx context.Context, key string) (ObjectInfo, error) {
	c.mu.Lock()
	c.heads++
	c.mu.Unlock()
	return c.Objects.Head(ctx, key)
}

func (c *countingObjects) Get(ctx context.Context, key string, off, length int64) (io.ReadCloser, error) {
	c.mu.Lock()
	c.gets = append(c.gets, getCall{off, length})
	c.mu.Unlock()
	return c.Objects.Get(ctx, key, off, length)
}

// reset returns the requests so far and forgets them.
func (c *countingObjects) reset() (heads int, gets []getCall) {
	c.mu.Lock()
	defer c.mu.Unlock()
	heads, gets = c.heads, c.gets
	c.heads, c.gets = 0, nil
	return heads, gets
}

func openTestDir(t testing.TB) *Dir {
	d, err := OpenDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func put(t testing.TB, o Objects, key string, b []byte) {
	t.Helper()
	if err := o.Put(context.Background(), key, bytes.NewReader(b), int64(len(b))); err != nil {
		t.Fatal(err)
	}
}

// testRecords returns nMsg message and nStream stream records in a random mix:
// random msg_id and seq gaps, times in several zones, Data empty, small, or (with
// big > 0) bigger than big.
func testRecords(rng *rand.Rand, nMsg, nStream, big int) []tier.Record {
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	zones := []*time.Location{time.UTC, time.FixedZone("x", 3600*5+1800), time.FixedZone("y", -3600*7)}
	data := func() []byte {
		switch p := rng.IntN(100); {
		case p < 10:
			return nil
		case p < 12 && big > 0:
			return []byte(strings.Repeat(fmt.Sprintf("big %d ", rng.Int()), big/8+rng.IntN(big)))
		default:
			b := make([]byte, 1+rng.IntN(300))
			for i := range b {
				b[i] = "abcdefgh {}:\","[rng.IntN(14)]
			}
			return b
		}
	}
	var recs []tier.Record
	msg, seq := uint64(rng.IntN(1000)+1), uint64(0)
	for range nMsg {
		r := tier.Record{Kind: tier.RecordMessage, MsgID: msg, Data: data(),
			At: base.Add(time.Duration(rng.Int64N(int64(90 * 24 * time.Hour)))).In(zones[rng.IntN(len(zones))])}
		if rng.IntN(2) == 0 {
			seq += uint64(1 + rng.IntN(3))
			r.Seq = seq
		}
		recs = append(recs, r)
		msg += uint64(1 + rng.IntN(5))
	}
	seq = uint64(rng.IntN(100))
	for range nStream {
		seq += uint64(1 + rng.IntN(3))
		recs = append(recs, tier.Record{Kind: tier.RecordStream, Seq: seq, MsgID: uint64(rng.IntN(5000)), Data: data(),
			At: base.Add(time.Duration(rng.Int64N(int64(90 * 24 * time.Hour))))})
	}
	rng.Shuffle(len(recs), func(i, j int) { recs[i], recs[j] = recs[j], recs[i] })
	return recs
}

// reference is what a segment of recs holds, computed by brute force.
type reference struct {
	msgs, stream []tier.Record // sorted by msg_id, by seq
	stats        SegmentStats  // without Bytes
}

func newReference(recs []tier.Record) reference {
	var ref reference
	for _, r := range recs {
		if r.Kind == tier.RecordMessage {
			ref.msgs = append(ref.msgs, r)
		} else {
			ref.stream = append(ref.stream, r)
		}
		if ref.stats.MinAt.IsZero() || r.At.Before(ref.stats.MinAt) {
			ref.stats.MinAt = r.At.UTC()
		}
		if r.At.After(ref.stats.MaxAt) {
			ref.stats.MaxAt = r.At.UTC()
		}
	}
	slices.SortFunc(ref.msgs, func(a, b tier.Record) int { return cmpUint(a.MsgID, b.MsgID) })
	slices.SortFunc(ref.stream, func(a, b tier.Record) int { return cmpUint(a.Seq, b.Seq) })
	ref.stats.Messages, ref.stats.Stream = len(ref.msgs), len(ref.stream)
	if len(ref.msgs) > 0 {
		ref.stats.FirstMsgID, ref.stats.LastMsgID = ref.msgs[0].MsgID, ref.msgs[len(ref.msgs)-1].MsgID
	}
	if len(ref.stream) > 0 {
		ref.stats.FirstSeq, ref.stats.LastSeq = ref.stream[0].Seq, ref.stream[len(ref.stream)-1].Seq
	}
	return ref
}

func (ref reference) before(before uint64, limit int) []tier.Record {
	var out []tier.Record
	for i := len(ref.msgs) - 1; i >= 0 && (limit <= 0 || len(out) < limit); i-- {
		if before == 0 || ref.msgs[i].MsgID < before {
			out = append(out, ref.msgs[i])
		}
	}
	return out
}

func (ref reference) streamAfter(after uint64, limit int) []tier.Record {
	var out []tier.Record
	for _, r := range ref.stream {
		if r.Seq > after && (limit <= 0 || len(out) < limit) {
			out = append(out, r)
		}
	}
	return out
}

func sameRecords(t *testing.T, what string, got, want []tier.Record) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d records, want %d", what, len(got), len(want))
	}
	for i := range got {
		if !sameRecord(got[i], want[i]) {
			t.Fatalf("%s: record %d = %+v, want %+v", what, i, got[i], want[i])
		}
		if got[i].At.Location() != time.UTC {
			t.Fatalf("%s: record %d: At in %v, want UTC", what, i, got[i].At.Location())
		}
	}
}

// writeSegment encodes recs, stores them as key and opens the segment.
func writeSegment(t testing.TB, o Objects, key string, recs []tier.Record, blockBytes int, cache *BlockCache) (*SegmentReader, []byte) {
	t.Helper()
	b, _, err := EncodeSegment(7, recs, blockBytes)
	if err != nil {
		t.Fatal(err)
	}
	put(t, o, key, b)
	r, err := OpenSegment(context.Background(), o, key, cache)
	if err != nil {
		t.Fatal(err)
	}
	return r, b
}

func TestSegmentRoundTrip(t *testing.T) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))
	cases := []struct {
		name          string
		msgs, stream  int
		block, bigger int
	}{
		{"one message", 1, 0, 0, 0},
		{"one stream record", 0, 1, 0, 0},
		{"messages only", 500, 0, 2048, 0},
		{"stream only", 0, 500, 2048, 0},
		{"both kinds, many blocks, big records", 2000, 1500, 4096, 8192},
		{"default block size", 3000, 1000, 0, 100000},
	}
	d := openTestDir(t)
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			recs := testRecords(rng, c.msgs, c.stream, c.bigger)
			ref := newReference(recs)
			b, st, err := EncodeSegment(42, recs, c.block)
			if err != nil {
				t.Fatal(err)
			}
			want := ref.stats
			want.Bytes = int64(len(b))
			if st != want {
				t.Fatalf("stats %+v, want %+v", st, want)
			}
			key := fmt.Sprintf("segments/42/%d", i)
			put(t, d, key, b)
			r, err := OpenSegment(ctx, d, key, NewBlockCache(1<<20))
			if err != nil {
				t.Fatal(err)
			}
			if r.Stats() != want || r.Conv() != 42 || r.Key() != key {
				t.Fatalf("reader: conv %d key %q stats %+v, want 42 %q %+v", r.Conv(), r.Key(), r.Stats(), key, want)
			}
			var all []tier.Record
			if err := r.All(ctx, func(rec tier.Record) error { all = append(all, rec); return nil }); err != nil {
				t.Fatal(err)
			}
			sameRecords(t, "All", all, append(ref.msgs, ref.stream...))
			if err := r.Verify(ctx, recs); err != nil {
				t.Fatal(err)
			}
			if c.block > 0 && c.msgs+c.stream > 1000 && len(r.f.blocks) < 10 {
				t.Fatalf("%d blocks, want many", len(r.f.blocks))
			}
			for _, bi := range r.f.blocks {
				if bi.count > 1 && bi.raw > max(c.block, DefaultBlockBytes) {
					t.Fatalf("block of %d records is %d bytes", bi.count, bi.raw)
				}
			}
			// Verify refuses other records.
			other := slices.Clone(recs)
			other[len(other)/2].Data = append(slices.Clone(other[len(other)/2].Data), 'x')
			if err := r.Verify(ctx, other); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Verify of changed records: %v, want ErrCorrupt", err)
			}
			if err := r.Verify(ctx, recs[1:]); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Verify of fewer records: %v, want ErrCorrupt", err)
			}
		})
	}
}

func TestSegmentReads(t *testing.T) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(3, 4))
	recs := testRecords(rng, 3000, 2000, 3000)
	ref := newReference(recs)
	r, _ := writeSegment(t, openTestDir(t), "s", recs, 2048, NewBlockCache(64<<10))
	if len(r.f.blocks) < 20 {
		t.Fatalf("%d blocks, want many", len(r.f.blocks))
	}
	present := make(map[uint64]tier.Record)
	for _, m := range ref.msgs {
		present[m.MsgID] = m
	}
	lo, hi := ref.msgs[0].MsgID, ref.msgs[len(ref.msgs)-1].MsgID
	for id := uint64(0); id <= hi+2; id++ {
		if id > lo+50 && id < hi-50 && rng.IntN(10) != 0 {
			continue
		}
		got, ok, err := r.Message(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		want, wantOK := present[id]
		if ok != wantOK || ok && !sameRecord(got, want) {
			t.Fatalf("Message(%d) = %+v, %v; want %+v, %v", id, got, ok, want, wantOK)
		}
	}
	for range 50 {
		var ids []uint64
		for range rng.IntN(40) {
			ids = append(ids, lo-2+uint64(rng.Int64N(int64(hi-lo+4))))
		}
		got, err := r.Messages(ctx, ids)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, id := range ids {
			want, ok := present[id]
			g, gok := got[id]
			if ok != gok || ok && !sameRecord(g, want) {
				t.Fatalf("Messages: %d = %+v, %v; want %+v, %v", id, g, gok, want, ok)
			}
			if ok {
				n++
			}
		}
		if len(got) > n {
			t.Fatalf("Messages returned %d records, want at most %d", len(got), n)
		}
	}
	bounds := []uint64{0, 1, lo, lo + 1, hi, hi + 1, hi + 100}
	for range 30 {
		bounds = append(bounds, lo+uint64(rng.Int64N(int64(hi-lo))))
	}
	for _, before := range bounds {
		for _, limit := range []int{0, 1, 7, 100, 5000} {
			got, err := r.Before(ctx, before, limit)
			if err != nil {
				t.Fatal(err)
			}
			sameRecords(t, fmt.Sprintf("Before(%d, %d)", before, limit), got, ref.before(before, limit))
		}
	}
	slo, shi := ref.stream[0].Seq, ref.stream[len(ref.stream)-1].Seq
	afters := []uint64{0, slo - 1, slo, shi - 1, shi, shi + 5}
	for range 30 {
		afters = append(afters, slo+uint64(rng.Int64N(int64(shi-slo))))
	}
	for _, after := range afters {
		for _, limit := range []int{0, 1, 7, 100, 5000} {
			got, err := r.Stream(ctx, after, limit)
			if err != nil {
				t.Fatal(err)
			}
			sameRecords(t, fmt.Sprintf("Stream(%d, %d)", after, limit), got, ref.streamAfter(after, limit))
		}
	}
	// Returned records are the caller's: changing one changes no later read.
	got, _, _ := r.Message(ctx, ref.msgs[0].MsgID)
	if len(got.Data) > 0 {
		got.Data[0] ^= 0xff
		again, _, _ := r.Message(ctx, ref.msgs[0].MsgID)
		if !sameRecord(again, ref.msgs[0]) {
			t.Fatal("changing a returned record changed the cached block")
		}
	}
	// All stops at f's error.
	stop := errors.New("stop")
	n := 0
	if err := r.All(ctx, func(tier.Record) error { n++; return map[bool]error{true: stop}[n == 10] }); err != stop || n != 10 {
		t.Fatalf("All = %v after %d records, want stop after 10", err, n)
	}
}

func TestEncodeSegmentRefuses(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	msg := func(id uint64) tier.Record { return tier.Record{Kind: tier.RecordMessage, MsgID: id, At: at} }
	str := func(seq uint64) tier.Record { return tier.Record{Kind: tier.RecordStream, Seq: seq, At: at} }
	for _, c := range []struct {
		name string
		recs []tier.Record
	}{
		{"no records", nil},
		{"kind 0", []tier.Record{{MsgID: 1, At: at}}},
		{"kind 3", []tier.Record{{Kind: 3, MsgID: 1, At: at}}},
		{"msg_id 0", []tier.Record{msg(0)}},
		{"stream seq 0", []tier.Record{str(0)}},
		{"duplicate msg_id", []tier.Record{msg(3), msg(4), msg(3)}},
		{"duplicate seq", []tier.Record{str(3), str(3)}},
		{"zero time", []tier.Record{{Kind: tier.RecordMessage, MsgID: 1}}},
		{"time after 2262", []tier.Record{{Kind: tier.RecordMessage, MsgID: 1, At: time.Date(2263, 1, 1, 0, 0, 0, 0, time.UTC)}}},
		{"record too big", []tier.Record{{Kind: tier.RecordMessage, MsgID: 1, At: at, Data: make([]byte, MaxBlockBytes)}}},
	} {
		if _, _, err := EncodeSegment(1, c.recs, 0); err == nil {
			t.Errorf("%s: encoded", c.name)
		}
	}
	// The same msg_id as a message and as a stream record's subject is fine.
	if _, _, err := EncodeSegment(1, []tier.Record{msg(3), {Kind: tier.RecordStream, Seq: 3, MsgID: 3, At: at}}, 0); err != nil {
		t.Fatal(err)
	}
}

func TestSegmentCorruptBlock(t *testing.T) {
	ctx := context.Background()
	recs := testRecords(rand.New(rand.NewPCG(5, 6)), 400, 300, 0)
	ref := newReference(recs)
	d := openTestDir(t)
	_, b := writeSegment(t, d, "good", recs, 1024, nil)
	r0, _ := OpenSegment(ctx, d, "good", nil)
	victim := r0.f.blocks[2]
	bad := slices.Clone(b)
	bad[victim.off+victim.len/2] ^= 0x10
	put(t, d, "bad", bad)
	r, err := OpenSegment(ctx, d, "bad", NewBlockCache(1<<20))
	if err != nil {
		t.Fatalf("open (the footer is intact): %v", err)
	}
	inVictim, elsewhere := victim.firstMsg, r0.f.blocks[0].firstMsg
	for range 2 { // the failure is not cached
		if _, _, err := r.Message(ctx, inVictim); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("Message in the damaged block: %v, want ErrCorrupt", err)
		}
	}
	if got, ok, err := r.Message(ctx, elsewhere); err != nil || !ok || !sameRecord(got, ref.msgs[0]) {
		t.Fatalf("Message in another block: %v %v", ok, err)
	}
	if _, err := r.Before(ctx, 0, 0); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Before: %v, want ErrCorrupt", err)
	}
	if err := r.All(ctx, func(tier.Record) error { return nil }); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("All: %v, want ErrCorrupt", err)
	}
	if err := r.Verify(ctx, recs); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Verify: %v, want ErrCorrupt", err)
	}
	// A damaged header is only read by Verify.
	bad = slices.Clone(b)
	bad[1] ^= 1
	put(t, d, "badheader", bad)
	if r, err = OpenSegment(ctx, d, "badheader", nil); err != nil {
		t.Fatal(err)
	}
	if err := r.Verify(ctx, recs); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Verify of a damaged header: %v, want ErrCorrupt", err)
	}
	// Verify notices the object was replaced after the open.
	r, _ = OpenSegment(ctx, d, "good", nil)
	other, _, _ := EncodeSegment(7, recs[1:], 1024)
	put(t, d, "good", other)
	if err := r.Verify(ctx, recs[1:]); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Verify of a replaced object: %v, want ErrCorrupt", err)
	}
}

// reseal returns b with its footer replaced by the encoding of f and the trailer
// rebuilt to match, checksums correct.
func reseal(b []byte, f *footer) []byte {
	out := appendFooter(slices.Clone(b[:f.off]), f)
	var t [trailerLen]byte
	copy(t[:], b[len(b)-trailerLen:])
	ft := appendFooter(nil, f)
	putTrailer(t[:], f.off, int64(len(ft)), ft)
	return append(out, t[:]...)
}

func TestSegmentCorruptTrailerAndFooter(t *testing.T) {
	ctx := context.Background()
	recs := testRecords(rand.New(rand.NewPCG(7, 8)), 300, 200, 0)
	d := openTestDir(t)
	r0, b := writeSegment(t, d, "good", recs, 1024, nil)
	f := r0.f
	mustBeCorrupt := func(name string, obj []byte, alsoBlocks bool) {
		t.Helper()
		put(t, d, "bad", obj)
		r, err := OpenSegment(ctx, d, "bad", nil)
		if err == nil && alsoBlocks {
			err = r.All(ctx, func(tier.Record) error { return nil })
		}
		if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("%s: %v, want ErrCorrupt", name, err)
		}
	}
	for i := len(b) - trailerLen; i < len(b); i++ {
		bad := slices.Clone(b)
		bad[i] ^= 0x04
		mustBeCorrupt(fmt.Sprintf("trailer byte %d flipped", i-(len(b)-trailerLen)), bad, false)
	}
	for i := f.off; i < f.off+f.len; i += 1 + f.len/50 {
		bad := slices.Clone(b)
		bad[i] ^= 0x80
		mustBeCorrupt(fmt.Sprintf("footer byte %d flipped", i-f.off), bad, false)
	}
	bad := slices.Clone(b)
	bad[len(bad)-8] = 2
	put(t, d, "v2", bad)
	if _, err := OpenSegment(ctx, d, "v2", nil); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "version 2") {
		t.Fatalf("version 2: %v, want ErrCorrupt naming the version", err)
	}

	// Footers with correct checksums that lie about the blocks.
	lie := func(name string, change func(f *footer)) {
		t.Helper()
		g := *f
		g.blocks = slices.Clone(f.blocks)
		change(&g)
		mustBeCorrupt(name, reseal(b, &g), true)
	}
	lie("a block's count", func(g *footer) { g.blocks[1].count++ })
	lie("a block's checksum", func(g *footer) { g.blocks[1].crc++ })
	lie("a block's length", func(g *footer) { g.blocks[1].len--; g.blocks[2].off-- })
	lie("a block's msg_id range", func(g *footer) { g.blocks[1].firstMsg++ })
	lie("a stream block's seq range", func(g *footer) { g.blocks[len(g.blocks)-1].lastSeq++; g.stats.LastSeq++ })
	lie("a block's kind", func(g *footer) { g.blocks[0].kind = tier.RecordStream })
	lie("the totals", func(g *footer) { g.stats.Messages++ })
	lie("overlapping blocks", func(g *footer) { g.blocks[1].firstMsg = g.blocks[0].lastMsg })
	lie("a dropped block", func(g *footer) { g.blocks = g.blocks[1:]; g.msgBlocks-- })
	lie("the uncompressed length", func(g *footer) { g.blocks[0].raw-- })
	lie("a huge uncompressed length", func(g *footer) { g.blocks[0].raw = MaxBlockBytes + 1 })

	// Reads do not use the time range; Verify checks it.
	g := *f
	g.stats.MinAt = g.stats.MinAt.Add(-time.Second)
	put(t, d, "bad", reseal(b, &g))
	r, err := OpenSegment(ctx, d, "bad", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Verify(ctx, recs); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("the time range: %v, want ErrCorrupt", err)
	}
}

func TestSegmentTruncatedAndMissing(t *testing.T) {
	ctx := context.Background()
	d := openTestDir(t)
	_, b := writeSegment(t, d, "good", testRecords(rand.New(rand.NewPCG(9, 10)), 200, 100, 0), 1024, nil)
	for _, n := range []int{0, 1, 8, 39, 40, len(b) / 2, len(b) - trailerLen, len(b) - 1} {
		put(t, d, "cut", b[:n])
		if _, err := OpenSegment(ctx, d, "cut", nil); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("cut to %d of %d bytes: %v, want ErrCorrupt", n, len(b), err)
		}
	}
	put(t, d, "long", append(slices.Clone(b), 0))
	if _, err := OpenSegment(ctx, d, "long", nil); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("a byte appended: %v, want ErrCorrupt", err)
	}
	if _, err := OpenSegment(ctx, d, "missing", NewBlockCache(1<<20)); !errors.Is(err, ErrNotExist) {
		t.Fatalf("missing: %v, want ErrNotExist", err)
	}
}

// failingObjects fails Gets with ErrUnavailable while fail is set.
type failingObjects struct {
	Objects
	mu   sync.Mutex
	fail bool
}

func (f *failingObjects) setFail(v bool) {
	f.mu.Lock()
	f.fail = v
	f.mu.Unlock()
}

func (f *failingObjects) Get(ctx context.Context, key string, off, length int64) (io.ReadCloser, error) {
	f.mu.Lock()
	fail := f.fail
	f.mu.Unlock()
	if fail {
		return nil, fmt.Errorf("%w: test outage", ErrUnavailable)
	}
	return f.Objects.Get(ctx, key, off, length)
}

func TestSegmentStoreErrorsPassThrough(t *testing.T) {
	ctx := context.Background()
	recs := testRecords(rand.New(rand.NewPCG(11, 12)), 100, 0, 0)
	fo := &failingObjects{Objects: openTestDir(t)}
	cache := NewBlockCache(1 << 20)
	fo.setFail(true)
	b, _, _ := EncodeSegment(1, recs, 512)
	put(t, fo, "s", b)
	if _, err := OpenSegment(ctx, fo, "s", cache); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("open: %v, want ErrUnavailable", err)
	}
	fo.setFail(false)
	r, err := OpenSegment(ctx, fo, "s", cache)
	if err != nil {
		t.Fatal(err)
	}
	fo.setFail(true)
	id := newReference(recs).msgs[0].MsgID
	if _, _, err := r.Message(ctx, id); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Message: %v, want ErrUnavailable", err)
	}
	if err := r.Verify(ctx, recs); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Verify: %v, want ErrUnavailable", err)
	}
	fo.setFail(false)
	if _, ok, err := r.Message(ctx, id); err != nil || !ok {
		t.Fatalf("Message after the outage: %v %v", ok, err)
	}
}

func TestSegmentRangedReads(t *testing.T) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(13, 14))
	co := &countingObjects{Objects: openTestDir(t)}

	// Random Data does not compress: the object is several times tailRead.
	recs := testRecords(rng, 3000, 2000, 0)
	for i := range recs {
		recs[i].Data = make([]byte, 100)
		for j := range recs[i].Data {
			recs[i].Data[j] = byte(rng.Uint32())
		}
	}
	ref := newReference(recs)
	b, _, err := EncodeSegment(1, recs, 8192)
	if err != nil {
		t.Fatal(err)
	}
	put(t, co, "s", b)
	co.reset()
	r, err := OpenSegment(ctx, co, "s", nil)
	if err != nil {
		t.Fatal(err)
	}
	heads, gets := co.reset()
	size := int64(len(b))
	if size < 4*tailRead || heads != 1 || len(gets) != 1 || gets[0] != (getCall{size - tailRead, tailRead}) {
		t.Fatalf("open of a %d-byte segment: %d heads, gets %v; want 1 head and the last %d bytes", size, heads, gets, tailRead)
	}
	blockGet := func(i int) getCall { return getCall{r.f.blocks[i].off, r.f.blocks[i].len} }
	expect := func(what string, want ...getCall) {
		t.Helper()
		if _, gets := co.reset(); !slices.Equal(gets, want) {
			t.Fatalf("%s: gets %v, want %v", what, gets, want)
		}
	}
	k := r.f.msgBlocks / 2
	if _, ok, err := r.Message(ctx, r.f.blocks[k].lastMsg); err != nil || !ok {
		t.Fatal(ok, err)
	}
	expect("Message", blockGet(k))
	for _, id := range []uint64{ref.msgs[0].MsgID - 1, ref.msgs[len(ref.msgs)-1].MsgID + 1} {
		if _, ok, err := r.Message(ctx, id); ok || err != nil {
			t.Fatal(ok, err)
		}
	}
	expect("Message outside the segment")
	if _, err := r.Messages(ctx, []uint64{r.f.blocks[1].firstMsg, r.f.blocks[3].lastMsg, r.f.blocks[1].lastMsg}); err != nil {
		t.Fatal(err)
	}
	expect("Messages", blockGet(1), blockGet(3))
	last := r.f.msgBlocks - 1
	if _, err := r.Before(ctx, 0, 3); err != nil {
		t.Fatal(err)
	}
	expect("Before(0, 3)", blockGet(last))
	if _, err := r.Before(ctx, r.f.blocks[k].firstMsg+1, r.f.blocks[k-1].count+1); err != nil {
		t.Fatal(err)
	}
	expect("Before across a block boundary", blockGet(k), blockGet(k-1))
	if _, err := r.Stream(ctx, ref.stream[0].Seq, 2); err != nil {
		t.Fatal(err)
	}
	expect("Stream", blockGet(r.f.msgBlocks))

	// A footer over tailRead costs one more Get, of exactly the footer.
	many := testRecords(rng, 20000, 0, 0)
	b, _, err = EncodeSegment(1, many, 64)
	if err != nil {
		t.Fatal(err)
	}
	put(t, co, "many", b)
	co.reset()
	r, err = OpenSegment(ctx, co, "many", nil)
	if err != nil {
		t.Fatal(err)
	}
	size = int64(len(b))
	if r.f.len <= tailRead {
		t.Fatalf("footer of %d bytes, want more than %d", r.f.len, tailRead)
	}
	expect("open with a large footer", getCall{size - tailRead, tailRead}, getCall{r.f.off, r.f.len})
}

// BenchmarkEncodeSegment encodes 10,000 messages of ~200 bytes of JSON, the
// typical chat message; it reports the bytes a record costs in the segment.
func BenchmarkEncodeSegment(b *testing.B) {
	rng := rand.New(rand.NewPCG(41, 42))
	words := strings.Fields("the a to and of you i it in is that for on are we this have be with just can what at so not do okay yes no see meeting tomorrow lunch thanks sure great")
	at := time.Date(2026, 4, 1, 8, 0, 0, 0, time.UTC)
	recs := make([]tier.Record, 10000)
	total := 0
	for i := range recs {
		var text []string
		for range 8 + rng.IntN(10) {
			text = append(text, words[rng.IntN(len(words))])
		}
		id := uint64(7_300_000_000_000_000_000 + i*4096 + rng.IntN(4096))
		at = at.Add(time.Duration(rng.IntN(60_000)) * time.Millisecond)
		data := fmt.Sprintf(`{"msg_id":"%d","conversation_id":"123456789","from":"user%d","type":"text","body":{"text":%q},"created_at":"%s","client_msg_id":"c-%d"}`,
			id, rng.IntN(50), strings.Join(text, " "), at.Format(time.RFC3339Nano), rng.Int64())
		recs[i] = tier.Record{Kind: tier.RecordMessage, MsgID: id, Seq: uint64(i + 1), At: at, Data: []byte(data)}
		total += len(data)
	}
	b.SetBytes(int64(total))
	var size int64
	for b.Loop() {
		_, st, err := EncodeSegment(1, recs, 0)
		if err != nil {
			b.Fatal(err)
		}
		size = st.Bytes
	}
	b.ReportMetric(float64(total)/float64(len(recs)), "data-bytes/record")
	b.ReportMetric(float64(size)/float64(len(recs)), "segment-bytes/record")
}
