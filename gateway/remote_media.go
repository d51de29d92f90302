package gateway

import (
	"context"
	"io"

	"github.com/fanline/fanline/internal/wire"
)

// mediaMethods are the internal API's media calls. The bytes of an upload or a
// download never cross it: in a split deployment they go to object storage
// directly (coldstore.backend minio), by the URLs the dispatch node signs.
func mediaMethods(svc Service) map[string]rpcMethod {
	return map[string]rpcMethod{
		"create_upload": func(ctx context.Context, a rpcArgs) (any, error) { return svc.CreateUpload(ctx, a.Who, *a.Upload) },
		"upload_parts": func(ctx context.Context, a rpcArgs) (any, error) {
			return svc.UploadParts(ctx, a.Who, a.Key, *a.Parts)
		},
		"complete_upload": func(ctx context.Context, a rpcArgs) (any, error) {
			return svc.CompleteUpload(ctx, a.Who, a.Key, *a.Complete)
		},
		"media": func(ctx context.Context, a rpcArgs) (any, error) {
			f, err := svc.Media(ctx, a.Who, a.Key, a.Side)
			if f.Content != nil { // bytes of the dir store: this node serves them, not the caller
				f.Content.Close()
				f.Content = nil
			}
			return f, err
		},
	}
}

// CreateUpload implements Service.
func (r *Remote) CreateUpload(ctx context.Context, who wire.Principal, req wire.UploadRequest) (wire.Upload, error) {
	return remoteCall[wire.Upload](ctx, r, "create_upload", rpcArgs{Who: who, Upload: &req})
}

// UploadParts implements Service.
func (r *Remote) UploadParts(ctx context.Context, who wire.Principal, key string, req wire.PartsRequest) (wire.UploadParts, error) {
	return remoteCall[wire.UploadParts](ctx, r, "upload_parts", rpcArgs{Who: who, Key: key, Parts: &req})
}

// CompleteUpload implements Service.
func (r *Remote) CompleteUpload(ctx context.Context, who wire.Principal, key string, req wire.CompleteRequest) (wire.MediaObject, error) {
	return remoteCall[wire.MediaObject](ctx, r, "complete_upload", rpcArgs{Who: who, Key: key, Complete: &req})
}

// PutUpload implements Service: a gateway-only node does not take upload bytes.
func (r *Remote) PutUpload(context.Context, string, string, int64, string, io.Reader) (wire.MediaObject, error) {
	return wire.MediaObject{}, wire.Errorf(wire.CodeUnavailable,
		"uploads to fanline itself need coldstore.backend dir on a single node; a split deployment uploads to MinIO (coldstore.backend minio)")
}

// Media implements Service. The answer is a URL to redirect to; without one (the
// dir store) the gateway says this node cannot serve the bytes.
func (r *Remote) Media(ctx context.Context, who wire.Principal, key string, side int) (wire.MediaFile, error) {
	return remoteCall[wire.MediaFile](ctx, r, "media", rpcArgs{Who: who, Key: key, Side: side})
}
