package dispatch

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/fanline/fanline/groupstream"
	"github.com/fanline/fanline/internal/kv"
	"github.com/fanline/fanline/internal/testharness"
	"github.com/fanline/fanline/internal/wire"
	"github.com/fanline/fanline/timeline"
)

// TestFullDiskRefusesSends: once a write fails for want of space, sends answer 503
// unavailable with Retry-After instead of an ack; when the disk has room again sends
// are accepted, and every send acknowledged before, during and after is stored and in
// the recipient's timeline, also after the store is reopened.
func TestFullDiskRefusesSends(t *testing.T) {
	dir := t.TempDir()
	full := testharness.NewDiskFull(dir)
	db, h, err := kv.OpenWithHealth(dir, kv.Config{FS: full.FS(vfs.Default),
		OnFatal: func(err error) { t.Errorf("OnFatal(%v) for a full disk", err) }})
	if err != nil {
		t.Fatal(err)
	}
	d := dispatcherOn(t, db, Config{Storage: h})
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- d.Run(ctx) }()
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			cancel()
			if err := <-ran; err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("run: %v", err)
			}
		}
	}
	t.Cleanup(stop)

	al := wire.Principal{ID: "al", Role: wire.RoleBuyer}
	bea := wire.Principal{ID: "bea", Role: wire.RoleBuyer}
	acked := map[wire.ID]bool{}
	n := 0
	// send tries one new message and reports whether it was acknowledged; any
	// refusal must be the retryable unavailable.
	send := func() bool {
		t.Helper()
		n++
		res, err := d.Send(ctx, al, "", wire.SendRequest{ClientMsgID: fmt.Sprintf("c%d", n), To: "bea", Type: "text",
			Body: []byte(`{"text":"hi"}`)})
		if err != nil {
			if we := wire.AsError(err); we.Code != wire.CodeUnavailable || we.RetryAfter <= 0 {
				t.Fatalf("send refused with %+v, want unavailable with a Retry-After", we)
			}
			return false
		}
		acked[res.MsgID] = true
		return true
	}
	for range 20 {
		if !send() {
			t.Fatal("a send refused before the disk filled")
		}
	}
	full.Set(true)
	if _, err := db.AsyncFlush(); err != nil {
		t.Fatal(err)
	}
	testharness.WaitFor(t, 10*time.Second, "a send refused on the full disk", func() bool { return !send() })
	if send() {
		t.Fatal("a send acknowledged right after one was refused on the full disk")
	}
	full.Set(false)
	testharness.WaitFor(t, 10*time.Second, "sends accepted once the disk has room", send)
	testharness.WaitFor(t, 10*time.Second, "every acknowledged message in bea's timeline", func() bool {
		u, err := d.Unread(ctx, bea)
		return err == nil && u.TotalUnread == int64(len(acked))
	})
	stop()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db, err = kv.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	streams := groupstream.NewPebbleStore(db, groupstream.Config{})
	for id := range acked {
		if _, err := streams.Message(context.Background(), uint64(id)); err != nil {
			t.Fatalf("acknowledged message %d after the reopen: %v", id, err)
		}
	}
	page, err := timeline.NewPebbleStore(db, timeline.PebbleStoreConfig{}).Read(context.Background(), "bea", 0, 1000)
	if err != nil || len(page) != len(acked) {
		t.Fatalf("bea's timeline has %d entries after the reopen (%v), want %d", len(page), err, len(acked))
	}
	t.Logf("%d sends acknowledged, %d refused while the disk was full", len(acked), n-len(acked))
}
