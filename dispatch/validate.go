package dispatch

import (
	"bytes"
	"encoding/json"
	"strings"

	"github.com/fanline/fanline/internal/wire"
)

// Message types.
var messageTypes = map[string]func(map[string]json.RawMessage) *wire.Error{
	"text":   validateText,
	"emoji":  validateEmoji,
	"image":  func(b map[string]json.RawMessage) *wire.Error { return validateMedia(b, "image/", false) },
	"video":  func(b map[string]json.RawMessage) *wire.Error { return validateMedia(b, "video/", false) },
	"file":   func(b map[string]json.RawMessage) *wire.Error { return validateMedia(b, "", true) },
	"custom": func(map[string]json.RawMessage) *wire.Error { return nil },
}

// validateSend checks a send request's shape, sizes and body. It does not look anything
// up.
func validateSend(req *wire.SendRequest, maxBody int) *wire.Error {
	if req.ClientMsgID == "" {
		return wire.Errorf(wire.CodeMissingField, "client_msg_id is required")
	}
	if !wire.ValidClientMsgID(req.ClientMsgID) {
		return wire.Errorf(wire.CodeInvalidField, "client_msg_id must be 1-64 characters of [A-Za-z0-9_.:@-]")
	}
	targets := 0
	for _, set := range []bool{req.To != "", req.ConversationID != 0, req.GroupID != 0} {
		if set {
			targets++
		}
	}
	if targets != 1 {
		return wire.Errorf(wire.CodeInvalidField, "exactly one of to, conversation_id, group_id is required")
	}
	if req.To != "" && !wire.ValidUserID(req.To) {
		return wire.Errorf(wire.CodeInvalidUserID, "to must be 1-64 characters of [A-Za-z0-9_.:@-]")
	}
	if req.Type == "" {
		return wire.Errorf(wire.CodeMissingField, "type is required")
	}
	check, ok := messageTypes[req.Type]
	if !ok {
		return wire.Errorf(wire.CodeInvalidField, "type must be one of text, emoji, image, video, file, custom")
	}
	if len(req.Body) == 0 {
		return wire.Errorf(wire.CodeMissingField, "body is required")
	}
	if len(req.Body) > maxBody {
		return wire.Errorf(wire.CodeMessageTooLarge, "body is %d bytes, the limit is %d", len(req.Body), maxBody)
	}
	var body map[string]json.RawMessage
	if err := json.Unmarshal(req.Body, &body); err != nil || body == nil {
		return wire.Errorf(wire.CodeInvalidField, "body must be a JSON object")
	}
	// Store the body compact: what is stored and pushed is what was validated.
	var buf bytes.Buffer
	if err := json.Compact(&buf, req.Body); err != nil {
		return wire.Errorf(wire.CodeInvalidField, "body must be a JSON object")
	}
	req.Body = buf.Bytes()
	return check(body)
}

func stringField(b map[string]json.RawMessage, name string, maxLen int, required bool) (string, *wire.Error) {
	raw, ok := b[name]
	if !ok {
		if required {
			return "", wire.Errorf(wire.CodeMissingField, "body.%s is required", name)
		}
		return "", nil
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return "", wire.Errorf(wire.CodeInvalidField, "body.%s must be a string", name)
	}
	if s == "" && required {
		return "", wire.Errorf(wire.CodeInvalidField, "body.%s must not be empty", name)
	}
	if len(s) > maxLen {
		return "", wire.Errorf(wire.CodeInvalidField, "body.%s is longer than %d bytes", name, maxLen)
	}
	return s, nil
}

func validateText(b map[string]json.RawMessage) *wire.Error {
	s, err := stringField(b, "text", 1<<30, true)
	if err == nil && strings.TrimSpace(s) == "" {
		err = wire.Errorf(wire.CodeInvalidField, "body.text must not be blank")
	}
	return err
}

func validateEmoji(b map[string]json.RawMessage) *wire.Error {
	_, err := stringField(b, "emoji", 64, true)
	return err
}

func validateMedia(b map[string]json.RawMessage, mimePrefix string, needName bool) *wire.Error {
	url, err := stringField(b, "url", 2048, false)
	if err != nil {
		return err
	}
	key, err := stringField(b, "object_key", 1024, false)
	if err != nil {
		return err
	}
	if (url == "") == (key == "") {
		return wire.Errorf(wire.CodeInvalidField, "body needs exactly one of url, object_key")
	}
	mime, err := stringField(b, "mime_type", 255, true)
	if err != nil {
		return err
	}
	if !strings.HasPrefix(mime, mimePrefix) || !strings.Contains(mime, "/") {
		want := mimePrefix + "*"
		if mimePrefix == "" {
			want = "type/subtype"
		}
		return wire.Errorf(wire.CodeInvalidField, "body.mime_type must be %s", want)
	}
	raw, ok := b["size"]
	if !ok {
		return wire.Errorf(wire.CodeMissingField, "body.size is required")
	}
	var size int64
	if json.Unmarshal(raw, &size) != nil || size <= 0 {
		return wire.Errorf(wire.CodeInvalidField, "body.size must be a positive integer (bytes)")
	}
	for _, dim := range []string{"width", "height", "duration_ms"} {
		if raw, ok := b[dim]; ok {
			var v int64
			if json.Unmarshal(raw, &v) != nil || v < 0 {
				return wire.Errorf(wire.CodeInvalidField, "body.%s must be a non-negative integer", dim)
			}
		}
	}
	if needName {
		if _, err := stringField(b, "name", 255, true); err != nil {
			return err
		}
	}
	return nil
}
