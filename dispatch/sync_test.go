package dispatch

import (
	"context"
	"errors"
	"net/http"
	"reflect"
	"testing"
	"time"

	"github.com/fanline/fanline/internal/testharness"
	"github.com/fanline/fanline/internal/wire"
	"github.com/fanline/fanline/timeline"
)

// TestSyncCursorExpired: once bea's timeline is trimmed, a sync from the beginning or
// from a cursor into the dropped part answers 410 cursor_expired with the cursor
// the kept part continues from (the request's group positions kept); a sync from
// there, or from past it, goes on as before.
func TestSyncCursorExpired(t *testing.T) {
	d, _ := newTestDispatcher(t, nil)
	runStages(t, d)
	ctx := context.Background()
	al, bea := wire.Principal{ID: "al", Role: wire.RoleBuyer}, wire.Principal{ID: "bea", Role: wire.RoleBuyer}
	var last wire.SendResult
	for _, id := range []string{"c1", "c2", "c3", "c4", "c5"} {
		var err error
		if last, err = d.Send(ctx, al, "", wire.SendRequest{ClientMsgID: id, To: "bea", Type: "text", Body: []byte(`{"text":"hi"}`)}); err != nil {
			t.Fatal(err)
		}
	}
	testharness.WaitFor(t, 10*time.Second, "bea's five entries", func() bool {
		return entries(t, d, "bea", timeline.KindMessage, 0) == 5
	})
	early := timeline.Cursor{Seq: 2}.String()
	if res, err := d.Sync(ctx, bea, wire.SyncRequest{Cursor: early}); err != nil || len(res.Entries) != 3 {
		t.Fatalf("sync before the trim: %+v, %v", res, err)
	}
	// Everything is older than an hour from now: all but the newest entry of al's
	// and bea's timelines go.
	dropped, err := d.timelines.(timeline.Trimmer).Trim(ctx, time.Now().Add(time.Hour))
	if err != nil || dropped != 2*4 {
		t.Fatalf("Trim = %d, %v; want 8", dropped, err)
	}
	for _, tc := range []struct {
		name string
		req  wire.SyncRequest
		want timeline.Cursor
	}{
		{"from the beginning", wire.SyncRequest{}, timeline.Cursor{Seq: 4}},
		{"from seq 2", wire.SyncRequest{Cursor: early}, timeline.Cursor{Seq: 4}},
		{"with group positions", wire.SyncRequest{Cursor: timeline.Cursor{Seq: 1, Groups: map[uint64]uint64{77: 3}}.String(),
			GroupSeqs: map[string]uint64{"77": 5, "78": 1}}, timeline.Cursor{Seq: 4, Groups: map[uint64]uint64{77: 5, 78: 1}}},
	} {
		_, err := d.Sync(ctx, bea, tc.req)
		var we *wire.Error
		if !errors.As(err, &we) || we.Code != wire.CodeCursorExpired || we.Code.Status() != http.StatusGone {
			t.Fatalf("%s: %v, want cursor_expired", tc.name, err)
		}
		got, err := timeline.ParseCursor(we.Cursor)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: resume cursor %+v (%v), want %+v", tc.name, got, err, tc.want)
		}
	}
	res, err := d.Sync(ctx, bea, wire.SyncRequest{Cursor: timeline.Cursor{Seq: 4}.String()})
	if err != nil || len(res.Entries) != 1 || res.Entries[0].Seq != 5 || res.Entries[0].MsgID != last.MsgID || res.HasMore {
		t.Fatalf("sync from the resume cursor: %+v, %v", res, err)
	}
	if res, err := d.Sync(ctx, bea, wire.SyncRequest{Cursor: res.Cursor}); err != nil || len(res.Entries) != 0 {
		t.Fatalf("sync at the head: %+v, %v", res, err)
	}
	// The conversation and its unread count are as they were.
	if st, err := d.timelines.ConvState(ctx, "bea", uint64(last.ConversationID)); err != nil || st.Unread != 5 {
		t.Fatalf("bea's state: %+v, %v", st, err)
	}
}
