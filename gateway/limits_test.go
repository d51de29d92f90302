package gateway

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/fanline/fanline/internal/wire"
)

func TestLimiterCharges(t *testing.T) {
	l := newLimiter(10, 20)
	for i := 0; i < 20; i++ {
		if ok, _ := l.take("ann", 1); !ok {
			t.Fatalf("call %d refused inside the burst", i)
		}
	}
	ok, wait := l.take("ann", 1)
	if ok || wait <= 0 || wait > 200*time.Millisecond {
		t.Fatalf("past the burst: ok=%v wait=%v", ok, wait)
	}
	if ok, _ := l.take("bob", 5); !ok {
		t.Fatal("another user's bucket is their own")
	}
	// A cost over the burst is paid with the whole bucket and a debt.
	if ok, _ := l.take("cy", 50); !ok {
		t.Fatal("an expensive call with a full bucket")
	}
	if ok, wait := l.take("cy", 1); ok || wait < time.Second {
		t.Fatalf("after a call costing 2.5 bursts: ok=%v wait=%v", ok, wait)
	}
	// A debt charged after the fact makes the next calls wait.
	l.take("dee", 1)
	l.owe("dee", 19)
	if ok, _ := l.take("dee", 1); ok {
		t.Fatal("a call right after a debt of the whole burst")
	}
	// holds looks without taking: a sized call's body is read only if its base
	// cost could be paid.
	if ok, _ := l.holds("eve", 5); !ok {
		t.Fatal("a full bucket does not hold 5")
	}
	l.take("eve", 18)
	if ok, wait := l.holds("eve", 5); ok || wait <= 0 {
		t.Fatalf("2 tokens left hold 5: ok=%v wait=%v", ok, wait)
	}
	if ok, _ := l.holds("eve", 2); !ok {
		t.Fatal("2 tokens left do not hold 2")
	}
	if ok, _ := l.take("eve", 2); !ok {
		t.Fatal("holds took tokens")
	}
	off := newLimiter(-1, 0)
	for i := 0; i < 1000; i++ {
		if ok, _ := off.take("ann", 100); !ok {
			t.Fatal("limiting off refused a call")
		}
	}
	if e := rateLimited(1500 * time.Millisecond); e.Code != wire.CodeRateLimited || e.RetryAfter != 2 {
		t.Fatalf("refusal %+v", e)
	}
}

func TestConnLimits(t *testing.T) {
	l := newConnLimits(2, 3)
	for _, u := range []string{"ann", "ann", "bob"} {
		if e := l.acquire(u, "10.0.0.1"); e != nil {
			t.Fatalf("%s: %v", u, e)
		}
	}
	if e := l.acquire("ann", "10.0.0.2"); e == nil || e.Code != wire.CodeRateLimited {
		t.Fatalf("a third connection of ann: %v", e)
	}
	if e := l.acquire("cy", "10.0.0.1"); e == nil {
		t.Fatal("a fourth connection from one address")
	}
	l.release("ann", "10.0.0.1")
	if e := l.acquire("cy", "10.0.0.1"); e != nil {
		t.Fatalf("after a release: %v", e)
	}
	if len(l.users) != 3 || l.ips["10.0.0.1"] != 3 {
		t.Fatalf("counts %v %v", l.users, l.ips)
	}
	unlimited := newConnLimits(-1, -1)
	for i := 0; i < 100; i++ {
		if e := unlimited.acquire("ann", "ip"); e != nil {
			t.Fatal(e)
		}
	}
}

func TestOriginsAndTokens(t *testing.T) {
	req := func(origin string) *http.Request {
		r := httptest.NewRequest("GET", "http://chat.example.com/v1/ws", nil)
		if origin != "" {
			r.Header.Set("Origin", origin)
		}
		return r
	}
	same := originChecker(nil)
	listed := originChecker([]string{"https://shop.example.com"})
	anyOrigin := originChecker([]string{"*"})
	for _, tc := range []struct {
		check  func(*http.Request) bool
		origin string
		ok     bool
	}{
		{same, "", true},
		{same, "http://chat.example.com", true},
		{same, "https://evil.example.com", false},
		{same, "::bad", false},
		{listed, "https://shop.example.com", true},
		{listed, "https://SHOP.example.com", true},
		{listed, "http://shop.example.com", false},
		{anyOrigin, "https://evil.example.com", true},
	} {
		if got := tc.check(req(tc.origin)); got != tc.ok {
			t.Errorf("origin %q: %v, want %v", tc.origin, got, tc.ok)
		}
	}
	r := req("")
	r.Header.Set("Sec-WebSocket-Protocol", "fanline, bearer.a.b.c")
	if got := wsToken(r); got != "a.b.c" {
		t.Errorf("subprotocol token %q", got)
	}
	r = httptest.NewRequest("GET", "/v1/ws?token=x.y.z", nil)
	if got := wsToken(r); got != "x.y.z" {
		t.Errorf("query token %q", got)
	}
}

func TestRefusedFramesClose(t *testing.T) {
	c := &conn{}
	now := time.Now()
	for i := 1; i < maxRefusedFrames; i++ {
		if c.overLimit(now) {
			t.Fatalf("closed after %d refusals", i)
		}
	}
	if !c.overLimit(now) {
		t.Fatal("not closed after maxRefusedFrames refusals within the window")
	}
	// A client that waits between refusals is never let go.
	c = &conn{}
	for i := 0; i < 3*maxRefusedFrames; i++ {
		if c.overLimit(now.Add(time.Duration(i) * refusedWindow / 100)) {
			t.Fatalf("a client refused 100 times a window was closed after %d", i)
		}
	}
}
