package coldstore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/fanline/fanline/internal/tier"
)

// A segment is one immutable object holding a run of one conversation's records
// (format version 1, laid out byte by byte in docs/operations.md "Cold segment
// format"):
//
//	header   "FLSG", version                       8 bytes
//	blocks   one zstd frame each                   the footer says where
//	footer   the block index and the totals        varints
//	trailer  footer offset, length and checksum,   32 bytes
//	         trailer checksum, version, "FLSG"
//
// Message records come first, in msg_id order, then stream records in seq order;
// a block holds records of one kind only, so the message blocks are sorted by
// msg_id and the stream blocks by seq, and a lookup binary-searches the index.

const (
	segMagic   = "FLSG"
	segVersion = 1
	headerLen  = 8
	trailerLen = 32

	// DefaultBlockBytes is the uncompressed size EncodeSegment cuts blocks at when
	// given 0.
	DefaultBlockBytes = 64 << 10
	// MaxBlockBytes bounds a block's uncompressed size, and so a record's encoding:
	// EncodeSegment refuses a larger record and the reader a larger block, so a
	// damaged segment cannot make it allocate more.
	MaxBlockBytes = 16 << 20

	// tailRead is what OpenSegment reads from the end of the object in its first
	// request; a larger footer costs a second one.
	tailRead = 64 << 10
	// minRecordLen is the smallest encoded record: five one-byte varints.
	minRecordLen = 5
	// minBlockEntryLen is the smallest footer entry of a block: nine one-byte
	// varints and the four-byte checksum.
	minBlockEntryLen = 13
)

// ErrCorrupt is wrapped by the reader's every error about a segment's bytes: a
// checksum that does not match, a trailer, footer or block that does not parse or
// disagrees with another part, an unknown format version, a truncated object, or
// (from Verify) records other than the wanted ones.
var ErrCorrupt = errors.New("coldstore: corrupt segment")

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// The zstd encoder and decoder are safe for concurrent EncodeAll/DecodeAll calls;
// one of each serves the process.
var (
	zstdEncoder = sync.OnceValue(func() *zstd.Encoder {
		e, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault))
		if err != nil {
			panic(err) // only for invalid options
		}
		return e
	})
	zstdDecoder = sync.OnceValue(func() *zstd.Decoder {
		d, err := zstd.NewReader(nil, zstd.WithDecoderMaxMemory(MaxBlockBytes), zstd.WithDecodeAllCapLimit(true))
		if err != nil {
			panic(err) // only for invalid options
		}
		return d
	})
)

// The times a record's At can hold: unix nanoseconds in an int64.
var (
	minAt = time.Unix(0, math.MinInt64)
	maxAt = time.Unix(0, math.MaxInt64)
)

// SegmentStats describes a segment: what its tier.Segment manifest entry records.
type SegmentStats struct {
	// FirstMsgID and LastMsgID bound the message records (0 when there are none).
	FirstMsgID, LastMsgID uint64
	// FirstSeq and LastSeq bound the stream records' seqs (0 when there are none).
	FirstSeq, LastSeq uint64
	// MinAt and MaxAt bound the At of all records, in UTC.
	MinAt, MaxAt time.Time
	// Messages and Stream count the records of each kind.
	Messages, Stream int
	// Bytes is the object's size.
	Bytes int64
}

// blockInfo is a block's footer entry.
type blockInfo struct {
	kind     uint8  // tier.RecordMessage or tier.RecordStream
	off, len int64  // the compressed frame's place in the object
	raw      int    // its uncompressed length
	crc      uint32 // CRC-32C of the compressed frame
	count    int    // records in the block
	// A message block's first and last msg_id, and the least and greatest non-zero
	// Seq of its messages (0, 0 if none has one); a stream block's first and last
	// seq, and msg_ids 0, 0.
	firstMsg, lastMsg uint64
	firstSeq, lastSeq uint64
}

// footer is a segment's parsed footer.
type footer struct {
	conv   uint64
	stats  SegmentStats
	blocks []blockInfo
	// INVARIANT: blocks[:msgBlocks] are message blocks with increasing, disjoint
	// msg_id ranges; blocks[msgBlocks:] stream blocks with increasing, disjoint seq
	// ranges; the blocks are contiguous from headerLen to the footer.
	msgBlocks int
	off, len  int64 // the footer's place in the object
}

// memSize is what a cached footer is charged.
func (f *footer) memSize() int64 { return f.len + int64(len(f.blocks))*80 }

// EncodeSegment encodes conv's records as a segment, cutting blocks at about
// blockBytes of uncompressed records (0: DefaultBlockBytes; a record larger than
// that gets a block of its own). Message records are stored in msg_id order and
// stream records in seq order whatever their order in records. It refuses unknown
// kinds, a message with msg_id 0 or a stream record with seq 0, duplicate msg_ids
// among the messages or seqs among the stream records, an At outside the years
// 1678-2262 (the zero time among them), a record whose encoding exceeds
// MaxBlockBytes, and an empty records.
func EncodeSegment(conv uint64, records []tier.Record, blockBytes int) ([]byte, SegmentStats, error) {
	if blockBytes <= 0 {
		blockBytes = DefaultBlockBytes
	}
	blockBytes = min(blockBytes, MaxBlockBytes)
	msgs, stream, err := canonical(records)
	if err != nil {
		return nil, SegmentStats{}, err
	}
	if len(msgs)+len(stream) == 0 {
		return nil, SegmentStats{}, errors.New("coldstore: encode segment: no records")
	}
	f := footer{conv: conv}
	st := &f.stats
	st.Messages, st.Stream = len(msgs), len(stream)
	if len(msgs) > 0 {
		st.FirstMsgID, st.LastMsgID = msgs[0].MsgID, msgs[len(msgs)-1].MsgID
	}
	if len(stream) > 0 {
		st.FirstSeq, st.LastSeq = stream[0].Seq, stream[len(stream)-1].Seq
	}
	st.MinAt, st.MaxAt = records[0].At, records[0].At
	for _, r := range records {
		if r.At.Before(st.MinAt) {
			st.MinAt = r.At
		}
		if r.At.After(st.MaxAt) {
			st.MaxAt = r.At
		}
	}
	st.MinAt, st.MaxAt = st.MinAt.UTC(), st.MaxAt.UTC()

	out := make([]byte, headerLen, headerLen+len(records)*32)
	copy(out, segMagic)
	binary.LittleEndian.PutUint32(out[4:], segVersion)
	var raw []byte
	var cur blockInfo
	flush := func() {
		if cur.count == 0 {
			return
		}
		cur.off, cur.raw = int64(len(out)), len(raw)
		out = zstdEncoder().EncodeAll(raw, out)
		cur.len = int64(len(out)) - cur.off
		cur.crc = crc32.Checksum(out[cur.off:], castagnoli)
		f.blocks = append(f.blocks, cur)
		cur, raw = blockInfo{}, raw[:0]
	}
	for _, kind := range []struct {
		kind uint8
		recs []tier.Record
	}{{tier.RecordMessage, msgs}, {tier.RecordStream, stream}} {
		for _, r := range kind.recs {
			n := recordLen(r)
			if n > MaxBlockBytes {
				return nil, SegmentStats{}, fmt.Errorf("coldstore: encode segment: record of %d bytes exceeds %d", n, MaxBlockBytes)
			}
			if len(raw)+n > blockBytes {
				flush()
			}
			raw = appendRecord(raw, r)
			cur.kind = kind.kind
			cur.count++
			if kind.kind == tier.RecordMessage {
				if cur.count == 1 {
					cur.firstMsg = r.MsgID
				}
				cur.lastMsg = r.MsgID
				if r.Seq != 0 && (cur.firstSeq == 0 || r.Seq < cur.firstSeq) {
					cur.firstSeq = r.Seq
				}
				cur.lastSeq = max(cur.lastSeq, r.Seq)
			} else {
				if cur.count == 1 {
					cur.firstSeq = r.Seq
				}
				cur.lastSeq = r.Seq
			}
		}
		if kind.kind == tier.RecordMessage {
			flush()
			f.msgBlocks = len(f.blocks)
		}
	}
	flush()

	f.off = int64(len(out))
	out = appendFooter(out, &f)
	f.len = int64(len(out)) - f.off
	var t [trailerLen]byte
	putTrailer(t[:], f.off, f.len, out[f.off:])
	binary.LittleEndian.PutUint32(t[24:], segVersion)
	copy(t[28:], segMagic)
	out = append(out, t[:]...)
	st.Bytes = int64(len(out))
	return out, *st, nil
}

// canonical checks records and returns the messages sorted by msg_id and the stream
// records sorted by seq (copies; records is not changed).
func canonical(records []tier.Record) (msgs, stream []tier.Record, err error) {
	msgs = make([]tier.Record, 0, len(records))
	for i, r := range records {
		switch {
		case r.Kind == tier.RecordMessage && r.MsgID == 0:
			return nil, nil, fmt.Errorf("coldstore: record %d: message with msg_id 0", i)
		case r.Kind == tier.RecordStream && r.Seq == 0:
			return nil, nil, fmt.Errorf("coldstore: record %d: stream record with seq 0", i)
		case r.Kind != tier.RecordMessage && r.Kind != tier.RecordStream:
			return nil, nil, fmt.Errorf("coldstore: record %d: unknown kind %d", i, r.Kind)
		case r.At.Before(minAt) || r.At.After(maxAt):
			return nil, nil, fmt.Errorf("coldstore: record %d: time %v cannot be stored", i, r.At)
		}
		if r.Kind == tier.RecordMessage {
			msgs = append(msgs, r)
		} else {
			stream = append(stream, r)
		}
	}
	slices.SortStableFunc(msgs, func(a, b tier.Record) int { return cmpUint(a.MsgID, b.MsgID) })
	slices.SortStableFunc(stream, func(a, b tier.Record) int { return cmpUint(a.Seq, b.Seq) })
	for i := 1; i < len(msgs); i++ {
		if msgs[i].MsgID == msgs[i-1].MsgID {
			return nil, nil, fmt.Errorf("coldstore: duplicate message %d", msgs[i].MsgID)
		}
	}
	for i := 1; i < len(stream); i++ {
		if stream[i].Seq == stream[i-1].Seq {
			return nil, nil, fmt.Errorf("coldstore: duplicate stream seq %d", stream[i].Seq)
		}
	}
	return msgs, stream, nil
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// A record in a block: uvarint kind, uvarint msg_id, uvarint seq, varint At (unix
// nanoseconds), uvarint len(Data), Data.

func recordLen(r tier.Record) int {
	var b [binary.MaxVarintLen64]byte
	return binary.PutUvarint(b[:], uint64(r.Kind)) + binary.PutUvarint(b[:], r.MsgID) +
		binary.PutUvarint(b[:], r.Seq) + binary.PutVarint(b[:], r.At.UnixNano()) +
		binary.PutUvarint(b[:], uint64(len(r.Data))) + len(r.Data)
}

func appendRecord(b []byte, r tier.Record) []byte {
	b = binary.AppendUvarint(b, uint64(r.Kind))
	b = binary.AppendUvarint(b, r.MsgID)
	b = binary.AppendUvarint(b, r.Seq)
	b = binary.AppendVarint(b, r.At.UnixNano())
	b = binary.AppendUvarint(b, uint64(len(r.Data)))
	return append(b, r.Data...)
}

// nextRecord decodes the record at the start of b and returns the rest of b. The
// record's Data aliases b.
func nextRecord(b []byte) (tier.Record, []byte, error) {
	var d decoder
	d.b = b
	r := tier.Record{Kind: uint8(d.uvarint(math.MaxUint8)), MsgID: d.uvarint(math.MaxUint64), Seq: d.uvarint(math.MaxUint64)}
	r.At = time.Unix(0, d.varint()).UTC()
	r.Data = d.bytes(d.uvarint(math.MaxUint64))
	if d.err != nil {
		return tier.Record{}, nil, fmt.Errorf("record: %v", d.err)
	}
	return r, d.b, nil
}

// decoder reads varints off b; the first failure sticks in err and later reads
// return zeros.
type decoder struct {
	b   []byte
	err error
}

// uvarint reads a uvarint no greater than limit.
func (d *decoder) uvarint(limit uint64) uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errors.New("bad varint")
		return 0
	}
	if v > limit {
		d.err = fmt.Errorf("value %d exceeds %d", v, limit)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = errors.New("bad varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

// bytes reads n bytes.
func (d *decoder) bytes(n uint64) []byte {
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)) {
		d.err = errors.New("short")
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) uint32() uint32 {
	if d.err != nil {
		return 0
	}
	if len(d.b) < 4 {
		d.err = errors.New("short")
		return 0
	}
	v := binary.LittleEndian.Uint32(d.b)
	d.b = d.b[4:]
	return v
}

// The footer: uvarint conv, varint MinAt and MaxAt (unix nanoseconds), uvarint
// Messages, Stream, FirstMsgID, LastMsgID, FirstSeq, LastSeq, the number of
// blocks, and per block: uvarint kind, offset, length, uncompressed length, the
// CRC-32C (4 bytes little-endian), uvarint count, first msg_id, last msg_id,
// first seq, last seq.

func appendFooter(b []byte, f *footer) []byte {
	st := &f.stats
	b = binary.AppendUvarint(b, f.conv)
	b = binary.AppendVarint(b, st.MinAt.UnixNano())
	b = binary.AppendVarint(b, st.MaxAt.UnixNano())
	for _, v := range []uint64{uint64(st.Messages), uint64(st.Stream), st.FirstMsgID, st.LastMsgID, st.FirstSeq, st.LastSeq, uint64(len(f.blocks))} {
		b = binary.AppendUvarint(b, v)
	}
	for _, bi := range f.blocks {
		for _, v := range []uint64{uint64(bi.kind), uint64(bi.off), uint64(bi.len), uint64(bi.raw)} {
			b = binary.AppendUvarint(b, v)
		}
		b = binary.LittleEndian.AppendUint32(b, bi.crc)
		for _, v := range []uint64{uint64(bi.count), bi.firstMsg, bi.lastMsg, bi.firstSeq, bi.lastSeq} {
			b = binary.AppendUvarint(b, v)
		}
	}
	return b
}

// putTrailer sets the footer's place and checksum in the trailer t, and the
// trailer's checksum.
func putTrailer(t []byte, off, length int64, footer []byte) {
	binary.LittleEndian.PutUint64(t[0:], uint64(off))
	binary.LittleEndian.PutUint64(t[8:], uint64(length))
	binary.LittleEndian.PutUint32(t[16:], crc32.Checksum(footer, castagnoli))
	binary.LittleEndian.PutUint32(t[20:], crc32.Checksum(t[:20], castagnoli))
}

// parseTrailer checks the trailer t of an object of size bytes and returns the
// footer's place and checksum.
func parseTrailer(t []byte, size int64) (off, length int64, sum uint32, err error) {
	if string(t[28:32]) != segMagic {
		return 0, 0, 0, errors.New("no segment trailer")
	}
	if v := binary.LittleEndian.Uint32(t[24:]); v != segVersion {
		return 0, 0, 0, fmt.Errorf("unknown format version %d", v)
	}
	if crc32.Checksum(t[:20], castagnoli) != binary.LittleEndian.Uint32(t[20:]) {
		return 0, 0, 0, errors.New("trailer checksum mismatch")
	}
	uoff, ulen := binary.LittleEndian.Uint64(t[0:]), binary.LittleEndian.Uint64(t[8:])
	end := uint64(size - trailerLen)
	if uoff < headerLen || uoff > end || ulen > end-uoff || uoff+ulen != end {
		return 0, 0, 0, fmt.Errorf("footer at %d+%d does not end where the trailer of a %d-byte object starts", uoff, ulen, size)
	}
	return int64(uoff), int64(ulen), binary.LittleEndian.Uint32(t[16:]), nil
}

// parseFooter parses and checks the footer b found at off.
func parseFooter(b []byte, off int64) (*footer, error) {
	d := decoder{b: b}
	f := &footer{off: off, len: int64(len(b))}
	st := &f.stats
	f.conv = d.uvarint(math.MaxUint64)
	st.MinAt, st.MaxAt = time.Unix(0, d.varint()).UTC(), time.Unix(0, d.varint()).UTC()
	st.Messages, st.Stream = int(d.uvarint(math.MaxInt32)), int(d.uvarint(math.MaxInt32))
	st.FirstMsgID, st.LastMsgID = d.uvarint(math.MaxUint64), d.uvarint(math.MaxUint64)
	st.FirstSeq, st.LastSeq = d.uvarint(math.MaxUint64), d.uvarint(math.MaxUint64)
	n := d.uvarint(uint64(len(d.b) / minBlockEntryLen))
	if d.err != nil {
		return nil, fmt.Errorf("footer: %v", d.err)
	}
	f.blocks = make([]blockInfo, n)
	next := int64(headerLen)
	var counts [3]int
	for i := range f.blocks {
		bi := &f.blocks[i]
		bi.kind = uint8(d.uvarint(tier.RecordStream))
		bi.off, bi.len = int64(d.uvarint(math.MaxInt64)), int64(d.uvarint(math.MaxInt64))
		bi.raw = int(d.uvarint(MaxBlockBytes))
		bi.crc = d.uint32()
		bi.count = int(d.uvarint(uint64(bi.raw / minRecordLen)))
		bi.firstMsg, bi.lastMsg = d.uvarint(math.MaxUint64), d.uvarint(math.MaxUint64)
		bi.firstSeq, bi.lastSeq = d.uvarint(math.MaxUint64), d.uvarint(math.MaxUint64)
		if d.err != nil {
			return nil, fmt.Errorf("footer: block %d: %v", i, d.err)
		}
		if err := checkBlockInfo(f.blocks[:i+1], next, off); err != nil {
			return nil, fmt.Errorf("footer: block %d: %v", i, err)
		}
		if bi.kind == tier.RecordMessage {
			f.msgBlocks++
		}
		counts[bi.kind] += bi.count
		next = bi.off + bi.len
	}
	if len(d.b) != 0 {
		return nil, fmt.Errorf("footer: %d bytes after the block index", len(d.b))
	}
	if next != off {
		return nil, fmt.Errorf("footer: blocks end at %d, footer starts at %d", next, off)
	}
	msgs, stream := f.blocks[:f.msgBlocks], f.blocks[f.msgBlocks:]
	var want SegmentStats
	want.Messages, want.Stream = counts[tier.RecordMessage], counts[tier.RecordStream]
	if len(msgs) > 0 {
		want.FirstMsgID, want.LastMsgID = msgs[0].firstMsg, msgs[len(msgs)-1].lastMsg
	}
	if len(stream) > 0 {
		want.FirstSeq, want.LastSeq = stream[0].firstSeq, stream[len(stream)-1].lastSeq
	}
	want.MinAt, want.MaxAt = st.MinAt, st.MaxAt
	if *st != want || st.MinAt.After(st.MaxAt) {
		return nil, fmt.Errorf("footer: totals %+v do not match the blocks' %+v", *st, want)
	}
	return f, nil
}

// checkBlockInfo checks the last of blocks, which should start at next and end by
// footerOff, against itself and the one before it.
func checkBlockInfo(blocks []blockInfo, next, footerOff int64) error {
	bi := &blocks[len(blocks)-1]
	switch {
	case bi.off != next:
		return fmt.Errorf("at %d, want %d", bi.off, next)
	case bi.len < 1 || bi.len > footerOff-bi.off:
		return fmt.Errorf("length %d runs past the footer", bi.len)
	case bi.count < 1:
		return errors.New("no records")
	case bi.kind == 0:
		return errors.New("kind 0")
	case bi.firstSeq > bi.lastSeq:
		return errors.New("seq range reversed")
	}
	var prev *blockInfo
	if len(blocks) > 1 {
		prev = &blocks[len(blocks)-2]
	}
	if prev != nil && prev.kind > bi.kind {
		return errors.New("message block after stream blocks")
	}
	if bi.kind == tier.RecordMessage {
		switch {
		case bi.firstMsg == 0 || bi.firstMsg > bi.lastMsg || bi.lastMsg-bi.firstMsg < uint64(bi.count-1):
			return fmt.Errorf("msg_id range %d..%d cannot hold %d messages", bi.firstMsg, bi.lastMsg, bi.count)
		case prev != nil && bi.firstMsg <= prev.lastMsg:
			return errors.New("msg_id range overlaps the previous block's")
		case (bi.firstSeq == 0) != (bi.lastSeq == 0):
			return errors.New("half a seq range")
		}
		return nil
	}
	switch {
	case bi.firstMsg != 0 || bi.lastMsg != 0:
		return errors.New("stream block with a msg_id range")
	case bi.firstSeq == 0 || bi.lastSeq-bi.firstSeq < uint64(bi.count-1):
		return fmt.Errorf("seq range %d..%d cannot hold %d records", bi.firstSeq, bi.lastSeq, bi.count)
	case prev != nil && prev.kind == tier.RecordStream && bi.firstSeq <= prev.lastSeq:
		return errors.New("seq range overlaps the previous block's")
	}
	return nil
}

// decodeBlock checks the compressed frame b against its footer entry and returns
// its records' encoding, which it has checked too, so that nextRecord cannot fail
// on it.
func decodeBlock(b []byte, bi *blockInfo) ([]byte, error) {
	if int64(len(b)) != bi.len {
		return nil, fmt.Errorf("block at %d: got %d bytes, want %d", bi.off, len(b), bi.len)
	}
	if crc32.Checksum(b, castagnoli) != bi.crc {
		return nil, fmt.Errorf("block at %d: checksum mismatch", bi.off)
	}
	raw, err := zstdDecoder().DecodeAll(b, make([]byte, 0, bi.raw))
	if err != nil {
		return nil, fmt.Errorf("block at %d: %v", bi.off, err)
	}
	if len(raw) != bi.raw {
		return nil, fmt.Errorf("block at %d: %d bytes uncompressed, want %d", bi.off, len(raw), bi.raw)
	}
	if err := checkRecords(raw, bi); err != nil {
		return nil, fmt.Errorf("block at %d: %v", bi.off, err)
	}
	return raw, nil
}

// checkRecords checks that raw holds bi.count records of bi.kind, in order, within
// bi's ranges.
func checkRecords(raw []byte, bi *blockInfo) error {
	var first, last, minSeq, maxSeq uint64
	n := 0
	for rest := raw; len(rest) > 0; n++ {
		r, next, err := nextRecord(rest)
		if err != nil {
			return err
		}
		rest = next
		if r.Kind != bi.kind {
			return fmt.Errorf("record %d of kind %d in a block of kind %d", n, r.Kind, bi.kind)
		}
		key := r.MsgID
		if bi.kind == tier.RecordStream {
			key = r.Seq
		} else if r.Seq != 0 {
			if minSeq == 0 || r.Seq < minSeq {
				minSeq = r.Seq
			}
			maxSeq = max(maxSeq, r.Seq)
		}
		if n == 0 {
			first = key
		} else if key <= last {
			return fmt.Errorf("record %d out of order", n)
		}
		last = key
	}
	if n != bi.count {
		return fmt.Errorf("%d records, want %d", n, bi.count)
	}
	if bi.kind == tier.RecordStream {
		minSeq, maxSeq = first, last
		first, last = 0, 0
	}
	if first != bi.firstMsg || last != bi.lastMsg || minSeq != bi.firstSeq || maxSeq != bi.lastSeq {
		return errors.New("records do not match the footer's ranges")
	}
	return nil
}

// decodeSegment checks a whole segment b (header, trailer, footer and every block)
// and returns its footer and records in stored order.
func decodeSegment(b []byte) (*footer, []tier.Record, error) {
	size := int64(len(b))
	if size < headerLen+trailerLen {
		return nil, nil, fmt.Errorf("%d bytes is too short", size)
	}
	if string(b[:4]) != segMagic || binary.LittleEndian.Uint32(b[4:]) != segVersion {
		return nil, nil, errors.New("bad header")
	}
	off, length, sum, err := parseTrailer(b[size-trailerLen:], size)
	if err != nil {
		return nil, nil, err
	}
	fb := b[off : off+length]
	if crc32.Checksum(fb, castagnoli) != sum {
		return nil, nil, errors.New("footer checksum mismatch")
	}
	f, err := parseFooter(fb, off)
	if err != nil {
		return nil, nil, err
	}
	f.stats.Bytes = size
	var recs []tier.Record
	lo, hi := maxAt, minAt
	for i := range f.blocks {
		bi := &f.blocks[i]
		raw, err := decodeBlock(b[bi.off:bi.off+bi.len], bi)
		if err != nil {
			return nil, nil, err
		}
		for rest := raw; len(rest) > 0; {
			var r tier.Record
			r, rest, _ = nextRecord(rest) // checked by decodeBlock
			recs = append(recs, r)
			if r.At.Before(lo) {
				lo = r.At
			}
			if r.At.After(hi) {
				hi = r.At
			}
		}
	}
	if len(recs) > 0 && (!lo.Equal(f.stats.MinAt) || !hi.Equal(f.stats.MaxAt)) {
		return nil, nil, errors.New("footer's time range does not match the records'")
	}
	return f, recs, nil
}

// sameRecord reports whether a and b are equal (At compared as instants, nil Data
// equal to empty).
func sameRecord(a, b tier.Record) bool {
	return a.Kind == b.Kind && a.MsgID == b.MsgID && a.Seq == b.Seq && a.At.Equal(b.At) && bytes.Equal(a.Data, b.Data)
}
