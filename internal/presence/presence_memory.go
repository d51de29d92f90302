package presence

import "sync"

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
func (r *MemoryRegistry) Connect(user, node string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.conns[user] == nil {
		r.conns[user] = map[string]int{}
	}
	r.conns[user][node]++
}

// Disconnect implements Registry.
func (r *MemoryRegistry) Disconnect(user, node string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	nodes := r.conns[user]
	if nodes[node] <= 1 {
		delete(nodes, node)
	} else {
		nodes[node]--
	}
	if len(nodes) == 0 {
		delete(r.conns, user)
	}
}

// Online implements Registry.
func (r *MemoryRegistry) Online(users []string) map[string]bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]bool, len(users))
	for _, u := range users {
		out[u] = len(r.conns[u]) > 0
	}
	return out
}
