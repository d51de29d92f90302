package dispatch

import (
	"reflect"
	"testing"
	"time"
)

func TestJobsRoundTrip(t *testing.T) {
	s := sendJob{MsgID: 1 << 60, Conv: 7, ConvKind: "shop", From: "acme",
		ClientMsgID: "c-1", Type: "text", Body: []byte(`{"text":"hi"}`), AgentID: "ann"}
	var s2 sendJob
	if err := s2.unmarshal(s.marshal()); err != nil || !reflect.DeepEqual(s, s2) {
		t.Fatalf("send job: %+v %v", s2, err)
	}
	f := fanoutJob{User: "b", Kind: "message", Conv: 7, ConvKind: "direct", Peer: "a", MsgID: 9, From: "a",
		At: time.Unix(1700000000, 123456789).UTC(), ClientMsgID: "c-1", Type: "text", Body: []byte(`{}`), GroupSeq: 300}
	var f2 fanoutJob
	if err := f2.unmarshal(f.marshal()); err != nil || !reflect.DeepEqual(f, f2) {
		t.Fatalf("fanout job: %+v %v", f2, err)
	}
	// A version 2 record (no group seq, no agent) still decodes.
	v2 := f.marshal()
	v2 = v2[:len(v2)-3] // 300 is a two-byte uvarint, then an empty agent id
	v2[0] = jobVersionV2
	var f3 fanoutJob
	if err := f3.unmarshal(v2); err != nil || f3.GroupSeq != 0 || f3.MsgID != 9 || string(f3.Body) != `{}` {
		t.Fatalf("version 2 fanout job: %+v %v", f3, err)
	}
	// A read job has no content: empty strings and a nil body survive.
	r := fanoutJob{User: "a", Kind: "read", Conv: 7, MsgID: 9, From: "b", At: time.Unix(5, 0).UTC()}
	var r2 fanoutJob
	if err := r2.unmarshal(r.marshal()); err != nil || !reflect.DeepEqual(r, r2) {
		t.Fatalf("read job: %+v %v", r2, err)
	}
	// Every truncation and trailing garbage is an error, never a panic.
	b := f.marshal()
	for i := 0; i < len(b); i++ {
		if err := new(fanoutJob).unmarshal(b[:i]); err == nil {
			t.Fatalf("truncated at %d accepted", i)
		}
	}
	if err := new(fanoutJob).unmarshal(append(b, 0)); err == nil {
		t.Fatal("trailing byte accepted")
	}
	if err := new(sendJob).unmarshal([]byte{jobVersion, 1, 1, 255, 255, 255, 255, 15}); err == nil {
		t.Fatal("huge string length accepted")
	}
	if err := new(sendJob).unmarshal([]byte(`{"id":1}`)); err == nil {
		t.Fatal("a JSON record accepted")
	}
}
