package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/fanline/fanline/client"
	"github.com/fanline/fanline/internal/wire"
	"github.com/gorilla/websocket"
)

// device is one user's device in a fault run: an SDK client whose entries are
// recorded, and beside it a raw WebSocket that records every push frame as the
// server sent it (the SDK drops pushes it cannot place, and a push to a removed
// member is exactly what the oracle must see).
type device struct {
	user, url, token string
	c                *client.Client
	stop             context.CancelFunc
	wg               sync.WaitGroup // the recorder and the push listener
	closed           bool           // closed before the end of the run (a churned user)
}

// openDevice connects user's device to url, retrying while the deployment is faulty.
func openDevice(ctx context.Context, h *history, user, url string) (*device, error) {
	var tok string
	var c *client.Client
	err := retryCall(ctx, func(ctx context.Context) error {
		var err error
		if tok == "" {
			if tok, err = client.DevToken(ctx, url, user, "", ""); err != nil {
				return err
			}
		}
		c, err = client.Connect(ctx, client.Config{URL: url, Token: tok, BackstopSync: time.Second,
			AttemptTimeout: 2 * time.Second, MaxBackoff: 500 * time.Millisecond})
		return err
	})
	if err != nil {
		return nil, err
	}
	dctx, stop := context.WithCancel(context.Background())
	d := &device{user: user, url: url, token: tok, c: c, stop: stop}
	d.wg.Add(2)
	go func() {
		defer d.wg.Done()
		for {
			select {
			case e := <-c.Entries():
				h.view(user, e)
			case <-dctx.Done():
				return
			}
		}
	}()
	go func() {
		defer d.wg.Done()
		listenPushes(dctx, h, user, url, tok)
	}()
	return d, nil
}

// close stops the device and its recorders.
func (d *device) close() {
	d.c.Close()
	d.stop()
	d.wg.Wait()
}

// listenPushes keeps a raw WebSocket of user open (reconnecting after faults) and
// records every message frame, per connection, until ctx ends.
func listenPushes(ctx context.Context, h *history, user, url, tok string) {
	wsURL := "ws" + strings.TrimPrefix(url, "http") + "/v1/ws"
	dialer := websocket.Dialer{HandshakeTimeout: 2 * time.Second}
	hdr := http.Header{"Authorization": {"Bearer " + tok}}
	for conn := 0; ctx.Err() == nil; {
		ws, _, err := dialer.DialContext(ctx, wsURL, hdr)
		if err != nil {
			if !sleepCtx(ctx, 50*time.Millisecond) {
				return
			}
			continue
		}
		done := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { // pings keep the connection alive; ctx's end closes it
			defer wg.Done()
			t := time.NewTicker(15 * time.Second)
			defer t.Stop()
			for {
				select {
				case <-done:
					return
				case <-ctx.Done():
					ws.Close()
					return
				case <-t.C:
					ws.SetWriteDeadline(time.Now().Add(2 * time.Second))
					if ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"ping"}`)) != nil {
						ws.Close()
					}
				}
			}
		}()
		for {
			_, data, err := ws.ReadMessage()
			if err != nil {
				break
			}
			var f struct {
				Type  string      `json:"type"`
				Entry *wire.Entry `json:"entry"`
			}
			if json.Unmarshal(data, &f) == nil && f.Type == wire.FrameMessage && f.Entry != nil {
				h.frame(user, conn, *f.Entry)
			}
		}
		close(done)
		ws.Close()
		wg.Wait()
		conn++
	}
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// retryable reports whether a failed call may have failed only because of a fault:
// the server unreachable or answering unavailable, internal or overloaded.
func retryableErr(err error) bool {
	var we *wire.Error
	if !asWireError(err, &we) {
		return true // transport errors, non-JSON answers
	}
	switch we.Code {
	case wire.CodeUnavailable, wire.CodeInternal, wire.CodeOverloaded, wire.CodeRateLimited:
		return true
	}
	return false
}

func asWireError(err error, we **wire.Error) bool {
	e, ok := err.(*wire.Error)
	if ok {
		*we = e
	}
	return ok
}

// retryCall calls f until it succeeds, fails with a refusal (an error that is not
// the fault's), or ctx ends; it returns the last error.
func retryCall(ctx context.Context, f func(ctx context.Context) error) error {
	backoff := 50 * time.Millisecond
	for {
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := f(actx)
		cancel()
		if err == nil || !retryableErr(err) || ctx.Err() != nil {
			return err
		}
		if !sleepCtx(ctx, backoff) {
			return err
		}
		backoff = min(2*backoff, 500*time.Millisecond)
	}
}
