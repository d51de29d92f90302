package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/signal"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/fanline/fanline/client"
	"github.com/fanline/fanline/internal/wire"
)

// benchSummary is what every scenario reports (printed, and written by --json).
type benchSummary struct {
	Scenario    string            `json:"scenario"`
	Started     time.Time         `json:"started"`
	Flags       map[string]string `json:"flags"`
	Connections int               `json:"connections"`
	Sent        int64             `json:"sent"`
	Delivered   int64             `json:"delivered"`
	Errors      int64             `json:"errors"`
	Seconds     float64           `json:"seconds"`
	Throughput  float64           `json:"throughput_per_second"`
	Latency     latencySummary    `json:"latency_ms"`
	AckLatency  latencySummary    `json:"ack_latency_ms"`
	Server      *serverUsage      `json:"server,omitempty"`
	Client      *serverUsage      `json:"client"`
}

type latencySummary struct {
	Samples int     `json:"samples"`
	P50     float64 `json:"p50"`
	P90     float64 `json:"p90"`
	P99     float64 `json:"p99"`
	Max     float64 `json:"max"`
}

func summarize(d []time.Duration) latencySummary {
	if len(d) == 0 {
		return latencySummary{}
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	q := func(p float64) float64 {
		return float64(d[min(len(d)-1, int(p*float64(len(d))))].Microseconds()) / 1000
	}
	return latencySummary{Samples: len(d), P50: q(.50), P90: q(.90), P99: q(.99), Max: float64(d[len(d)-1].Microseconds()) / 1000}
}

// samples collects latencies from many goroutines.
type samples struct {
	mu sync.Mutex
	d  []time.Duration
}

func (s *samples) add(d time.Duration) {
	s.mu.Lock()
	s.d = append(s.d, d)
	s.mu.Unlock()
}

type scenario struct {
	about string
	run   func(ctx context.Context, o benchOptions, sum *benchSummary) error
}

var scenarios = map[string]scenario{
	"direct": {"users in pairs send 1:1 messages; latency is send to the peer's receipt", benchDirect},
}

// benchOptions are the flags every scenario shares.
type benchOptions struct {
	url        string
	users      int
	duration   time.Duration
	warmup     time.Duration
	rate       float64
	inflight   int
	localAddrs []string
	size       int
}

func bench(args []string) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		fmt.Fprintln(os.Stderr, "usage: fanline bench SCENARIO [flags]\nscenarios:")
		for name, s := range scenarios {
			fmt.Fprintf(os.Stderr, "  %-10s %s\n", name, s.about)
		}
		return errors.New("bench: name a scenario")
	}
	sc, ok := scenarios[args[0]]
	if !ok {
		return fmt.Errorf("bench: unknown scenario %q", args[0])
	}
	fs := flag.NewFlagSet("bench "+args[0], flag.ContinueOnError)
	var o benchOptions
	fs.StringVar(&o.url, "url", "http://127.0.0.1:8080", "server base URL")
	fs.IntVar(&o.users, "users", 1000, "connected users (even: they chat in pairs)")
	fs.DurationVar(&o.duration, "duration", 30*time.Second, "measured time")
	fs.DurationVar(&o.warmup, "warmup", 3*time.Second, "unmeasured time before it")
	fs.Float64Var(&o.rate, "rate", 0, "messages per second per user (0: as fast as acks allow)")
	fs.IntVar(&o.inflight, "inflight", 4, "unacknowledged sends per user")
	fs.IntVar(&o.size, "size", 64, "text bytes per message")
	addrs := fs.String("local-addrs", "", "comma-separated source IPs to spread connections over (e.g. 127.0.0.2,127.0.0.3)")
	jsonFile := fs.String("json", "", "write the JSON summary to this file")
	pid := fs.Int("pid", 0, "server process id, to report its CPU and memory")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *addrs != "" {
		o.localAddrs = strings.Split(*addrs, ",")
	}
	if o.users < 2 || o.users%2 != 0 || o.inflight < 1 {
		return errors.New("bench: --users must be even and at least 2, --inflight at least 1")
	}
	sum := &benchSummary{Scenario: args[0], Started: time.Now().UTC(), Flags: map[string]string{}}
	fs.Visit(func(f *flag.Flag) { sum.Flags[f.Name] = f.Value.String() })
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var before *procSample
	if *pid != 0 {
		before = sampleProc(*pid)
	}
	self := sampleProc(os.Getpid())
	if err := sc.run(ctx, o, sum); err != nil {
		return err
	}
	sum.Client = self.usage(sampleProc(os.Getpid()))
	if before != nil {
		sum.Server = before.usage(sampleProc(*pid))
	}
	printSummary(sum)
	if *jsonFile != "" {
		b, _ := json.MarshalIndent(sum, "", "  ")
		if err := os.WriteFile(*jsonFile, append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	if sum.Errors > 0 || sum.Delivered != sum.Sent {
		return fmt.Errorf("bench: %d errors, %d of %d delivered", sum.Errors, sum.Delivered, sum.Sent)
	}
	return nil
}

func printSummary(s *benchSummary) {
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(w, "scenario\t%s\n", s.Scenario)
	fmt.Fprintf(w, "connections\t%d\n", s.Connections)
	fmt.Fprintf(w, "sent / delivered / errors\t%d / %d / %d\n", s.Sent, s.Delivered, s.Errors)
	fmt.Fprintf(w, "measured\t%.1f s\n", s.Seconds)
	fmt.Fprintf(w, "throughput\t%.0f msg/s\n", s.Throughput)
	l := s.Latency
	fmt.Fprintf(w, "send->receipt ms\tp50 %.2f  p90 %.2f  p99 %.2f  max %.2f  (%d samples)\n", l.P50, l.P90, l.P99, l.Max, l.Samples)
	a := s.AckLatency
	fmt.Fprintf(w, "send->ack ms\tp50 %.2f  p90 %.2f  p99 %.2f  max %.2f\n", a.P50, a.P90, a.P99, a.Max)
	if s.Server != nil {
		fmt.Fprintf(w, "server\tCPU %.0f%% of one core, RSS %.0f MiB (peak %.0f MiB)\n", s.Server.CPUPercent, s.Server.RSSMiB, s.Server.PeakRSSMiB)
	}
	fmt.Fprintf(w, "bench client\tCPU %.0f%% of one core, RSS %.0f MiB\n", s.Client.CPUPercent, s.Client.RSSMiB)
	w.Flush()
}

// benchBody carries the send time, on the one clock of this process.
type benchBody struct {
	Text string `json:"text"`
	TS   int64  `json:"ts"`
}

func dialUsers(ctx context.Context, o benchOptions, prefix string) ([]*client.Client, error) {
	cs := make([]*client.Client, o.users)
	errs := make(chan error, o.users)
	sem := make(chan struct{}, 64)
	var wg sync.WaitGroup
	for i := range cs {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			user := fmt.Sprintf("%s%d", prefix, i)
			tok, err := client.DevToken(ctx, o.url, user, "", "")
			if err != nil {
				errs <- fmt.Errorf("token for %s: %w", user, err)
				return
			}
			cfg := client.Config{URL: o.url, Token: tok, EntryBuffer: 1024}
			if len(o.localAddrs) > 0 {
				cfg.LocalAddr = o.localAddrs[i%len(o.localAddrs)]
			}
			if cs[i], err = client.Connect(ctx, cfg); err != nil {
				errs <- fmt.Errorf("connect %s: %w", user, err)
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		for _, c := range cs {
			if c != nil {
				c.Close()
			}
		}
		return nil, err
	}
	return cs, nil
}

func benchDirect(ctx context.Context, o benchOptions, sum *benchSummary) error {
	prefix := fmt.Sprintf("bench%d-", time.Now().UnixNano()%1e6)
	cs, err := dialUsers(ctx, o, prefix)
	if err != nil {
		return err
	}
	defer func() {
		for _, c := range cs {
			c.Close()
		}
	}()
	sum.Connections = len(cs)
	text := strings.Repeat("x", o.size)
	var sent, delivered, errCount atomic.Int64
	var lat, ack samples
	start := time.Now()
	measureFrom := start.Add(o.warmup)
	stopSending := measureFrom.Add(o.duration)

	// Receivers: every device drains its entries; peers' messages count as delivered.
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
						}
					}
					delivered.Add(1)
				case <-recvCtx.Done():
					return
				}
			}
		}(fmt.Sprintf("%s%d", prefix, i), c)
	}

	var swg sync.WaitGroup
	for i, c := range cs {
		peer := fmt.Sprintf("%s%d", prefix, i^1)
		for w := 0; w < o.inflight; w++ {
			swg.Add(1)
			go func(c *client.Client) {
				defer swg.Done()
				var interval time.Duration
				next := time.Now()
				if o.rate > 0 {
					interval = time.Duration(float64(time.Second) * float64(o.inflight) / o.rate)
					// Spread the workers over the interval: an open-loop load, not
					// synchronised bursts.
					next = next.Add(time.Duration(rand.Int64N(int64(interval))))
				}
				for ctx.Err() == nil && time.Now().Before(stopSending) {
					if interval > 0 {
						if d := time.Until(next); d > 0 {
							time.Sleep(d)
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

	sum.Sent, sum.Delivered, sum.Errors = sent.Load(), delivered.Load(), errCount.Load()
	sum.Seconds = o.duration.Seconds()
	sum.Latency, sum.AckLatency = summarize(lat.d), summarize(ack.d)
	sum.Throughput = float64(sum.Latency.Samples) / sum.Seconds
	return ctx.Err()
}
