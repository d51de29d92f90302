package e2e

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/fanline/fanline/internal/config"
	"github.com/fanline/fanline/internal/wire"
)

// TestConsoleMediaMinIO: with media on MinIO the console's thumbnails come from a
// presigned URL on another origin (the 302 the media endpoint answers), which the
// browser follows.
func TestConsoleMediaMinIO(t *testing.T) {
	srv, _ := mediaMinIO(t)
	ts := startServer(t, func(cfg *config.Config) { onMinIO(cfg, srv) })
	ctx := context.Background()
	buyer := connect(t, ts.URL, "carla")
	conv := shopChat(t, ts.URL, buyer)
	agent := signInConsole(t, ts.URL, "ann", wire.RoleAgent, "acme")
	agent.Click(`[data-status=online]`)
	agent.WaitText("#chats", "carla")
	agent.Click("#chats li")
	agent.WaitText("#messages", "where is my parcel")
	photo, _, _ := noisePNG(t, 512, 512)
	key, err := buyer.Upload(ctx, conv, bytes.NewReader(photo), int64(len(photo)), "image/png", "broken.png")
	if err != nil {
		t.Fatal(err)
	}
	body := fmt.Sprintf(`{"object_key":%q,"mime_type":"image/png","size":%d}`, key, len(photo))
	if _, err := buyer.Send(ctx, wire.SendRequest{ConversationID: conv, Type: "image", Body: []byte(body)}); err != nil {
		t.Fatal(err)
	}
	agent.Wait(`(() => { const i = document.querySelector("#messages img.thumb"); return i && i.complete && i.naturalWidth === 256; })()`)
}
