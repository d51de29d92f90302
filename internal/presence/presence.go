// Package presence tracks which users have connected devices and on which gateway node.
package presence

// Registry records connections per user and node.
type Registry interface {
	// Connect records one more connection of user on node.
	Connect(user, node string)
	// Disconnect records one connection of user on node closing.
	Disconnect(user, node string)
	// Online reports, for each user, whether any device is connected.
	Online(users []string) map[string]bool
}
