package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/fanline/fanline/client"
	"github.com/gorilla/websocket"
)

// Lean receivers (--receivers lean) stand in for group members that only read: a
// bare WebSocket that finds a pushed message's ids in the frame's bytes, without
// decoding it, syncing or keeping a timeline. On a box the server shares with the
// bench, the SDK's receivers' CPU competes with the server's; these cost a few
// microseconds a frame, so the figures are the server's.

// leanConn is a lean receiver's connection; only its reader and the pinger use it.
type leanConn struct {
	ws *websocket.Conn
	mu sync.Mutex // serialises the pinger's writes
}

// dialLean connects user with a dev token, from localAddr when set.
func dialLean(ctx context.Context, o benchOptions, user, localAddr string) (*leanConn, error) {
	tok, err := client.DevToken(ctx, o.url, user, "", "")
	if err != nil {
		return nil, fmt.Errorf("token for %s: %w", user, err)
	}
	nd := &net.Dialer{Timeout: 10 * time.Second}
	if localAddr != "" {
		nd.LocalAddr = &net.TCPAddr{IP: net.ParseIP(localAddr)}
	}
	d := websocket.Dialer{NetDialContext: nd.DialContext, HandshakeTimeout: 10 * time.Second}
	u := "ws" + strings.TrimPrefix(o.url, "http") + "/v1/ws"
	ws, _, err := d.DialContext(ctx, u, http.Header{"Authorization": {"Bearer " + tok}})
	if err != nil {
		return nil, fmt.Errorf("connect %s: %w", user, err)
	}
	return &leanConn{ws: ws}, nil
}

// read calls got(msgID) for every message entry of conversation conv pushed to c,
// until the connection closes.
func (c *leanConn) read(conv string, got func(msgID string)) {
	convField := []byte(`"conversation_id":"` + conv + `"`)
	for {
		_, data, err := c.ws.ReadMessage()
		if err != nil {
			return
		}
		if !bytes.Contains(data, []byte(`"kind":"message"`)) || !bytes.Contains(data, convField) {
			continue
		}
		if id, ok := jsonString(data, `"msg_id":"`); ok {
			got(id)
		}
	}
}

// jsonString is the string value after key (a `"name":"` prefix) in data.
func jsonString(data []byte, key string) (string, bool) {
	i := bytes.Index(data, []byte(key))
	if i < 0 {
		return "", false
	}
	rest := data[i+len(key):]
	j := bytes.IndexByte(rest, '"')
	if j < 0 {
		return "", false
	}
	return string(rest[:j]), true
}

// pingLean pings every connection every 20 s (the server drops a silent one after
// its heartbeat timeout) until ctx ends.
func pingLean(ctx context.Context, cs []*leanConn) {
	t := time.NewTicker(20 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			for _, c := range cs {
				c.mu.Lock()
				_ = c.ws.SetWriteDeadline(time.Now().Add(5 * time.Second))
				_ = c.ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"ping"}`))
				c.mu.Unlock()
			}
		}
	}
}

// dialLeanUsers connects users [lo, hi) as lean receivers.
func dialLeanUsers(ctx context.Context, o benchOptions, lo, hi int) ([]*leanConn, error) {
	cs, err := dialEach(hi-lo, func(i int) (*leanConn, error) {
		return dialLean(ctx, o, userName(o, lo+i), localAddr(o, lo+i))
	})
	if err != nil {
		closeLean(cs)
	}
	return cs, err
}

func closeLean(cs []*leanConn) {
	for _, c := range cs {
		if c != nil {
			c.ws.Close()
		}
	}
}
