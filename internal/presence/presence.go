// Package presence tracks which users have connected devices and on which gateway node.
//
// Registries are safe for concurrent use.
package presence

import "context"

// Registry records connections per user and node.
type Registry interface {
	// Connect records one more connection of user on node.
	Connect(ctx context.Context, user, node string) error
	// Disconnect records one connection of user on node closing.
	Disconnect(ctx context.Context, user, node string) error
	// Online reports, for each user, whether any device is connected on any live node.
	Online(ctx context.Context, users []string) (map[string]bool, error)
	// Nodes returns, for each user with a device connected on a live node, those
	// nodes (sorted); offline users are absent. Push routing uses it.
	Nodes(ctx context.Context, users []string) (map[string][]string, error)
}
