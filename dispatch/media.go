package dispatch

import (
	"context"
	"encoding/json"
	"errors"
	"io"

	"github.com/fanline/fanline/groupstream"
	"github.com/fanline/fanline/internal/wire"
	"github.com/fanline/fanline/media"
)

// The media endpoints: package media checks the bytes, the dispatcher who may
// touch them. An upload is made by a member of the conversation it is for; only its
// uploader signs its parts or completes it; it is downloaded by its uploader and by
// those who may read a message of that conversation that carries it and was not
// recalled. Everyone else is told it does not exist.

func (d *Dispatcher) mediaStore() (*media.Store, error) {
	if d.cfg.Media == nil {
		return nil, wire.Errorf(wire.CodeUnavailable, "media storage is not configured on this node")
	}
	return d.cfg.Media, nil
}

// CreateUpload starts an upload by who into a conversation who may send in.
func (d *Dispatcher) CreateUpload(ctx context.Context, who wire.Principal, req wire.UploadRequest) (wire.Upload, error) {
	ms, err := d.mediaStore()
	if err != nil {
		return wire.Upload{}, err
	}
	if err := ms.CheckRequest(req); err != nil {
		return wire.Upload{}, err
	}
	if err := d.writable(); err != nil {
		return wire.Upload{}, err
	}
	// Who may send into the conversation: its members, and in a shop chat its
	// buyer and the agent serving it.
	c, _, err := d.member(ctx, who, uint64(req.ConversationID))
	if err != nil {
		return wire.Upload{}, err
	}
	if c.Kind == groupstream.KindShop {
		if _, err := d.shopSender(c, who); err != nil {
			return wire.Upload{}, err
		}
	}
	return ms.Create(ctx, who.Inbox(), req)
}

// UploadParts signs the part URLs of who's multipart upload.
func (d *Dispatcher) UploadParts(ctx context.Context, who wire.Principal, key string, req wire.PartsRequest) (wire.UploadParts, error) {
	ms, err := d.mediaStore()
	if err != nil {
		return wire.UploadParts{}, err
	}
	return ms.Parts(ctx, who.Inbox(), key, req.Parts)
}

// CompleteUpload finishes who's multipart upload.
func (d *Dispatcher) CompleteUpload(ctx context.Context, who wire.Principal, key string, req wire.CompleteRequest) (wire.MediaObject, error) {
	ms, err := d.mediaStore()
	if err != nil {
		return wire.MediaObject{}, err
	}
	return ms.Complete(ctx, who.Inbox(), key, req.Parts)
}

// PutUpload stores the bytes of an upload sent to fanline itself; the URL's token
// (signed by CreateUpload) is the authorisation.
func (d *Dispatcher) PutUpload(ctx context.Context, key, token string, size int64, mime string, body io.Reader) (wire.MediaObject, error) {
	ms, err := d.mediaStore()
	if err != nil {
		return wire.MediaObject{}, err
	}
	if err := d.writable(); err != nil {
		return wire.MediaObject{}, err
	}
	return ms.Put(ctx, key, token, size, mime, body)
}

// Media serves an object (side > 0: its thumbnail) to who, if who may see it.
func (d *Dispatcher) Media(ctx context.Context, who wire.Principal, key string, side int) (wire.MediaFile, error) {
	ms, err := d.mediaStore()
	if err != nil {
		return wire.MediaFile{}, err
	}
	if side != 0 && !media.ValidThumb(side) {
		return wire.MediaFile{}, wire.Errorf(wire.CodeInvalidField, "thumb must be 256 or 512")
	}
	r, err := ms.Lookup(ctx, key)
	if err != nil {
		return wire.MediaFile{}, err
	}
	if r.Uploader != who.Inbox() {
		ok, err := d.maySee(ctx, who, r)
		if err != nil {
			return wire.MediaFile{}, err
		}
		if !ok {
			return wire.MediaFile{}, wire.Errorf(wire.CodeMediaMissing, "no media object %q", key)
		}
	}
	return ms.Open(ctx, r, side)
}

// maySee reports whether who may read a message of r's conversation that carries
// it and was not recalled. Such a message may live in any tier: archived media
// stays downloadable.
func (d *Dispatcher) maySee(ctx context.Context, who wire.Principal, r media.Record) (bool, error) {
	_, mem, err := d.member(ctx, who, r.Conv)
	if err != nil {
		if c := wire.AsError(err).Code; c == wire.CodeNotParticipant || c == wire.CodeConversationMissing {
			return false, nil
		}
		return false, err
	}
	for _, id := range r.Carriers() {
		m, err := d.streams.Message(ctx, id)
		if errors.Is(err, groupstream.ErrNotFound) {
			continue // the send failed after the object was attached, or retention took it
		}
		if err != nil {
			return false, err
		}
		if m.ConversationID == r.Conv && !m.Recalled() && visible(m, mem) {
			return true, nil
		}
	}
	return false, nil
}

// attachMedia checks a media message's object before the send is acknowledged and
// records the message on it (so it is never swept as an orphan, and the
// conversation's members may download it). Bodies with a url are not ours to check.
func (d *Dispatcher) attachMedia(ctx context.Context, sender string, conv uint64, req wire.SendRequest, msgID uint64) error {
	if req.Type != "image" && req.Type != "video" && req.Type != "file" {
		return nil
	}
	var b struct {
		ObjectKey string `json:"object_key"`
		MimeType  string `json:"mime_type"`
		Size      int64  `json:"size"`
	}
	if err := json.Unmarshal(req.Body, &b); err != nil || b.ObjectKey == "" {
		return nil // validated already: a url body
	}
	if d.cfg.Media == nil {
		return wire.Errorf(wire.CodeMediaMissing, "no media object %q: media storage is not configured", b.ObjectKey)
	}
	return d.cfg.Media.Attach(ctx, sender, conv, b.ObjectKey, b.MimeType, b.Size, msgID)
}
