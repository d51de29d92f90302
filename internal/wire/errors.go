package wire

import (
	"errors"
	"fmt"
	"net/http"
)

// Code is an error code clients see. Every code is listed here with its HTTP status and
// documented in docs/protocol.md; nothing else may reach a client.
type Code string

// Error codes.
const (
	CodeBadJSON             Code = "bad_json"
	CodeUnknownFrame        Code = "unknown_frame"
	CodeUnknownField        Code = "unknown_field"
	CodeMissingField        Code = "missing_field"
	CodeInvalidField        Code = "invalid_field"
	CodeInvalidUserID       Code = "invalid_user_id"
	CodeInvalidRecipient    Code = "invalid_recipient"
	CodeInvalidCursor       Code = "invalid_cursor"
	CodeCursorExpired       Code = "cursor_expired"
	CodeMessageTooLarge     Code = "message_too_large"
	CodeMissingToken        Code = "missing_token"
	CodeInvalidToken        Code = "invalid_token"
	CodeTokenExpired        Code = "token_expired"
	CodeSenderMismatch      Code = "sender_mismatch"
	CodeNotParticipant      Code = "not_participant"
	CodeNotSender           Code = "not_sender"
	CodeNotGroupAdmin       Code = "not_group_admin"
	CodeOwnerImmutable      Code = "owner_immutable"
	CodeTooManyMembers      Code = "too_many_members"
	CodeRecallWindowPassed  Code = "recall_window_passed"
	CodeNotFound            Code = "not_found"
	CodeConversationMissing Code = "conversation_not_found"
	CodeMessageMissing      Code = "message_not_found"
	CodeGroupMissing        Code = "group_not_found"
	CodeDevModeOff          Code = "dev_mode_off"
	CodeForbidden           Code = "forbidden"
	CodeShopMissing         Code = "shop_not_found"
	CodeHoldMissing         Code = "hold_not_found"
	CodeAgentMissing        Code = "agent_not_found"
	CodeAgentUnavailable    Code = "agent_unavailable"
	CodeChatClosed          Code = "chat_closed"
	CodeInvalidRules        Code = "invalid_rules"
	CodeMethodNotAllowed    Code = "method_not_allowed"
	CodeRateLimited         Code = "rate_limited"
	CodeOverloaded          Code = "overloaded"
	CodeUnavailable         Code = "unavailable"
	CodeInternal            Code = "internal"
	CodeUploadTooLarge      Code = "upload_too_large"
	CodeUnsupportedMedia    Code = "unsupported_media_type"
	CodeMediaMissing        Code = "media_not_found"
	CodeMediaMismatch       Code = "media_mismatch"
	CodeThumbUnavailable    Code = "thumbnail_unavailable"
	CodeUploadExpired       Code = "upload_expired"
	CodeConflict            Code = "conflict"
)

var statuses = map[Code]int{
	CodeBadJSON:             http.StatusBadRequest,
	CodeUnknownFrame:        http.StatusBadRequest,
	CodeUnknownField:        http.StatusBadRequest,
	CodeMissingField:        http.StatusBadRequest,
	CodeInvalidField:        http.StatusBadRequest,
	CodeInvalidUserID:       http.StatusBadRequest,
	CodeInvalidRecipient:    http.StatusBadRequest,
	CodeInvalidCursor:       http.StatusBadRequest,
	CodeCursorExpired:       http.StatusGone,
	CodeMessageTooLarge:     http.StatusRequestEntityTooLarge,
	CodeMissingToken:        http.StatusUnauthorized,
	CodeInvalidToken:        http.StatusUnauthorized,
	CodeTokenExpired:        http.StatusUnauthorized,
	CodeSenderMismatch:      http.StatusForbidden,
	CodeNotParticipant:      http.StatusForbidden,
	CodeNotSender:           http.StatusForbidden,
	CodeNotGroupAdmin:       http.StatusForbidden,
	CodeOwnerImmutable:      http.StatusForbidden,
	CodeTooManyMembers:      http.StatusBadRequest,
	CodeRecallWindowPassed:  http.StatusForbidden,
	CodeNotFound:            http.StatusNotFound,
	CodeConversationMissing: http.StatusNotFound,
	CodeMessageMissing:      http.StatusNotFound,
	CodeGroupMissing:        http.StatusNotFound,
	CodeDevModeOff:          http.StatusNotFound,
	CodeForbidden:           http.StatusForbidden,
	CodeShopMissing:         http.StatusNotFound,
	CodeHoldMissing:         http.StatusNotFound,
	CodeAgentMissing:        http.StatusNotFound,
	CodeAgentUnavailable:    http.StatusConflict,
	CodeChatClosed:          http.StatusConflict,
	CodeInvalidRules:        http.StatusBadRequest,
	CodeMethodNotAllowed:    http.StatusMethodNotAllowed,
	CodeRateLimited:         http.StatusTooManyRequests,
	CodeOverloaded:          http.StatusServiceUnavailable,
	CodeUnavailable:         http.StatusServiceUnavailable,
	CodeInternal:            http.StatusInternalServerError,
	CodeUploadTooLarge:      http.StatusRequestEntityTooLarge,
	CodeUnsupportedMedia:    http.StatusUnsupportedMediaType,
	CodeMediaMissing:        http.StatusNotFound,
	CodeMediaMismatch:       http.StatusBadRequest,
	CodeThumbUnavailable:    http.StatusUnprocessableEntity,
	CodeUploadExpired:       http.StatusForbidden,
	CodeConflict:            http.StatusConflict,
}

// Codes lists every code, for documentation tests.
func Codes() []Code {
	out := make([]Code, 0, len(statuses))
	for c := range statuses {
		out = append(out, c)
	}
	return out
}

// Status is the HTTP status that goes with a code.
func (c Code) Status() int {
	if s, ok := statuses[c]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// Error is an error with a client-facing code.
type Error struct {
	Code    Code   `json:"code"`
	Message string `json:"message"`
	// Problems lists every problem of a rejected document (invalid_rules).
	Problems []Problem `json:"problems,omitempty"`
	// RetryAfter is how many seconds to wait before trying again (rate_limited,
	// overloaded, unavailable); HTTP answers carry it in the Retry-After header too.
	RetryAfter int `json:"retry_after,omitempty"`
	// Cursor is where a sync continues once the device has rebuilt its view from
	// the conversation list and history (cursor_expired): the start of the part
	// of the timeline the server still keeps.
	Cursor string `json:"cursor,omitempty"`
}

// Problem is one thing wrong with a field of a document.
type Problem struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

func (e *Error) Error() string { return string(e.Code) + ": " + e.Message }

// Errorf builds an *Error.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// AsError finds the *Error in err's chain; anything else becomes an internal error whose
// message hides the cause.
func AsError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return &Error{Code: CodeInternal, Message: "internal error"}
}

// ErrorBody is the JSON shape of every error answer.
type ErrorBody struct {
	Error *Error `json:"error"`
}
