package e2e

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fanline/fanline/client"
	"github.com/fanline/fanline/internal/wire"
)

// TestSDKSlowAppLosesNothing: an app that does not read its entries still gets its
// acks (pushes never block the connection), loses nothing, and reads every entry once,
// in order, when it catches up. A second client started from the first one's cursor
// and last seq gets exactly what came after it.
func TestSDKSlowAppLosesNothing(t *testing.T) {
	ts := startServer(t, nil)
	ctx := context.Background()
	tok := token(t, ts.URL, "bob")
	bob, err := client.Connect(ctx, client.Config{URL: ts.URL, Token: tok, EntryBuffer: 1, MaxBackoff: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer bob.Close()
	ann := connect(t, ts.URL, "ann")
	const n = 300
	for i := 0; i < n; i++ {
		// Both directions: bob's own sends must be acknowledged while he reads nothing.
		c, to := ann, "bob"
		if i%3 == 0 {
			c, to = bob, "ann"
		}
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		_, err := c.Send(sctx, wire.SendRequest{To: to, Type: "text", Body: text(strconv.Itoa(i))})
		cancel()
		if err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	es := collect(t, bob, n, time.Minute)
	for i, e := range es {
		if e.Seq != uint64(i+1) {
			t.Fatalf("entry %d has seq %d", i, e.Seq)
		}
	}
	cursor := bob.Cursor()
	if cursor == "" {
		t.Fatal("no cursor after delivery")
	}
	bob.Close()

	for i := 0; i < 5; i++ {
		if _, err := ann.Send(ctx, wire.SendRequest{To: "bob", Type: "text", Body: text("later")}); err != nil {
			t.Fatal(err)
		}
	}
	again, err := client.Connect(ctx, client.Config{URL: ts.URL, Token: tok, Cursor: cursor, LastSeq: es[len(es)-1].Seq})
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	later := collect(t, again, 5, 30*time.Second)
	if later[0].Seq != n+1 || later[4].Seq != n+5 || string(later[0].Body) != `{"text":"later"}` {
		t.Fatalf("resumed at %+v", later[0])
	}
	select {
	case e := <-again.Entries():
		t.Fatalf("extra entry %+v", e)
	case <-time.After(200 * time.Millisecond):
	}
}

// TestBadSavedCursorStartsOver: a cursor the server refuses makes the SDK sync from
// the beginning rather than retry forever.
func TestBadSavedCursorStartsOver(t *testing.T) {
	ts := startServer(t, nil)
	ctx := context.Background()
	ann := connect(t, ts.URL, "ann")
	if _, err := ann.Send(ctx, wire.SendRequest{To: "bob", Type: "text", Body: text("hi")}); err != nil {
		t.Fatal(err)
	}
	bob, err := client.Connect(ctx, client.Config{URL: ts.URL, Token: token(t, ts.URL, "bob"), Cursor: "not-a-cursor"})
	if err != nil {
		t.Fatal(err)
	}
	defer bob.Close()
	if es := collect(t, bob, 1, 10*time.Second); es[0].Seq != 1 {
		t.Fatalf("got %+v", es[0])
	}
}

// TestConnectRefusesBadToken: the first connection reports a refused token.
func TestConnectRefusesBadToken(t *testing.T) {
	ts := startServer(t, nil)
	_, err := client.Connect(context.Background(), client.Config{URL: ts.URL, Token: "nope"})
	if we, ok := err.(*wire.Error); !ok || we.Code != wire.CodeInvalidToken {
		t.Fatalf("Connect with a bad token: %v", err)
	}
}

// metric reads one unlabelled metric from /metrics.
func metric(t *testing.T, url, name string) float64 {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	t.Fatalf("metric %s not exported", name)
	return 0
}
