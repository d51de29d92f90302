package coldstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"slices"
	"sort"

	"github.com/fanline/fanline/internal/tier"
)

// SegmentReader reads one segment. It holds the segment's footer; its methods
// fetch, through the cache, only the blocks they need. The records it returns are
// the caller's to keep, their At in UTC. A SegmentReader is safe for concurrent
// use.
type SegmentReader struct {
	objs  Objects
	key   string
	cache *BlockCache // nil: no caching
	f     *footer
}

// footerSlot is the cache offset a segment's footer is kept under.
const footerSlot = -1

// OpenSegment opens the segment stored as key, reading its size (Head) and its
// trailer and footer (one ranged Get of the last 64 KiB, and a second if the
// footer is larger), or nothing when cache holds the footer. cache may be nil.
// Segment objects are immutable: a key must not be rewritten with other bytes
// while a cache may hold its blocks.
func OpenSegment(ctx context.Context, objs Objects, key string, cache *BlockCache) (*SegmentReader, error) {
	v, err := cache.get(ctx, cacheKey{key, footerSlot}, func() (any, int64, error) {
		f, err := readFooter(ctx, objs, key)
		if err != nil {
			return nil, 0, err
		}
		return f, f.memSize(), nil
	})
	if err != nil {
		return nil, err
	}
	return &SegmentReader{objs: objs, key: key, cache: cache, f: v.(*footer)}, nil
}

func readFooter(ctx context.Context, objs Objects, key string) (*footer, error) {
	info, err := objs.Head(ctx, key)
	if err != nil {
		return nil, err
	}
	size := info.Size
	if size < headerLen+trailerLen {
		return nil, corrupt(key, fmt.Errorf("%d bytes is too short", size))
	}
	start := max(size-tailRead, 0)
	tail, err := readRange(ctx, objs, key, start, size-start)
	if err != nil {
		return nil, err
	}
	if int64(len(tail)) != size-start {
		return nil, corrupt(key, fmt.Errorf("read %d bytes of the last %d", len(tail), size-start))
	}
	off, length, sum, err := parseTrailer(tail[len(tail)-trailerLen:], size)
	if err != nil {
		return nil, corrupt(key, err)
	}
	var fb []byte
	if off >= start {
		fb = tail[off-start : off-start+length]
	} else {
		if fb, err = readRange(ctx, objs, key, off, length); err != nil {
			return nil, err
		}
		if int64(len(fb)) != length {
			return nil, corrupt(key, fmt.Errorf("read %d bytes of the %d-byte footer", len(fb), length))
		}
	}
	if crc32.Checksum(fb, castagnoli) != sum {
		return nil, corrupt(key, errors.New("footer checksum mismatch"))
	}
	f, err := parseFooter(fb, off)
	if err != nil {
		return nil, corrupt(key, err)
	}
	f.stats.Bytes = size
	return f, nil
}

func corrupt(key string, err error) error {
	return fmt.Errorf("%w: %s: %v", ErrCorrupt, key, err)
}

// Key returns the segment's object key.
func (r *SegmentReader) Key() string { return r.key }

// Conv returns the conversation the segment belongs to.
func (r *SegmentReader) Conv() uint64 { return r.f.conv }

// Stats returns the segment's totals, as its footer records them.
func (r *SegmentReader) Stats() SegmentStats { return r.f.stats }

// block returns the records' encoding of block i (shared: not to be changed).
func (r *SegmentReader) block(ctx context.Context, i int) ([]byte, error) {
	bi := &r.f.blocks[i]
	v, err := r.cache.get(ctx, cacheKey{r.key, bi.off}, func() (any, int64, error) {
		b, err := readRange(ctx, r.objs, r.key, bi.off, bi.len)
		if err != nil {
			return nil, 0, err
		}
		raw, err := decodeBlock(b, bi)
		if err != nil {
			return nil, 0, corrupt(r.key, err)
		}
		return raw, int64(len(raw)), nil
	})
	if err != nil {
		return nil, err
	}
	return v.([]byte), nil
}

// scan calls f with the records of block i in order until f returns false. The
// records' Data alias the block: f copies what it keeps (owned).
func (r *SegmentReader) scan(ctx context.Context, i int, f func(tier.Record) bool) error {
	raw, err := r.block(ctx, i)
	if err != nil {
		return err
	}
	for len(raw) > 0 {
		var rec tier.Record
		rec, raw, _ = nextRecord(raw) // decodeBlock checked every record
		if !f(rec) {
			break
		}
	}
	return nil
}

func owned(r tier.Record) tier.Record {
	r.Data = bytes.Clone(r.Data)
	return r
}

// msgBlock returns the index of the message block whose msg_id range holds id, or
// -1.
func (r *SegmentReader) msgBlock(id uint64) int {
	b := r.f.blocks[:r.f.msgBlocks]
	i := sort.Search(len(b), func(i int) bool { return b[i].lastMsg >= id })
	if i < len(b) && b[i].firstMsg <= id {
		return i
	}
	return -1
}

// Message returns the message record id, reading at most one block.
func (r *SegmentReader) Message(ctx context.Context, id uint64) (tier.Record, bool, error) {
	i := r.msgBlock(id)
	if i < 0 {
		return tier.Record{}, false, nil
	}
	var found tier.Record
	ok := false
	err := r.scan(ctx, i, func(rec tier.Record) bool {
		if rec.MsgID >= id {
			found, ok = owned(rec), rec.MsgID == id
			return false
		}
		return true
	})
	if err != nil || !ok {
		return tier.Record{}, false, err
	}
	return found, true, nil
}

// Messages returns the message records of ids that the segment holds, reading each
// block that may hold one once.
func (r *SegmentReader) Messages(ctx context.Context, ids []uint64) (map[uint64]tier.Record, error) {
	wanted := make(map[uint64]bool, len(ids))
	var blocks []int
	for _, id := range ids {
		if i := r.msgBlock(id); i >= 0 {
			wanted[id] = true
			blocks = append(blocks, i)
		}
	}
	slices.Sort(blocks)
	out := make(map[uint64]tier.Record, len(wanted))
	for _, i := range slices.Compact(blocks) {
		err := r.scan(ctx, i, func(rec tier.Record) bool {
			if wanted[rec.MsgID] {
				out[rec.MsgID] = owned(rec)
			}
			return true
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Before returns up to limit (<= 0: all) message records with msg_id < before (0:
// no bound), newest first: a page of history.
func (r *SegmentReader) Before(ctx context.Context, before uint64, limit int) ([]tier.Record, error) {
	b := r.f.blocks[:r.f.msgBlocks]
	end := len(b)
	if before != 0 {
		end = sort.Search(len(b), func(i int) bool { return b[i].firstMsg >= before })
	}
	var out, page []tier.Record
	for i := end - 1; i >= 0 && (limit <= 0 || len(out) < limit); i-- {
		page = page[:0]
		err := r.scan(ctx, i, func(rec tier.Record) bool {
			if before != 0 && rec.MsgID >= before {
				return false
			}
			page = append(page, rec)
			return true
		})
		if err != nil {
			return nil, err
		}
		for j := len(page) - 1; j >= 0 && (limit <= 0 || len(out) < limit); j-- {
			out = append(out, owned(page[j]))
		}
	}
	return out, nil
}

// Stream returns up to limit (<= 0: all) stream records with seq > after, in seq
// order.
func (r *SegmentReader) Stream(ctx context.Context, after uint64, limit int) ([]tier.Record, error) {
	s := r.f.blocks[r.f.msgBlocks:]
	var out []tier.Record
	for i := sort.Search(len(s), func(i int) bool { return s[i].lastSeq > after }); i < len(s) && (limit <= 0 || len(out) < limit); i++ {
		err := r.scan(ctx, r.f.msgBlocks+i, func(rec tier.Record) bool {
			if rec.Seq > after {
				out = append(out, owned(rec))
			}
			return limit <= 0 || len(out) < limit
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// All calls f with every record, the messages in msg_id order and then the stream
// records in seq order, and stops at f's first error, which it returns.
func (r *SegmentReader) All(ctx context.Context, f func(tier.Record) error) error {
	for i := range r.f.blocks {
		var ferr error
		err := r.scan(ctx, i, func(rec tier.Record) bool {
			ferr = f(owned(rec))
			return ferr == nil
		})
		if err != nil {
			return err
		}
		if ferr != nil {
			return ferr
		}
	}
	return nil
}

// Verify reads the whole object again, bypassing the cache, checks its header,
// trailer, footer and every block's checksum and records, and checks that it is
// the segment r opened and holds exactly want (in any order EncodeSegment
// accepts). An error wraps ErrCorrupt, unless the object store failed or want is
// not a valid segment's records.
func (r *SegmentReader) Verify(ctx context.Context, want []tier.Record) error {
	msgs, stream, err := canonical(want)
	if err != nil {
		return fmt.Errorf("coldstore: verify %s: %w", r.key, err)
	}
	want = append(msgs, stream...)
	b, err := ReadAll(ctx, r.objs, r.key)
	if err != nil {
		return err
	}
	f, got, err := decodeSegment(b)
	if err != nil {
		return corrupt(r.key, err)
	}
	if f.conv != r.f.conv || f.stats != r.f.stats || !slices.Equal(f.blocks, r.f.blocks) {
		return corrupt(r.key, errors.New("the object is not the segment opened"))
	}
	if len(got) != len(want) {
		return corrupt(r.key, fmt.Errorf("holds %d records, want %d", len(got), len(want)))
	}
	for i := range got {
		if !sameRecord(got[i], want[i]) {
			return corrupt(r.key, fmt.Errorf("record %d (kind %d, msg_id %d, seq %d) differs from the one wanted", i, want[i].Kind, want[i].MsgID, want[i].Seq))
		}
	}
	return nil
}
