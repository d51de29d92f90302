package coldstore

import (
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/fanline/fanline/internal/tier"
)

// FuzzSegment opens arbitrary bytes as a segment and reads them every way: every
// error must wrap ErrCorrupt, and nothing may panic or allocate beyond the bounds
// the object's size and MaxBlockBytes set. Each input is tried as it is and with
// its trailer, footer and block checksums recomputed, so that mutations reach the
// footer and block checks. Seeds: testdata/fuzz/FuzzSegment and the ones added
// here.
func FuzzSegment(f *testing.F) {
	rng := rand.New(rand.NewPCG(31, 32))
	for _, n := range []int{1, 5, 40} {
		b, _, err := EncodeSegment(9, testRecords(rng, n, n/2, 0), 256)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	d := openTestDir(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, obj := range [][]byte{b, resealed(b)} {
			if obj == nil {
				continue
			}
			put(t, d, "f", obj)
			readEverything(t, d, "f")
		}
	})
}

func readEverything(t *testing.T, o Objects, key string) {
	ctx := context.Background()
	check := func(err error) {
		t.Helper()
		if err != nil && !errors.Is(err, ErrCorrupt) {
			t.Fatalf("error not wrapping ErrCorrupt: %v", err)
		}
	}
	// A cache per input: the key holds other bytes each time.
	r, err := OpenSegment(ctx, o, key, NewBlockCache(1<<20))
	check(err)
	if err != nil {
		return
	}
	st := r.Stats()
	for _, id := range []uint64{0, 1, st.FirstMsgID, st.LastMsgID, (st.FirstMsgID + st.LastMsgID) / 2} {
		_, _, err := r.Message(ctx, id)
		check(err)
	}
	_, err = r.Messages(ctx, []uint64{st.FirstMsgID, st.LastMsgID, 2})
	check(err)
	_, err = r.Before(ctx, 0, 0)
	check(err)
	_, err = r.Before(ctx, st.LastMsgID, 3)
	check(err)
	_, err = r.Stream(ctx, 0, 0)
	check(err)
	_, err = r.Stream(ctx, st.FirstSeq, 2)
	check(err)
	var all []tier.Record
	err = r.All(ctx, func(rec tier.Record) error { all = append(all, rec); return nil })
	check(err)
	if err == nil {
		if len(all) != st.Messages+st.Stream {
			t.Fatalf("All returned %d records, the footer counts %d", len(all), st.Messages+st.Stream)
		}
		check(r.Verify(ctx, all))
	}
}

// resealed returns a copy of b with its checksums recomputed where its trailer and
// footer parse far enough to say where they are, or nil.
func resealed(b []byte) []byte {
	size := int64(len(b))
	if size < headerLen+trailerLen {
		return nil
	}
	b = slices.Clone(b)
	t := b[size-trailerLen:]
	off, length := binary.LittleEndian.Uint64(t), binary.LittleEndian.Uint64(t[8:])
	if off < headerLen || off > uint64(size-trailerLen) || off+length != uint64(size-trailerLen) {
		return nil
	}
	fb := b[off : off+length]
	if f, err := parseFooter(fb, int64(off)); err == nil {
		for i := range f.blocks {
			bi := &f.blocks[i]
			bi.crc = crc32.Checksum(b[bi.off:bi.off+bi.len], castagnoli)
		}
		out := appendFooter(slices.Clone(b[:off]), f)
		fb = out[off:]
		b = append(out, t...)
		t = b[len(b)-trailerLen:]
	}
	putTrailer(t, int64(off), int64(len(fb)), fb)
	return b
}

// FuzzBlockRecords checks the record decoding of a block against arbitrary bytes
// and footer entries: checkRecords refuses or accepts, and what it accepts scans
// to exactly the entry's count.
func FuzzBlockRecords(f *testing.F) {
	raw := appendRecord(appendRecord(nil, tier.Record{Kind: tier.RecordMessage, MsgID: 5, Seq: 2, Data: []byte("hi")}),
		tier.Record{Kind: tier.RecordMessage, MsgID: 9})
	f.Add(raw, uint8(tier.RecordMessage), 2, uint64(5), uint64(9), uint64(2), uint64(2))
	f.Add(appendRecord(nil, tier.Record{Kind: tier.RecordStream, Seq: 4}), uint8(tier.RecordStream), 1, uint64(0), uint64(0), uint64(4), uint64(4))
	f.Fuzz(func(t *testing.T, raw []byte, kind uint8, count int, firstMsg, lastMsg, firstSeq, lastSeq uint64) {
		bi := blockInfo{kind: kind, count: count, raw: len(raw), firstMsg: firstMsg, lastMsg: lastMsg, firstSeq: firstSeq, lastSeq: lastSeq}
		if checkRecords(raw, &bi) != nil {
			return
		}
		n := 0
		for rest := raw; len(rest) > 0; n++ {
			var err error
			if _, rest, err = nextRecord(rest); err != nil {
				t.Fatalf("checked block fails to scan: %v", err)
			}
		}
		if n != count {
			t.Fatalf("checked block scans to %d records, want %d", n, count)
		}
	})
}
