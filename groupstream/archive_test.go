package groupstream

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/fanline/fanline/internal/kv"
	"github.com/fanline/fanline/internal/tier"
)

// TestArchivedDoc: a message's segment record leaves out of its document what the
// record holds (id, time, seq), and decodes to the message; a record of a segment
// written before that, holding the whole document, decodes the same.
func TestArchivedDoc(t *testing.T) {
	db, err := kv.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s := NewPebbleStore(db, Config{})
	m := Message{ID: 1 << 40, ConversationID: 7, From: "ann", ClientMsgID: "c1", Type: "text",
		Body: json.RawMessage(`{"text":"the size chart?"}`), CreatedAt: time.UnixMilli(1_780_000_000_123).UTC(),
		AgentID: "agent-1", Seq: 12, Fanout: FanoutRead, GroupVersion: 3}
	lean, err := messageRecord(m)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"id"`, `"at"`, `"seq"`} {
		if strings.Contains(string(lean.Data), key) {
			t.Errorf("the record's document has %s: %s", key, lean.Data)
		}
	}
	whole, _ := json.Marshal(m)
	old := tier.Record{Kind: tier.RecordMessage, MsgID: m.ID, Seq: m.Seq, At: m.CreatedAt, Data: whole}
	got, err := s.tiers.decode(context.Background(), []tier.Record{lean, old})
	if err != nil {
		t.Fatal(err)
	}
	for i, g := range got {
		if !reflect.DeepEqual(g, m) {
			t.Errorf("record %d decodes to %+v, want %+v", i, g, m)
		}
	}
}
