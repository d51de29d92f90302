package dispatch

import (
	"context"
	"testing"
	"time"

	"github.com/fanline/fanline/internal/testharness"
	"github.com/fanline/fanline/internal/wire"
)

func TestStageLag(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	for _, tc := range []struct {
		name      string
		fed, done []time.Duration // creation times, from t0
		now       time.Duration
		want      time.Duration
	}{
		{"idle since start", nil, nil, 10 * time.Second, 0},
		{"keeping up", []time.Duration{1, 2}, []time.Duration{1, 2}, 10 * time.Second, 0},
		{"fed after idling, nothing handled", []time.Duration{time.Second}, nil, 3 * time.Second, 2 * time.Second},
		{"behind since the newest handled", []time.Duration{time.Second, 2 * time.Second, 3 * time.Second},
			[]time.Duration{time.Second}, 4 * time.Second, 3 * time.Second},
		{"an old message handled late does not move it back", []time.Duration{5 * time.Second},
			[]time.Duration{5 * time.Second, time.Second}, 6 * time.Second, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newStageLag(t0)
			for _, d := range tc.fed {
				l.fed(at(d))
			}
			for _, d := range tc.done {
				l.done(at(d))
			}
			if got := l.behind(at(tc.now)); got != tc.want {
				t.Fatalf("behind %v, want %v", got, tc.want)
			}
		})
	}
}

// TestSendsRefusedWhileStagesLag: when the stages after the ack are further behind
// than MaxStageLag, sends are refused with overloaded and a Retry-After instead of
// acknowledged into a growing backlog; once the stages catch up, sends are accepted.
func TestSendsRefusedWhileStagesLag(t *testing.T) {
	d, _ := newTestDispatcher(t, nil)
	d.cfg.MaxStageLag = 100 * time.Millisecond
	ctx := context.Background()
	al := wire.Principal{ID: "al", Role: wire.RoleBuyer}
	send := func(cmid string) error {
		_, err := d.Send(ctx, al, "", wire.SendRequest{ClientMsgID: cmid, To: "bea", Type: "text", Body: []byte(`{"text":"x"}`)})
		return err
	}
	if err := send("c1"); err != nil { // the stages are not running: it waits in the queue
		t.Fatal(err)
	}
	testharness.WaitFor(t, 10*time.Second, "a refusal", func() bool {
		err := send("c2")
		we, ok := err.(*wire.Error)
		if err != nil && (!ok || we.Code != wire.CodeOverloaded || we.RetryAfter < 1) {
			t.Fatalf("send while behind: %v", err)
		}
		return err != nil
	})
	runStages(t, d)
	testharness.WaitFor(t, 10*time.Second, "sends accepted again", func() bool { return send("c3") == nil })
}
