package groupstream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/fanline/fanline/internal/cql"
	"github.com/fanline/fanline/internal/cql/cqltest"
	"github.com/fanline/fanline/internal/wire"
)

// The tests below run the Cassandra store's write paths on a cqltest.Recorder: they
// crash the writes at every call, run what the store's retry runs, and compare the
// rows left with those of a write that did not crash.

// recorded returns a store writing to a new recorder (it reads nothing: only its
// write paths run).
func recorded(t *testing.T, cfg CassandraStoreConfig) (*CassandraStore, *cqltest.Recorder) {
	rec := cqltest.NewRecorder(t, CassandraSchema)
	return newCassandraStore(nil, rec, cfg), rec
}

// crashPoints returns a FailAt for each call of a run that did not crash: the first
// statement of every call.
func crashPoints(rec *cqltest.Recorder) []int {
	var out []int
	n := 0
	for _, c := range rec.Calls {
		out = append(out, n+1)
		n += len(c.Stmts)
	}
	return out
}

func sameRows(t *testing.T, what string, got, want *cqltest.Recorder, tables ...string) {
	t.Helper()
	for _, tb := range tables {
		if g, w := got.Rows(tb), want.Rows(tb); !reflect.DeepEqual(g, w) && (len(g) > 0 || len(w) > 0) {
			t.Errorf("%s: %s has %d rows, want %d:\n got %v\nwant %v", what, tb, len(g), len(w), g, w)
		}
	}
}

// storedRow decodes message id's row as recorded, as CassandraStore.message does.
func storedRow(t *testing.T, rec *cqltest.Recorder, id uint64) (storedMessage, bool) {
	t.Helper()
	row, ok := rec.Rows("messages")[cqltest.Key(int64(id))]
	if !ok {
		return storedMessage{}, false
	}
	var sm storedMessage
	if err := json.Unmarshal(row["doc"].([]byte), &sm); err != nil {
		t.Fatal(err)
	}
	return sm, true
}

// TestCassandraMessageCrash: a crash anywhere while messages are written, then the
// redelivery, leaves every row a write without a crash leaves. Before, a redelivery
// took a message whose row was written as stored and wrote nothing: a crash after
// the row left a read-fanout message out of the stream, for good.
func TestCassandraMessageCrash(t *testing.T) {
	ctx := context.Background()
	at := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	const g, d = 500, 9
	msgs := []storedMessage{
		{Message: Message{ID: 1 << 40, ConversationID: g, From: "al", Type: "text", Body: json.RawMessage(`"hi"`), CreatedAt: at,
			Seq: 7, Fanout: FanoutRead}, Rank: 3},
		{Message: Message{ID: 1<<40 + 1, ConversationID: g, From: "bea", Type: "text", CreatedAt: at, Seq: 8, Fanout: FanoutWrite}},
		{Message: Message{ID: 1<<40 + 2, ConversationID: d, From: "al", Type: "text", CreatedAt: at}},
		{Message: Message{ID: 1<<40 + 3, Kind: wire.KindGroupEvent, ConversationID: g, From: "al", Type: "created", CreatedAt: at}},
	}
	tables := []string{"messages", "history", "stream", "read_positions"}
	write := func(s *CassandraStore) error {
		for _, sm := range msgs {
			if err := s.writeMessage(ctx, sm, false, 0, true); err != nil {
				return err
			}
		}
		return nil
	}
	s, clean := recorded(t, CassandraStoreConfig{})
	if err := write(s); err != nil {
		t.Fatal(err)
	}
	if len(clean.Rows("stream")) != 1 || len(clean.Rows("history")) != 4 || len(clean.Rows("read_positions")) != 2 {
		t.Fatalf("a write without a crash: %d stream rows, %d history rows, %d read positions",
			len(clean.Rows("stream")), len(clean.Rows("history")), len(clean.Rows("read_positions")))
	}
	for _, n := range crashPoints(clean) {
		s, rec := recorded(t, CassandraStoreConfig{})
		rec.FailAt = n
		if err := write(s); !errors.Is(err, cqltest.ErrCrashed) {
			t.Fatalf("crash at %d: %v", n, err)
		}
		rec.Restart()
		// The redelivery, as putMessages runs it: a message found stored is written
		// again from its row (with the sender's read position as recorded); the
		// others are stored anew. A message not found must have left nothing that
		// refers to it: it is stored with a new seq.
		for _, m := range msgs {
			sm, stored := storedRow(t, rec, m.ID)
			if !stored {
				if _, ok := rec.Rows("history")[cqltest.Key(int64(m.ConversationID), historyBucket(m.ID), int64(m.ID))]; ok {
					t.Errorf("crash at %d: a history row refers to message %d, not stored", n, m.ID)
				}
				for k, row := range rec.Rows("stream") {
					if row["msg"] == int64(m.ID) {
						t.Errorf("crash at %d: stream row %s refers to message %d, not stored", n, k, m.ID)
					}
				}
				if err := s.writeMessage(ctx, m, false, 0, true); err != nil {
					t.Fatal(err)
				}
				continue
			}
			var read uint64
			if r, ok := rec.Rows("read_positions")[cqltest.Key(int64(sm.ConversationID), sm.From)]; ok {
				read = uint64(r["seq"].(int64))
			}
			if err := s.writeMessage(ctx, sm, true, read, true); err != nil {
				t.Fatal(err)
			}
		}
		sameRows(t, fmt.Sprintf("crash at statement %d, then redelivery", n), rec, clean, tables...)
	}
}

// TestCassandraMessageRewrite: what a redelivery writes of a stored message.
func TestCassandraMessageRewrite(t *testing.T) {
	at := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	read := storedMessage{Message: Message{ID: 1 << 40, ConversationID: 5, From: "al", CreatedAt: at, Seq: 7, Fanout: FanoutRead}, Rank: 3}
	legacy := read
	legacy.Rank = 0
	for _, tc := range []struct {
		name string
		sm   storedMessage
		read uint64
		want []string
	}{
		{"read-fanout, sender behind", read, 6, []string{cqlPutHistory, cqlPutStream, cqlSetRead}},
		{"read-fanout, sender read past it", read, 9, []string{cqlPutHistory, cqlPutStream}},
		{"stored before ranks were kept", legacy, 7, []string{cqlPutHistory}},
		{"direct", storedMessage{Message: Message{ID: 1 << 41, ConversationID: 6, From: "al", CreatedAt: at}}, 0, []string{cqlPutHistory}},
	} {
		sts, err := messageWrites(tc.sm, true, tc.read, true)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, st := range sts {
			got = append(got, st.CQL)
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: writes %q, want %q", tc.name, got, tc.want)
		}
	}
	// The first write: the row first, then what refers to it, the stream row with
	// the message's seq and rank.
	sts, _ := messageWrites(read, false, 0, true)
	if len(sts) != 4 || sts[0].CQL != cqlPutMessage || sts[2].CQL != cqlPutStream ||
		sts[2].Args[2] != int64(7) || sts[2].Args[5] != int64(3) {
		t.Errorf("first write: %v", sts)
	}
}

// TestCassandraMembershipCrash: a crash anywhere in a membership change, then the
// same call again, leaves the rows of a change that did not crash. Before, a crash
// after the conditional batch left the added members without the group in
// user_groups and the removed with it, and the retry found nothing to change and
// wrote nothing.
func TestCassandraMembershipCrash(t *testing.T) {
	ctx := context.Background()
	at := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	cfg := CassandraStoreConfig{Batch: cql.BatchLimits{Statements: 3}} // several batches per step
	cfg.fill()
	const id = 500
	c, list := cfg.newGroup(id, "g", "owen", []string{"al", "bea", "cy"}, at)
	c.Head, c.ReadHead, c.Rank = 10, 10, 10 // the removed have stream entries to sync
	ch := MemberChange{Add: []string{"dee", "eve", "al"}, Remove: []string{"bea", "cy", "zed"}}
	// The group before the change: created, and bea has read up to 4.
	seed := func(s *CassandraStore, rec *cqltest.Recorder) {
		if _, err := s.CreateGroup(ctx, id, "g", "owen", []string{"al", "bea", "cy"}, at); err != nil {
			t.Fatal(err)
		}
		if err := rec.Exec(ctx, cql.Q(cqlSetRead, int64(id), "bea", int64(4))); err != nil {
			t.Fatal(err)
		}
		rec.Calls = nil
	}
	// change runs what ChangeMembers runs after reading the group: c at revision
	// rev with members before.
	change := func(s *CassandraStore, c Conversation, rev int64, before []Member) error {
		next := c
		plan, changed, err := cfg.planChange(&next, before, ch, at)
		if err != nil {
			return err
		}
		if !changed {
			next, plan.members = c, before
		}
		return s.writeChange(ctx, next, rev, ch, plan, changed, at)
	}
	s, clean := recorded(t, cfg)
	seed(s, clean)
	if err := change(s, c, 1, list); err != nil {
		t.Fatal(err)
	}
	after := c
	plan, _, _ := cfg.planChange(&after, list, ch, at)
	ug := clean.Rows("user_groups")
	if len(ug) != 4 || ug[cqltest.Key("dee", int64(id))] == nil || ug[cqltest.Key("bea", int64(id))] != nil ||
		len(clean.Rows("left_groups")) != 2 || len(clean.Rows("read_positions")) != 0 {
		t.Fatalf("a change without a crash: user_groups %v, left_groups %v, read_positions %v",
			ug, clean.Rows("left_groups"), clean.Rows("read_positions"))
	}
	tables := []string{"conversations", "user_groups", "left_groups", "read_positions"}
	for _, n := range crashPoints(clean) {
		s, rec := recorded(t, cfg)
		seed(s, rec)
		rec.FailAt = rec.Written() + n
		if err := change(s, c, 1, list); !errors.Is(err, cqltest.ErrCrashed) {
			t.Fatalf("crash at %d: %v", n, err)
		}
		claimed := false
		for _, call := range rec.Calls {
			claimed = claimed || call.Kind == "cas"
		}
		rec.Restart()
		// The retry reads the group as the crash left it: changed if the
		// conditional batch went through, else as before.
		if claimed {
			err := change(s, after, 2, plan.members)
			if err != nil {
				t.Fatal(err)
			}
		} else if err := change(s, c, 1, list); err != nil {
			t.Fatal(err)
		}
		sameRows(t, fmt.Sprintf("crash at statement %d, then the change again", n), rec, clean, tables...)
	}
}

// TestCassandraBatchBounds: creating a group of 20,000 members writes every row in
// batches within the limits, but for the conditional batch of the group's one
// partition. Before, its user_groups rows were one batch of ~1 MB, which Cassandra
// refuses every time.
func TestCassandraBatchBounds(t *testing.T) {
	ctx := context.Background()
	members := make([]string, 20000)
	for i := range members {
		members[i] = fmt.Sprintf("user-%08d", i)
	}
	for _, l := range []cql.BatchLimits{{}, {Bytes: 5 << 10, Statements: 50}} {
		s, rec := recorded(t, CassandraStoreConfig{Batch: l})
		if _, err := s.CreateGroup(ctx, 77, "big", members[0], members[1:], time.Now()); err != nil {
			t.Fatal(err)
		}
		checkBatches(t, rec, l)
		if n := len(rec.Rows("user_groups")); n != len(members) {
			t.Errorf("%d user_groups rows, want %d", n, len(members))
		}
		// The change that empties it, but for the owner.
		c, rev := Conversation{ID: 77, Kind: KindGroup, Owner: members[0]}, int64(1)
		list := make([]Member, len(members))
		for i, u := range members {
			list[i] = Member{User: u, Role: RoleMember}
		}
		next := c
		plan, _, err := s.cfg.planChange(&next, list, MemberChange{Remove: members[1:]}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		rec.Calls = nil
		if err := s.writeChange(ctx, next, rev, MemberChange{Remove: members[1:]}, plan, true, time.Now()); err != nil {
			t.Fatal(err)
		}
		checkBatches(t, rec, l)
		if n := len(rec.Rows("user_groups")); n != 1 {
			t.Errorf("%d user_groups rows left, want the owner's", n)
		}
	}
}

// checkBatches checks that every batch rec took is within l, or is conditional and
// writes one partition.
func checkBatches(t *testing.T, rec *cqltest.Recorder, l cql.BatchLimits) {
	t.Helper()
	if l.Bytes == 0 {
		l.Bytes = cql.DefaultBatchBytes
	}
	if l.Statements == 0 {
		l.Statements = cql.DefaultBatchStatements
	}
	for _, call := range rec.Calls {
		size := 0
		for _, st := range call.Stmts {
			size += st.Size()
		}
		switch {
		case call.Kind == "cas":
			for _, st := range call.Stmts {
				if k := partitionOf(st); k != partitionOf(call.Stmts[0]) {
					t.Errorf("a conditional batch writes partitions %s and %s", partitionOf(call.Stmts[0]), k)
				}
			}
		case size > l.Bytes || len(call.Stmts) > l.Statements:
			t.Errorf("a batch of %d statements, %d bytes: past %+v", len(call.Stmts), size, l)
		}
	}
}

// partitionOf names the conversations partition a statement of a group's
// conditional batch writes.
func partitionOf(st cql.Stmt) string {
	switch st.CQL {
	case cqlNewConv:
		return fmt.Sprint(st.Args[0])
	case cqlClaimConv:
		return fmt.Sprint(st.Args[2])
	case cqlPutMember:
		return fmt.Sprint(st.Args[1])
	case cqlPutAnnouncement:
		return fmt.Sprint(st.Args[0])
	case cqlDelMember:
		return fmt.Sprint(st.Args[0])
	}
	return "not conversations: " + st.CQL
}

// TestCassandraMemberRowsOnce: a change that removes and adds one user, or adds and
// promotes one, writes their member row once in its batch. Its statements share a
// timestamp, so a deletion of the row would win over the new membership, and of two
// values of the row Cassandra keeps the greater, not the later.
func TestCassandraMemberRowsOnce(t *testing.T) {
	ctx := context.Background()
	at := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	s, rec := recorded(t, CassandraStoreConfig{})
	c, err := s.CreateGroup(ctx, 500, "g", "owen", []string{"al", "cy"}, at)
	if err != nil {
		t.Fatal(err)
	}
	c.Head = 3
	list := []Member{{User: "al", Role: RoleMember}, {User: "cy", Role: RoleMember}, {User: "owen", Role: RoleOwner}}
	ch := MemberChange{Remove: []string{"cy"}, Add: []string{"cy", "dee"}, Promote: []string{"dee"}}
	next := c
	plan, changed, err := s.cfg.planChange(&next, list, ch, at)
	if err != nil || !changed {
		t.Fatal(changed, err)
	}
	if err := s.writeChange(ctx, next, 1, ch, plan, true, at); err != nil {
		t.Fatal(err)
	}
	rows := rec.Rows("conversations")
	for user, want := range map[string]Member{
		"cy":  {User: "cy", Role: RoleMember, JoinedAt: at, JoinSeq: 4},
		"dee": {User: "dee", Role: RoleAdmin, JoinedAt: at, JoinSeq: 4},
	} {
		row, ok := rows[cqltest.Key(int64(500), user)]
		if !ok {
			t.Errorf("%s has no member row", user)
			continue
		}
		if m, err := decodeMember(500, user, row["member"].([]byte)); err != nil || m != want {
			t.Errorf("%s's member row: %+v %v, want %+v", user, m, err, want)
		}
	}
	if rec.Rows("user_groups")[cqltest.Key("cy", int64(500))] == nil {
		t.Error("cy's user_groups row is gone")
	}
}
