package gateway

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
)

// FuzzRelayedRecord checks the decoding of a push-topic record as Hub.Receive does it.
// No input panics. An accepted record, marshalled again as Relay.route does, decodes to
// the same push: same routing fields, and the same frame up to JSON compaction (the
// encoder compacts and HTML-escapes a raw frame); that encoding is a fixed point. A
// frame deliver would hand to connections is one valid JSON value. Seeds live in
// testdata/fuzz/FuzzRelayedRecord.
func FuzzRelayedRecord(f *testing.F) {
	f.Add([]byte(`{"node":"n1","user":"bob","frame":{"type":"message","entry":{"kind":"message"}}}`))
	f.Add([]byte(`{"group":7,"added":["ann"],"removed":["bob"]}`))
	f.Fuzz(func(t *testing.T, rec []byte) {
		var p relayed
		if json.Unmarshal(rec, &p) != nil {
			return
		}
		if p.Frame != nil && (p.User != "" || p.Shop != "" || p.Group != 0) && !json.Valid(p.Frame) {
			t.Fatalf("record %q delivers frame %q, which is not JSON", rec, p.Frame)
		}
		b, err := json.Marshal(p)
		if err != nil {
			t.Fatalf("decoded record %+v does not marshal: %v", p, err)
		}
		var p2 relayed
		if err := json.Unmarshal(b, &p2); err != nil {
			t.Fatalf("re-marshalled record %s does not decode: %v", b, err)
		}
		want := normalRelayed(p)
		if p.Frame != nil {
			if want.Frame, err = json.Marshal(p.Frame); err != nil {
				t.Fatal(err)
			}
		}
		if got := normalRelayed(p2); !reflect.DeepEqual(got, want) {
			t.Fatalf("record %q: %+v, re-encoded %s: %+v", rec, want, b, got)
		}
		b2, err := json.Marshal(p2)
		if err != nil {
			t.Fatal(err)
		}
		var p3 relayed
		if err := json.Unmarshal(b2, &p3); err != nil {
			t.Fatal(err)
		}
		if b3, _ := json.Marshal(p3); !bytes.Equal(b2, b3) {
			t.Fatalf("record encodes as %s, then as %s", b2, b3)
		}
	})
}

// normalRelayed maps empty lists to nil: both mean none, and omitempty drops them.
func normalRelayed(p relayed) relayed {
	for _, l := range []*[]string{&p.Skip, &p.Added, &p.Removed} {
		if len(*l) == 0 {
			*l = nil
		}
	}
	return p
}
