package ids

import (
	"errors"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/fanline/fanline/internal/kv"
)

// openMark opens a Pebble store in dir and returns the mark kept there.
func openMark(t *testing.T, dir string) (*PebbleMark, *pebble.DB) {
	t.Helper()
	db, err := kv.Open(dir, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return NewPebbleMark(db), db
}

// TestNextIncreasesAcrossRestartWithClockBack: a node hands out ids, stops, and
// starts again with its clock a minute behind (an NTP step, a VM restored on another
// host). The new Generator reads the mark the old one persisted, so every id it
// hands out is above every id of the old one: none is reused.
func TestNextIncreasesAcrossRestartWithClockBack(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pebble")
	mark, db := openMark(t, dir)
	clock := Epoch.Add(time.Hour)
	g, err := NewGenerator(3, GeneratorConfig{Mark: mark})
	if err != nil {
		t.Fatal(err)
	}
	g.now = func() time.Time { return clock }
	var high uint64
	for i := 0; i < 5000; i++ {
		if i%100 == 0 {
			clock = clock.Add(time.Millisecond)
		}
		id, err := g.Next()
		if err != nil {
			t.Fatal(err)
		}
		high = max(high, id)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	mark, db = openMark(t, dir)
	defer db.Close()
	clock = clock.Add(-time.Minute)
	g, err = NewGenerator(3, GeneratorConfig{Mark: mark})
	if err != nil {
		t.Fatal(err)
	}
	g.now = func() time.Time { return clock }
	for i := 0; i < 5000; i++ {
		id, err := g.Next()
		if err != nil {
			t.Fatal(err)
		}
		if id <= high {
			t.Fatalf("id %d (%s) after the restart is not above %d (%s), the last before it",
				id, Time(id).Format(time.RFC3339Nano), high, Time(high).Format(time.RFC3339Nano))
		}
	}
}

// failingMark is a Mark whose Store fails while fail is set: the disk under a real
// mark failing, without crashing the engine.
type failingMark struct {
	Mark
	fail   atomic.Bool
	stores atomic.Int64
}

var errStore = errors.New("store failed")

func (m *failingMark) Store(ms int64) error {
	m.stores.Add(1)
	if m.fail.Load() {
		return errStore
	}
	return m.Mark.Store(ms)
}

// TestNextRefusesPastAnUnstoredMark: while the mark cannot be stored, the Generator
// hands out ids up to the mark it has and then returns an error instead of an id the
// mark does not cover; once Store works again it carries on above every id it gave.
// The mark is stored about once per lease, not per id.
func TestNextRefusesPastAnUnstoredMark(t *testing.T) {
	pm, db := openMark(t, filepath.Join(t.TempDir(), "pebble"))
	defer db.Close()
	mark := &failingMark{Mark: pm}
	clock := Epoch.Add(time.Hour)
	g, err := NewGenerator(1, GeneratorConfig{Mark: mark, Lease: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	g.now = func() time.Time { return clock }
	var high uint64
	for i := 0; i < 10000; i++ { // ten seconds of ids, one per millisecond
		clock = clock.Add(time.Millisecond)
		id, err := g.Next()
		if err != nil {
			t.Fatal(err)
		}
		high = max(high, id)
	}
	if n := mark.stores.Load(); n < 10 || n > 25 {
		t.Fatalf("%d stores of the mark for ten one-second leases", n)
	}
	mark.fail.Store(true)
	refused := false
	for i := 0; i < 3000 && !refused; i++ {
		clock = clock.Add(time.Millisecond)
		id, err := g.Next()
		if err != nil {
			if !errors.Is(err, errStore) {
				t.Fatalf("error %v does not wrap the store's", err)
			}
			refused = true
			continue
		}
		stored, lerr := pm.Load()
		if lerr != nil {
			t.Fatal(lerr)
		}
		if Time(id).Sub(Epoch).Milliseconds() > stored {
			t.Fatalf("id at %d ms handed out past the stored mark %d ms", Time(id).Sub(Epoch).Milliseconds(), stored)
		}
		high = max(high, id)
	}
	if !refused {
		t.Fatal("ids kept coming while the mark could not be stored")
	}
	mark.fail.Store(false)
	id, err := g.Next()
	if err != nil || id <= high {
		t.Fatalf("after the store recovered: %d %v, want an id above %d", id, err, high)
	}
}

// TestConcurrentWithMark: ids from many goroutines stay unique while the mark is
// renewed under them.
func TestConcurrentWithMark(t *testing.T) {
	mark, db := openMark(t, filepath.Join(t.TempDir(), "pebble"))
	defer db.Close()
	g, err := NewGenerator(2, GeneratorConfig{Mark: mark, Lease: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	seen := concurrentIDs(t, g)
	stored, err := mark.Load()
	if err != nil {
		t.Fatal(err)
	}
	for id := range seen {
		if ms := Time(id).Sub(Epoch).Milliseconds(); ms > stored {
			t.Fatalf("id at %d ms is past the stored mark %d ms", ms, stored)
		}
	}
}

func TestNextIncreasesAcrossClockStepBack(t *testing.T) {
	g, err := NewGenerator(3, GeneratorConfig{})
	if err != nil {
		t.Fatal(err)
	}
	clock := Epoch.Add(time.Hour)
	g.now = func() time.Time { return clock }
	var prev uint64
	for i := 0; i < 10000; i++ {
		if i == 5000 {
			clock = clock.Add(-time.Minute)
		}
		id, err := g.Next()
		if err != nil {
			t.Fatal(err)
		}
		if id <= prev {
			t.Fatalf("id %d not above %d at step %d", id, prev, i)
		}
		prev = id
	}
}

func TestConcurrentUnique(t *testing.T) {
	g, _ := NewGenerator(1, GeneratorConfig{})
	concurrentIDs(t, g)
}

// concurrentIDs takes 2,000 ids from g in each of 8 goroutines and fails t on a
// duplicate; it returns them all.
func concurrentIDs(t *testing.T, g *Generator) map[uint64]bool {
	t.Helper()
	var mu sync.Mutex
	seen := map[uint64]bool{}
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := make([]uint64, 0, 2000)
			for i := 0; i < 2000; i++ {
				id, err := g.Next()
				if err != nil {
					t.Error(err)
					return
				}
				local = append(local, id)
			}
			mu.Lock()
			defer mu.Unlock()
			for _, id := range local {
				if seen[id] {
					t.Errorf("duplicate id %d", id)
				}
				seen[id] = true
			}
		}()
	}
	wg.Wait()
	return seen
}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want uint64
		ok   bool
	}{
		{"1", 1, true},
		{"18446744073709551615", 18446744073709551615, true},
		{"0", 0, false},
		{"", 0, false},
		{"-1", 0, false},
		{"12a", 0, false},
		{"18446744073709551616", 0, false},
	} {
		got, err := Parse(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("Parse(%q) = %d, %v; want %d ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
	if _, err := NewGenerator(MaxNode+1, GeneratorConfig{}); err == nil {
		t.Error("node above MaxNode accepted")
	}
}
