package wire

import (
	"strings"
	"testing"
)

func TestDecodeFrame(t *testing.T) {
	for _, tc := range []struct {
		in   string
		code Code
		typ  string
		id   string
	}{
		{`{"type":"ping","id":"1"}`, "", FramePing, "1"},
		{`{"type":"send","id":"a","client_msg_id":"c1","to":"bob"}`, CodeUnknownField, "", "a"},
		{`{"type":"send","id":"a","message":{"client_msg_id":"c1","to":"bob","type":"text","body":{"text":"hi"}}}`, "", FrameSend, "a"},
		{`{"type":"send","message":{"client_msg_id":"c1","typo":1}}`, CodeUnknownField, "", ""},
		{`{"type":"send","message":"hi"}`, CodeBadJSON, "", ""},
		{`{"type":"send"}`, CodeMissingField, "", ""},
		{`{"type":"sync","cursor":"AQE","limit":10}`, "", FrameSync, ""},
		{`{"type":"read","conversation_id":"12","msg_id":"13"}`, "", FrameRead, ""},
		{`{"type":"read","conversation_id":12,"msg_id":"13"}`, CodeInvalidField, "", ""},
		{`{"type":"typing","id":"t","conversation_id":"12"}`, "", FrameTyping, "t"},
		{`{"type":"typing"}`, CodeMissingField, "", ""},
		{`{"type":"typing","conversation_id":12}`, CodeInvalidField, "", ""},
		{`{"type":"typing","conversation_id":"12","text":"hi"}`, CodeUnknownField, "", ""},
		{`{"type":"sync","limit":"ten"}`, CodeInvalidField, "", ""},
		{`not json`, CodeBadJSON, "", ""},
		{`[1,2]`, CodeBadJSON, "", ""},
		{`null`, CodeBadJSON, "", ""},
		{`{"id":"x"}`, CodeMissingField, "", "x"},
		{`{"type":7}`, CodeInvalidField, "", ""},
		{`{"type":"shout"}`, CodeUnknownFrame, "", ""},
		{`{"type":"ping","id":5}`, CodeInvalidField, "", ""},
		{`{"type":"ping","id":"` + strings.Repeat("x", 65) + `"}`, CodeInvalidField, "", ""},
		{`{"type":"send","message":{"from":5}}`, CodeInvalidField, "", ""},
		{`{"type":"send","message":{"conversation_id":"0"}}`, CodeInvalidField, "", ""},
	} {
		f, _, err := DecodeFrame([]byte(tc.in))
		if tc.code == "" {
			if err != nil {
				t.Errorf("%s: %v", tc.in, err)
			}
			if tc.typ != "" && f.Type != tc.typ {
				t.Errorf("%s: type %q", tc.in, f.Type)
			}
		} else if err == nil || err.Code != tc.code {
			t.Errorf("%s: got %v, want %s", tc.in, err, tc.code)
		}
		if f.ID != tc.id {
			t.Errorf("%s: id %q, want %q", tc.in, f.ID, tc.id)
		}
	}
	f, from, _ := DecodeFrame([]byte(`{"type":"send","message":{"client_msg_id":"c1","to":"bob","type":"emoji","body":{},"from":"ann"}}`))
	if f.Send == nil || f.Send.Type != "emoji" || f.Send.To != "bob" || from != "ann" {
		t.Fatalf("send payload %+v from %q", f.Send, from)
	}
}

func TestEveryCodeHasAStatus(t *testing.T) {
	for _, c := range Codes() {
		if c.Status() < 400 {
			t.Errorf("%s has status %d", c, c.Status())
		}
	}
}
