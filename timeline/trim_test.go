package timeline

import (
	"errors"
	"testing"
)

func TestCheckKept(t *testing.T) {
	for _, tc := range []struct {
		name               string
		after, first, head uint64
		resume             uint64 // 0: not expired
	}{
		{"from the beginning, nothing dropped", 0, 1, 9, 0},
		{"an empty timeline", 0, 0, 0, 0},
		{"at the head", 5, 0, 5, 0},
		{"past the head (another store's cursor)", 10, 0, 3, 0},
		{"continues", 3, 4, 9, 0},
		{"from the beginning, some dropped", 0, 4, 9, 3},
		{"some after the cursor dropped", 3, 9, 12, 8},
		{"everything up to the head dropped", 5, 0, 7, 7},
		{"from the beginning, everything dropped", 0, 0, 7, 7},
	} {
		err := checkKept("u", tc.after, tc.first, tc.head)
		var ce *CursorExpiredError
		switch {
		case tc.resume == 0 && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.resume != 0 && (!errors.As(err, &ce) || !errors.Is(err, ErrCursorExpired)):
			t.Errorf("%s: %v, want expired", tc.name, err)
		case tc.resume != 0 && (ce.Resume != tc.resume || ce.After != tc.after || ce.User != "u"):
			t.Errorf("%s: %+v, want resume after %d", tc.name, ce, tc.resume)
		}
	}
}
