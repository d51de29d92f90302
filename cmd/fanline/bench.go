package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/fanline/fanline/client"
)

// A scenario measures one kind of load. run does this process's share of the users
// (all of them unless --procs splits the work) and starts measuring at o.startAt, so
// worker processes measure the same window.
type scenario struct {
	about string
	// splits reports whether --procs may divide the scenario over processes.
	splits bool
	run    func(ctx context.Context, o benchOptions, sh share) (*result, error)
	// finish adds figures only the parent can compute (it holds --pid), given the
	// server's memory before the run and in the middle of it.
	finish func(o benchOptions, sum *benchSummary, before, mid *procSample)
	// prepare runs in the parent before any process connects (what it sets in o
	// reaches the workers through their flags); the function it returns runs in the
	// parent on the merged result.
	prepare func(ctx context.Context, o *benchOptions) (func(r *result) error, error)
}

var scenarios = map[string]scenario{
	"direct": {
		about:  "users in pairs send 1:1 messages; latency is send to the peer's receipt",
		splits: true, run: benchDirect,
	},
	"connections": {
		about:  "hold --users idle connections; server memory per connection",
		splits: true, run: benchConnections, finish: finishConnections,
	},
	"sync": {
		about: "one device offline while --messages arrive over --conversations chats and --groups large groups; time to full sync",
		run:   benchSync,
	},
	"cs": {
		about: "--users buyers open chats at --rate/s with a shop of --agents agents; time to assignment, queue depth",
		run:   benchCS,
	},
	"group": {
		about:  "one group of --members, --users of them online, --senders sending; ack to the last online member",
		splits: true, run: benchGroup, prepare: prepareGroup,
	},
}

// benchOptions are the flags of every scenario.
type benchOptions struct {
	url           string
	users         int
	duration      time.Duration
	warmup        time.Duration
	rate          float64
	inflight      int
	size          int
	messages      int
	conversations int
	groups        int
	localAddrs    []string
	procs         int
	members       int
	senders       int
	agents        int
	service       time.Duration
	prefix        string    // user id prefix, shared by the workers of one run
	startAt       time.Time // measurement window start (after warmup)
	group         uint64    // the group of the group scenario
	receivers     string    // group: sdk or lean
}

// share is the slice [lo, hi) of the users one process drives.
type share struct{ lo, hi int }

// result is what one process measured. The parent merges its workers' results.
type result struct {
	Connections int             `json:"connections"`
	Sent        int64           `json:"sent"`
	Delivered   int64           `json:"delivered"`
	Errors      int64           `json:"errors"`
	Latency     []time.Duration `json:"latency_ns"`
	Ack         []time.Duration `json:"ack_ns"`
	// Accepted (direct): from the accepted attempt (its msg_id's time, the server's
	// clock on this machine) to the receipt, without the SDK's waits after refusals.
	Accepted []time.Duration    `json:"accepted_ns,omitempty"`
	Figures  map[string]float64 `json:"figures,omitempty"`
	Client   *serverUsage       `json:"client"`
	// Per message (group scenario): when the sender got the ack, when the last
	// member of this process got it (unix ns), and how many members got it.
	Acks     map[string]int64 `json:"acks,omitempty"`
	Last     map[string]int64 `json:"last,omitempty"`
	Receipts map[string]int   `json:"receipts,omitempty"`
}

func (r *result) merge(o *result) {
	for k, v := range o.Acks {
		if r.Acks == nil {
			r.Acks = map[string]int64{}
		}
		r.Acks[k] = v
	}
	for k, v := range o.Last {
		if r.Last == nil {
			r.Last = map[string]int64{}
		}
		r.Last[k] = max(r.Last[k], v)
	}
	for k, v := range o.Receipts {
		if r.Receipts == nil {
			r.Receipts = map[string]int{}
		}
		r.Receipts[k] += v
	}
	r.Connections += o.Connections
	r.Sent += o.Sent
	r.Delivered += o.Delivered
	r.Errors += o.Errors
	r.Latency = append(r.Latency, o.Latency...)
	r.Ack = append(r.Ack, o.Ack...)
	r.Accepted = append(r.Accepted, o.Accepted...)
	for k, v := range o.Figures {
		if r.Figures == nil {
			r.Figures = map[string]float64{}
		}
		r.Figures[k] += v
	}
	if o.Client != nil {
		if r.Client == nil {
			r.Client = &serverUsage{}
		}
		r.Client.CPUPercent += o.Client.CPUPercent
		r.Client.RSSMiB += o.Client.RSSMiB
		r.Client.PeakRSSMiB += o.Client.PeakRSSMiB
	}
}

// benchSummary is what a run reports (printed, and written by --json).
type benchSummary struct {
	Scenario    string            `json:"scenario"`
	Started     time.Time         `json:"started"`
	Flags       map[string]string `json:"flags"`
	Processes   int               `json:"processes"`
	Connections int               `json:"connections"`
	Sent        int64             `json:"sent"`
	Delivered   int64             `json:"delivered"`
	Errors      int64             `json:"errors"`
	Seconds     float64           `json:"seconds"`
	Throughput  float64           `json:"throughput_per_second"`
	Latency     latencySummary    `json:"latency_ms"`
	AckLatency  latencySummary    `json:"ack_latency_ms"`
	// AcceptedLatency (direct): accepted attempt -> receipt; see result.Accepted.
	AcceptedLatency *latencySummary    `json:"accepted_latency_ms,omitempty"`
	Figures         map[string]float64 `json:"figures,omitempty"`
	Server          *serverUsage       `json:"server,omitempty"`
	Client          *serverUsage       `json:"client"`
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

// samples collects durations from many goroutines.
type samples struct {
	mu sync.Mutex
	d  []time.Duration
}

func (s *samples) add(d time.Duration) {
	s.mu.Lock()
	s.d = append(s.d, d)
	s.mu.Unlock()
}

func (s *samples) take() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.d
}

func benchUsage() {
	fmt.Fprintln(os.Stderr, "usage: fanline bench SCENARIO [flags]   (fanline bench SCENARIO -h for flags)\nscenarios:")
	names := make([]string, 0, len(scenarios))
	for name := range scenarios {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		fmt.Fprintf(os.Stderr, "  %-12s %s\n", name, scenarios[name].about)
	}
	fmt.Fprintf(os.Stderr, "  %-12s %s\n", "cold", coldAbout)
	fmt.Fprintf(os.Stderr, "  %-12s %s\n", "media", mediaAbout)
}

func bench(args []string) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		benchUsage()
		return errors.New("bench: name a scenario")
	}
	switch args[0] {
	case "cold":
		return benchCold(args[1:])
	case "media":
		return benchMedia(args[1:])
	}
	sc, ok := scenarios[args[0]]
	if !ok {
		benchUsage()
		return fmt.Errorf("bench: unknown scenario %q", args[0])
	}
	fs := flag.NewFlagSet("bench "+args[0], flag.ContinueOnError)
	var o benchOptions
	fs.StringVar(&o.url, "url", "http://127.0.0.1:8080", "server base URL")
	fs.IntVar(&o.users, "users", 1000, "connected users (direct: even, they chat in pairs; connections: connections held; group: members online)")
	fs.DurationVar(&o.duration, "duration", 30*time.Second, "measured time")
	fs.DurationVar(&o.warmup, "warmup", 3*time.Second, "unmeasured time before it")
	fs.Float64Var(&o.rate, "rate", 0, "direct: messages per second per user (0: as fast as acks allow); group: messages per second in all (0: 10); cs: buyers arriving per second (0: 20)")
	fs.IntVar(&o.inflight, "inflight", 4, "direct: unacknowledged sends per user")
	fs.IntVar(&o.size, "size", 64, "text bytes per message")
	fs.IntVar(&o.messages, "messages", 10000, "sync: messages that arrive while the device is offline; group: messages sent")
	fs.IntVar(&o.members, "members", 10000, "group: members (the first --users of them online); sync: members of each large group")
	fs.IntVar(&o.senders, "senders", 1, "group: members who send")
	fs.StringVar(&o.receivers, "receivers", "sdk", "group: how the online members that do not send receive: sdk (the Go SDK, as an app) or lean (read frames only, so the bench's CPU stays out of the server's)")
	fs.IntVar(&o.agents, "agents", 50, "cs: the shop's agents")
	fs.DurationVar(&o.service, "service", 2*time.Second, "cs: mean time an agent takes to close a chat")
	fs.IntVar(&o.conversations, "conversations", 100, "sync: direct chats they arrive over")
	fs.IntVar(&o.groups, "groups", 0, "sync: large groups (of --members) they also arrive over")
	fs.IntVar(&o.procs, "procs", 1, "client processes to spread the users over (each may open 20,000 files)")
	addrs := fs.String("local-addrs", "", "comma-separated source IPs to spread connections over (e.g. 127.0.0.2,127.0.0.3)")
	jsonFile := fs.String("json", "", "write the JSON summary to this file")
	pid := fs.Int("pid", 0, "server process id, to report its CPU and memory")
	// Set by a parent for its worker processes.
	worker := fs.Int("worker", -1, "internal: run as worker N of --procs and print the raw result")
	startAt := fs.Int64("start-at", 0, "internal: measurement start, unix ms")
	fs.StringVar(&o.prefix, "prefix", "", "internal: user id prefix")
	fs.Uint64Var(&o.group, "group", 0, "internal: the group of the group scenario")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if o.receivers != "sdk" && o.receivers != "lean" {
		return fmt.Errorf("bench: --receivers is %q: sdk or lean", o.receivers)
	}
	if *addrs != "" {
		o.localAddrs = strings.Split(*addrs, ",")
	}
	if o.users < 2 || o.users%2 != 0 || o.inflight < 1 || o.procs < 1 || o.messages < 1 || o.conversations < 1 {
		return errors.New("bench: --users must be even and at least 2; --inflight, --procs, --messages and --conversations at least 1")
	}
	if o.procs > 1 && !sc.splits {
		return fmt.Errorf("bench: %s runs in one process", args[0])
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	if *worker >= 0 {
		o.startAt = time.UnixMilli(*startAt)
		r, err := runShare(ctx, sc, o, shareOf(o, *worker))
		if err != nil {
			return err
		}
		return json.NewEncoder(os.Stdout).Encode(r)
	}

	if o.prefix == "" {
		o.prefix = fmt.Sprintf("b%d-", time.Now().UnixNano()%1e9)
	}
	complete := func(*result) error { return nil }
	if sc.prepare != nil {
		var err error
		if complete, err = sc.prepare(ctx, &o); err != nil {
			return err
		}
	}
	// Leave time to connect: at least 500 connections a second per process.
	o.startAt = time.Now().Add(2*time.Second + time.Duration(o.users/o.procs/500)*time.Second + o.warmup)
	sum := &benchSummary{Scenario: args[0], Started: time.Now().UTC(), Flags: map[string]string{}, Processes: o.procs}
	fs.Visit(func(f *flag.Flag) { sum.Flags[f.Name] = f.Value.String() })

	var before, start, mid *procSample
	var samples sync.Mutex // start and mid are taken by timers
	if *pid != 0 {
		before = sampleProc(*pid)
		at := func(t time.Time, into **procSample) *time.Timer {
			return time.AfterFunc(time.Until(t), func() {
				s := sampleProc(*pid)
				samples.Lock()
				*into = s
				samples.Unlock()
			})
		}
		defer at(o.startAt, &start).Stop()
		defer at(o.startAt.Add(o.duration/2), &mid).Stop()
	}
	var r *result
	var err error
	if o.procs == 1 {
		r, err = runShare(ctx, sc, o, share{0, o.users})
	} else {
		r, err = runWorkers(ctx, args[0], args[1:], o)
	}
	if err != nil {
		return err
	}
	if err := complete(r); err != nil {
		return err
	}
	sum.Connections, sum.Sent, sum.Delivered, sum.Errors = r.Connections, r.Sent, r.Delivered, r.Errors
	sum.Seconds = o.duration.Seconds()
	sum.Latency, sum.AckLatency = summarize(r.Latency), summarize(r.Ack)
	if len(r.Accepted) > 0 {
		a := summarize(r.Accepted)
		sum.AcceptedLatency = &a
	}
	sum.Throughput = float64(sum.Latency.Samples) / sum.Seconds
	sum.Figures, sum.Client = r.Figures, r.Client
	if before != nil {
		end := sampleProc(*pid)
		sum.Server = before.usage(end)
		samples.Lock()
		start, mid := start, mid
		samples.Unlock()
		if start != nil {
			perMessage(sum, r, end.cpu-start.cpu, end.rss)
		}
		if sc.finish != nil && mid != nil {
			sc.finish(o, sum, before, mid)
		}
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

// perMessage adds the server's costs over the measured window (from its start to
// the end of the run): CPU per message sent and per delivery (a message to each
// online member of a group is one), and memory per connection. On a box the server
// shares with the bench they are far steadier than latency.
func perMessage(sum *benchSummary, r *result, cpu time.Duration, rssMiB float64) {
	if sum.Figures == nil {
		sum.Figures = map[string]float64{}
	}
	deliveries := int64(0)
	for _, n := range r.Receipts {
		deliveries += int64(n)
	}
	if deliveries == 0 {
		deliveries = r.Delivered
	}
	us := float64(cpu.Microseconds())
	if r.Sent > 0 {
		sum.Figures["server_cpu_us_per_msg"] = us / float64(r.Sent)
	}
	if deliveries > 0 {
		sum.Figures["server_cpu_us_per_delivery"] = us / float64(deliveries)
	}
	if r.Connections > 0 {
		sum.Figures["server_rss_kib_per_conn"] = rssMiB * 1024 / float64(r.Connections)
	}
}

// shareOf is worker i's slice of the users, in whole pairs.
func shareOf(o benchOptions, i int) share {
	pairs := o.users / 2
	return share{2 * (i * pairs / o.procs), 2 * ((i + 1) * pairs / o.procs)}
}

// runShare measures one share and this process's own CPU and memory.
func runShare(ctx context.Context, sc scenario, o benchOptions, sh share) (*result, error) {
	self := sampleProc(os.Getpid())
	r, err := sc.run(ctx, o, sh)
	if err != nil {
		return nil, err
	}
	r.Client = self.usage(sampleProc(os.Getpid()))
	return r, nil
}

// runWorkers re-executes this binary once per process and merges what they measured.
func runWorkers(ctx context.Context, name string, args []string, o benchOptions) (*result, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	total := &result{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make(chan error, o.procs)
	for i := 0; i < o.procs; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			wargs := append([]string{"bench", name}, args...)
			wargs = append(wargs, "--worker", strconv.Itoa(i), "--start-at", strconv.FormatInt(o.startAt.UnixMilli(), 10),
				"--prefix", o.prefix, "--group", strconv.FormatUint(o.group, 10), "--json", "", "--pid", "0")
			cmd := exec.CommandContext(ctx, exe, wargs...)
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, os.Stderr
			if err := cmd.Run(); err != nil {
				errs <- fmt.Errorf("bench: worker %d: %w", i, err)
				return
			}
			var r result
			if err := json.Unmarshal(out.Bytes(), &r); err != nil {
				errs <- fmt.Errorf("bench: worker %d output: %w", i, err)
				return
			}
			mu.Lock()
			total.merge(&r)
			mu.Unlock()
		}(i)
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return nil, err
	}
	return total, nil
}

func printSummary(s *benchSummary) {
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(w, "scenario\t%s (%d client process(es))\n", s.Scenario, s.Processes)
	fmt.Fprintf(w, "connections\t%d\n", s.Connections)
	fmt.Fprintf(w, "sent / delivered / errors\t%d / %d / %d\n", s.Sent, s.Delivered, s.Errors)
	fmt.Fprintf(w, "measured\t%.1f s\n", s.Seconds)
	if s.Latency.Samples > 0 {
		fmt.Fprintf(w, "throughput\t%.0f msg/s\n", s.Throughput)
		l := s.Latency
		fmt.Fprintf(w, "send->receipt ms\tp50 %.2f  p90 %.2f  p99 %.2f  max %.2f  (%d samples)\n", l.P50, l.P90, l.P99, l.Max, l.Samples)
	}
	if a := s.AckLatency; a.Samples > 0 {
		fmt.Fprintf(w, "send->ack ms\tp50 %.2f  p90 %.2f  p99 %.2f  max %.2f\n", a.P50, a.P90, a.P99, a.Max)
	}
	if a := s.AcceptedLatency; a != nil {
		fmt.Fprintf(w, "accepted->receipt ms\tp50 %.2f  p90 %.2f  p99 %.2f  max %.2f\n", a.P50, a.P90, a.P99, a.Max)
	}
	keys := make([]string, 0, len(s.Figures))
	for k := range s.Figures {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(w, "%s\t%.2f\n", k, s.Figures[k])
	}
	if s.Server != nil {
		fmt.Fprintf(w, "server\tCPU %.0f%% of one core, RSS %.0f MiB (peak %.0f MiB)\n", s.Server.CPUPercent, s.Server.RSSMiB, s.Server.PeakRSSMiB)
	}
	if s.Client != nil {
		fmt.Fprintf(w, "bench clients\tCPU %.0f%% of one core, RSS %.0f MiB\n", s.Client.CPUPercent, s.Client.RSSMiB)
	}
	w.Flush()
}

// dialUsers connects users [sh.lo, sh.hi) named o.prefix+index.
func dialUsers(ctx context.Context, o benchOptions, sh share, buffer int) ([]*client.Client, error) {
	cs, err := dialEach(sh.hi-sh.lo, func(i int) (*client.Client, error) {
		user := userName(o, sh.lo+i)
		tok, err := client.DevToken(ctx, o.url, user, "", "")
		if err != nil {
			return nil, fmt.Errorf("token for %s: %w", user, err)
		}
		cfg := client.Config{URL: o.url, Token: tok, EntryBuffer: buffer, LocalAddr: localAddr(o, sh.lo+i)}
		c, err := client.Connect(ctx, cfg)
		if err != nil {
			return nil, fmt.Errorf("connect %s: %w", user, err)
		}
		return c, nil
	})
	if err != nil {
		closeAll(cs)
	}
	return cs, err
}

// dialEach makes n connections with dial, 64 at a time, and returns them (nil
// where dial failed) with the first error.
func dialEach[T any](n int, dial func(i int) (T, error)) ([]T, error) {
	out := make([]T, n)
	errs := make(chan error, n)
	sem := make(chan struct{}, 64)
	var wg sync.WaitGroup
	for i := range out {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			var err error
			if out[i], err = dial(i); err != nil {
				errs <- err
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	return out, <-errs
}

// localAddr is user i's source address: --local-addrs in turn, or "" (any).
func localAddr(o benchOptions, i int) string {
	if len(o.localAddrs) == 0 {
		return ""
	}
	return o.localAddrs[i%len(o.localAddrs)]
}

func userName(o benchOptions, i int) string { return o.prefix + strconv.Itoa(i) }

func closeAll(cs []*client.Client) {
	var wg sync.WaitGroup
	for _, c := range cs {
		if c != nil {
			wg.Add(1)
			go func(c *client.Client) {
				defer wg.Done()
				c.Close()
			}(c)
		}
	}
	wg.Wait()
}

// sleepUntil waits for t or ctx.
func sleepUntil(ctx context.Context, t time.Time) error {
	timer := time.NewTimer(time.Until(t))
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
