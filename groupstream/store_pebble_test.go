package groupstream_test

import (
	"testing"

	"github.com/fanline/fanline/groupstream"
	"github.com/fanline/fanline/groupstream/streamtest"
	"github.com/fanline/fanline/internal/kv"
)

func TestPebbleStoreConformance(t *testing.T) {
	streamtest.Run(t, func(t *testing.T) groupstream.Store {
		db, err := kv.Open(t.TempDir(), nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return groupstream.NewPebbleStore(db)
	})
}
