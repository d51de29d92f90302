// Package tier holds what the warm stores (groupstream) and the cold tier
// (coldstore) share: the records a segment holds and the manifest entry that says
// where a run of a conversation's history lives. Neither side imports the other.
package tier

import "time"

// Record kinds.
const (
	// RecordMessage is a message or group event; Data is the warm store's encoding
	// of it (opaque to coldstore), Seq its group stream seq (0 outside groups).
	RecordMessage = 1
	// RecordStream is an entry of a read-fanout group's stream; Data is its warm
	// encoding, Seq the entry's seq, MsgID the message it is about.
	RecordStream = 2
)

// Record is one item of a conversation's history as a segment holds it.
type Record struct {
	Kind  uint8
	MsgID uint64
	Seq   uint64
	At    time.Time
	Data  []byte
}

// Segment is an entry of a conversation's segment manifest: one object holding the
// conversation's messages FirstMsgID..LastMsgID (and its stream entries
// FirstSeq..LastSeq, if any), kept in the warm store beside the conversation.
type Segment struct {
	Conv       uint64    `json:"conv"`
	Key        string    `json:"key"`
	FirstMsgID uint64    `json:"first"`
	LastMsgID  uint64    `json:"last"`
	FirstSeq   uint64    `json:"first_seq,omitempty"`
	LastSeq    uint64    `json:"last_seq,omitempty"`
	MinAt      time.Time `json:"min_at"`
	MaxAt      time.Time `json:"max_at"`
	Messages   int       `json:"messages"`
	Stream     int       `json:"stream,omitempty"`
	Bytes      int64     `json:"bytes"`
	// RankBefore is the group's read-fanout message count before FirstSeq, and
	// Counted the runs [from, to] of stream seqs in the segment that count (message
	// entries, not recalls), so a member's unread stays exact when the entries
	// are no longer warm.
	RankBefore uint64      `json:"rank_before,omitempty"`
	Counted    [][2]uint64 `json:"counted,omitempty"`
	Created    time.Time   `json:"created"`
	// Pending is set while the segment's warm rows may still be there (recorded,
	// not yet deleted).
	Pending bool `json:"pending,omitempty"`
}

// RankAt returns the group's read-fanout message count up to and including seq,
// for seq within or after the segment's stream range.
func (s Segment) RankAt(seq uint64) uint64 {
	r := s.RankBefore
	for _, c := range s.Counted {
		if seq < c[0] {
			break
		}
		r += min(seq, c[1]) - c[0] + 1
	}
	return r
}
