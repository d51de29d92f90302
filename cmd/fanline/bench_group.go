package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fanline/fanline/client"
	"github.com/fanline/fanline/internal/wire"
)

// prepareGroup creates the group (owner user 0, members users 0..members-1) before
// anyone connects, and reads the server's storage counters around the run.
func prepareGroup(ctx context.Context, o *benchOptions) (func(*result) error, error) {
	if o.senders < 1 || o.senders > o.users || o.users > o.members {
		return nil, fmt.Errorf("bench: group needs 1 <= --senders <= --users <= --members")
	}
	owner := userName(*o, 0)
	tok, err := client.DevToken(ctx, o.url, owner, "", "")
	if err != nil {
		return nil, err
	}
	c, err := client.Connect(ctx, client.Config{URL: o.url, Token: tok})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	members := make([]string, 0, o.members-1)
	for i := 1; i < o.members; i++ {
		members = append(members, userName(*o, i))
	}
	g, err := c.CreateGroup(ctx, "bench", members...)
	if err != nil {
		return nil, fmt.Errorf("bench: create the group: %w", err)
	}
	o.group = uint64(g.GroupID)
	// The creation event reaches the owner's timeline (not just the push hint)
	// before the counters are read.
	for created := false; !created; {
		select {
		case e := <-c.Entries():
			created = e.Kind == wire.KindGroupEvent && e.ConversationID == g.GroupID && e.Seq > 0
		case <-time.After(10 * time.Second):
			return nil, errors.New("bench: the group's creation event did not arrive")
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	rate := o.rate
	if rate <= 0 {
		rate = 10
	}
	o.duration = time.Duration(float64(o.messages) / rate * float64(time.Second))
	before, err := scrape(o.url)
	if err != nil {
		return nil, err
	}
	return func(r *result) error {
		after, err := scrape(o.url)
		if err != nil {
			return err
		}
		r.Sent = int64(len(r.Acks))
		for id, ack := range r.Acks {
			if r.Receipts[id] >= o.users {
				r.Delivered++
				r.Latency = append(r.Latency, time.Duration(r.Last[id]-ack))
			}
		}
		n := float64(max(1, r.Sent))
		fanout := 0.0
		if g.Fanout == "read" {
			fanout = 1
		}
		r.Figures = map[string]float64{
			"group_read_fanout":           fanout,
			"timeline_entries_per_msg":    (after["fanline_fanout_entries_total"] - before["fanline_fanout_entries_total"]) / n,
			"stream_appends_per_msg":      (after["fanline_stream_appends_total"] - before["fanline_stream_appends_total"]) / n,
			"storage_wal_kib_per_msg":     (after["fanline_storage_wal_bytes_total"] - before["fanline_storage_wal_bytes_total"]) / n / 1024,
			"slow_connections_closed":     after["fanline_slow_connections_closed_total"] - before["fanline_slow_connections_closed_total"],
			"members_online_per_message":  float64(o.users),
			"members_offline_per_message": float64(o.members - o.users),
		}
		return nil
	}, nil
}

// scrape reads the server's unlabelled counters from /metrics.
func scrape(url string) (map[string]float64, error) {
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		name, v, ok := strings.Cut(sc.Text(), " ")
		if !ok || strings.HasPrefix(name, "#") || strings.Contains(name, "{") {
			continue
		}
		if f, err := strconv.ParseFloat(v, 64); err == nil {
			out[name] = f
		}
	}
	return out, sc.Err()
}

// benchGroup connects this process's share of the online members and records when
// each of them receives each message; the senders among them send o.messages in all
// at o.rate per second, each recording when its send was acknowledged.
func benchGroup(ctx context.Context, o benchOptions, sh share) (*result, error) {
	// With lean receivers only the senders use the SDK.
	sdkHi := sh.hi
	if o.receivers == "lean" {
		sdkHi = min(sh.hi, max(sh.lo, o.senders))
	}
	cs, err := dialUsers(ctx, o, share{sh.lo, sdkHi}, 256)
	if err != nil {
		return nil, err
	}
	defer closeAll(cs)
	lean, err := dialLeanUsers(ctx, o, sdkHi, sh.hi)
	if err != nil {
		return nil, err
	}
	defer closeLean(lean)
	g := wire.ID(o.group)
	var mu sync.Mutex // guards last and receipts
	last, receipts := map[string]int64{}, map[string]int{}
	recvCtx, stopRecv := context.WithCancel(context.Background())
	var rwg sync.WaitGroup
	got := func(id string) {
		now := time.Now().UnixNano()
		mu.Lock()
		last[id] = max(last[id], now)
		receipts[id]++
		mu.Unlock()
	}
	for _, c := range lean {
		rwg.Add(1)
		go func(c *leanConn) {
			defer rwg.Done()
			c.read(g.String(), got)
		}(c)
	}
	rwg.Add(1)
	go func() {
		defer rwg.Done()
		pingLean(recvCtx, lean)
	}()
	for _, c := range cs {
		rwg.Add(1)
		go func(c *client.Client) {
			defer rwg.Done()
			for {
				select {
				case e := <-c.Entries():
					if e.Kind != wire.KindMessage || e.ConversationID != g {
						continue
					}
					got(e.MsgID.String())
				case <-recvCtx.Done():
					return
				}
			}
		}(c)
	}
	// stop ends the receivers: the SDK's loops by ctx, the lean readers by their
	// connections' close.
	stop := func() {
		stopRecv()
		closeLean(lean)
		rwg.Wait()
	}
	if err := sleepUntil(ctx, o.startAt); err != nil {
		stop()
		return nil, err
	}

	rate := o.rate
	if rate <= 0 {
		rate = 10
	}
	interval := time.Duration(float64(time.Second) * float64(o.senders) / rate)
	acks := map[string]int64{}
	var errCount int64
	var swg sync.WaitGroup
	for s := 0; s < o.senders; s++ {
		if s < sh.lo || s >= sh.hi {
			continue
		}
		n := o.messages / o.senders
		if s < o.messages%o.senders {
			n++
		}
		c := cs[s-sh.lo]
		swg.Add(1)
		go func(c *client.Client, n int, offset time.Duration) {
			defer swg.Done()
			next := time.Now().Add(offset)
			for k := 0; k < n && ctx.Err() == nil; k++ {
				if sleepUntil(ctx, next) != nil {
					return
				}
				next = next.Add(interval)
				res, err := c.Send(ctx, wire.SendRequest{GroupID: g, Type: "text", Body: []byte(fmt.Sprintf(`{"text":"bench %d"}`, k))})
				acked := time.Now().UnixNano()
				mu.Lock()
				if err != nil {
					errCount++
				} else {
					acks[res.MsgID.String()] = acked
				}
				mu.Unlock()
			}
		}(c, n, time.Duration(s)*interval/time.Duration(o.senders))
	}
	swg.Wait()
	// Wait until this process's members have every message, or give up 30 s after
	// the last send was due (a process without senders gets here at once).
	mine := sh.hi - sh.lo
	deadline := o.startAt.Add(time.Duration(o.messages)*interval/time.Duration(o.senders) + 30*time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		mu.Lock()
		full := 0
		for _, n := range receipts {
			if n >= mine {
				full++
			}
		}
		mu.Unlock()
		if full >= o.messages {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	stop()
	mu.Lock()
	defer mu.Unlock()
	return &result{Connections: len(cs) + len(lean), Errors: errCount, Acks: acks, Last: last, Receipts: receipts}, ctx.Err()
}
