package dispatch

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/fanline/fanline/groupstream"
	"github.com/fanline/fanline/internal/ids"
	"github.com/fanline/fanline/internal/wire"
)

// pager reads conv's history as who, through d.History.
func pager(d *Dispatcher, who wire.Principal, conv uint64) HistoryPager {
	return func(ctx context.Context, before uint64, limit int) (wire.HistoryResult, error) {
		return d.History(ctx, who, conv, before, limit)
	}
}

// store stores messages of conv with ids, text bodies "m<i>".
func store(t *testing.T, d *Dispatcher, conv uint64, from string, msgIDs ...uint64) {
	t.Helper()
	var msgs []groupstream.Message
	for _, id := range msgIDs {
		msgs = append(msgs, groupstream.Message{ID: id, ConversationID: conv, From: from, ClientMsgID: fmt.Sprint("c", id),
			Type: "text", Body: json.RawMessage(fmt.Sprintf(`{"text":"m%d"}`, id)), CreatedAt: ids.Time(id)})
	}
	if _, err := d.streams.PutMessages(context.Background(), msgs); err != nil {
		t.Fatal(err)
	}
}

// TestExport: a history of more than two pages is exported whole, oldest first,
// reading one page at a time: a recalled message without its body, a media
// message's JSON body in the CSV, and a message stored during the export below
// the newest (a late send stage) in its place.
func TestExport(t *testing.T) {
	d, _ := newTestDispatcher(t, nil)
	ctx := context.Background()
	conv := directConv(t, d)
	al := wire.Principal{ID: "al", Role: wire.RoleBuyer}
	var old, fresh []uint64
	for range 250 {
		old = append(old, nextID(t, d))
	}
	late := nextID(t, d)
	for range 200 {
		fresh = append(fresh, nextID(t, d))
	}
	store(t, d, conv, "al", old...)
	store(t, d, conv, "bea", fresh...)
	img := groupstream.Message{ID: nextID(t, d), ConversationID: conv, From: "bea", ClientMsgID: "img", Type: "image",
		Body: json.RawMessage(`{"object_key": "k1", "size": 3}`), CreatedAt: ids.Time(late)}
	if _, err := d.streams.PutMessages(ctx, []groupstream.Message{img}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.streams.Recall(ctx, old[7], "al", ids.Time(old[7])); err != nil {
		t.Fatal(err)
	}
	want := append(append(append([]uint64{}, old...), late), fresh...)
	want = append(want, img.ID)

	// The first export stores the late message once its first pass is over.
	for _, format := range []string{ExportJSONL, ExportCSV} {
		inner := pager(d, al, conv)
		calls, largest, firstPass := 0, 0, true
		page := func(ctx context.Context, before uint64, limit int) (wire.HistoryResult, error) {
			calls++
			if !firstPass && format == ExportJSONL {
				store(t, d, conv, "al", late) // again on later reads: stores nothing new
			}
			res, err := inner(ctx, before, limit)
			largest = max(largest, len(res.Messages))
			firstPass = firstPass && res.HasMore
			return res, err
		}
		var buf bytes.Buffer
		if err := Export(ctx, page, format, &buf); err != nil {
			t.Fatal(err)
		}
		var got []uint64
		rows := map[uint64]string{}
		if format == ExportJSONL {
			for _, line := range strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n") {
				var e wire.Entry
				if err := json.Unmarshal([]byte(line), &e); err != nil {
					t.Fatalf("%q: %v", line, err)
				}
				got = append(got, uint64(e.MsgID))
				rows[uint64(e.MsgID)] = line
			}
			if r := rows[old[7]]; !strings.Contains(r, `"recalled":true`) || strings.Contains(r, "body") {
				t.Errorf("recalled message exported as %s", r)
			}
			if r := rows[old[0]]; !strings.Contains(r, fmt.Sprintf(`"body":{"text":"m%d"}`, old[0])) {
				t.Errorf("first message exported as %s", r)
			}
		} else {
			recs, err := csv.NewReader(&buf).ReadAll()
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(recs[0], ",") != "msg_id,created_at,from,agent_id,kind,type,text,recalled" {
				t.Fatalf("header %v", recs[0])
			}
			for _, r := range recs[1:] {
				var id uint64
				fmt.Sscan(r[0], &id)
				got = append(got, id)
				rows[id] = strings.Join(r, ",")
			}
			at := func(id uint64) string { return ids.Time(id).UTC().Format(time.RFC3339Nano) }
			for id, want := range map[uint64]string{
				old[7]: fmt.Sprintf("%d,%s,al,,message,,,true", old[7], at(old[7])),
				old[0]: fmt.Sprintf("%d,%s,al,,message,text,m%d,false", old[0], at(old[0]), old[0]),
				img.ID: fmt.Sprintf(`%d,%s,bea,,message,image,{"object_key":"k1","size":3},false`, img.ID, at(late)),
			} {
				if rows[id] != want {
					t.Errorf("row %s, want %s", rows[id], want)
				}
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("%s: exported %d messages, want %d in order", format, len(got), len(want))
		}
		if largest > exportPage || calls < 6 {
			t.Errorf("%s: %d reads, up to %d messages each", format, calls, largest)
		}
	}
}

// TestExportAccess: a member exports (a group member from where they joined, as
// history), a shop's admin exports its shop's chats; a stranger and another
// shop's admin get conversation_not_found; an empty history is the CSV header.
func TestExportAccess(t *testing.T) {
	d, _ := newTestDispatcher(t, shops{configured: "acme"})
	ctx := context.Background()
	chat, err := d.streams.ShopConversation(ctx, "carla", "acme", func() uint64 { return nextID(t, d) })
	if err != nil {
		t.Fatal(err)
	}
	run := func(who wire.Principal, conv uint64) (string, error) {
		var buf bytes.Buffer
		err := Export(ctx, pager(d, who, conv), ExportCSV, &buf)
		return buf.String(), err
	}
	if out, err := run(wire.Principal{ID: "carla", Role: wire.RoleBuyer}, chat.ID); err != nil || strings.Count(out, "\n") != 1 {
		t.Fatalf("empty export: %q %v", out, err)
	}
	store(t, d, chat.ID, "carla", nextID(t, d), nextID(t, d))
	for _, who := range []wire.Principal{{ID: "carla", Role: wire.RoleBuyer}, {ID: "boss", Role: wire.RoleAdmin, Shop: "acme"}} {
		if out, err := run(who, chat.ID); err != nil || strings.Count(out, "\n") != 3 {
			t.Errorf("%s: %q %v", who.ID, out, err)
		}
	}
	for _, who := range []wire.Principal{{ID: "mallory", Role: wire.RoleBuyer}, {ID: "boss2", Role: wire.RoleAdmin, Shop: "zeta"}} {
		out, err := run(who, chat.ID)
		if we := wire.AsError(err); err == nil || we.Code != wire.CodeConversationMissing || out != "" {
			t.Errorf("%s exported %q, %v", who.ID, out, err)
		}
	}
	if err := Export(ctx, pager(d, wire.Principal{ID: "carla", Role: wire.RoleBuyer}, chat.ID), "xml", &bytes.Buffer{}); wire.AsError(err).Code != wire.CodeInvalidField {
		t.Errorf("format xml: %v", err)
	}
}
