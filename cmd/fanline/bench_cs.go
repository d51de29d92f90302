package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fanline/fanline/client"
	"github.com/fanline/fanline/internal/wire"
)

// benchCS: a shop with o.agents agents (mixed skills, capacities 2-6) who close each
// chat after an exponential service time of mean o.service; o.users buyers arrive at
// o.rate per second and open chats from product, order and refund pages. Latency is
// open -> the buyer learning its agent (at once, or from the cs event); send->ack is
// the open request itself; the queue is sampled from the live stats.
func benchCS(ctx context.Context, o benchOptions, _ share) (*result, error) {
	shop := o.prefix + "shop"
	adminTok, err := client.DevToken(ctx, o.url, o.prefix+"admin", wire.RoleAdmin, shop)
	if err != nil {
		return nil, err
	}
	admin := client.NewAdmin(o.url, shop, adminTok)
	type agentDoc struct {
		ID       string   `json:"agent_id"`
		Skills   []string `json:"skills"`
		Capacity int      `json:"capacity"`
	}
	var agents []agentDoc
	for i := range o.agents {
		skills := [][]string{{"pre_sales"}, {"after_sales"}, {"pre_sales", "after_sales"}}[i%3]
		agents = append(agents, agentDoc{ID: fmt.Sprintf("%sagent%d", o.prefix, i), Skills: skills, Capacity: 2 + i%5})
	}
	if err := admin.PutAgents(ctx, map[string]any{"agents": agents}, nil); err != nil {
		return nil, fmt.Errorf("bench: cs: agents: %w", err)
	}
	if err := admin.PutRouting(ctx, map[string]any{
		"skills": []map[string]any{{"name": "pre_sales"}, {"name": "after_sales", "fallback_after": "30s"}},
		"entries": map[string]any{"product": map[string]any{"skill": "pre_sales"}, "order": map[string]any{"skill": "after_sales"},
			"refund": map[string]any{"skill": "after_sales", "weight": 2}},
		"reply_timeout": "-1s",
	}, nil); err != nil {
		return nil, fmt.Errorf("bench: cs: rules: %w", err)
	}

	// Agents: connected, online, closing what they are given after a service time.
	stop, stopAll := context.WithCancel(context.Background())
	var wg sync.WaitGroup // the agents' goroutines and the sampler; they end at stop
	var agentClients []*client.Client
	defer func() {
		stopAll()
		wg.Wait()
		closeAll(agentClients)
	}()
	for _, a := range agents {
		tok, err := client.DevToken(ctx, o.url, a.ID, wire.RoleAgent, shop)
		if err != nil {
			return nil, err
		}
		c, err := client.Connect(ctx, client.Config{URL: o.url, Token: tok, EntryBuffer: 256})
		if err != nil {
			return nil, err
		}
		agentClients = append(agentClients, c)
		if err := c.SetStatus(ctx, "online"); err != nil {
			return nil, err
		}
		wg.Add(1)
		go func(me string, c *client.Client) {
			defer wg.Done()
			for {
				select {
				case ev := <-c.CSEvents():
					if ev.Chat == nil || ev.Chat.AgentID != me || (ev.Event != "assigned" && ev.Event != "reassigned") {
						continue
					}
					conv := ev.Chat.ConversationID
					service := time.Duration(rand.ExpFloat64() * float64(o.service))
					wg.Add(1)
					go func() {
						defer wg.Done()
						select {
						case <-time.After(service):
							c.CloseChat(context.Background(), conv) // a chat moved elsewhere answers forbidden
						case <-stop.Done():
						}
					}()
				case <-c.Entries():
				case <-stop.Done():
					return
				}
			}
		}(a.ID, c)
	}

	// The queue, sampled every 100 ms.
	var maxDepth, depthSum, depthSamples atomic.Int64
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				var live struct {
					Queues map[string]int `json:"queue_depth"`
				}
				if admin.Live(stop, &live) == nil {
					n := 0
					for _, d := range live.Queues {
						n += d
					}
					depthSum.Add(int64(n))
					depthSamples.Add(1)
					for old := maxDepth.Load(); int64(n) > old && !maxDepth.CompareAndSwap(old, int64(n)); old = maxDepth.Load() {
					}
				}
			case <-stop.Done():
				return
			}
		}
	}()

	if err := sleepUntil(ctx, o.startAt); err != nil {
		return nil, err
	}
	rate := o.rate
	if rate <= 0 {
		rate = 20
	}
	interval := time.Duration(float64(time.Second) / rate)
	entries := []string{"product", "product", "order", "refund"}
	var lat, ack samples
	var sent, assigned, errCount atomic.Int64
	var lastAssigned atomic.Int64 // unix ns
	start := time.Now()
	var bwg sync.WaitGroup
	var buyers []*client.Client
	var buyersMu sync.Mutex
	defer func() { closeAll(buyers) }()
	next := time.Now()
	for i := 0; i < o.users && ctx.Err() == nil; i++ {
		if sleepUntil(ctx, next) != nil {
			break
		}
		next = next.Add(interval)
		bwg.Add(1)
		go func(i int) {
			defer bwg.Done()
			user := fmt.Sprintf("%sbuyer%d", o.prefix, i)
			tok, err := client.DevToken(ctx, o.url, user, "", "")
			if err != nil {
				errCount.Add(1)
				return
			}
			c, err := client.Connect(ctx, client.Config{URL: o.url, Token: tok, EntryBuffer: 64})
			if err != nil {
				errCount.Add(1)
				return
			}
			buyersMu.Lock()
			buyers = append(buyers, c)
			buyersMu.Unlock()
			t0 := time.Now()
			st, err := c.OpenChat(ctx, shop, wire.OpenChatRequest{Entry: entries[i%len(entries)], Text: "hello"})
			if err != nil {
				errCount.Add(1)
				return
			}
			ack.add(time.Since(t0))
			sent.Add(1)
			deadline := time.After(o.duration + time.Minute)
			for st.State != "assigned" {
				select {
				case ev := <-c.CSEvents():
					if ev.Chat != nil && ev.Chat.ConversationID == st.ConversationID {
						st = *ev.Chat
					}
				case <-c.Entries():
				case <-deadline:
					return
				case <-ctx.Done():
					return
				}
			}
			lat.add(time.Since(t0))
			assigned.Add(1)
			for now, old := time.Now().UnixNano(), lastAssigned.Load(); now > old && !lastAssigned.CompareAndSwap(old, now); old = lastAssigned.Load() {
			}
		}(i)
	}
	bwg.Wait()
	stopAll()
	figures := map[string]float64{"agents": float64(o.agents), "max_queue_depth": float64(maxDepth.Load())}
	if n := depthSamples.Load(); n > 0 {
		figures["mean_queue_depth"] = float64(depthSum.Load()) / float64(n)
	}
	if span := time.Unix(0, lastAssigned.Load()).Sub(start); span > 0 {
		figures["assigned_per_s"] = float64(assigned.Load()) / span.Seconds()
	}
	return &result{Connections: len(agents) + int(sent.Load()), Sent: sent.Load(), Delivered: assigned.Load(),
		Errors: errCount.Load(), Latency: lat.take(), Ack: ack.take(), Figures: figures}, ctx.Err()
}
