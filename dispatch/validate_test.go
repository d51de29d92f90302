package dispatch

import (
	"strings"
	"testing"

	"github.com/fanline/fanline/internal/wire"
)

func TestValidateSend(t *testing.T) {
	ok := func(typ, body string) wire.SendRequest {
		return wire.SendRequest{ClientMsgID: "c1", To: "bob", Type: typ, Body: []byte(body)}
	}
	for _, tc := range []struct {
		name string
		req  wire.SendRequest
		code wire.Code
	}{
		{"text", ok("text", `{"text":"hi"}`), ""},
		{"text with extras", ok("text", `{"text":"hi","mentions":["bob"]}`), ""},
		{"emoji", ok("emoji", `{"emoji":"smile"}`), ""},
		{"image by url", ok("image", `{"url":"https://x/y.png","mime_type":"image/png","size":10,"width":4,"height":3}`), ""},
		{"video by key", ok("video", `{"object_key":"k","mime_type":"video/mp4","size":10,"duration_ms":900}`), ""},
		{"file", ok("file", `{"url":"u","mime_type":"application/pdf","size":10,"name":"a.pdf"}`), ""},
		{"custom", ok("custom", `{"card":{"order":"o1"}}`), ""},
		{"no client_msg_id", wire.SendRequest{To: "bob", Type: "text", Body: []byte(`{"text":"x"}`)}, wire.CodeMissingField},
		{"long client_msg_id", wire.SendRequest{ClientMsgID: strings.Repeat("c", 65), To: "bob", Type: "text", Body: []byte(`{"text":"x"}`)}, wire.CodeInvalidField},
		{"no target", wire.SendRequest{ClientMsgID: "c", Type: "text", Body: []byte(`{"text":"x"}`)}, wire.CodeInvalidField},
		{"bad recipient", wire.SendRequest{ClientMsgID: "c", To: "b/b", Type: "text", Body: []byte(`{"text":"x"}`)}, wire.CodeInvalidUserID},
		{"no type", ok("", `{"text":"x"}`), wire.CodeMissingField},
		{"unknown type", ok("audio", `{}`), wire.CodeInvalidField},
		{"no body", ok("text", ``), wire.CodeMissingField},
		{"body array", ok("custom", `[]`), wire.CodeInvalidField},
		{"body null", ok("custom", `null`), wire.CodeInvalidField},
		{"too large", ok("text", `{"text":"`+strings.Repeat("x", 200)+`"}`), wire.CodeMessageTooLarge},
		{"text number", ok("text", `{"text":5}`), wire.CodeInvalidField},
		{"text blank", ok("text", `{"text":" \n"}`), wire.CodeInvalidField},
		{"emoji too long", ok("emoji", `{"emoji":"`+strings.Repeat("e", 65)+`"}`), wire.CodeInvalidField},
		{"image both url and key", ok("image", `{"url":"u","object_key":"k","mime_type":"image/png","size":1}`), wire.CodeInvalidField},
		{"image neither", ok("image", `{"mime_type":"image/png","size":1}`), wire.CodeInvalidField},
		{"image wrong mime", ok("image", `{"url":"u","mime_type":"video/mp4","size":1}`), wire.CodeInvalidField},
		{"image zero size", ok("image", `{"url":"u","mime_type":"image/png","size":0}`), wire.CodeInvalidField},
		{"image negative width", ok("image", `{"url":"u","mime_type":"image/png","size":1,"width":-1}`), wire.CodeInvalidField},
		{"file bad mime", ok("file", `{"url":"u","mime_type":"pdf","size":1,"name":"a"}`), wire.CodeInvalidField},
		{"file no name", ok("file", `{"url":"u","mime_type":"a/b","size":1}`), wire.CodeMissingField},
	} {
		req := tc.req
		err := validateSend(&req, 120)
		if tc.code == "" && err != nil {
			t.Errorf("%s: %v", tc.name, err)
		}
		if tc.code != "" && (err == nil || err.Code != tc.code) {
			t.Errorf("%s: got %v, want %s", tc.name, err, tc.code)
		}
	}
	req := ok("text", "{ \"text\" :\n \"hi\" }")
	if err := validateSend(&req, 64); err != nil || string(req.Body) != `{"text":"hi"}` {
		t.Errorf("body not compacted: %s %v", req.Body, err)
	}
}
