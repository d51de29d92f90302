package presence_test

import (
	"testing"

	"github.com/fanline/fanline/internal/presence"
	"github.com/fanline/fanline/internal/presence/presencetest"
)

func TestMemoryRegistryConformance(t *testing.T) {
	presencetest.Run(t, func(*testing.T) presence.Registry { return presence.NewMemoryRegistry() })
}
