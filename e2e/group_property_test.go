package e2e

import (
	"context"
	"fmt"
	"math/rand"
	"sort"
	"testing"
	"time"

	"github.com/fanline/fanline/client"
	"github.com/fanline/fanline/internal/config"
	"github.com/fanline/fanline/internal/testharness"
	"github.com/fanline/fanline/internal/wire"
)

// TestGroupReadsMatchOracle drives a write-fanout group with random sends and
// mark-reads, then compares every member's unread count and every message's receipts
// (count and reader list) with a brute-force model:
//   - a member has read up to the larger of their last mark-read and their last own
//     message (sending reads everything before it);
//   - unread = messages from others after that position;
//   - a message's readers = recipients whose position is at or after it.
//
// It runs on a write-fanout group and on a read-fanout one (unread derived from read
// positions, "read by N of M" counted from them, readers paged on demand).
//
// The badge (GET /v1/unread) must agree too, also when its counts are copied to
// Redis (timeline.counters: redis).
func TestGroupReadsMatchOracle(t *testing.T) {
	t.Run("write", func(t *testing.T) { groupReadsOracle(t, 500, "write", nil) })
	t.Run("read", func(t *testing.T) { groupReadsOracle(t, 3, "read", nil) })
	t.Run("write-redis-counters", func(t *testing.T) {
		addr := testharness.StartRedis(t)
		groupReadsOracle(t, 500, "write", func(c *config.Config) { c.Timeline.Counters, c.Redis.Addr = "redis", addr })
	})
}

func groupReadsOracle(t *testing.T, writeMax int, fanout string, tweak func(*config.Config)) {
	ts := startServer(t, func(c *config.Config) {
		c.Fanout.WriteMaxMembers, c.Fanout.WriteBackMembers = writeMax, writeMax
		if tweak != nil {
			tweak(c)
		}
	})
	ctx := context.Background()
	names := []string{"m0", "m1", "m2", "m3", "m4"}
	cs := map[string]*client.Client{}
	for _, n := range names {
		cs[n] = connect(t, ts.URL, n)
	}
	g, err := cs["m0"].CreateGroup(ctx, "oracle", names[1:]...)
	if err != nil || g.Fanout != fanout {
		t.Fatalf("create: %+v %v", g, err)
	}
	type msg struct {
		id   wire.ID
		from string
	}
	var msgs []msg
	readPos := map[string]wire.ID{}
	r := rand.New(rand.NewSource(7))
	for step := 0; step < 120; step++ {
		who := names[r.Intn(len(names))]
		if r.Intn(3) > 0 || len(msgs) == 0 {
			res, err := cs[who].Send(ctx, wire.SendRequest{GroupID: g.GroupID, Type: "text", Body: text(fmt.Sprint(step))})
			if err != nil {
				t.Fatal(err)
			}
			msgs = append(msgs, msg{res.MsgID, who})
			continue
		}
		// Mark read up to a random message this member already has in its timeline.
		upto := msgs[r.Intn(len(msgs))].id
		testharness.WaitFor(t, 10*time.Second, "the message to reach "+who, func() bool {
			err := cs[who].MarkRead(ctx, g.GroupID, upto)
			if we, ok := err.(*wire.Error); ok && we.Code == wire.CodeMessageMissing {
				return false
			}
			if err != nil {
				t.Fatal(err)
			}
			return true
		})
		readPos[who] = max(readPos[who], upto)
	}
	// The model.
	pos := map[string]wire.ID{}
	for _, n := range names {
		pos[n] = readPos[n]
	}
	for _, m := range msgs {
		pos[m.from] = max(pos[m.from], m.id)
	}
	// Wait until fanout has delivered everything (every member's timeline has them all).
	for _, n := range names {
		testharness.WaitFor(t, 30*time.Second, n+"'s timeline", func() bool {
			page, err := cs[n].SyncPage(ctx, "", 500)
			if err != nil {
				t.Fatal(err)
			}
			k := 0
			for _, e := range page.Entries {
				if e.Kind == wire.KindMessage {
					k++
				}
			}
			return k == len(msgs)
		})
	}
	for _, n := range names {
		var want int64
		for _, m := range msgs {
			if m.from != n && m.id > pos[n] {
				want++
			}
		}
		list, err := cs[n].Conversations(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(list.Conversations) != 1 || list.Conversations[0].Unread != want || list.TotalUnread != want {
			t.Errorf("%s: unread %+v, oracle %d", n, list.Conversations, want)
		}
		badge, err := cs[n].Unread(ctx)
		if err != nil {
			t.Fatal(err)
		}
		wantConvs := map[string]int64{}
		if want > 0 {
			wantConvs[fmt.Sprint(uint64(g.GroupID))] = want
		}
		if badge.TotalUnread != want || fmt.Sprint(badge.Conversations) != fmt.Sprint(wantConvs) {
			t.Errorf("%s: badge %+v, oracle %d", n, badge, want)
		}
	}
	for _, m := range msgs {
		var readers []string
		for _, n := range names {
			if n != m.from && pos[n] >= m.id {
				readers = append(readers, n)
			}
		}
		rc, err := cs[m.from].Receipts(ctx, m.id)
		if err != nil {
			t.Fatal(err)
		}
		if fanout == "read" {
			// Counts only; the readers come a page at a time.
			if rc.Readers != nil {
				t.Fatalf("read-fanout receipts listed readers unasked: %+v", rc)
			}
			rc.Readers = nil
			for after := ""; ; {
				page, err := cs[m.from].ReaderPage(ctx, m.id, after, 1)
				if err != nil {
					t.Fatal(err)
				}
				rc.Readers = append(rc.Readers, page.Readers...)
				if after = page.NextAfter; after == "" {
					break
				}
			}
		}
		sort.Strings(rc.Readers)
		if rc.MemberCount != len(names)-1 || rc.ReadCount != len(readers) || fmt.Sprint(rc.Readers) != fmt.Sprint(readers) {
			t.Fatalf("receipts of %s from %s: %+v, oracle %v", m.id, m.from, rc, readers)
		}
	}
}
