package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fanline/fanline/client"
	"github.com/fanline/fanline/internal/wire"
)

// benchSync: while the reader is offline, o.conversations peers send it o.messages
// messages in total, spread over the direct chats and o.groups large groups (of
// o.members members, the reader among them; the first peer sends there); then the
// reader connects with an empty cursor (a fresh install) and the time until its SDK
// has handed over every message is the sync time.
func benchSync(ctx context.Context, o benchOptions, _ share) (*result, error) {
	peers, err := dialUsers(ctx, o, share{1, 1 + o.conversations}, 16)
	if err != nil {
		return nil, err
	}
	defer closeAll(peers)
	reader := userName(o, 0)
	tok, err := client.DevToken(ctx, o.url, reader, "", "")
	if err != nil {
		return nil, err
	}
	type target struct {
		from *client.Client
		req  wire.SendRequest
	}
	var targets []target
	for _, p := range peers {
		targets = append(targets, target{p, wire.SendRequest{To: reader}})
	}
	for l := 0; l < o.groups; l++ {
		members := []string{reader}
		for i := 2; i < o.members; i++ {
			members = append(members, fmt.Sprintf("%sg%d-%d", o.prefix, l, i))
		}
		g, err := peers[0].CreateGroup(ctx, fmt.Sprintf("sync bench %d", l), members...)
		if err != nil {
			return nil, fmt.Errorf("bench: sync: create group: %w", err)
		}
		targets = append(targets, target{peers[0], wire.SendRequest{GroupID: g.GroupID}})
	}
	var sent, errCount atomic.Int64
	var wg sync.WaitGroup
	per := o.messages / len(targets)
	extra := o.messages % len(targets)
	for i, tg := range targets {
		n := per
		if i < extra {
			n++
		}
		wg.Add(1)
		go func(tg target, n int) {
			defer wg.Done()
			for k := 0; k < n && ctx.Err() == nil; k++ {
				req := tg.req
				req.Type, req.Body = "text", []byte(fmt.Sprintf(`{"text":"offline %d"}`, k))
				if _, err := tg.from.Send(ctx, req); err != nil {
					errCount.Add(1)
					continue
				}
				sent.Add(1)
			}
		}(tg, n)
	}
	wg.Wait()
	if err := sleepUntil(ctx, o.startAt); err != nil {
		return nil, err
	}

	start := time.Now()
	c, err := client.Connect(ctx, client.Config{URL: o.url, Token: tok, EntryBuffer: 4096})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	var delivered int64
	convs := map[wire.ID]bool{}
	deadline := time.NewTimer(o.duration + time.Minute)
	defer deadline.Stop()
	for delivered < sent.Load() {
		select {
		case e := <-c.Entries():
			if e.Kind == wire.KindMessage {
				delivered++
				convs[e.ConversationID] = true
			}
		case <-deadline.C:
			return nil, fmt.Errorf("bench: sync: %d of %d messages after %s", delivered, sent.Load(), o.duration+time.Minute)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	took := time.Since(start)
	return &result{Connections: len(peers) + 1, Sent: sent.Load(), Delivered: delivered, Errors: errCount.Load(),
		Figures: map[string]float64{
			"sync_seconds":        took.Seconds(),
			"sync_entries_per_s":  float64(delivered) / took.Seconds(),
			"conversations_found": float64(len(convs)),
			"large_groups":        float64(o.groups),
		}}, nil
}
