package groupstream_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fanline/fanline/groupstream"
	"github.com/fanline/fanline/internal/kv"
)

// groupOracle is what one group holds: members (owner o<g>) and read positions.
type groupOracle struct {
	members map[string]bool
	reads   map[string]uint64
}

func (o *groupOracle) sorted() []string {
	var out []string
	for u := range o.members {
		out = append(out, u)
	}
	slices.Sort(out)
	return out
}

func (o *groupOracle) readCount(seq uint64) int {
	n := 0
	for _, r := range o.reads {
		if r >= seq {
			n++
		}
	}
	return n
}

// TestPebbleStoreCacheBounded fills the cache far beyond its budget (60 groups of
// 400 members and one too large to cache, ~10x the budget) while workers change
// members, move read positions and read: the accounted bytes never pass the budget
// and every read matches an oracle, after any eviction, and a cold store on the same
// data agrees.
func TestPebbleStoreCacheBounded(t *testing.T) {
	db, err := kv.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	const budget = 256 << 10
	cfg := groupstream.Config{CacheBytes: budget, WriteMaxMembers: 50}
	s := groupstream.NewPebbleStore(db, cfg)
	ctx := context.Background()
	at := time.Now()
	sizes := map[uint64]int{}
	for g := uint64(1); g <= 60; g++ {
		sizes[g] = 400
	}
	sizes[61] = 3000 // its member list is over a quarter of the budget
	oracles := map[uint64]*groupOracle{}
	for g, n := range sizes {
		o := &groupOracle{members: map[string]bool{fmt.Sprint("o", g): true}, reads: map[string]uint64{}}
		var list []string
		for i := range n - 1 {
			u := fmt.Sprintf("user-%05d", i)
			list = append(list, u)
			o.members[u] = true
		}
		if _, err := s.CreateGroup(ctx, g, "g", fmt.Sprint("o", g), list, at); err != nil {
			t.Fatal(err)
		}
		oracles[g] = o
		if b := s.CachedBytes(); b > budget {
			t.Fatalf("%d bytes cached after creating group %d", b, g)
		}
	}

	const workers = 6
	var msgID atomic.Uint64
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- work(ctx, s, w, workers, oracles, &msgID, budget)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}

	cold := groupstream.NewPebbleStore(db, cfg)
	for g, o := range oracles {
		want := o.sorted()
		for _, st := range []*groupstream.PebbleStore{s, cold} {
			ms, err := st.Members(ctx, g)
			if err != nil || !slices.Equal(memberIDs(ms), want) {
				t.Fatalf("group %d: %d members %v, want %d", g, len(ms), err, len(want))
			}
			for _, seq := range []uint64{1, 50, 90} {
				if n, err := st.ReadCount(ctx, g, seq); err != nil || n != o.readCount(seq) {
					t.Fatalf("group %d read count of %d: %d %v, want %d", g, seq, n, err, o.readCount(seq))
				}
			}
		}
	}
	if b := s.CachedBytes(); b > budget || b == 0 {
		t.Fatalf("%d bytes cached, budget %d", b, budget)
	}
}

func memberIDs(ms []groupstream.Member) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.User
	}
	return out
}

// work changes and checks the groups g with g % workers == w (their oracles are
// this worker's), and reads the others' owners, which never change.
func work(ctx context.Context, s *groupstream.PebbleStore, w, workers int, oracles map[uint64]*groupOracle,
	msgID *atomic.Uint64, budget int64) error {
	rng := rand.New(rand.NewPCG(uint64(w), 7))
	var mine []uint64
	for g := range oracles {
		if int(g)%workers == w {
			mine = append(mine, g)
		}
	}
	slices.Sort(mine)
	at := time.Now()
	for i := range 300 {
		g := mine[rng.IntN(len(mine))]
		o := oracles[g]
		u := fmt.Sprintf("user-%05d", rng.IntN(450))
		switch rng.IntN(6) {
		case 0: // join or leave
			ch := groupstream.MemberChange{Add: []string{u}}
			if o.members[u] {
				ch = groupstream.MemberChange{Remove: []string{u}}
			}
			if _, err := s.ChangeMembers(ctx, g, ch, at); err != nil {
				return err
			}
			if o.members[u] {
				delete(o.members, u)
				delete(o.reads, u)
			} else {
				o.members[u] = true
			}
		case 1: // read up to a seq
			seq := uint64(1 + rng.IntN(100))
			err := s.SetReadSeq(ctx, g, u, seq)
			if !o.members[u] {
				if err != groupstream.ErrNotFound {
					return fmt.Errorf("a non-member's read position in %d: %v", g, err)
				}
				break
			}
			if err != nil {
				return err
			}
			o.reads[u] = max(o.reads[u], seq)
		case 2: // send: the sender's read position moves to the message (even back
			// from a position set past the head)
			if !o.members[u] {
				break
			}
			out, err := s.PutMessages(ctx, []groupstream.Message{{ID: msgID.Add(1), ConversationID: g, From: u, Type: "text", CreatedAt: at}})
			if err != nil {
				return err
			}
			o.reads[u] = out[0].Seq
		case 3:
			ms, err := s.Members(ctx, g)
			if err != nil || !slices.Equal(memberIDs(ms), o.sorted()) {
				return fmt.Errorf("group %d: %d members %v, want %d", g, len(ms), err, len(o.members))
			}
		case 4:
			seq := uint64(1 + rng.IntN(100))
			if n, err := s.ReadCount(ctx, g, seq); err != nil || n != o.readCount(seq) {
				return fmt.Errorf("group %d read count of %d: %d %v, want %d", g, seq, n, err, o.readCount(seq))
			}
		default:
			_, err := s.Member(ctx, g, u)
			if (err == nil) != o.members[u] {
				return fmt.Errorf("member %s of %d: %v, oracle %v", u, g, err, o.members[u])
			}
			other := uint64(1 + rng.IntN(len(oracles)))
			if m, err := s.Member(ctx, other, fmt.Sprint("o", other)); err != nil || m.Role != groupstream.RoleOwner {
				return fmt.Errorf("owner of %d: %+v %v", other, m, err)
			}
		}
		if b := s.CachedBytes(); b > budget {
			return fmt.Errorf("%d bytes cached after step %d, budget %d", b, i, budget)
		}
	}
	return nil
}
