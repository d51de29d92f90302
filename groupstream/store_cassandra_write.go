package groupstream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/fanline/fanline/internal/cql"
	"github.com/fanline/fanline/internal/wire"
)

// The Cassandra store's writes, and the order that makes each replayable.
//
// Cassandra has no transaction across partitions. A conditional batch (the group's
// record with its member rows) is atomic on its one partition; every other row is
// written by its own statement or in bounded logged batches (cql.BatchLimits), and a
// crash can stop between any two. So every write is ordered, and every caller's
// retry (a redelivered queue batch, a repeated API call) writes again, so that the
// retry ends in the state a write without a crash leaves:
//
//   - A message's row comes before the rows that refer to it (history, stream) and
//     its sender's read position. A redelivery that finds the row takes its seq,
//     fanout mode and rank from it and writes those rows again, the same keys with
//     the same values, instead of taking the message as stored and done: a crash
//     after the row cannot leave a read-fanout message no member sees. A crash before
//     the row leaves the claimed seq unused (see CassandraStore); the redelivery
//     stores the message with the next one, never with two.
//   - A group's user_groups rows refer to the group: they come after its creation,
//     and a repeat of the creation writes them again.
//   - A membership change's past memberships (left_groups) come before its
//     conditional batch, since a retry finds the members removed and could not
//     rebuild them; its user_groups rows and read positions come after, written
//     from the change asked for and the members after it, also when the change
//     found nothing to change (an earlier call applied it and was cut short).
//   - A change's (and a creation's) announcement is a row of the conditional batch,
//     so it commits with the change; its index row (pending_announcements) comes
//     before the batch, so every committed announcement is listed, and an index row
//     whose change did not apply is discarded (announce_cassandra.go).
//
// Conditional batches are never split: Cassandra checks its batch size limits only
// on batches of several partitions (CASSANDRA-10876), and a group's batch of 20,000
// member rows is ~3 MB, far below its largest mutation (half of
// commitlog_segment_size, 16 MiB by default). gocql sends at most 65,535 statements
// in a batch, which bounds a group's members (config: limits.max_group_members).

// storedMessage is a message row's document: the message and, for a read-fanout
// message, the group's rank after it (its stream row's), so that a redelivery writes
// the stream row again as it was. Rank 0 is unknown (rows written before the rank
// was kept): their stream rows are not rewritten.
type storedMessage struct {
	Message
	Rank uint64 `json:"stream_rank,omitempty"`
}

// message returns message id and its stored encoding.
func (s *CassandraStore) message(ctx context.Context, id uint64) (storedMessage, []byte, error) {
	return s.rows.message(ctx, id)
}

// claim writes group c, read at rev, with extra statements of its partition (member
// rows), if nobody changed it meanwhile.
func (s *CassandraStore) claim(ctx context.Context, c Conversation, rev int64, extra []cql.Stmt) error {
	doc, _ := json.Marshal(c)
	applied, err := s.w.CAS(ctx, append([]cql.Stmt{cql.Q(cqlClaimConv, doc, rev+1, int64(c.ID), rev)}, extra...))
	if err != nil {
		return cassErr(err)
	}
	if !applied {
		return fmt.Errorf("%w: group %d", ErrConflict, c.ID)
	}
	return nil
}

// PutMessages implements Store: stream seqs are claimed on the groups first, then
// each message's row written, then the rows that refer to it; messages found stored
// have those rows written again.
func (s *CassandraStore) PutMessages(ctx context.Context, msgs []Message) ([]Message, error) {
	return putOnce(msgs, func(msgs []Message) ([]Message, error) { return s.putMessages(ctx, msgs) })
}

// putMessages stores msgs, each message once.
func (s *CassandraStore) putMessages(ctx context.Context, msgs []Message) ([]Message, error) {
	convs := make([]uint64, 0, 1)
	for _, m := range msgs {
		if m.IsMessage() {
			convs = append(convs, m.ConversationID)
		}
	}
	defer lockConvs(s.locks, convs)()
	// Each conversation of a message not found warm is read once, from Cassandra
	// (a cached direct or shop record may predate a move: Archived).
	type record struct {
		c       Conversation
		rev     int64
		found   bool
		claimed bool // a message took a stream seq of the group
	}
	loaded := map[uint64]*record{}
	out := make([]Message, len(msgs))
	var fresh, stored []storedMessage
	for i, m := range msgs {
		sm, _, err := s.message(ctx, m.ID)
		if err == nil {
			if err := sameSend(sm.Message, m); err != nil {
				return nil, err
			}
			out[i] = sm.Message
			stored = append(stored, sm)
			continue
		}
		if !errors.Is(err, ErrNotFound) {
			return nil, err
		}
		cv, ok := loaded[m.ConversationID]
		if !ok {
			c, rev, err := s.load(ctx, m.ConversationID)
			if err != nil && !errors.Is(err, ErrNotFound) {
				return nil, err
			}
			cv = &record{c: c, rev: rev, found: err == nil}
			loaded[m.ConversationID] = cv
		}
		if cv.found && cv.c.Archived >= m.ID {
			// Stored and moved to a cold segment: not stored warm again.
			found, err := s.tiers.messages(ctx, []uint64{m.ID})
			if err != nil {
				return nil, err
			}
			if a, ok := found[m.ID]; ok {
				if err := sameSend(a, m); err != nil {
					return nil, err
				}
				out[i] = a
				continue
			}
		}
		sm = storedMessage{Message: m}
		if m.IsMessage() && cv.found && cv.c.Kind == KindGroup {
			cv.claimed = true
			if _, rank, read := s.cfg.sequence(&cv.c, &sm.Message); read {
				sm.Rank = rank
			}
		}
		out[i] = sm.Message
		fresh = append(fresh, sm)
	}
	for _, cv := range loaded {
		if cv.claimed {
			if err := s.claim(ctx, cv.c, cv.rev, nil); err != nil {
				return nil, err
			}
		} else if cv.found {
			s.cached(cv.c)
		}
	}
	for _, sm := range fresh {
		member, err := s.senderIn(ctx, sm)
		if err != nil {
			return nil, err
		}
		if err := s.writeMessage(ctx, sm, false, 0, member); err != nil {
			return nil, err
		}
	}
	for _, sm := range stored {
		var read uint64
		member, err := s.senderIn(ctx, sm)
		if err != nil {
			return nil, err
		}
		if sm.Seq > 0 {
			if read, err = s.ReadSeq(ctx, sm.ConversationID, sm.From); err != nil {
				return nil, err
			}
		}
		if err := s.writeMessage(ctx, sm, true, read, member); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// senderIn reports whether a group message's sender is still a member (one removed
// since the ack has no read position to move).
func (s *CassandraStore) senderIn(ctx context.Context, sm storedMessage) (bool, error) {
	if sm.Seq == 0 {
		return false, nil
	}
	_, err := s.Member(ctx, sm.ConversationID, sm.From)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// writeMessage writes messageWrites(sm, stored, read, member), one statement at a
// time (a batch of bodies would pass Cassandra's batch size limit).
func (s *CassandraStore) writeMessage(ctx context.Context, sm storedMessage, stored bool, read uint64, member bool) error {
	sts, err := messageWrites(sm, stored, read, member)
	if err != nil {
		return err
	}
	for _, st := range sts {
		if err := s.w.Exec(ctx, st); err != nil {
			return cassErr(err)
		}
	}
	if sm.Seq > 0 && member && (!stored || sm.Seq > read) {
		s.movedRead(sm.ConversationID, sm.From, sm.Seq)
	}
	return nil
}

// messageWrites is what storing sm writes, in order: its row (unless stored: a
// redelivery found it), its history row, its stream row (read-fanout), and, for a
// group message, its sender's read position: moved to the message when first
// stored (from past it too, as every store does), and when stored only if read, the
// position now, is behind it (a crash cut the first write short; a later read must
// not go back); not for a sender no longer a member.
func messageWrites(sm storedMessage, stored bool, read uint64, member bool) ([]cql.Stmt, error) {
	var sts []cql.Stmt
	if !stored {
		doc, err := json.Marshal(sm)
		if err != nil {
			return nil, fmt.Errorf("groupstream: encode message %d: %w", sm.ID, err)
		}
		sts = append(sts, cql.Q(cqlPutMessage, int64(sm.ID), doc))
	}
	sts = append(sts, cql.Q(cqlPutHistory, int64(sm.ConversationID), historyBucket(sm.ID), int64(sm.ID)))
	if sm.Fanout == FanoutRead && sm.Seq > 0 && sm.Rank > 0 {
		e := StreamEntry{Seq: sm.Seq, Kind: wire.KindMessage, MsgID: sm.ID, From: sm.From, At: sm.CreatedAt}
		sts = append(sts, streamRow(sm.ConversationID, e, sm.Rank))
	}
	if sm.Seq > 0 && member && (!stored || read < sm.Seq) {
		sts = append(sts, cql.Q(cqlSetRead, int64(sm.ConversationID), sm.From, int64(sm.Seq)))
	}
	return sts, nil
}

// streamRow writes entry e of group conv's stream, with the group's rank after it.
func streamRow(conv uint64, e StreamEntry, rank uint64) cql.Stmt {
	return cql.Q(cqlPutStream, int64(conv), streamBucket(e.Seq), int64(e.Seq), e.Kind, int64(e.MsgID), int64(rank), e.At, e.From)
}

// CreateGroup implements Store: the index row of its announcement, the record,
// member rows and announcement in one conditional batch, then the members'
// user_groups rows in bounded batches. Calling it again for the same group (id,
// name, owner and time) returns the group and writes those rows again.
func (s *CassandraStore) CreateGroup(ctx context.Context, id uint64, name, owner string, members []string, at time.Time) (Conversation, error) {
	c, list := s.cfg.newGroup(id, name, owner, members, at)
	index, row := announcementRows(creation(c, list), time.Now())
	if err := s.w.Exec(ctx, index); err != nil {
		return Conversation{}, cassErr(err)
	}
	applied, err := s.w.CAS(ctx, append(groupRows(c, list), row))
	if err != nil {
		return Conversation{}, cassErr(err)
	}
	if !applied {
		old, _, err := s.load(ctx, id)
		if errors.Is(err, ErrNotFound) {
			// Its announcement's index row was discarded: the creation is given up.
			return Conversation{}, fmt.Errorf("groupstream: group %d: its creation was given up", id)
		}
		if err != nil {
			return Conversation{}, err
		}
		if old.Kind != KindGroup || old.Owner != c.Owner || old.Name != c.Name || !old.CreatedAt.Equal(c.CreatedAt) {
			return Conversation{}, fmt.Errorf("groupstream: group %d exists", id)
		}
		if list, err = s.Members(ctx, id); err != nil {
			return Conversation{}, err
		}
		c = old
	}
	if err := cql.WriteBatches(ctx, s.w, s.cfg.Batch, userGroupRows(id, list)); err != nil {
		return Conversation{}, cassErr(err)
	}
	return c, nil
}

// groupRows create group c with members list, if it does not exist: one partition.
func groupRows(c Conversation, list []Member) []cql.Stmt {
	doc, _ := json.Marshal(c)
	sts := make([]cql.Stmt, 0, len(list)+1)
	sts = append(sts, cql.Q(cqlNewConv, int64(c.ID), doc))
	for _, m := range list {
		v, _ := json.Marshal(m)
		sts = append(sts, cql.Q(cqlPutMember, v, int64(c.ID), m.User))
	}
	return sts
}

// userGroupRows list group id among the groups of each member of list.
func userGroupRows(id uint64, list []Member) []cql.Stmt {
	sts := make([]cql.Stmt, len(list))
	for i, m := range list {
		sts[i] = cql.Q(cqlPutUserGroup, m.User, int64(id))
	}
	return sts
}

// ChangeMembers implements Store.
func (s *CassandraStore) ChangeMembers(ctx context.Context, id uint64, ch MemberChange, at time.Time) (Conversation, error) {
	defer s.locks.Lock(convLockKey(id))()
	c, rev, err := s.load(ctx, id)
	if err != nil {
		return c, err
	}
	var list []Member
	members := func(ctx context.Context, id uint64) ([]Member, error) {
		var err error
		list, err = s.Members(ctx, id)
		return list, err
	}
	next, plan, changed, err := s.cfg.groupChange(ctx, members, c, ch, at)
	if err != nil {
		return c, err
	}
	if !changed {
		next, plan.members = c, list
	}
	if err := s.writeChange(ctx, next, rev, ch, plan, changed, at); err != nil {
		return c, err
	}
	return next, nil
}

// writeChange writes change ch of group next made at at, planned on revision rev:
// its past memberships and the index row of its announcement (when ch has an
// Event), the conditional batch with the member rows and the announcement (when
// changed) and the rows of the members after it, plan.members.
//
// A past membership written for a change whose batch then lost its condition
// (ErrConflict) is unused while its user stays a member (sync takes a member's
// group before a past membership of it), and their next removal or join rewrites
// it; the index row is discarded.
func (s *CassandraStore) writeChange(ctx context.Context, next Conversation, rev int64, ch MemberChange, plan memberPlan, changed bool,
	at time.Time) error {
	if changed {
		if err := cql.WriteBatches(ctx, s.w, s.cfg.Batch, leftRows(next.ID, plan)); err != nil {
			return cassErr(err)
		}
		rows := memberRows(next.ID, plan)
		if a := plan.announcement(next, ch, at); a != nil {
			index, row := announcementRows(*a, time.Now())
			if err := s.w.Exec(ctx, index); err != nil {
				return cassErr(err)
			}
			rows = append(rows, row)
		}
		if err := s.claim(ctx, next, rev, rows); err != nil {
			return err
		}
	}
	rows, gone := indexRows(next.ID, ch, plan.members)
	if err := cql.WriteBatches(ctx, s.w, s.cfg.Batch, rows); err != nil {
		return cassErr(err)
	}
	s.forgetReads(next.ID, gone)
	return nil
}

// leftRows record the past memberships of the members plan removes.
func leftRows(id uint64, plan memberPlan) []cql.Stmt {
	var sts []cql.Stmt
	for i, u := range plan.removed {
		if l := plan.left[i]; l.Conv != 0 {
			v, _ := json.Marshal(l)
			sts = append(sts, cql.Q(cqlPutLeft, u, int64(id), v))
		}
	}
	return sts
}

// memberRows are the member rows plan changes, in the group's partition: one
// statement per row. The statements of a batch share a timestamp, and Cassandra
// breaks a tie for a deletion, and between two values for the greater one: a user
// removed and added again gets only their new row, and a user added and promoted
// only their last one.
func memberRows(id uint64, plan memberPlan) []cql.Stmt {
	last := make(map[string]Member, len(plan.put))
	for _, m := range plan.put {
		last[m.User] = m
	}
	var sts []cql.Stmt
	for _, u := range plan.removed {
		if _, ok := last[u]; !ok {
			sts = append(sts, cql.Q(cqlDelMember, int64(id), u))
		}
	}
	for _, m := range plan.put {
		if m != last[m.User] {
			continue
		}
		delete(last, m.User)
		v, _ := json.Marshal(m)
		sts = append(sts, cql.Q(cqlPutMember, v, int64(id), m.User))
	}
	return sts
}

// indexRows are the rows of other partitions that follow group id's members after
// change ch (after): each user ch adds who is a member has the group among their
// groups and no past membership of it; each user ch removes who is not a member
// has neither the group among their groups nor a read position in it (gone). They
// state what the membership is, not what changed, so writing them again changes
// nothing and repairs a change whose rows were cut short.
func indexRows(id uint64, ch MemberChange, after []Member) (sts []cql.Stmt, gone []string) {
	in := make(map[string]bool, len(after))
	for _, m := range after {
		in[m.User] = true
	}
	seen := map[string]bool{}
	for _, u := range ch.Add {
		if in[u] && !seen[u] {
			seen[u] = true
			sts = append(sts, cql.Q(cqlPutUserGroup, u, int64(id)), cql.Q(cqlDelLeft, u, int64(id)))
		}
	}
	for _, u := range ch.Remove {
		if !in[u] && !seen[u] {
			seen[u] = true
			gone = append(gone, u)
			sts = append(sts, cql.Q(cqlDelUserGroup, u, int64(id)), cql.Q(cqlDelRead, int64(id), u))
		}
	}
	return sts, gone
}
