package presence

import (
	"context"
	"slices"
	"sync"
)

// MemoryRegistry is the in-process Registry of the one-process deployment.
type MemoryRegistry struct {
	mu    sync.Mutex                // guards conns
	conns map[string]map[string]int // user -> node -> open connections
}

var _ Registry = (*MemoryRegistry)(nil)

// NewMemoryRegistry returns an empty registry.
func NewMemoryRegistry() *MemoryRegistry {
	return &MemoryRegistry{conns: map[string]map[string]int{}}
}

// Connect implements Registry.
func (r *MemoryRegistry) Connect(_ context.Context, user, node string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	count(r.conns, user, node, +1)
	return nil
}

// Disconnect implements Registry.
func (r *MemoryRegistry) Disconnect(_ context.Context, user, node string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	count(r.conns, user, node, -1)
	return nil
}

// count adds delta to conns[user][node], dropping entries that reach zero, and returns
// the new count.
func count(conns map[string]map[string]int, user, node string, delta int) int {
	nodes := conns[user]
	if nodes == nil {
		nodes = map[string]int{}
		conns[user] = nodes
	}
	n := max(0, nodes[node]+delta)
	if n == 0 {
		delete(nodes, node)
	} else {
		nodes[node] = n
	}
	if len(nodes) == 0 {
		delete(conns, user)
	}
	return n
}

// Online implements Registry.
func (r *MemoryRegistry) Online(_ context.Context, users []string) (map[string]bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]bool, len(users))
	for _, u := range users {
		out[u] = len(r.conns[u]) > 0
	}
	return out, nil
}

// Nodes implements Registry.
func (r *MemoryRegistry) Nodes(_ context.Context, users []string) (map[string][]string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string][]string, len(users))
	for _, u := range users {
		for n := range r.conns[u] {
			out[u] = append(out[u], n)
		}
		slices.Sort(out[u])
	}
	return out, nil
}
