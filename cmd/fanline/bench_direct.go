package main

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fanline/fanline/client"
	"github.com/fanline/fanline/internal/ids"
	"github.com/fanline/fanline/internal/wire"
)

// benchBody carries the send time. Sender and receiver of a pair are in one process,
// so the latency is read on one clock.
type benchBody struct {
	Text string `json:"text"`
	TS   int64  `json:"ts"`
}

// benchDirect: users 2k and 2k+1 chat. Each user runs o.inflight send loops (open
// loop at o.rate per user, or closed loop); every device drains its entries, and a
// peer's message counts as delivered.
func benchDirect(ctx context.Context, o benchOptions, sh share) (*result, error) {
	cs, err := dialUsers(ctx, o, sh, 1024)
	if err != nil {
		return nil, err
	}
	defer closeAll(cs)
	text := strings.Repeat("x", o.size)
	var sent, delivered, errCount atomic.Int64
	var lat, ack, accepted samples
	measureFrom := o.startAt
	stopSending := measureFrom.Add(o.duration)

	recvCtx, stopRecv := context.WithCancel(context.Background())
	var rwg sync.WaitGroup
	for i, c := range cs {
		rwg.Add(1)
		go func(me string, c *client.Client) {
			defer rwg.Done()
			for {
				select {
				case e := <-c.Entries():
					if e.Kind != wire.KindMessage || e.From == me {
						continue
					}
					now := time.Now()
					var b benchBody
					if json.Unmarshal(e.Body, &b) == nil {
						if t := time.Unix(0, b.TS); !t.Before(measureFrom) && t.Before(stopSending) {
							lat.add(now.Sub(t))
							accepted.add(now.Sub(ids.Time(uint64(e.MsgID))))
						}
					}
					delivered.Add(1)
				case <-recvCtx.Done():
					return
				}
			}
		}(userName(o, sh.lo+i), c)
	}

	var swg sync.WaitGroup
	for i, c := range cs {
		peer := userName(o, (sh.lo+i)^1)
		for w := 0; w < o.inflight; w++ {
			swg.Add(1)
			go func(c *client.Client) {
				defer swg.Done()
				var interval time.Duration
				next := time.Now()
				if o.rate > 0 {
					interval = time.Duration(float64(time.Second) * float64(o.inflight) / o.rate)
					// Spread the loops over the interval: an open-loop load, not
					// synchronised bursts.
					next = next.Add(time.Duration(rand.Int64N(int64(interval))))
				}
				for ctx.Err() == nil && time.Now().Before(stopSending) {
					if interval > 0 {
						if sleepUntil(ctx, next) != nil {
							return
						}
						next = next.Add(interval)
					}
					t0 := time.Now()
					body, _ := json.Marshal(benchBody{Text: text, TS: t0.UnixNano()})
					sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
					_, err := c.Send(sctx, wire.SendRequest{To: peer, Type: "text", Body: body})
					cancel()
					if err != nil {
						errCount.Add(1)
						continue
					}
					sent.Add(1)
					if !t0.Before(measureFrom) {
						ack.add(time.Since(t0))
					}
				}
			}(c)
		}
	}
	swg.Wait()
	// Let the last deliveries land.
	deadline := time.Now().Add(30 * time.Second)
	for delivered.Load() < sent.Load() && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	stopRecv()
	rwg.Wait()
	return &result{Connections: len(cs), Sent: sent.Load(), Delivered: delivered.Load(), Errors: errCount.Load(),
		Latency: lat.take(), Ack: ack.take(), Accepted: accepted.take()}, ctx.Err()
}
