package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fanline/fanline/client"
	"github.com/fanline/fanline/internal/testharness"
	"github.com/fanline/fanline/internal/wire"
	"github.com/gorilla/websocket"
)

// Bounds of TestFloodIsLimited: generous, far above what the run uses (see its log),
// far below what the same flood costs without limits.
const (
	floodFor     = 30 * time.Second
	floodMaxRSS  = 512 << 20 // bytes
	victimMaxP99 = 2 * time.Second
)

// TestFloodIsLimited floods a server process (default limits) for 30 s from a few
// users with the expensive calls: 2,000-member groups, chats with shops that do not
// exist, member changes, and frames on a WebSocket. Each flooder gets 429s with
// Retry-After (the WebSocket that ignores them is closed with 4029), the server's
// resident memory stays under a bound, and another user's messages keep being
// acknowledged quickly.
func TestFloodIsLimited(t *testing.T) {
	if testing.Short() {
		t.Skip("floods a server process for 30 s")
	}
	addr := testharness.FreeAddr(t)
	data := filepath.Join(t.TempDir(), "data")
	proc := testharness.StartServer(t, addr, data)
	url := proc.URL()
	ctx, cancel := context.WithTimeout(context.Background(), floodFor)
	defer cancel()

	type tally struct{ ok, limited, other, noRetryAfter atomic.Int64 }
	tallies := map[string]*tally{}
	var wg sync.WaitGroup
	hc := &http.Client{Timeout: 30 * time.Second}
	post := func(tl *tally, path, tok string, body any) {
		b, _ := json.Marshal(body)
		req, _ := http.NewRequestWithContext(ctx, "POST", url+path, bytes.NewReader(b))
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := hc.Do(req)
		if err != nil {
			return // the flood's end cancels requests in flight
		}
		resp.Body.Close()
		switch resp.StatusCode {
		case 200:
			tl.ok.Add(1)
		case 429:
			tl.limited.Add(1)
			if resp.Header.Get("Retry-After") == "" {
				tl.noRetryAfter.Add(1)
			}
		default:
			tl.other.Add(1)
		}
	}
	members := make([]string, 2000)
	for i := range members {
		members[i] = "member-" + strconv.Itoa(i)
	}
	flood := func(name string, call func(tl *tally, tok string, i int)) {
		tl := new(tally)
		tallies[name] = tl
		tok := token(t, url, name)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				call(tl, tok, i)
			}
		}()
	}
	flood("groups-1", func(tl *tally, tok string, i int) {
		post(tl, "/v1/groups", tok, map[string]any{"name": "g", "members": members})
	})
	flood("groups-2", func(tl *tally, tok string, i int) {
		post(tl, "/v1/groups", tok, map[string]any{"name": "g", "members": members})
	})
	flood("shops", func(tl *tally, tok string, i int) {
		post(tl, "/v1/shops/shop-"+strconv.Itoa(i)+"/chats", tok, map[string]any{"entry": "product", "text": "hi"})
	})
	flood("members", func(tl *tally, tok string, i int) {
		// One group, then churn its membership.
		g, err := client.Connect(ctx, client.Config{URL: url, Token: tok})
		if err != nil {
			return
		}
		defer g.Close()
		grp, err := g.CreateGroup(ctx, "churn", members[:10]...)
		if err != nil {
			return
		}
		for j := 0; ctx.Err() == nil; j++ {
			batch := members[(j%20)*100 : (j%20)*100+100]
			post(tl, "/v1/groups/"+grp.GroupID.String()+"/members", tok, map[string]any{"add": batch})
			post(tl, "/v1/groups/"+grp.GroupID.String()+"/members", tok, map[string]any{"remove": batch})
		}
	})
	// WebSocket frames as fast as the socket takes them: pings, every 100th a
	// sync. A connection's frames are handled one at a time, so they reach the
	// budget only as fast as the server answers them; on a loaded machine (the
	// race detector, the other flooders) a sync can take 150 ms, and a stream of
	// mostly syncs is then slower than the budget refills: no flood at all.
	frames := new(tally)
	tallies["frames"] = frames
	var closedForFlood atomic.Bool
	ftok := token(t, url, "frames")
	wg.Add(1)
	go func() {
		defer wg.Done()
		ws, _, err := websocket.DefaultDialer.Dial(wsURL(url), http.Header{"Authorization": {"Bearer " + ftok}})
		if err != nil {
			t.Errorf("flood dial: %v", err)
			return
		}
		defer ws.Close()
		go func() {
			<-ctx.Done()
			ws.Close()
		}()
		go func() {
			for i := 0; ctx.Err() == nil; i++ {
				f := map[string]any{"type": "ping", "id": strconv.Itoa(i)}
				if i%100 == 0 {
					f = map[string]any{"type": "sync", "id": strconv.Itoa(i), "limit": 100}
				}
				if ws.WriteJSON(f) != nil {
					return
				}
			}
		}()
		for {
			var f wire.ServerFrame
			if err := ws.ReadJSON(&f); err != nil {
				if ce, ok := err.(*websocket.CloseError); ok && ce.Code == 4029 {
					closedForFlood.Store(true)
				}
				return
			}
			switch {
			case f.Type == wire.FrameAck || f.Type == wire.FramePong:
				frames.ok.Add(1)
			case f.Code == wire.CodeRateLimited:
				frames.limited.Add(1)
				if f.RetryAfter == 0 {
					frames.noRetryAfter.Add(1)
				}
			default:
				frames.other.Add(1)
			}
		}
	}()

	// The victim: one message every 100 ms, each timed to its ack.
	alice, err := client.Connect(context.Background(), client.Config{URL: url, Token: token(t, url, "alice")})
	if err != nil {
		t.Fatal(err)
	}
	defer alice.Close()
	var lat []time.Duration
	var maxRSS int64
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
loop:
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			break loop
		case <-tick.C:
		}
		start := time.Now()
		sctx, scancel := context.WithTimeout(context.Background(), 20*time.Second)
		_, err := alice.Send(sctx, wire.SendRequest{To: "bob", Type: "text", Body: text("still here " + strconv.Itoa(i))})
		scancel()
		if err != nil {
			t.Errorf("the victim's send %d: %v", i, err)
			break
		}
		lat = append(lat, time.Since(start))
		if i%10 == 0 {
			maxRSS = max(maxRSS, rss(t, proc.Cmd.Process.Pid))
		}
	}
	cancel()
	wg.Wait()
	maxRSS = max(maxRSS, rss(t, proc.Cmd.Process.Pid))

	slices.Sort(lat)
	p99 := lat[len(lat)*99/100]
	var report []string
	for _, name := range []string{"groups-1", "groups-2", "shops", "members", "frames"} {
		tl := tallies[name]
		report = append(report, fmt.Sprintf("%s %d ok/%d limited/%d other", name, tl.ok.Load(), tl.limited.Load(), tl.other.Load()))
		if tl.limited.Load() == 0 {
			t.Errorf("%s was never limited (%d ok)", name, tl.ok.Load())
		}
		if tl.noRetryAfter.Load() > 0 {
			t.Errorf("%s: %d refusals without Retry-After", name, tl.noRetryAfter.Load())
		}
	}
	t.Logf("flood of %s: %s; victim %d sends, p50 %v p99 %v; server RSS max %d MiB",
		floodFor, strings.Join(report, ", "), len(lat), lat[len(lat)/2], p99, maxRSS>>20)
	if !closedForFlood.Load() {
		t.Error("a connection that kept sending past its budget was not closed with 4029")
	}
	if p99 > victimMaxP99 {
		t.Errorf("the victim's p99 ack latency %v over %v", p99, victimMaxP99)
	}
	if maxRSS > floodMaxRSS {
		t.Errorf("server RSS %d MiB over %d MiB", maxRSS>>20, floodMaxRSS>>20)
	}
}

// rss is a process's resident memory in bytes, from /proc.
func rss(t *testing.T, pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	t.Fatal("no VmRSS")
	return 0
}
