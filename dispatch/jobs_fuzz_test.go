package dispatch

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
	"time"
)

// FuzzSendJob and FuzzFanoutJob check the decoders of the send and fanout queue
// records, which a consumer reads from whatever the topic holds. No input panics; a
// rejected record is errBadJob. An accepted record of any version, marshalled again
// (as the current version), decodes to the same job, and that encoding is a fixed
// point. Seeds live in testdata/fuzz/FuzzSendJob and testdata/fuzz/FuzzFanoutJob.
func FuzzSendJob(f *testing.F) {
	f.Add((&sendJob{MsgID: 1 << 60, Conv: 7, ConvKind: "shop", From: "acme",
		ClientMsgID: "c-1", Type: "text", Body: []byte(`{"text":"hi"}`), AgentID: "ann"}).marshal())
	f.Fuzz(roundTrips[sendJob])
}

func FuzzFanoutJob(f *testing.F) {
	f.Add((&fanoutJob{User: "b", Kind: "message", Conv: 7, ConvKind: "direct", Peer: "a", MsgID: 9, From: "a",
		At: time.Unix(1700000000, 123456789).UTC(), ClientMsgID: "c-1", Type: "text", Body: []byte(`{}`),
		GroupSeq: 300, AgentID: "ann"}).marshal())
	f.Fuzz(roundTrips[fanoutJob])
}

// job is a queue record's decoded form.
type job[T any] interface {
	*T
	marshal() []byte
	unmarshal([]byte) error
}

// roundTrips checks that a record either is refused with errBadJob or decodes to a
// job whose encoding decodes to the same job and encodes the same again.
func roundTrips[T any, P job[T]](t *testing.T, rec []byte) {
	var j T
	if err := P(&j).unmarshal(rec); err != nil {
		if !errors.Is(err, errBadJob) {
			t.Fatalf("error %v is not errBadJob", err)
		}
		return
	}
	enc := P(&j).marshal()
	var j2 T
	if err := P(&j2).unmarshal(enc); err != nil {
		t.Fatalf("record %x decoded to %+v, whose encoding %x does not decode: %v", rec, j, enc, err)
	}
	if !reflect.DeepEqual(j, j2) {
		t.Fatalf("record %x: %+v, re-encoded %x: %+v", rec, j, enc, j2)
	}
	if again := P(&j2).marshal(); !bytes.Equal(again, enc) {
		t.Fatalf("record %x encodes as %x, then as %x", rec, enc, again)
	}
}
