package dispatch

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// Queue records of the send and fanout stages are a compact binary encoding rather than
// JSON: they are written and read on every hop of every message, and JSON re-validates
// the (already validated) body each time.
//
// Layout: a version byte, then the fields in declaration order; integers as uvarints,
// times as varint unix nanoseconds, strings and bodies as uvarint length + bytes,
// lists as uvarint count + items. Later versions append fields, so earlier records
// still decode (the new fields zero): version 3 added fanoutJob.GroupSeq, version 4
// AgentID to both. A record of a version above jobVersion (up to jobVersionReserved)
// comes from a newer fanline and is refused, never dropped (see screen).

const (
	// jobVersionReserved is the highest version byte later formats may use: a record
	// starting with a byte above jobVersion up to it was written by a newer fanline
	// (refused, not dropped); one above it is not a job at all (malformed).
	jobVersionReserved = 31
	jobVersion         = 4
	jobVersionV2       = 2
	jobVersionV3       = 3
)

// sendJob is a record of the send topic.
type sendJob struct {
	MsgID       uint64
	Conv        uint64
	ConvKind    string
	From        string
	ClientMsgID string
	Type        string
	Body        []byte
	AgentID     string // the agent writing in a shop conversation (From is the shop)
}

// fanoutJob is a record of the fanout topic: one entry for one user's timeline. Message
// jobs carry the content so the push needs no read.
type fanoutJob struct {
	User        string
	Kind        string
	Conv        uint64
	ConvKind    string
	Peer        string
	MsgID       uint64
	From        string
	At          time.Time
	ClientMsgID string
	Type        string
	Body        []byte
	GroupSeq    uint64
	AgentID     string // the agent who wrote it, in a shop conversation (From is the shop)
}

func (j *sendJob) marshal() []byte {
	b := make([]byte, 0, 64+len(j.Body))
	b = append(b, jobVersion)
	b = binary.AppendUvarint(b, j.MsgID)
	b = binary.AppendUvarint(b, j.Conv)
	b = appendString(b, j.ConvKind)
	b = appendString(b, j.From)
	b = appendString(b, j.ClientMsgID)
	b = appendString(b, j.Type)
	b = appendBytes(b, j.Body)
	return appendString(b, j.AgentID)
}

func (j *sendJob) unmarshal(b []byte) error {
	r := jobReader{b: b}
	r.version()
	j.MsgID = r.uvarint()
	j.Conv = r.uvarint()
	j.ConvKind = r.string()
	j.From = r.string()
	j.ClientMsgID = r.string()
	j.Type = r.string()
	j.Body = r.bytes()
	if r.v >= jobVersion {
		j.AgentID = r.string()
	}
	return r.done()
}

func (j *fanoutJob) marshal() []byte {
	b := make([]byte, 0, 64+len(j.Body))
	b = append(b, jobVersion)
	b = appendString(b, j.User)
	b = appendString(b, j.Kind)
	b = binary.AppendUvarint(b, j.Conv)
	b = appendString(b, j.ConvKind)
	b = appendString(b, j.Peer)
	b = binary.AppendUvarint(b, j.MsgID)
	b = appendString(b, j.From)
	b = binary.AppendVarint(b, j.At.UnixNano())
	b = appendString(b, j.ClientMsgID)
	b = appendString(b, j.Type)
	b = appendBytes(b, j.Body)
	b = binary.AppendUvarint(b, j.GroupSeq)
	return appendString(b, j.AgentID)
}

func (j *fanoutJob) unmarshal(b []byte) error {
	r := jobReader{b: b}
	r.version()
	j.User = r.string()
	j.Kind = r.string()
	j.Conv = r.uvarint()
	j.ConvKind = r.string()
	j.Peer = r.string()
	j.MsgID = r.uvarint()
	j.From = r.string()
	j.At = time.Unix(0, r.varint()).UTC()
	j.ClientMsgID = r.string()
	j.Type = r.string()
	j.Body = r.bytes()
	if r.v >= jobVersionV3 {
		j.GroupSeq = r.uvarint()
	}
	if r.v >= jobVersion {
		j.AgentID = r.string()
	}
	return r.done()
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendBytes(b, v []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

var errBadJob = errors.New("dispatch: malformed queue record")

// errNewerJob is a record written by a later version of fanline than this one: it is
// not malformed, this binary cannot read it (a downgrade with records in flight).
var errNewerJob = fmt.Errorf("%w: written by a newer version of fanline", errBadJob)

// jobReader decodes fields in order; the first problem sticks in err.
type jobReader struct {
	b   []byte
	v   byte // the record's version
	err error
}

func (r *jobReader) fail() {
	if r.err == nil {
		r.err = errBadJob
	}
	r.b = nil
}

func (r *jobReader) version() {
	if len(r.b) > 0 && r.b[0] > jobVersion && r.b[0] <= jobVersionReserved {
		r.err, r.b = fmt.Errorf("%w (record version %d, this binary reads up to %d)", errNewerJob, r.b[0], jobVersion), nil
		return
	}
	if len(r.b) == 0 || r.b[0] < jobVersionV2 || r.b[0] > jobVersion {
		r.fail()
		return
	}
	r.v, r.b = r.b[0], r.b[1:]
}

func (r *jobReader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *jobReader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *jobReader) bytes() []byte {
	n := r.uvarint()
	if r.err != nil || n > uint64(len(r.b)) {
		r.fail()
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	if n == 0 {
		return nil
	}
	return v
}

func (r *jobReader) string() string { return string(r.bytes()) }

func (r *jobReader) done() error {
	if r.err == nil && len(r.b) != 0 {
		r.fail()
	}
	return r.err
}
