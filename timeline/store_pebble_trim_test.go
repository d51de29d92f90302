package timeline_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/fanline/fanline/internal/kv"
	"github.com/fanline/fanline/timeline"
)

func newPebbleStore(t *testing.T) *timeline.PebbleStore {
	t.Helper()
	db, err := kv.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return timeline.NewPebbleStore(db, timeline.PebbleStoreConfig{})
}

var t0 = time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)

func message(user string, conv, id uint64, at time.Time) timeline.Item {
	return timeline.Item{User: user, Kind: timeline.KindMessage, ConversationID: conv, ConvKind: "direct", Peer: "p",
		MsgID: id, From: "p", At: at}
}

// expiredAt checks that reading user's timeline after seq after answers cursor
// expired, to resume after resume.
func expiredAt(t *testing.T, s timeline.Store, user string, after, resume uint64) {
	t.Helper()
	es, err := s.Read(context.Background(), user, after, 100)
	var ce *timeline.CursorExpiredError
	if !errors.As(err, &ce) || !errors.Is(err, timeline.ErrCursorExpired) || ce.Resume != resume {
		t.Fatalf("Read(%s after %d) = %d entries, %v; want expired, resume after %d", user, after, len(es), err, resume)
	}
}

type userState struct {
	head   uint64
	convs  []timeline.ConvState
	total  int64
	counts timeline.Counts
}

func stateOf(t *testing.T, s timeline.Store, user string) userState {
	t.Helper()
	ctx := context.Background()
	var st userState
	var err error
	if st.head, err = s.Head(ctx, user); err != nil {
		t.Fatal(err)
	}
	if st.convs, st.total, err = s.Conversations(ctx, user); err != nil {
		t.Fatal(err)
	}
	if st.counts, err = s.Unread(ctx, user); err != nil {
		t.Fatal(err)
	}
	return st
}

// TestPebbleTrim: Trim drops each timeline's entries before the cutoff from the
// front, keeps the rest with their seqs and each user's newest entry, and changes
// no head, conversation state or unread count; a read into the dropped part answers
// cursor expired.
func TestPebbleTrim(t *testing.T) {
	ctx := context.Background()
	s := newPebbleStore(t)
	var items []timeline.Item
	// a: ten messages a minute apart, read up to the fourth (a read entry).
	for i := range 10 {
		items = append(items, message("a", 1, uint64(100+i), t0.Add(time.Duration(i)*time.Minute)))
	}
	// b: three old messages only. c: new ones only. d: an old one after a new one.
	for i := range 3 {
		items = append(items, message("b", 2, uint64(200+i), t0), message("c", 3, uint64(300+i), t0.Add(time.Hour)))
	}
	items = append(items, message("d", 4, 400, t0.Add(time.Hour)), message("d", 4, 401, t0))
	if _, err := s.Append(ctx, items); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.MarkRead(ctx, "a", 1, 103, "", t0.Add(10*time.Minute)); err != nil {
		t.Fatal(err)
	}
	users := []string{"a", "b", "c", "d"}
	before := map[string]userState{}
	all := map[string][]timeline.Entry{}
	for _, u := range users {
		before[u] = stateOf(t, s, u)
		es, err := s.Read(ctx, u, 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		all[u] = es
	}
	// Cutoff at minute 5: a loses its first five, b all but its newest.
	dropped, err := s.Trim(ctx, t0.Add(5*time.Minute))
	if err != nil || dropped != 5+2 {
		t.Fatalf("Trim = %d, %v; want 7", dropped, err)
	}
	kept := map[string]uint64{"a": 5, "b": 2, "c": 0, "d": 0} // the seq the kept part continues after
	for _, u := range users {
		if got := stateOf(t, s, u); !reflect.DeepEqual(got, before[u]) {
			t.Errorf("%s: state %+v after trim, %+v before", u, got, before[u])
		}
		if kept[u] > 0 {
			expiredAt(t, s, u, 0, kept[u])
			expiredAt(t, s, u, kept[u]-1, kept[u])
		}
		es, err := s.Read(ctx, u, kept[u], 100)
		if err != nil {
			t.Fatalf("%s after %d: %v", u, kept[u], err)
		}
		if want := all[u][kept[u]:]; !reflect.DeepEqual(es, want) {
			t.Errorf("%s: kept %+v, want %+v", u, es, want)
		}
		if es, err := s.Read(ctx, u, before[u].head, 100); err != nil || len(es) != 0 {
			t.Errorf("%s at the head: %v, %v", u, es, err)
		}
	}
	// Again: nothing more to drop. Later: a's read entry (minute 10) is its newest.
	if n, err := s.Trim(ctx, t0.Add(5*time.Minute)); err != nil || n != 0 {
		t.Fatalf("Trim again = %d, %v", n, err)
	}
	if n, err := s.Trim(ctx, t0.Add(24*time.Hour)); err != nil || n != 5+0+2+1 {
		t.Fatalf("Trim of everything = %d, %v; want 8", n, err)
	}
	expiredAt(t, s, "a", 5, 10)
	// The timeline goes on from its head.
	if _, err := s.Append(ctx, []timeline.Item{message("a", 1, 110, t0.Add(25*time.Hour))}); err != nil {
		t.Fatal(err)
	}
	if es, err := s.Read(ctx, "a", 10, 100); err != nil || len(es) != 2 || es[0].Seq != 11 || es[1].Seq != 12 {
		t.Fatalf("a after 10: %+v, %v", es, err)
	}
}

// TestPebbleTrimConcurrentAppends: appends and reads running beside trims lose
// nothing and see no gap in the kept part (run with -race).
func TestPebbleTrimConcurrentAppends(t *testing.T) {
	ctx := context.Background()
	s := newPebbleStore(t)
	const users, old, appends = 40, 20, 60
	user := func(i int) string { return fmt.Sprintf("user-%03d", i) }
	for i := range users {
		var items []timeline.Item
		for j := range old {
			items = append(items, message(user(i), 1, uint64(1000+j), t0))
		}
		if _, err := s.Append(ctx, items); err != nil {
			t.Fatal(err)
		}
	}
	cutoff := t0.Add(time.Hour)
	var appenders, trimmer sync.WaitGroup
	errs := make(chan error, users+1)
	for i := range users {
		appenders.Add(1)
		go func() {
			defer appenders.Done()
			for j := range appends {
				if _, err := s.Append(ctx, []timeline.Item{message(user(i), 1, uint64(2000+j), cutoff.Add(time.Minute))}); err != nil {
					errs <- err
					return
				}
				// A device following the timeline never finds a hole.
				if es, err := s.Read(ctx, user(i), old+uint64(j), 10); err != nil || len(es) != 1 || es[0].Seq != old+uint64(j)+1 {
					errs <- fmt.Errorf("%s after %d: %+v, %v", user(i), old+j, es, err)
					return
				}
			}
		}()
	}
	done := make(chan struct{})
	trimmed := 0
	trimmer.Add(1)
	go func() {
		defer trimmer.Done()
		for {
			n, err := s.Trim(ctx, cutoff)
			trimmed += n
			if err != nil {
				errs <- err
				return
			}
			select {
			case <-done:
				return
			default:
			}
		}
	}()
	appenders.Wait()
	close(done)
	trimmer.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// Once more, after the last append.
	n, err := s.Trim(ctx, cutoff)
	if err != nil {
		t.Fatal(err)
	}
	if trimmed += n; trimmed != users*old {
		t.Errorf("trims dropped %d entries, want %d", trimmed, users*old)
	}
	for i := range users {
		u := user(i)
		expiredAt(t, s, u, 0, old)
		es, err := s.Read(ctx, u, old, 1000)
		if err != nil || len(es) != appends {
			t.Fatalf("%s: %d entries kept, %v; want %d", u, len(es), err, appends)
		}
		for j, e := range es {
			if e.Seq != old+uint64(j)+1 || e.MsgID != uint64(2000+j) {
				t.Fatalf("%s: entry %d is %+v", u, j, e)
			}
		}
		if st := stateOf(t, s, u); st.head != old+appends || st.total != old+appends {
			t.Errorf("%s: head %d, unread %d; want %d", u, st.head, st.total, old+appends)
		}
	}
}
