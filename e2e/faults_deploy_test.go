package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fanline/fanline/internal/testharness"
)

// A deployment of the fault-injection suite: the real binary as child processes, on
// the engines the faults hit. Clients connect to its gateways' URLs, which stay the
// same across restarts.
type deployment struct {
	gateways []string
	// nodes by name: "single"; or "dispatch", "gateway-1", "gateway-2".
	nodes   map[string]*node
	kafka   *testharness.Kafka
	redis   *testharness.RedisServer
	proxies []*testharness.Proxy // gateway i -> the dispatch node's internal API
	disk    *smallDisk           // the single node's data directory, when on one
}

// node is one fanline process that can be killed and started again on the same
// address and data directory.
type node struct {
	addr, data string
	env        []string

	mu   sync.Mutex // guards proc
	proc *testharness.Server
}

func (n *node) start(t testing.TB) {
	p := testharness.StartServer(t, n.addr, n.data, n.env...)
	n.mu.Lock()
	n.proc = p
	n.mu.Unlock()
}

func (n *node) kill() {
	n.mu.Lock()
	p := n.proc
	n.mu.Unlock()
	p.Kill()
}

// diskFullLine is what a node logs when it starts refusing work for want of space.
const diskFullLine = "kv: the disk is full"

// logCount counts the lines of n's log that contain line.
func logCount(n *node, line string) int {
	b, _ := os.ReadFile(n.data + ".log")
	return strings.Count(string(b), line)
}

// exited reports whether the process has ended by itself.
func (n *node) exited() bool {
	n.mu.Lock()
	p := n.proc
	n.mu.Unlock()
	select {
	case <-p.Done():
		return true
	default:
		return false
	}
}

func (n *node) url() string { return "http://" + n.addr }

// dumpLogsOnFailure prints, when the test failed, the warnings and errors each node
// logged (the logs live in the test's temporary directory, removed after it).
func (d *deployment) dumpLogsOnFailure(t *testing.T) {
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		for name, n := range d.nodes {
			b, err := os.ReadFile(n.data + ".log")
			if err != nil {
				continue
			}
			var lines []string
			for _, l := range strings.Split(string(b), "\n") {
				if strings.Contains(l, "dispatch node unreachable") || strings.Contains(l, "dev mode is on") {
					continue // what the faults cause
				}
				if strings.Contains(l, "WARN") || strings.Contains(l, "ERROR") || strings.Contains(l, "panic") {
					lines = append(lines, l)
				}
			}
			if len(lines) > 30 {
				lines = append(lines[:30], fmt.Sprintf("... %d more", len(lines)-30))
			}
			t.Logf("%s logged:\n%s", name, strings.Join(lines, "\n"))
		}
	})
}

// faultEnv is the configuration every node of the suite shares: no rate limit, and a
// group switches to read-fanout past 5 members and back below 5 (groupCore members
// plus two churned ones cross it).
var faultEnv = []string{
	"FANLINE_LIMITS_RATE_PER_SECOND=-1",
	"FANLINE_LOG_LEVEL=warn",
	"FANLINE_FANOUT_WRITE_MAX_MEMBERS=5",
	"FANLINE_FANOUT_WRITE_BACK_MEMBERS=5",
}

// singleDeployment is one process with every role on the embedded backends; with
// onSmallDisk, its data directory is a file system of its own that the disk faults
// fill.
func singleDeployment(t *testing.T, onSmallDisk bool) *deployment {
	dir := t.TempDir()
	n := &node{addr: testharness.FreeAddr(t), data: filepath.Join(dir, "single"), env: faultEnv}
	d := &deployment{gateways: []string{n.url()}, nodes: map[string]*node{"single": n}}
	if onSmallDisk {
		var err error
		if d.disk, err = mountSmallDisk(t, n.data, smallDiskBytes); err != nil {
			t.Skipf("no file system of its own for the disk faults (mounting a tmpfs needs root): %v", err)
		}
		n.env = append([]string{fmt.Sprintf("FANLINE_STORAGE_MIN_FREE_BYTES=%d", smallDiskReserve)}, n.env...)
	}
	d.dumpLogsOnFailure(t)
	n.start(t)
	return d
}

// splitDeployment is a dispatch node and two gateway nodes on a Kafka-protocol
// broker (kfake, restartable with its data) and a durable redis-server; each gateway
// reaches the dispatch node's internal API through its own proxy.
func splitDeployment(t *testing.T) *deployment {
	kafka := testharness.StartKafka(t)
	redis := testharness.StartDurableRedis(t)
	env := append([]string{
		"FANLINE_QUEUE_BACKEND=kafka",
		"FANLINE_KAFKA_BROKERS=" + kafka.Addr,
		"FANLINE_KAFKA_REPLICATION=1",
		"FANLINE_PRESENCE_BACKEND=redis",
		"FANLINE_PRESENCE_TTL=10s",
		"FANLINE_DEDUP_BACKEND=redis",
		"FANLINE_REDIS_ADDR=" + redis.Addr,
		"FANLINE_AUTH_JWT_SECRET=fault-suite-secret-0123456789abcdef",
		"FANLINE_DEV_MODE=true",
	}, faultEnv...)
	migrate := exec.Command(testharness.Binary(t), "migrate")
	migrate.Env = append(os.Environ(), env...)
	if out, err := migrate.CombinedOutput(); err != nil {
		t.Fatalf("migrate: %v\n%s", err, out)
	}
	dir := t.TempDir()
	d := &deployment{nodes: map[string]*node{}, kafka: kafka, redis: redis}
	d.dumpLogsOnFailure(t)
	disp := &node{addr: testharness.FreeAddr(t), data: filepath.Join(dir, "dispatch"),
		env: append([]string{"FANLINE_ROLES=dispatch", "FANLINE_NODE_ID=0"}, env...)}
	disp.start(t)
	d.nodes["dispatch"] = disp
	for i := 1; i <= 2; i++ {
		p := testharness.StartProxy(t, disp.addr)
		g := &node{addr: testharness.FreeAddr(t), data: filepath.Join(dir, fmt.Sprintf("gateway-%d", i)),
			env: append([]string{"FANLINE_ROLES=gateway", fmt.Sprintf("FANLINE_NODE_ID=%d", i),
				"FANLINE_CLUSTER_DISPATCH_URL=http://" + p.Addr}, env...)}
		g.start(t)
		d.nodes[fmt.Sprintf("gateway-%d", i)] = g
		d.gateways = append(d.gateways, g.url())
		d.proxies = append(d.proxies, p)
	}
	return d
}

// A fault is injected, lasts a while, and is healed; heal returns once the faulty
// part is back (a restarted process answers /healthz).
type fault struct {
	name   string
	inject func(t *testing.T)
	heal   func(t *testing.T)
}

func killFault(name string, n *node) fault {
	return fault{name: "SIGKILL " + name, inject: func(*testing.T) { n.kill() }, heal: func(t *testing.T) { n.start(t) }}
}

// faults lists what can go wrong in the deployment.
func (d *deployment) faults() map[string]fault {
	out := map[string]fault{}
	for name, n := range d.nodes {
		out["kill-"+name] = killFault(name, n)
	}
	if d.kafka != nil {
		out["kafka"] = fault{name: "kfake stopped and restarted", inject: func(*testing.T) { d.kafka.Stop() }, heal: func(t *testing.T) { d.kafka.Start(t) }}
	}
	if d.redis != nil {
		out["redis"] = fault{name: "redis-server SIGKILL and restart", inject: func(*testing.T) { d.redis.Kill() }, heal: func(t *testing.T) { d.redis.Start(t) }}
	}
	if d.disk != nil {
		n := d.nodes["single"]
		// Heal frees the space; a node that could not write its WAL has exited
		// (code 1) and is started again, as an operator would once there is room.
		heal := func(t *testing.T) {
			if err := d.disk.empty(); err != nil {
				t.Fatal(err)
			}
			if n.exited() {
				t.Logf("the node exited on the full disk (%v); started again", n.proc.Err())
				n.start(t)
			}
		}
		out["disk-reserve"] = fault{name: "disk filled into the reserve", heal: heal, inject: func(t *testing.T) {
			before := logCount(n, diskFullLine)
			if err := d.disk.fill(smallDiskReserve / 2); err != nil {
				t.Fatal(err)
			}
			// The fault lasts until the node has seen it (it looks at the disk once a
			// second while sends come in) and refuses new work.
			testharness.WaitFor(t, 10*time.Second, "the node to report the full disk", func() bool {
				return logCount(n, diskFullLine) > before
			})
		}}
		out["disk-full"] = fault{name: "disk filled to the last byte", heal: heal, inject: func(t *testing.T) {
			if err := d.disk.fill(0); err != nil {
				t.Fatal(err)
			}
		}}
	}
	for i, p := range d.proxies {
		out[fmt.Sprintf("cut-%d", i+1)] = fault{name: fmt.Sprintf("network gateway-%d <-> dispatch cut", i+1),
			inject: func(*testing.T) { p.Cut() }, heal: func(*testing.T) { p.Heal() }}
		out[fmt.Sprintf("stall-%d", i+1)] = fault{name: fmt.Sprintf("network gateway-%d <-> dispatch stalled", i+1),
			inject: func(*testing.T) { p.Stall() }, heal: func(*testing.T) { p.Heal() }}
	}
	return out
}
