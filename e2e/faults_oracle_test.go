package e2e

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/fanline/fanline/internal/wire"
)

// The invariants the oracle checks, in the order of the summary.
var invariants = []string{
	"delivered-once",   // every acked message reaches every member exactly once; nothing else does
	"ids",              // a retry answers the original msg_id; distinct messages, distinct ids; one conversation per pair; one group seq per message
	"sender-order",     // one sender's messages in one conversation are in ack order (group_seq and timeline)
	"timeline-gapless", // every user's timeline seqs are 1, 2, 3, ...
	"group-gapless",    // every group's stream seqs are 1, 2, 3, ..., one message or recall each
	"unread",           // conversation list and badge equal the oracle's unread
	"receipts",         // read_count, member_count and readers equal the oracle's
	"recall-body",      // no body after a recall: sync, history, list, and pushes after it
	"recall-entries",   // a recall reaches every member once
	"member-at-seq",    // nothing is delivered or pushed to a user who joined after the message was stored
	"removed-member",   // nothing is delivered or pushed to a removed member after the removal
	"group-events",     // every membership change reaches its actor, the added and the removed once
	"read-entries",     // a mark-read that moved the reader's position reaches the other members once
	"device-view",      // what each device's SDK delivered is its sync, once, in order, all of it
	"history",          // each conversation's history holds every stored message once
}

// verdict collects violations: every one is counted, the first maxShown are kept.
type verdict struct {
	byInv    map[string]int
	shown    []string
	total    int
	checked  int // deliveries (entries and expected entries) examined
	maxShown int
}

func newVerdict() *verdict {
	return &verdict{byInv: map[string]int{}, maxShown: 20}
}

func (v *verdict) fail(inv, format string, args ...any) {
	v.total++
	v.byInv[inv]++
	if len(v.shown) < v.maxShown {
		v.shown = append(v.shown, inv+": "+fmt.Sprintf(format, args...))
	}
}

// membership is one churned user's stay in a group, from the owner's operations.
type membership struct {
	addInvoke, addAck time.Time
	rmInvoke, rmAck   time.Time // zero: still a member
}

// oracle holds the history indexed for checking.
type oracle struct {
	h      *history
	w      *workload
	f      *final
	v      *verdict
	msgs   map[wire.ID]*sendOp // every stored or acknowledged message
	gseq   map[wire.ID]uint64  // a group message's stream seq, as seen anywhere
	mode   map[wire.ID]string  // "read" for a message seen as a stream entry
	stays  map[wire.ID]map[string]*membership
	groups map[wire.ID]*group
	recall map[wire.ID]time.Time // recalled message -> ack of its first acknowledged recall
}

func msgName(op *sendOp) string {
	return fmt.Sprintf("%s (msg %d from %s in conv %d)", op.cmid, op.msgID, op.from, op.conv)
}

// check runs every invariant over the history and the final state.
func check(w *workload, f *final) *verdict {
	h := w.h
	h.mu.Lock()
	defer h.mu.Unlock()
	o := &oracle{h: h, w: w, f: f, v: newVerdict(), msgs: map[wire.ID]*sendOp{}, gseq: map[wire.ID]uint64{},
		mode: map[wire.ID]string{}, stays: map[wire.ID]map[string]*membership{}, groups: map[wire.ID]*group{},
		recall: map[wire.ID]time.Time{}}
	for _, g := range w.groups {
		o.groups[g.id] = g
		o.stays[g.id] = map[string]*membership{}
	}
	o.indexIDs()
	o.indexStored()
	o.indexMembership()
	for _, r := range h.recalls {
		if !r.ack.IsZero() {
			if t, ok := o.recall[r.msg]; !ok || r.ack.Before(t) {
				o.recall[r.msg] = r.ack
			}
		}
	}
	o.checkDeliveries()
	o.checkOrder()
	o.checkTimelines()
	o.checkGroupSeqs()
	o.checkUnread()
	o.checkReceipts()
	o.checkRecalls()
	o.checkPushes()
	o.checkGroupEvents()
	o.checkReadEntries()
	o.checkViews()
	o.checkHistories()
	return o.v
}

// indexIDs checks the ids the acks gave and indexes the acknowledged messages.
func (o *oracle) indexIDs() {
	pairs := map[string]wire.ID{}
	for _, s := range o.h.sends {
		if !s.acked() {
			continue
		}
		if prev, dup := o.msgs[s.msgID]; dup {
			o.v.fail("ids", "msg_id %d acknowledged for two messages: %s and %s", s.msgID, prev.cmid, s.cmid)
			continue
		}
		o.msgs[s.msgID] = s
		if s.group == "" {
			a, b := min(s.from, s.to), max(s.from, s.to)
			if c, ok := pairs[a+"/"+b]; ok && c != s.conv {
				o.v.fail("ids", "%s and %s have two conversations: %d and %d (%s)", a, b, c, s.conv, s.cmid)
			}
			pairs[a+"/"+b] = s.conv
		}
	}
	for _, r := range o.h.retries {
		if r.err != nil {
			if !retryableErr(r.err) {
				o.v.fail("ids", "retry of %s refused: %v", msgName(r.op), r.err)
			}
			continue
		}
		if r.res.MsgID != r.op.msgID || !r.res.Duplicate {
			o.v.fail("ids", "retry of %s answered msg %d duplicate=%t", msgName(r.op), r.res.MsgID, r.res.Duplicate)
		}
	}
}

// everyEntry calls f with every message-like entry anyone has: final syncs, histories,
// device views and push frames.
func (o *oracle) everyEntry(f func(where string, e wire.Entry)) {
	for u, es := range o.f.syncs {
		for _, e := range es {
			f("sync of "+u, e)
		}
	}
	for c, es := range o.f.histories {
		for _, e := range es {
			f(fmt.Sprintf("history of %d", c), e)
		}
	}
	for u, vs := range o.h.views {
		for _, s := range vs {
			f("device of "+u, s.e)
		}
	}
	for u, conns := range o.h.frames {
		for _, fs := range conns {
			for _, s := range fs {
				f("pushes to "+u, s.e)
			}
		}
	}
}

// indexStored adds the messages seen anywhere (an indeterminate send may have been
// stored) and their stream seqs and modes, checking that a message has one of each.
func (o *oracle) indexStored() {
	o.everyEntry(func(where string, e wire.Entry) {
		if e.Kind != wire.KindMessage {
			return
		}
		op, ok := o.msgs[e.MsgID]
		if !ok {
			sop := o.h.byCmid[e.From+"/"+e.ClientMsgID]
			switch {
			case sop == nil:
				o.v.fail("delivered-once", "%s: unknown message %d from %s (client_msg_id %q)", where, e.MsgID, e.From, e.ClientMsgID)
				return
			case sop.acked():
				o.v.fail("ids", "%s: %s acknowledged as msg %d, stored as %d", where, sop.cmid, sop.msgID, e.MsgID)
				return
			}
			sop.msgID, sop.conv = e.MsgID, e.ConversationID
			o.msgs[e.MsgID] = sop
			op = sop
		}
		if e.ConversationID != op.conv {
			o.v.fail("ids", "%s: %s in conversation %d", where, msgName(op), e.ConversationID)
		}
		if e.GroupSeq != 0 {
			if s, ok := o.gseq[e.MsgID]; ok && s != e.GroupSeq {
				o.v.fail("ids", "%s: %s has group seqs %d and %d", where, msgName(op), s, e.GroupSeq)
			}
			o.gseq[e.MsgID] = e.GroupSeq
		}
		if e.Seq == 0 && e.GroupSeq != 0 && !strings.HasPrefix(where, "history") {
			o.mode[e.MsgID] = "read"
		}
	})
}

// indexMembership turns the owners' changes into each churned user's stay.
func (o *oracle) indexMembership() {
	for _, c := range o.h.changes {
		for _, u := range c.add {
			o.stays[c.conv][u] = &membership{addInvoke: c.invoke, addAck: c.ack}
		}
		for _, u := range c.remove {
			if m := o.stays[c.conv][u]; m != nil {
				m.rmInvoke, m.rmAck = c.invoke, c.ack
			}
		}
	}
}

// expectation says whether user must, may or must not have message op.
type expectation int

const (
	mustNot expectation = iota
	may
	must
)

// violated names the invariant a delivery of op to u breaks, when expect says
// mustNot.
func (o *oracle) violated(u string, op *sendOp) string {
	m := o.stays[op.conv][u]
	switch {
	case m == nil:
		return "delivered-once"
	case !m.rmAck.IsZero() && op.invoke.After(m.rmAck):
		return "removed-member"
	}
	return "member-at-seq"
}

func (o *oracle) expect(u string, op *sendOp) expectation {
	if op.group == "" {
		if u == op.from || u == op.to {
			return must
		}
		return mustNot
	}
	g := o.groups[op.conv]
	if slices.Contains(g.spec.core, u) {
		return must
	}
	m := o.stays[op.conv][u]
	if m == nil {
		return mustNot
	}
	seen, wasSeen := o.h.firstSeen[op.msgID]
	switch {
	case wasSeen && seen.Before(m.addInvoke):
		return mustNot // stored before the user was added
	case !m.rmAck.IsZero() && op.invoke.After(m.rmAck):
		return mustNot // sent after the user was removed
	case m.addAck.IsZero() || !op.invoke.After(m.addAck):
		return may
	case m.rmInvoke.IsZero() || (wasSeen && seen.Before(m.rmInvoke)):
		return must // sent after the add, stored before the removal
	}
	return may
}

// checkDeliveries: in every user's final sync each stored message appears exactly
// once if the user must have it, at most once if they may, never otherwise; and a
// churned user's messages of a group are one unbroken run of its stream.
func (o *oracle) checkDeliveries() {
	for u, es := range o.f.syncs {
		count := map[wire.ID]int{}
		for _, e := range es {
			if e.Kind == wire.KindMessage {
				count[e.MsgID]++
				o.v.checked++
			}
		}
		ranges := map[wire.ID][]uint64{}
		for id, op := range o.msgs {
			n := count[id]
			exp := o.expect(u, op)
			o.v.checked++
			switch {
			case n > 1:
				o.v.fail("delivered-once", "%s got %s %d times", u, msgName(op), n)
			case n == 1 && exp == mustNot:
				o.v.fail(o.violated(u, op), "%s's sync has %s, which it must not (not a member at its seq)", u, msgName(op))
			case n == 0 && exp == must && op.acked():
				o.v.fail("delivered-once", "%s never got acked %s", u, msgName(op))
			case n == 0 && exp == must && o.gseq[id] != 0:
				o.v.fail("delivered-once", "%s never got stored %s (group seq %d)", u, msgName(op), o.gseq[id])
			}
			if n > 0 && o.stays[op.conv][u] != nil && o.gseq[id] != 0 {
				ranges[op.conv] = append(ranges[op.conv], o.gseq[id])
			}
		}
		for conv, seqs := range ranges {
			slices.Sort(seqs)
			lo, hi := seqs[0], seqs[len(seqs)-1]
			for id, op := range o.msgs {
				if s := o.gseq[id]; op.conv == conv && s > lo && s < hi && count[id] == 0 {
					o.v.fail("delivered-once", "%s got group %d seqs %d..%d but not %s at seq %d", u, conv, lo, hi, msgName(op), s)
				}
			}
		}
	}
}

// position of message id in user's final sync: its timeline seq (0: none).
func timelinePos(es []wire.Entry) map[wire.ID]uint64 {
	out := map[wire.ID]uint64{}
	for _, e := range es {
		if e.Kind == wire.KindMessage && e.Seq != 0 {
			out[e.MsgID] = e.Seq
		}
	}
	return out
}

// checkOrder: for one sender in one conversation, a message acknowledged before
// another was sent comes first: in the group's stream, and in every timeline holding
// both.
func (o *oracle) checkOrder() {
	type key struct {
		from string
		conv wire.ID
	}
	by := map[key][]*sendOp{}
	for _, op := range o.msgs {
		if op.acked() {
			by[key{op.from, op.conv}] = append(by[key{op.from, op.conv}], op)
		}
	}
	pos := map[string]map[wire.ID]uint64{}
	for u, es := range o.f.syncs {
		pos[u] = timelinePos(es)
	}
	for _, ops := range by {
		sort.Slice(ops, func(i, j int) bool { return ops[i].invoke.Before(ops[j].invoke) })
		for j, b := range ops {
			for _, a := range ops[:j] {
				if !a.ack.Before(b.invoke) {
					continue
				}
				if sa, sb := o.gseq[a.msgID], o.gseq[b.msgID]; sa != 0 && sb != 0 && sa > sb {
					o.v.fail("sender-order", "%s acked before %s was sent, but group seq %d > %d", msgName(a), b.cmid, sa, sb)
				}
				for u, p := range pos {
					if pa, pb := p[a.msgID], p[b.msgID]; pa != 0 && pb != 0 && pa > pb {
						o.v.fail("sender-order", "%s: %s acked before %s was sent, but timeline seq %d > %d", u, msgName(a), b.cmid, pa, pb)
					}
				}
			}
		}
	}
}

// checkTimelines: every user's timeline seqs are 1, 2, 3, ...
func (o *oracle) checkTimelines() {
	for u, es := range o.f.syncs {
		var last uint64
		for _, e := range es {
			if e.Seq == 0 {
				continue
			}
			if e.Seq != last+1 {
				o.v.fail("timeline-gapless", "%s: timeline seq %d after %d (%s %d)", u, e.Seq, last, e.Kind, e.MsgID)
			}
			last = e.Seq
		}
	}
}

// checkGroupSeqs: every group's stream seqs, from its messages and read-fanout recall
// entries, are 1..head with one entry each.
func (o *oracle) checkGroupSeqs() {
	for conv, g := range o.groups {
		at := map[uint64]string{}
		put := func(s uint64, what string) {
			if prev, ok := at[s]; ok && prev != what {
				o.v.fail("group-gapless", "group %s: seq %d is both %s and %s", g.spec.name, s, prev, what)
			}
			at[s] = what
		}
		for id, s := range o.gseq {
			if o.msgs[id].conv == conv {
				put(s, fmt.Sprintf("message %d", id))
			}
		}
		o.everyEntry(func(_ string, e wire.Entry) {
			if e.Kind == wire.KindRecall && e.ConversationID == conv && e.GroupSeq != 0 {
				put(e.GroupSeq, fmt.Sprintf("recall of %d", e.MsgID))
			}
		})
		var head uint64
		for s := range at {
			head = max(head, s)
		}
		for s := uint64(1); s <= head; s++ {
			if _, ok := at[s]; !ok {
				o.v.fail("group-gapless", "group %s: no entry at seq %d of %d", g.spec.name, s, head)
			}
		}
	}
}

// members returns the members of a conversation at the end of the run.
func (o *oracle) members(op *sendOp) []string {
	if op.group == "" {
		return []string{op.from, op.to}
	}
	out := slices.Clone(o.groups[op.conv].spec.core)
	for u, m := range o.stays[op.conv] {
		if m.rmAck.IsZero() && m.rmInvoke.IsZero() {
			out = append(out, u)
		}
	}
	return out
}

// positions are a user's read positions in each conversation: the msg_id the
// timeline has read up to and the group seq the stream has, moved by the user's
// acknowledged mark-reads and by their own stored messages.
type positions struct {
	id  map[string]map[wire.ID]wire.ID
	seq map[string]map[wire.ID]uint64
}

func (o *oracle) readPositions() positions {
	p := positions{id: map[string]map[wire.ID]wire.ID{}, seq: map[string]map[wire.ID]uint64{}}
	move := func(u string, conv, msg wire.ID, seq uint64) {
		if p.id[u] == nil {
			p.id[u], p.seq[u] = map[wire.ID]wire.ID{}, map[wire.ID]uint64{}
		}
		p.id[u][conv] = max(p.id[u][conv], msg)
		p.seq[u][conv] = max(p.seq[u][conv], seq)
	}
	for _, r := range o.h.reads {
		if !r.ack.IsZero() {
			move(r.user, r.conv, r.msg, o.gseq[r.msg])
		}
	}
	// An own message moves the timeline's position when it is appended to the
	// sender's timeline (write-fanout; a sender removed before its message was
	// stored gets no copy), or when stored in read-fanout; the stream's position
	// whenever it is stored.
	inTimeline := map[string]map[wire.ID]bool{}
	for u, es := range o.f.syncs {
		inTimeline[u] = map[wire.ID]bool{}
		for _, e := range es {
			if e.Kind == wire.KindMessage && e.From == u && e.Seq != 0 {
				inTimeline[u][e.MsgID] = true
			}
		}
	}
	for id, op := range o.msgs {
		stored := o.gseq[id] != 0 || inTimeline[op.from][id]
		if !stored {
			continue
		}
		if inTimeline[op.from][id] || o.mode[id] == "read" {
			move(op.from, op.conv, id, o.gseq[id])
		} else {
			move(op.from, op.conv, 0, o.gseq[id])
		}
	}
	return p
}

// checkUnread: every conversation's unread and the total, in the conversation list
// and the badge, equal the messages from others after the user's read position
// (msg_id order in the timeline, stream seq order for read-fanout messages, which
// count only for current members).
func (o *oracle) checkUnread() {
	p := o.readPositions()
	for u, es := range o.f.syncs {
		want := map[wire.ID]int64{}
		for _, e := range es {
			op := o.msgs[e.MsgID]
			if e.Kind != wire.KindMessage || op == nil || e.From == u {
				continue
			}
			if o.mode[e.MsgID] == "read" {
				if slices.Contains(o.members(op), u) && o.gseq[e.MsgID] > p.seq[u][e.ConversationID] {
					want[e.ConversationID]++
				}
			} else if e.MsgID > p.id[u][e.ConversationID] {
				want[e.ConversationID]++
			}
		}
		var total int64
		for _, n := range want {
			total += n
		}
		list := o.f.lists[u]
		got := map[wire.ID]int64{}
		for _, c := range list.Conversations {
			got[c.ConversationID] = c.Unread
		}
		for c := range mergeKeys(want, got) {
			if want[c] != got[c] {
				o.v.fail("unread", "%s: conversation %d unread %d in the list, oracle %d (%s)", u, c, got[c], want[c], o.unreadWhy(u, c, es, p))
			}
		}
		if list.TotalUnread != total {
			o.v.fail("unread", "%s: total unread %d in the list, oracle %d", u, list.TotalUnread, total)
		}
		badge := o.f.badges[u]
		if badge.TotalUnread != total {
			o.v.fail("unread", "%s: badge total %d, oracle %d", u, badge.TotalUnread, total)
		}
		for c, n := range want {
			if n > 0 && badge.Conversations[c.String()] != n {
				o.v.fail("unread", "%s: badge has %d unread in conversation %d, oracle %d", u, badge.Conversations[c.String()], c, n)
			}
		}
	}
}

// unreadWhy describes what the oracle's unread of u in conv rests on.
func (o *oracle) unreadWhy(u string, conv wire.ID, es []wire.Entry, p positions) string {
	var others []string
	for _, e := range es {
		if e.ConversationID == conv {
			others = append(others, fmt.Sprintf("%s %d from %s seq %d/%d", e.Kind, e.MsgID, e.From, e.Seq, e.GroupSeq))
		}
	}
	others = others[max(0, len(others)-8):]
	member := "not a group"
	for _, g := range o.groups {
		if g.id == conv {
			member = o.stayString(u, conv)
		}
	}
	return fmt.Sprintf("read up to msg %d, group seq %d; %s; its last entries: %s", p.id[u][conv], p.seq[u][conv], member,
		strings.Join(others, ", "))
}

func mergeKeys[V any](a, b map[wire.ID]V) map[wire.ID]bool {
	out := map[wire.ID]bool{}
	for k := range a {
		out[k] = true
	}
	for k := range b {
		out[k] = true
	}
	return out
}

// receiptsWant is the oracle's answer to a message's receipts: the members other
// than the sender whose read position is at the message or past it.
func (o *oracle) receiptsWant(op *sendOp, p positions) (readers []string, members int) {
	for _, v := range o.members(op) {
		if v == op.from {
			continue
		}
		members++
		if o.mode[op.msgID] == "read" {
			if p.seq[v][op.conv] >= o.gseq[op.msgID] {
				readers = append(readers, v)
			}
		} else if p.id[v][op.conv] >= op.msgID {
			readers = append(readers, v)
		}
	}
	sort.Strings(readers)
	return readers, members
}

// checkReceipts: the sampled messages' receipts equal the oracle's.
func (o *oracle) checkReceipts() {
	p := o.readPositions()
	for id, err := range o.f.receiptErrs {
		o.v.fail("receipts", "%s: receipts refused: %v", msgName(o.msgs[id]), err)
	}
	for id, rc := range o.f.receipts {
		op := o.msgs[id]
		readers, members := o.receiptsWant(op, p)
		got := slices.Clone(rc.Readers)
		sort.Strings(got)
		if rc.ReadCount != len(readers) || rc.MemberCount != members || !slices.Equal(got, readers) {
			o.v.fail("receipts", "%s: read by %d of %d %v, oracle %d of %d %v", msgName(op), rc.ReadCount, rc.MemberCount, got,
				len(readers), members, readers)
		}
	}
}

// checkRecalls: a recalled message has no body in any sync, history or conversation
// list; a device never gets its body after it got the recall; every member has one
// recall entry.
func (o *oracle) checkRecalls() {
	for id := range o.recall {
		op := o.msgs[id]
		if op == nil {
			o.v.fail("recall-body", "recalled message %d was never stored", id)
			continue
		}
		for u, es := range o.f.syncs {
			n := 0
			for _, e := range es {
				if e.MsgID != id {
					continue
				}
				switch e.Kind {
				case wire.KindMessage:
					if !e.Recalled || e.Body != nil {
						o.v.fail("recall-body", "%s's sync has recalled %s with recalled=%t body %s", u, msgName(op), e.Recalled, e.Body)
					}
				case wire.KindRecall:
					n++
				}
			}
			if n > 1 || (n == 0 && o.permanent(u, op)) {
				o.v.fail("recall-entries", "%s has %d recall entries for %s", u, n, msgName(op))
			}
		}
		for _, e := range o.f.histories[op.conv] {
			if e.MsgID == id && (!e.Recalled || e.Body != nil) {
				o.v.fail("recall-body", "history of %d has recalled %s with recalled=%t body %s", op.conv, msgName(op), e.Recalled, e.Body)
			}
		}
		for u, l := range o.f.lists {
			for _, c := range l.Conversations {
				if c.LastMessage != nil && c.LastMessage.MsgID == id && c.LastMessage.Body != nil {
					o.v.fail("recall-body", "%s's conversation list shows recalled %s with body %s", u, msgName(op), c.LastMessage.Body)
				}
			}
		}
	}
	afterRecall := func(where string, ss []seen) {
		got := map[wire.ID]bool{}
		for _, s := range ss {
			if s.e.Kind == wire.KindRecall {
				got[s.e.MsgID] = true
			}
			if s.e.Kind == wire.KindMessage && got[s.e.MsgID] && s.e.Body != nil {
				o.v.fail("recall-body", "%s: the body of %d (%s) came after its recall", where, s.e.MsgID, s.e.ClientMsgID)
			}
		}
	}
	for u, vs := range o.h.views {
		afterRecall("device of "+u, vs)
	}
	for u, conns := range o.h.frames {
		for i, fs := range conns {
			afterRecall(fmt.Sprintf("push connection %d of %s", i, u), fs)
		}
	}
}

// permanent reports whether u is a member of op's conversation for the whole run.
func (o *oracle) permanent(u string, op *sendOp) bool {
	if op.group == "" {
		return u == op.from || u == op.to
	}
	return slices.Contains(o.groups[op.conv].spec.core, u)
}

// checkPushes: no device or push connection gets a message of a conversation it must
// not have: a group it was removed from (sent after the removal), or one it was never
// in.
func (o *oracle) checkPushes() {
	look := func(u, where string, ss []seen) {
		for _, s := range ss {
			op := o.msgs[s.e.MsgID]
			if s.e.Kind != wire.KindMessage || op == nil {
				continue
			}
			o.v.checked++
			if o.expect(u, op) == mustNot {
				o.v.fail(o.violated(u, op), "%s got %s at %s, which it must not (%s)", where, msgName(op),
					s.at.Format("15:04:05.000"), o.stayString(u, op.conv))
			}
		}
	}
	for u, vs := range o.h.views {
		look(u, "device of "+u, vs)
	}
	for u, conns := range o.h.frames {
		for i, fs := range conns {
			look(u, fmt.Sprintf("push connection %d of %s", i, u), fs)
		}
	}
}

// stayString describes u's stay in conv, for a violation's message.
func (o *oracle) stayString(u string, conv wire.ID) string {
	m := o.stays[conv][u]
	if m == nil {
		return "never a member"
	}
	f := func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.Format("15:04:05.000")
	}
	return fmt.Sprintf("added %s-%s, removed %s-%s", f(m.addInvoke), f(m.addAck), f(m.rmInvoke), f(m.rmAck))
}

// checkGroupEvents: every acknowledged membership change reaches the timelines of its
// actor and of the users it added or removed, once.
func (o *oracle) checkGroupEvents() {
	for _, c := range o.h.changes {
		if c.ack.IsZero() {
			o.v.fail("group-events", "change of %s (+%v -%v) never acknowledged: %v", c.group, c.add, c.remove, c.err)
			continue
		}
		for _, u := range append(append([]string{c.by}, c.add...), c.remove...) {
			n := 0
			for _, e := range o.f.syncs[u] {
				var ev wire.GroupEvent
				if e.Kind == wire.KindGroupEvent && e.ConversationID == c.conv && json.Unmarshal(e.Body, &ev) == nil && ev.Version == c.version {
					n++
				}
			}
			if n != 1 {
				o.v.fail("group-events", "%s has %d group events for version %d of %s (+%v -%v)", u, n, c.version, c.group, c.add, c.remove)
			}
		}
	}
}

// checkReadEntries: a mark-read in a direct chat or a small group that moved the
// reader's position (its own timeline has the read entry) puts one read entry in the
// timelines of the conversation's other permanent members.
func (o *oracle) checkReadEntries() {
	has := func(u string, r *readOp) int {
		n := 0
		for _, e := range o.f.syncs[u] {
			if e.Kind == wire.KindRead && e.From == r.user && e.ConversationID == r.conv && e.MsgID == r.msg {
				n++
			}
		}
		return n
	}
	done := map[[2]wire.ID]string{}
	for _, r := range o.h.reads {
		op := o.msgs[r.msg]
		if done[[2]wire.ID{r.conv, r.msg}] == r.user {
			continue
		}
		done[[2]wire.ID{r.conv, r.msg}] = r.user
		if r.ack.IsZero() || op == nil || (op.group != "" && o.groups[op.conv].spec.churn > 1) || has(r.user, r) == 0 {
			continue
		}
		others := []string{op.from, op.to}
		if op.group != "" {
			others = o.groups[op.conv].spec.core
		}
		for _, v := range others {
			if v == r.user {
				continue
			}
			if n := has(v, r); n != 1 {
				o.v.fail("read-entries", "%s has %d read entries for %s's mark-read of %d up to %s", v, n, r.user, r.conv, msgName(op))
			}
		}
	}
}

// checkViews: what a device's SDK delivered is its final sync: each timeline entry at
// its seq once, in order, each stream entry once; an open device has all of it.
func (o *oracle) checkViews() {
	for u, vs := range o.h.views {
		es := o.f.syncs[u]
		bySeq := map[uint64]wire.Entry{}
		stream := map[string]bool{}
		for _, e := range es {
			if e.Seq != 0 {
				bySeq[e.Seq] = e
			} else {
				stream[fmt.Sprintf("%s/%d/%d", e.Kind, e.ConversationID, e.GroupSeq)] = true
			}
		}
		var last uint64
		got := map[string]bool{}
		for _, s := range vs {
			e := s.e
			o.v.checked++
			if e.Seq != 0 {
				want, ok := bySeq[e.Seq]
				if e.Seq != last+1 {
					o.v.fail("device-view", "%s's device got seq %d after %d", u, e.Seq, last)
				}
				last = e.Seq
				if !ok || want.Kind != e.Kind || want.MsgID != e.MsgID || want.ConversationID != e.ConversationID {
					o.v.fail("device-view", "%s's device got %s %d at seq %d, the timeline has %s %d", u, e.Kind, e.MsgID, e.Seq, want.Kind, want.MsgID)
				}
				continue
			}
			k := fmt.Sprintf("%s/%d/%d", e.Kind, e.ConversationID, e.GroupSeq)
			if e.GroupSeq == 0 {
				continue // a hint outside any sequence
			}
			if got[k] {
				o.v.fail("device-view", "%s's device got stream entry %s twice", u, k)
			}
			got[k] = true
			if !stream[k] {
				o.v.fail("device-view", "%s's device got stream entry %s (%d) its sync does not have", u, k, e.MsgID)
			}
		}
		d := o.w.devices[u]
		if d != nil && !d.closed && len(got)+int(last) != len(es) {
			o.v.fail("device-view", "%s's device got %d entries, its sync has %d", u, len(got)+int(last), len(es))
		}
	}
}

// checkHistories: each conversation's history, read by a permanent member, holds
// every stored message once and each acknowledged one.
func (o *oracle) checkHistories() {
	for conv, hist := range o.f.histories {
		count := map[wire.ID]int{}
		for _, e := range hist {
			if e.Kind == wire.KindMessage {
				count[e.MsgID]++
			}
		}
		for id, op := range o.msgs {
			if op.conv != conv {
				continue
			}
			if n := count[id]; n > 1 || (n == 0 && op.acked()) {
				o.v.fail("history", "history of %d has %s %d times", conv, msgName(op), n)
			}
		}
	}
}
