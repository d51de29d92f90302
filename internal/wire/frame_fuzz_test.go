package wire

import (
	"encoding/json"
	"testing"
)

// FuzzDecodeFrame checks that no input panics the decoder and that what it accepts is
// whole: a known type with its payload, and an id within bounds. Seeds live in
// testdata/fuzz/FuzzDecodeFrame.
func FuzzDecodeFrame(f *testing.F) {
	f.Add([]byte(`{"type":"ping","id":"1"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		fr, _, err := DecodeFrame(data)
		if len(fr.ID) > MaxFrameIDLen {
			t.Fatalf("id of %d bytes returned", len(fr.ID))
		}
		if err != nil {
			if err.Code.Status() != 400 {
				t.Fatalf("decoder error %s is not a 400", err.Code)
			}
			return
		}
		if !json.Valid(data) {
			t.Fatalf("accepted invalid JSON %q", data)
		}
		switch fr.Type {
		case FramePing:
		case FrameSend:
			if fr.Send == nil {
				t.Fatal("send without payload")
			}
		case FrameSync:
			if fr.Sync == nil {
				t.Fatal("sync without payload")
			}
		case FrameRead:
			if fr.Read == nil {
				t.Fatal("read without payload")
			}
		case FrameAuth:
			if fr.Token == "" {
				t.Fatal("auth without a token")
			}
		default:
			t.Fatalf("accepted frame type %q", fr.Type)
		}
	})
}
