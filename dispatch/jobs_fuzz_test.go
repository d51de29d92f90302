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
	f.Fuzz(func(t *testing.T, rec []byte) {
		var j sendJob
		if err := j.unmarshal(rec); err != nil {
			if !errors.Is(err, errBadJob) {
				t.Fatalf("error %v is not errBadJob", err)
			}
			return
		}
		enc := j.marshal()
		var j2 sendJob
		if err := j2.unmarshal(enc); err != nil {
			t.Fatalf("record %x decoded to %+v, whose encoding %x does not decode: %v", rec, j, enc, err)
		}
		if !reflect.DeepEqual(j, j2) {
			t.Fatalf("record %x: %+v, re-encoded %x: %+v", rec, j, enc, j2)
		}
		if again := j2.marshal(); !bytes.Equal(again, enc) {
			t.Fatalf("record %x encodes as %x, then as %x", rec, enc, again)
		}
	})
}

func FuzzFanoutJob(f *testing.F) {
	f.Add((&fanoutJob{User: "b", Kind: "message", Conv: 7, ConvKind: "direct", Peer: "a", MsgID: 9, From: "a",
		At: time.Unix(1700000000, 123456789).UTC(), ClientMsgID: "c-1", Type: "text", Body: []byte(`{}`),
		GroupSeq: 300, AgentID: "ann"}).marshal())
	f.Fuzz(func(t *testing.T, rec []byte) {
		var j fanoutJob
		if err := j.unmarshal(rec); err != nil {
			if !errors.Is(err, errBadJob) {
				t.Fatalf("error %v is not errBadJob", err)
			}
			return
		}
		enc := j.marshal()
		var j2 fanoutJob
		if err := j2.unmarshal(enc); err != nil {
			t.Fatalf("record %x decoded to %+v, whose encoding %x does not decode: %v", rec, j, enc, err)
		}
		if !reflect.DeepEqual(j, j2) {
			t.Fatalf("record %x: %+v, re-encoded %x: %+v", rec, j, enc, j2)
		}
		if again := j2.marshal(); !bytes.Equal(again, enc) {
			t.Fatalf("record %x encodes as %x, then as %x", rec, enc, again)
		}
	})
}
