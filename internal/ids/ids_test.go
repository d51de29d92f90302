package ids

import (
	"sync"
	"testing"
	"time"
)

func TestNextIncreasesAcrossClockStepBack(t *testing.T) {
	g, err := NewGenerator(3)
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
		id := g.Next()
		if id <= prev {
			t.Fatalf("id %d not above %d at step %d", id, prev, i)
		}
		prev = id
	}
}

func TestConcurrentUnique(t *testing.T) {
	g, _ := NewGenerator(1)
	var mu sync.Mutex
	seen := map[uint64]bool{}
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := make([]uint64, 0, 2000)
			for i := 0; i < 2000; i++ {
				local = append(local, g.Next())
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
	if _, err := NewGenerator(MaxNode + 1); err == nil {
		t.Error("node above MaxNode accepted")
	}
}
