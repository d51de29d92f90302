package testharness

import (
	"net"
	"sync"
	"testing"
)

// Proxy is a TCP proxy a test puts between two nodes (a gateway and the dispatch
// node's internal API) to cut or stall the network between them. It forwards by
// default; Cut closes every connection and refuses new ones; Stall keeps connections
// open but holds their bytes (in both directions) until Heal, which forwards what was
// held, late, as a healed partition would. It is closed at the test's cleanup.
type Proxy struct {
	// Addr is where the proxy listens.
	Addr   string
	target string
	ln     net.Listener
	done   chan struct{} // closed by close
	wg     sync.WaitGroup

	mu     sync.Mutex // guards mode, conns, resume
	mode   proxyMode
	conns  map[net.Conn]struct{} // both ends of every forwarded connection
	resume chan struct{}         // closed when a stall ends
}

type proxyMode int

const (
	proxyForward proxyMode = iota
	proxyCut
	proxyStall
)

// StartProxy listens on a free loopback port and forwards every connection to target.
func StartProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{Addr: ln.Addr().String(), target: target, ln: ln, done: make(chan struct{}),
		conns: map[net.Conn]struct{}{}, resume: make(chan struct{})}
	close(p.resume)
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

// Cut closes every connection through the proxy and refuses new ones until Heal.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.endStall()
	p.mode = proxyCut
	for c := range p.conns {
		c.Close()
	}
}

// Stall holds every byte through the proxy, on open and new connections, until Heal.
func (p *Proxy) Stall() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mode != proxyStall {
		p.resume = make(chan struct{})
	}
	p.mode = proxyStall
}

// Heal forwards again (after a stall, what was held first).
func (p *Proxy) Heal() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.endStall()
	p.mode = proxyForward
}

// endStall releases held bytes. The caller holds mu.
func (p *Proxy) endStall() {
	if p.mode == proxyStall {
		close(p.resume)
	}
}

func (p *Proxy) close() {
	p.ln.Close()
	close(p.done)
	p.mu.Lock()
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		in, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		cut := p.mode == proxyCut
		p.mu.Unlock()
		if cut {
			in.Close()
			continue
		}
		out, err := net.Dial("tcp", p.target)
		if err != nil {
			in.Close()
			continue
		}
		p.mu.Lock()
		if p.mode == proxyCut {
			p.mu.Unlock()
			in.Close()
			out.Close()
			continue
		}
		p.conns[in], p.conns[out] = struct{}{}, struct{}{}
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(out, in)
		go p.pipe(in, out)
	}
}

// pipe copies src to dst, holding bytes while stalled, and closes both at the end.
func (p *Proxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	defer func() {
		p.mu.Lock()
		delete(p.conns, src)
		delete(p.conns, dst)
		p.mu.Unlock()
		src.Close()
		dst.Close()
	}()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			resume := p.resume
			p.mu.Unlock()
			select {
			case <-resume:
			case <-p.done:
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
