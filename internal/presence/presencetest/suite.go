// Package presencetest is the conformance suite every presence.Registry backend runs.
package presencetest

import (
	"context"
	"fmt"
	"reflect"
	"sync"
	"testing"

	"github.com/fanline/fanline/internal/presence"
)

// Factory returns a fresh, empty registry for one test.
type Factory func(t *testing.T) presence.Registry

// Run runs the whole suite.
func Run(t *testing.T, f Factory) {
	t.Run("CountsConnections", func(t *testing.T) { testCounts(t, f(t)) })
	t.Run("SeveralNodes", func(t *testing.T) { testNodes(t, f(t)) })
	t.Run("Concurrent", func(t *testing.T) { testConcurrent(t, f(t)) })
}

var ctx = context.Background()

func online(t *testing.T, r presence.Registry, users ...string) map[string]bool {
	t.Helper()
	got, err := r.Online(ctx, users)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func nodes(t *testing.T, r presence.Registry, users ...string) map[string][]string {
	t.Helper()
	got, err := r.Nodes(ctx, users)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func testCounts(t *testing.T, r presence.Registry) {
	if got := online(t, r, "a", "b"); got["a"] || got["b"] || len(got) != 2 {
		t.Fatalf("empty registry: %v", got)
	}
	must(t, r.Connect(ctx, "a", "n1"))
	must(t, r.Connect(ctx, "a", "n1"))
	must(t, r.Disconnect(ctx, "a", "n1"))
	if got := online(t, r, "a"); !got["a"] {
		t.Fatal("a offline with one of two devices left")
	}
	must(t, r.Disconnect(ctx, "a", "n1"))
	if got := online(t, r, "a"); got["a"] {
		t.Fatal("a online after both devices left")
	}
	// A stray disconnect does not go negative.
	must(t, r.Disconnect(ctx, "a", "n1"))
	must(t, r.Connect(ctx, "a", "n1"))
	if got := online(t, r, "a"); !got["a"] {
		t.Fatal("a offline after reconnecting")
	}
}

func testNodes(t *testing.T, r presence.Registry) {
	must(t, r.Connect(ctx, "u", "n1"))
	must(t, r.Connect(ctx, "u", "n2"))
	must(t, r.Connect(ctx, "v", "n2"))
	if got := nodes(t, r, "u", "v", "w"); !reflect.DeepEqual(got, map[string][]string{"u": {"n1", "n2"}, "v": {"n2"}}) {
		t.Fatalf("nodes: %v", got)
	}
	must(t, r.Disconnect(ctx, "u", "n1"))
	if got := online(t, r, "u"); !got["u"] {
		t.Fatal("u offline while connected on n2")
	}
	if got := nodes(t, r, "u"); !reflect.DeepEqual(got, map[string][]string{"u": {"n2"}}) {
		t.Fatalf("nodes after leaving n1: %v", got)
	}
	must(t, r.Disconnect(ctx, "u", "n2"))
	if got := online(t, r, "u"); got["u"] {
		t.Fatal("u online after leaving both nodes")
	}
}

func testConcurrent(t *testing.T, r presence.Registry) {
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				u := fmt.Sprintf("u%d", i%10)
				if err := r.Connect(ctx, u, "n"); err != nil {
					t.Error(err)
				}
				if err := r.Disconnect(ctx, u, "n"); err != nil {
					t.Error(err)
				}
			}
		}(w)
	}
	wg.Wait()
	users := make([]string, 10)
	for i := range users {
		users[i] = fmt.Sprintf("u%d", i)
	}
	for u, on := range online(t, r, users...) {
		if on {
			t.Errorf("%s online after every connection closed", u)
		}
	}
}
