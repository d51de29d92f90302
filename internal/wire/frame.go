package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"sort"
	"strings"
)

// Client -> server frame types.
const (
	FrameSend = "send"
	FrameSync = "sync"
	FrameRead = "read"
	FramePing = "ping"
	// FrameAuth carries the token as a connection's first frame, when the request
	// had none.
	FrameAuth = "auth"
	// FrameTyping says the user is typing in a conversation; the server pushes it
	// on to the other participants as a typing frame of its own.
	FrameTyping = "typing"
)

// Server -> client frame types.
const (
	FrameAck     = "ack"
	FrameError   = "error"
	FrameMessage = "message"
	FramePong    = "pong"
	FrameCS      = "cs"
)

// MaxFrameIDLen bounds the id a client puts on a frame.
const MaxFrameIDLen = 64

// SyncRequest is the payload of the sync frame and the query of GET /v1/sync.
type SyncRequest struct {
	Cursor string `json:"cursor,omitempty"`
	Limit  int    `json:"limit,omitempty"`
	// GroupSeqs are the device's own positions in large groups (group id ->
	// group_seq it has every entry up to); they win over the cursor's when higher.
	GroupSeqs map[string]uint64 `json:"group_seqs,omitempty"`
}

// ClientFrame is a decoded client frame: Type and ID, and the payload of that type.
type ClientFrame struct {
	Type string
	ID   string
	Send *SendRequest
	Sync *SyncRequest
	Read *ReadRequest
	// Typing is a typing frame's conversation.
	Typing ID
	// Token is an auth frame's.
	Token string
}

// ServerFrame is every frame the server writes. Which fields are set depends on Type:
// ack carries Result, error carries Code and Message (and Cursor for cursor_expired),
// message carries Entry and Cursor, typing ConversationID and From.
type ServerFrame struct {
	Type    string `json:"type"`
	ID      string `json:"id,omitempty"`
	Result  any    `json:"result,omitempty"`
	Code    Code   `json:"code,omitempty"`
	Message string `json:"message,omitempty"`
	// RetryAfter is an error's wait in seconds before a retry (rate_limited).
	RetryAfter int    `json:"retry_after,omitempty"`
	Entry      *Entry `json:"entry,omitempty"`
	Cursor     string `json:"cursor,omitempty"`
	// Event, Chat and Live make a cs frame: a customer-service chat changed (to its
	// buyer and agents), or a shop's live stats (to its agents and admins).
	Event string     `json:"event,omitempty"`
	Chat  *ChatState `json:"chat,omitempty"`
	Live  any        `json:"live,omitempty"`
	// ConversationID and From make a typing frame: From (a user id, or the shop's
	// id for its agents, as in the shop's messages) is typing in the conversation.
	ConversationID ID     `json:"conversation_id,omitempty"`
	From           string `json:"from,omitempty"`
}

// SendFields are the fields of a send: the body of POST /v1/messages, and the "message"
// object of the send frame (the frame's own "type" is "send", so the message, which has
// a "type" of its own, travels nested).
var SendFields = []string{"client_msg_id", "to", "conversation_id", "group_id", "type", "body", "from"}

var frameFields = map[string][]string{
	FrameSend:   {"message"},
	FrameSync:   {"cursor", "limit", "group_seqs"},
	FrameRead:   {"conversation_id", "msg_id"},
	FramePing:   {},
	FrameAuth:   {"token"},
	FrameTyping: {"conversation_id"},
}

// DecodeFrame parses one client frame. It never panics; every problem is an *Error with
// a code from this package. The frame's id is returned even when the rest is invalid,
// so the error can be answered by id. A send frame's optional "from" must be checked
// against the connection's user by the caller (it is returned in SendFrom).
func DecodeFrame(data []byte) (f ClientFrame, sendFrom string, err *Error) {
	var raw map[string]json.RawMessage
	if e := json.Unmarshal(data, &raw); e != nil || raw == nil {
		return f, "", Errorf(CodeBadJSON, "a frame must be one JSON object")
	}
	if v, ok := raw["id"]; ok {
		if e := json.Unmarshal(v, &f.ID); e != nil {
			return f, "", Errorf(CodeInvalidField, "id must be a string")
		}
		if len(f.ID) > MaxFrameIDLen {
			f.ID = ""
			return f, "", Errorf(CodeInvalidField, "id longer than %d characters", MaxFrameIDLen)
		}
	}
	v, ok := raw["type"]
	if !ok {
		return f, "", Errorf(CodeMissingField, "type is required")
	}
	if e := json.Unmarshal(v, &f.Type); e != nil {
		return f, "", Errorf(CodeInvalidField, "type must be a string")
	}
	allowed, ok := frameFields[f.Type]
	if !ok {
		return f, "", Errorf(CodeUnknownFrame, "unknown frame type %q", f.Type)
	}
	if e := checkFields(raw, allowed, "type", "id"); e != nil {
		return f, "", e
	}
	switch f.Type {
	case FrameSend:
		msg, ok := raw["message"]
		if !ok {
			return f, "", Errorf(CodeMissingField, "message is required")
		}
		var body SendBody
		if e := DecodeBody(msg, &body, SendFields); e != nil {
			return f, "", e
		}
		f.Send, sendFrom = &body.SendRequest, body.From
	case FrameSync:
		f.Sync = new(SyncRequest)
		if e := decodeStrict(data, f.Sync); e != nil {
			return f, "", e
		}
	case FrameRead:
		f.Read = new(ReadRequest)
		if e := decodeStrict(data, f.Read); e != nil {
			return f, "", e
		}
	case FrameTyping:
		var t struct {
			ConversationID ID `json:"conversation_id"`
		}
		if e := decodeStrict(data, &t); e != nil {
			return f, "", e
		}
		if t.ConversationID == 0 {
			return f, "", Errorf(CodeMissingField, "conversation_id is required")
		}
		f.Typing = t.ConversationID
	case FrameAuth:
		var a struct {
			Token string `json:"token"`
		}
		if e := decodeStrict(data, &a); e != nil {
			return f, "", e
		}
		if a.Token == "" {
			return f, "", Errorf(CodeMissingToken, "token is required")
		}
		f.Token = a.Token
	}
	return f, sendFrom, nil
}

// DecodeBody parses a JSON request body into v, rejecting fields v does not have
// (other than those in extra) and trailing data.
func DecodeBody(data []byte, v any, allowed []string, extra ...string) *Error {
	var raw map[string]json.RawMessage
	if e := json.Unmarshal(data, &raw); e != nil || raw == nil {
		return Errorf(CodeBadJSON, "the body must be one JSON object")
	}
	if e := checkFields(raw, allowed, extra...); e != nil {
		return e
	}
	return decodeStrict(data, v)
}

// SendBody is a send as it arrives: the request and the optional "from", which must
// name the token's user.
type SendBody struct {
	SendRequest
	From string `json:"from,omitempty"`
}

func checkFields(raw map[string]json.RawMessage, allowed []string, extra ...string) *Error {
	var unknown []string
	for k := range raw {
		if !contains(allowed, k) && !contains(extra, k) {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return Errorf(CodeUnknownField, "unknown field(s): %s", strings.Join(unknown, ", "))
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// decodeStrict decodes data into v; a value of the wrong type is invalid_field. Unknown
// fields were rejected before, so they are ignored here (type, id, from).
func decodeStrict(data []byte, v any) *Error {
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return Errorf(CodeInvalidField, "%s has the wrong type", te.Field)
		}
		return Errorf(CodeInvalidField, "%s", strings.TrimPrefix(err.Error(), "json: "))
	}
	return nil
}
