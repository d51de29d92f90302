package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fanline/fanline/client"
	"github.com/fanline/fanline/coldstore"
	"github.com/fanline/fanline/groupstream"
	"github.com/fanline/fanline/internal/kv"
	"github.com/fanline/fanline/internal/metrics"
	"github.com/fanline/fanline/internal/testharness"
	"github.com/fanline/fanline/internal/tier"
	"github.com/fanline/fanline/internal/wire"
)

// coldEnv is the environment of a server process that moves history older than a
// second, in segments of at most 40 records, every 100 ms, without resting between
// segments (the last life's few seconds must see every move through).
var coldEnv = []string{
	"FANLINE_LIMITS_RATE_PER_SECOND=-1",
	"FANLINE_COLDSTORE_AFTER=1s",
	"FANLINE_COLDSTORE_INTERVAL=100ms",
	"FANLINE_COLDSTORE_SEGMENT_MESSAGES=40",
	"FANLINE_COLDSTORE_BUSY_FRACTION=1",
	"FANLINE_FANOUT_WRITE_MAX_MEMBERS=3",
	"FANLINE_FANOUT_WRITE_BACK_MEMBERS=3",
}

// TestColdMovesSurviveCrashes kills the server with SIGKILL at random points while
// the scheduler moves history (and sends go on), 20 times, on the directory backend
// (and on MinIO in TestColdMovesSurviveCrashesMinIO); after the last restart every
// acknowledged message is in exactly one tier, once, and history returns each
// conversation whole and in order.
func TestColdMovesSurviveCrashes(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills a server process")
	}
	data := filepath.Join(t.TempDir(), "data")
	objs := func(t *testing.T) coldstore.Objects {
		o, err := coldstore.OpenDir(filepath.Join(data, "cold"))
		if err != nil {
			t.Fatal(err)
		}
		return o
	}
	crashMoves(t, data, nil, objs)
}

// TestColdMovesSurviveCrashesMinIO is TestColdMovesSurviveCrashes with the
// segments on a MinIO server.
func TestColdMovesSurviveCrashesMinIO(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills a server process")
	}
	srv := testharness.StartMinIO(t)
	cfg := coldstore.MinIOConfig{Endpoint: srv.Addr, Bucket: "fanline", AccessKey: srv.AccessKey, SecretKey: srv.SecretKey, Region: "us-east-1"}
	m, err := coldstore.OpenMinIO(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.EnsureBucket(context.Background(), cfg.Region); err != nil {
		t.Fatal(err)
	}
	env := []string{"FANLINE_COLDSTORE_BACKEND=minio", "FANLINE_MINIO_ENDPOINT=" + srv.Addr,
		"FANLINE_MINIO_ACCESS_KEY=" + srv.AccessKey, "FANLINE_MINIO_SECRET_KEY=" + srv.SecretKey}
	crashMoves(t, filepath.Join(t.TempDir(), "data"), env, func(*testing.T) coldstore.Objects { return m })
}

// crashMoves runs the crash loop on data with extra environment env, and checks the
// tiers through objs once the server is gone.
func crashMoves(t *testing.T, data string, env []string, objs func(*testing.T) coldstore.Objects) {
	env = append(append([]string(nil), coldEnv...), env...)
	addr := testharness.FreeAddr(t)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(7, 11))
	sent := map[wire.ID][]wire.ID{} // conversation -> acknowledged msg ids, in order
	var groups []wire.ID
	const kills = 20
	for round := 0; round <= kills; round++ {
		proc := testharness.StartServer(t, addr, data, env...)
		alice, err := client.Connect(ctx, client.Config{URL: proc.URL(), Token: token(t, proc.URL(), "alice")})
		if err != nil {
			t.Fatal(err)
		}
		if groups == nil {
			for _, members := range [][]string{{"bob", "carol"}, {"bob", "carol", "dave", "erin"}} {
				g, err := alice.CreateGroup(ctx, "g", members...)
				if err != nil {
					t.Fatal(err)
				}
				groups = append(groups, g.GroupID)
			}
		}
		// Sends go on while the server lives; it dies at a random moment.
		killAt := time.Now().Add(time.Duration(200+rng.IntN(1200)) * time.Millisecond)
		for i := 0; round < kills || i < 30; i++ {
			if round < kills && time.Now().After(killAt) {
				break
			}
			req := wire.SendRequest{ClientMsgID: fmt.Sprintf("r%d-%d", round, i), Type: "text", Body: text(fmt.Sprintf("r%d-%d", round, i))}
			switch i % 3 {
			case 0:
				req.To = "bob"
			default:
				req.GroupID = groups[i%3-1]
			}
			sctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
			res, err := alice.SendHTTP(sctx, req)
			cancel()
			if err == nil {
				sent[res.ConversationID] = append(sent[res.ConversationID], res.MsgID)
			}
		}
		alice.Close()
		if round < kills {
			proc.Kill()
			continue
		}
		// The last life: let the scheduler move the newest too.
		time.Sleep(3 * time.Second)
		proc.Kill()
	}
	checkTiers(t, filepath.Join(data, "pebble"), objs(t), sent)
	if b, err := os.ReadFile(data + ".log"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.Contains(l, "cold") && !strings.Contains(l, "configuration") {
				t.Log(l)
			}
		}
	}
}

// inOrderOnce reports whether history holds every acknowledged id in order, and no
// id twice (a send cut off by a kill may be stored without its ack reaching us).
func inOrderOnce(history, acked []wire.ID) bool {
	seen := map[wire.ID]bool{}
	j := 0
	for _, id := range history {
		if seen[id] {
			return false
		}
		seen[id] = true
		if j < len(acked) && acked[j] == id {
			j++
		}
	}
	return j == len(acked)
}

// checkTiers opens the stopped server's stores and checks that each acknowledged
// message is either warm or in one segment, never both, never twice, and that no
// segment is left pending.
func checkTiers(t *testing.T, dir string, objs coldstore.Objects, sent map[wire.ID][]wire.ID) {
	t.Helper()
	ctx := context.Background()
	db, err := kv.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	store := groupstream.NewPebbleStore(db, groupstream.Config{})
	store.SetArchive(coldstore.NewReader(objs, nil, metrics.New()))
	cold, warmOnly := 0, 0
	for conv, ids := range sent {
		where := map[uint64]string{}
		warm, err := store.Run(ctx, uint64(conv), ^uint64(0), 1<<30)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range warm {
			if r.Kind == tier.RecordMessage {
				where[r.MsgID] = "warm"
				warmOnly++
			}
		}
		segs, err := store.Manifest(ctx, uint64(conv))
		if err != nil {
			t.Fatal(err)
		}
		for _, seg := range segs {
			if seg.Pending {
				t.Errorf("conversation %v: segment %s still pending after the scheduler ran", conv, seg.Key)
			}
			r, err := coldstore.OpenSegment(ctx, objs, seg.Key, nil)
			if err != nil {
				t.Fatalf("segment %s: %v", seg.Key, err)
			}
			err = r.All(ctx, func(rec tier.Record) error {
				if rec.Kind != tier.RecordMessage {
					return nil
				}
				if w, ok := where[rec.MsgID]; ok {
					t.Errorf("message %d is in %s and in segment %s", rec.MsgID, w, seg.Key)
				}
				where[rec.MsgID] = seg.Key
				cold++
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		for _, id := range ids {
			if _, ok := where[uint64(id)]; !ok {
				t.Errorf("acknowledged message %v of conversation %v is in no tier", id, conv)
			}
		}
		// History across the tiers holds each acknowledged message once, in order.
		var history []wire.ID
		var before uint64
		for {
			page, more, err := store.History(ctx, uint64(conv), before, 64)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range page {
				if m.IsMessage() {
					history = append(history, wire.ID(m.ID))
				}
			}
			if !more || len(page) == 0 {
				break
			}
			before = page[len(page)-1].ID
		}
		slices.Reverse(history)
		if !inOrderOnce(history, ids) {
			t.Errorf("conversation %v: history of %d messages does not hold the %d acknowledged once each, in order", conv, len(history), len(ids))
		}
	}
	t.Logf("%d messages cold, %d warm", cold, warmOnly)
	if cold == 0 {
		t.Fatal("nothing was moved")
	}
}
