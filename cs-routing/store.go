package csrouting

import (
	"encoding/json"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
	"github.com/fanline/fanline/internal/kv"
)

// ShopConfig is what a shop's admins configured: the rules and the agents.
type ShopConfig struct {
	Rules  *Rules        `json:"rules,omitempty"`
	Agents []AgentConfig `json:"agents,omitempty"`
}

// Store keeps shops' configuration across restarts. (Chats in progress are live state:
// after a restart buyers' next open routes them again.)
type Store interface {
	// Put replaces a shop's configuration, durably.
	Put(shop string, cfg ShopConfig) error
	// All returns every shop's configuration.
	All() (map[string]ShopConfig, error)
}

// PebbleStore is the embedded Store: key r c <shop> -> ShopConfig as JSON.
type PebbleStore struct{ db *pebble.DB }

var _ Store = (*PebbleStore)(nil)

// NewPebbleStore returns a Store on db.
func NewPebbleStore(db *pebble.DB) *PebbleStore { return &PebbleStore{db: db} }

func shopPrefix() kv.Key { return kv.NewKey(kv.PrefixRouting, 'c') }

// Put implements Store.
func (s *PebbleStore) Put(shop string, cfg ShopConfig) error {
	v, err := json.Marshal(cfg)
	if err != nil {
		return err
	}
	if err := s.db.Set(shopPrefix().Str(shop), v, pebble.Sync); err != nil {
		return fmt.Errorf("csrouting: save shop %s: %w", shop, err)
	}
	return nil
}

// All implements Store.
func (s *PebbleStore) All() (map[string]ShopConfig, error) {
	prefix := shopPrefix()
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: kv.PrefixEnd(prefix)})
	if err != nil {
		return nil, fmt.Errorf("csrouting: %w", err)
	}
	defer it.Close()
	out := map[string]ShopConfig{}
	for it.First(); it.Valid(); it.Next() {
		k := it.Key()[len(prefix):]
		var cfg ShopConfig
		if err := json.Unmarshal(it.Value(), &cfg); err != nil {
			return nil, fmt.Errorf("csrouting: shop %s: %w", k[1:1+k[0]], err)
		}
		out[string(k[1:1+k[0]])] = cfg
	}
	return out, it.Error()
}
