// Package kv opens the embedded Pebble database that every embedded backend shares, and
// holds the key-encoding helpers they use.
//
// All embedded stores live in one Pebble instance under distinct one-byte key prefixes
// (listed below), so one synced commit also makes every earlier unsynced write durable:
// Pebble's WAL is written in commit order. Health (health.go) is the one place that
// decides what the store's faults mean for the node: damage stops it, a full disk
// refuses new work until there is room.
package kv

import (
	"encoding/binary"
	"fmt"
	"log/slog"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// Key prefixes, one per embedded store. Never reuse a byte.
const (
	PrefixQueue        byte = 'q'
	PrefixTimeline     byte = 't'
	PrefixStream       byte = 's'
	PrefixDedup        byte = 'd'
	PrefixConversation byte = 'c'
	PrefixRouting      byte = 'r'
	PrefixIDs          byte = 'i'
)

// CacheBytes is the block cache size Open uses.
const CacheBytes = 512 << 20

// Open opens (creating if needed) the Pebble database in dir, logging to log, with
// no disk reserve and nobody told of damage: OpenWithHealth with Config{Logger: log}.
func Open(dir string, log *slog.Logger) (*pebble.DB, error) {
	db, _, err := OpenWithHealth(dir, Config{Logger: log})
	return db, err
}

// OpenWithHealth opens (creating if needed) the Pebble database in dir and returns
// the Health that watches its faults. Damage found while opening (a file the
// manifest lists missing, a corrupt manifest) is reported through the Health like
// damage found later, and returned.
//
// Most point reads on the hot path look for keys that do not exist (a new
// client_msg_id, a timeline entry not yet appended), so every level has a bloom
// filter; the block cache holds the recent timelines and conversation state.
func OpenWithHealth(dir string, cfg Config) (*pebble.DB, *Health, error) {
	h := newHealth(dir, cfg)
	cache := pebble.NewCache(CacheBytes)
	defer cache.Unref()
	opts := &pebble.Options{
		Cache:                       cache,
		FS:                          vfs.OnDiskFull(h.fs, h.sawENOSPC),
		MemTableSize:                64 << 20,
		MemTableStopWritesThreshold: 4,
		L0CompactionThreshold:       4,
		L0StopWritesThreshold:       24,
		Logger:                      pebbleLogger{h.log, h},
		EventListener:               h.listener(),
	}
	opts.Experimental.L0CompactionConcurrency = 2
	for i := range opts.Levels {
		opts.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
	}
	db, err := pebble.Open(dir, opts)
	if err != nil {
		if isDamage(err) {
			err = h.damaged(err)
		}
		return nil, nil, fmt.Errorf("kv: open %s: %w", dir, err)
	}
	return db, h, nil
}

// Key builds keys from parts: byte prefixes, uint64s (big-endian, so they sort), and
// strings (length-prefixed, so a string is never a prefix confusion for the next part).
type Key []byte

// NewKey starts a key with a store prefix.
func NewKey(prefix byte, sub byte) Key { return Key{prefix, sub} }

// U64 appends a big-endian uint64.
func (k Key) U64(v uint64) Key { return binary.BigEndian.AppendUint64(k, v) }

// Str appends a length-prefixed string (at most 255 bytes).
func (k Key) Str(s string) Key {
	if len(s) > 255 {
		panic("kv: key string longer than 255 bytes")
	}
	k = append(k, byte(len(s)))
	return append(k, s...)
}

// PrefixEnd returns the smallest key greater than every key with prefix p.
func PrefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		end[i]++
		if end[i] != 0 {
			return end[:i+1]
		}
	}
	return nil
}

// Get returns a copy of the value at key, or nil and false.
func Get(r pebble.Reader, key []byte) ([]byte, bool, error) {
	v, closer, err := r.Get(key)
	if err == pebble.ErrNotFound {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	out := append([]byte(nil), v...)
	closer.Close()
	return out, true, nil
}

// GetU64 reads a big-endian uint64 value; a missing key reads as 0.
func GetU64(r pebble.Reader, key []byte) (uint64, error) {
	v, ok, err := Get(r, key)
	if err != nil || !ok {
		return 0, err
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("kv: value at %x is not a uint64", key)
	}
	return binary.BigEndian.Uint64(v), nil
}

// U64Value encodes v as a big-endian uint64 value.
func U64Value(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }
