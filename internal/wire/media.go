package wire

import (
	"io"
	"time"
)

// UploadRequest is the body of POST /v1/uploads: what the client is about to upload
// and into which conversation.
type UploadRequest struct {
	ConversationID ID     `json:"conversation_id"`
	MimeType       string `json:"mime_type"`
	Size           int64  `json:"size"`
	Name           string `json:"name,omitempty"`
	// SHA256 (hex) is checked against the bytes stored; an identical object the
	// caller already uploaded into the conversation is answered instead of a new one.
	SHA256 string `json:"sha256,omitempty"`
}

// UploadFields are the fields an UploadRequest may have.
var UploadFields = []string{"conversation_id", "mime_type", "size", "name", "sha256"}

// Upload answers POST /v1/uploads: the object key a media message will carry and
// how to send the bytes. Either one PUT of the whole file to UploadURL with Headers,
// or (Multipart) its parts, each to a URL from POST /v1/uploads/{key}/parts, then
// POST /v1/uploads/{key}/complete. Uploaded: the same bytes are stored already
// (sha256), nothing to send.
type Upload struct {
	ObjectKey string            `json:"object_key"`
	UploadURL string            `json:"upload_url,omitempty"`
	Method    string            `json:"method,omitempty"`
	Headers   map[string]string `json:"headers,omitempty"`
	ExpiresAt time.Time         `json:"expires_at,omitzero"`
	Multipart *Multipart        `json:"multipart,omitempty"`
	Uploaded  bool              `json:"uploaded,omitempty"`
}

// Multipart says how a large upload is cut: Parts parts of PartSize bytes, the
// last one holding the rest.
type Multipart struct {
	PartSize int64 `json:"part_size"`
	Parts    int   `json:"parts"`
}

// PartsRequest is the body of POST /v1/uploads/{key}/parts: the part numbers
// (1-based) to sign URLs for; empty: all of them.
type PartsRequest struct {
	Parts []int `json:"parts,omitempty"`
}

// PartURL is where one part goes: PUT its Size bytes to URL with Headers.
type PartURL struct {
	Number  int               `json:"number"`
	Size    int64             `json:"size"`
	URL     string            `json:"url"`
	Headers map[string]string `json:"headers"`
}

// UploadParts answers POST /v1/uploads/{key}/parts.
type UploadParts struct {
	Parts     []PartURL `json:"parts"`
	ExpiresAt time.Time `json:"expires_at"`
}

// UploadedPart is one part as its PUT answered it (the ETag header).
type UploadedPart struct {
	Number int    `json:"number"`
	ETag   string `json:"etag"`
}

// CompleteRequest is the body of POST /v1/uploads/{key}/complete: every part.
type CompleteRequest struct {
	Parts []UploadedPart `json:"parts"`
}

// MediaObject describes a stored upload (the answer of complete, and of the
// embedded PUT).
type MediaObject struct {
	ObjectKey string `json:"object_key"`
	MimeType  string `json:"mime_type"`
	Size      int64  `json:"size"`
	Name      string `json:"name,omitempty"`
	SHA256    string `json:"sha256,omitempty"`
}

// MediaFile is what GET /v1/media/{key} serves: a short-lived URL to redirect to
// (object storage clients reach directly), or the bytes themselves (Content, never
// on the wire; the gateway streams it with Range support).
type MediaFile struct {
	URL      string `json:"url,omitempty"`
	MimeType string `json:"mime_type"`
	Size     int64  `json:"size"`
	Name     string `json:"name,omitempty"`
	// Disposition is the Content-Disposition to serve it with: inline for
	// raster images and video, else attachment.
	Disposition string            `json:"disposition,omitempty"`
	ModTime     time.Time         `json:"mod_time,omitzero"`
	Content     io.ReadSeekCloser `json:"-"`
}
