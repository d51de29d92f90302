package main

import (
	"context"
	"time"
)

// benchConnections holds idle connections (the SDK pings every 20 s) for the measured
// window. The parent samples the server's memory before connecting and in the middle
// of the window.
func benchConnections(ctx context.Context, o benchOptions, sh share) (*result, error) {
	start := time.Now()
	cs, err := dialUsers(ctx, o, sh, 16)
	if err != nil {
		return nil, err
	}
	defer closeAll(cs)
	r := &result{Connections: len(cs), Figures: map[string]float64{
		"connect_seconds": time.Since(start).Seconds(),
	}}
	if err := sleepUntil(ctx, o.startAt.Add(o.duration)); err != nil {
		return nil, err
	}
	return r, nil
}

// finishConnections reports the server's memory growth per held connection. With
// several processes connect_seconds is the sum over them.
func finishConnections(o benchOptions, sum *benchSummary, before, mid *procSample) {
	if sum.Connections == 0 {
		return
	}
	if sum.Figures == nil {
		sum.Figures = map[string]float64{}
	}
	sum.Figures["server_kib_per_connection"] = (mid.rss - before.rss) * 1024 / float64(sum.Connections)
	sum.Figures["server_rss_mib_held"] = mid.rss
}
