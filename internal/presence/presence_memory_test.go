package presence

import "testing"

func TestMemoryRegistry(t *testing.T) {
	r := NewMemoryRegistry()
	r.Connect("a", "n1")
	r.Connect("a", "n1")
	r.Connect("b", "n2")
	r.Disconnect("a", "n1")
	if got := r.Online([]string{"a", "b", "c"}); !got["a"] || !got["b"] || got["c"] {
		t.Fatalf("online %v", got)
	}
	r.Disconnect("a", "n1")
	r.Disconnect("b", "n2")
	if got := r.Online([]string{"a", "b"}); got["a"] || got["b"] {
		t.Fatalf("online after disconnects %v", got)
	}
}
