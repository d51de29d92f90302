package groupstream

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fanline/fanline/internal/cql"
	"github.com/fanline/fanline/internal/cql/cqltest"
	"github.com/fanline/fanline/internal/wire"
)

// recorderReads reads announcements from a recorder's rows, as the store's
// statements read them from Cassandra (cqlPending, cqlAnnouncements, cqlRev).
type recorderReads struct {
	t   *testing.T
	rec *cqltest.Recorder
}

func (r recorderReads) pending(_ context.Context, bucket int) ([]pendingRow, error) {
	var out []pendingRow
	for k, row := range r.rec.Rows("pending_announcements") {
		parts := strings.Split(k, "/")
		if parts[0] != strconv.Itoa(bucket) {
			continue
		}
		g, _ := strconv.ParseUint(parts[1], 10, 64)
		v, _ := strconv.ParseUint(parts[2], 10, 64)
		out = append(out, pendingRow{group: g, version: v, at: row["at"].(time.Time)})
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].group < out[j].group || (out[i].group == out[j].group && out[i].version < out[j].version)
	})
	return out, nil
}

// partition returns the clustering rows of group's partition, by clustering key.
func (r recorderReads) partition(group uint64) map[string]cqltest.Row {
	out := map[string]cqltest.Row{}
	for k, row := range r.rec.Rows("conversations") {
		if id, user, ok := strings.Cut(k, "/"); ok && id == fmt.Sprint(int64(group)) {
			out[user] = row
		}
	}
	return out
}

func (r recorderReads) announcements(_ context.Context, group uint64) ([]Announcement, error) {
	rows := r.partition(group)
	var keys []string
	for user := range rows {
		if user > reservedPrefix { // cqlAnnouncements' range
			keys = append(keys, user)
		}
	}
	sort.Strings(keys)
	var out []Announcement
	for _, k := range keys {
		a, ok, err := decodeAnnouncement(group, k, rows[k]["member"].([]byte))
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, a)
		}
	}
	return out, nil
}

func (r recorderReads) rev(_ context.Context, group uint64) (int64, bool, error) {
	row, ok := r.rec.Rows("conversations")[cqltest.Key(int64(group))]
	if !ok {
		return 0, false, nil
	}
	rev, err := strconv.ParseInt(fmt.Sprint(row["rev"]), 10, 64) // a literal is recorded as written
	if err != nil {
		r.t.Fatalf("rev of %d: %v", group, err)
	}
	return rev, true, nil
}

// members returns group's members from the recorded rows, as Members takes them
// (cqlMembers' range and memberKey).
func (r recorderReads) members(group uint64) []Member {
	var out []Member
	for user, row := range r.partition(group) {
		blob, _ := row["member"].([]byte)
		if !memberKey(user) || len(blob) == 0 { // cqlMembers' range, and Members' check
			continue
		}
		m, err := decodeMember(group, user, blob)
		if err != nil {
			r.t.Fatal(err)
		}
		out = append(out, m)
	}
	sortMembers(out)
	return out
}

// announcing returns a store writing to a new recorder that checks conditions, and
// reading announcements from it.
func announcing(t *testing.T, cfg CassandraStoreConfig) (*CassandraStore, *cqltest.Recorder, recorderReads) {
	s, rec := recorded(t, cfg)
	rec.Conditions = true
	reads := recorderReads{t, rec}
	s.reads = reads
	return s, rec, reads
}

// casCalls returns the conditional batches rec took that applied.
func casCalls(rec *cqltest.Recorder) [][]cql.Stmt {
	var out [][]cql.Stmt
	for _, c := range rec.Calls {
		if c.Kind == "cas" && !c.NotApplied {
			out = append(out, c.Stmts)
		}
	}
	return out
}

// TestCassandraAnnouncementCrash: a crash at every statement of a group's creation
// and of a membership change, then the drain (Announcements of every group): the
// change's announcement is listed if and only if the change applied, an index row
// of a change that did not apply is discarded and its batch, sent late, no longer
// applies; the group's announcement rows are never members.
func TestCassandraAnnouncementCrash(t *testing.T) {
	ctx := context.Background()
	at := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	cfg := CassandraStoreConfig{}
	cfg.fill()
	const id = 500
	c, list := cfg.newGroup(id, "g", "owen", []string{"al", "bea"}, at)
	ch := MemberChange{Add: []string{"cy"}, Remove: []string{"bea"}, Promote: []string{"al"}, Event: 9001, Actor: "owen"}
	next := c
	plan, _, err := cfg.planChange(&next, list, ch, at)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		seed  func(s *CassandraStore) // the state before
		run   func(s *CassandraStore) error
		want  Announcement
		after []Member // the members once applied
	}{{
		name: "create",
		seed: func(*CassandraStore) {},
		run: func(s *CassandraStore) error {
			_, err := s.CreateGroup(ctx, id, "g", "owen", []string{"al", "bea"}, at)
			return err
		},
		want:  creation(c, list),
		after: list,
	}, {
		name: "change",
		seed: func(s *CassandraStore) {
			if _, err := s.CreateGroup(ctx, id, "g", "owen", []string{"al", "bea"}, at); err != nil {
				t.Fatal(err)
			}
			if err := s.Announced(ctx, id, 1); err != nil {
				t.Fatal(err)
			}
		},
		run: func(s *CassandraStore) error {
			return s.writeChange(ctx, next, 1, ch, plan, true, at)
		},
		want:  *plan.announcement(next, ch, at),
		after: plan.members,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			s, clean, reads := announcing(t, cfg)
			tc.seed(s)
			before := reads.members(id)
			seeded := clean.Written()
			clean.Calls = nil
			if err := tc.run(s); err != nil {
				t.Fatal(err)
			}
			got, err := s.Announcements(ctx, 0, 0)
			if err != nil || len(got) != 1 || !reflect.DeepEqual(got[0], tc.want) {
				t.Fatalf("without a crash: %+v %v, want %+v", got, err, tc.want)
			}
			if m := reads.members(id); !reflect.DeepEqual(m, tc.after) {
				t.Fatalf("without a crash: members %+v, want %+v", m, tc.after)
			}
			batch := casCalls(clean)[0]
			for _, n := range crashPoints(clean) {
				what := fmt.Sprintf("crash at statement %d", n)
				s, rec, reads := announcing(t, cfg)
				tc.seed(s)
				rec.Calls = nil
				rec.FailAt = seeded + n
				if err := tc.run(s); !errors.Is(err, cqltest.ErrCrashed) {
					t.Fatalf("%s: %v", what, err)
				}
				applied := len(casCalls(rec)) > 0
				indexed := len(rec.Rows("pending_announcements")) > 0
				rec.Restart()
				s.staleAfter = 0
				got, err := s.Announcements(ctx, 0, 0)
				if err != nil {
					t.Fatal(err)
				}
				if applied != (len(got) == 1) || len(got) > 1 || (applied && !reflect.DeepEqual(got[0], tc.want)) {
					t.Errorf("%s: the change applied: %v; announcements %+v", what, applied, got)
				}
				if n := len(rec.Rows("pending_announcements")); n != len(got) {
					t.Errorf("%s: %d index rows left for %d announcements", what, n, len(got))
				}
				want := before
				if applied {
					want = tc.after
				}
				if m := reads.members(id); !reflect.DeepEqual(m, want) {
					t.Errorf("%s: members %+v, want %+v", what, m, want)
				}
				if indexed && !applied {
					// The change's batch, sent late, finds the group fenced.
					if ok, err := rec.CAS(ctx, batch); ok || err != nil {
						t.Errorf("%s: the change's batch applied after its index row was discarded (%v)", what, err)
					}
				}
				for _, a := range got {
					if err := s.Announced(ctx, a.Group, a.Version); err != nil {
						t.Fatal(err)
					}
				}
				if left, err := s.Announcements(ctx, 0, 0); err != nil || len(left) > 0 || len(rec.Rows("pending_announcements")) > 0 {
					t.Errorf("%s: after Announced: %+v %v, index %v", what, left, err, rec.Rows("pending_announcements"))
				}
			}
		})
	}
}

// TestCassandraAnnouncementInFlight: an index row younger than staleAfter whose
// change has not applied yet is left alone, and the change's announcement, once its
// batch lands, is listed.
func TestCassandraAnnouncementInFlight(t *testing.T) {
	ctx := context.Background()
	at := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	s, rec, _ := announcing(t, CassandraStoreConfig{})
	rec.FailAt = 2 // the conditional batch, after the index row
	if _, err := s.CreateGroup(ctx, 501, "g", "owen", []string{"al"}, at); !errors.Is(err, cqltest.ErrCrashed) {
		t.Fatal(err)
	}
	rec.Restart()
	if got, err := s.Announcements(ctx, 0, 0); err != nil || len(got) != 0 || len(rec.Rows("pending_announcements")) != 1 {
		t.Fatalf("a young index row: %+v %v, index %v", got, err, rec.Rows("pending_announcements"))
	}
	c, list := s.cfg.newGroup(501, "g", "owen", []string{"al"}, at)
	_, row := announcementRows(creation(c, list), at)
	if ok, err := rec.CAS(ctx, append(groupRows(c, list), row)); !ok || err != nil {
		t.Fatalf("the batch in flight: %v %v", ok, err)
	}
	s.staleAfter = 0
	if got, err := s.Announcements(ctx, 0, 0); err != nil || len(got) != 1 || got[0].Event != 501 {
		t.Fatalf("once the batch landed: %+v %v", got, err)
	}
}

// TestCassandraAnnouncementConflict: a change whose batch loses its condition (the
// group moved meanwhile) leaves an index row, which the drain discards; and a crash
// between Announced's two deletions leaves one, discarded too.
func TestCassandraAnnouncementConflict(t *testing.T) {
	ctx := context.Background()
	at := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	s, rec, _ := announcing(t, CassandraStoreConfig{})
	s.staleAfter = 0
	c, err := s.CreateGroup(ctx, 502, "g", "owen", []string{"al"}, at)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.claim(ctx, c, 1, nil); err != nil { // a message's seq: rev 2
		t.Fatal(err)
	}
	next := c
	ch := MemberChange{Add: []string{"bea"}, Event: 9002, Actor: "owen"}
	plan, _, _ := s.cfg.planChange(&next, []Member{{User: "al", Role: RoleMember}, {User: "owen", Role: RoleOwner}}, ch, at)
	if err := s.writeChange(ctx, next, 1, ch, plan, true, at); !errors.Is(err, ErrConflict) {
		t.Fatalf("a change on an old revision: %v", err)
	}
	got, err := s.Announcements(ctx, 0, 0)
	if err != nil || len(got) != 1 || got[0].Version != 1 {
		t.Fatalf("after the conflict: %+v %v, want the creation only", got, err)
	}
	rec.FailAt = rec.Written() + 2 // Announced's second deletion
	if err := s.Announced(ctx, 502, 1); !errors.Is(err, cqltest.ErrCrashed) {
		t.Fatal(err)
	}
	rec.Restart()
	if got, err := s.Announcements(ctx, 0, 0); err != nil || len(got) != 0 || len(rec.Rows("pending_announcements")) != 0 {
		t.Fatalf("after a crash in Announced: %+v %v, index %v", got, err, rec.Rows("pending_announcements"))
	}
}

// TestCassandraReservedKeys: the keys of a group's partition that are not members'
// are no user id and sort after every user id, where member reads stop.
func TestCassandraReservedKeys(t *testing.T) {
	for b := 0; b < 128; b++ {
		if u := string(rune(b)); wire.ValidUserID(u) && (!memberKey(u) || !memberKey(strings.Repeat(u, 64))) {
			t.Errorf("user id %q is not below reservedPrefix", strings.Repeat(u, 64))
		}
	}
	for _, v := range []uint64{1, 9, 10, 1 << 63, ^uint64(0) - 1} {
		k := announcementRowKey(v)
		if wire.ValidUserID(k) || memberKey(k) || k <= reservedPrefix {
			t.Errorf("announcement key %q can be a member's", k)
		}
		if next := announcementRowKey(v + 1); next <= k {
			t.Errorf("key of version %d (%q) sorts before version %d's (%q)", v+1, next, v, k)
		}
	}
	if !strings.Contains(cqlMembers, "user < ?") || !strings.Contains(cqlAnnouncements, "user > ?") {
		t.Errorf("member reads are not bounded by reservedPrefix: %q, %q", cqlMembers, cqlAnnouncements)
	}
}
