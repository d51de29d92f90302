package dispatch

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"io"
	"slices"
	"strconv"
	"time"

	"github.com/fanline/fanline/internal/wire"
)

// Export formats (GET /v1/conversations/{id}/export?format=).
const (
	ExportJSONL = "jsonl"
	ExportCSV   = "csv"
)

// ExportColumns is the header of a CSV export.
var ExportColumns = []string{"msg_id", "created_at", "from", "agent_id", "kind", "type", "text", "recalled"}

// exportPage is the page size of an export's history reads (at most the history
// endpoint's own bound).
const exportPage = 200

// HistoryPager reads one page of a conversation's history for one caller, newest
// first: messages older than before (0: the newest), as Dispatcher.History does
// (through the internal API on a gateway-only node).
type HistoryPager func(ctx context.Context, before uint64, limit int) (wire.HistoryResult, error)

// flusher is a writer that can push what it buffered to the client
// (http.Flusher, as gin's response writer implements it).
type flusher interface{ Flush() }

// Export writes the whole history page reads to w in format (ExportJSONL: one
// entry per line, as history answers it; ExportCSV: ExportColumns), oldest first.
// Recalled messages are exported as recalled, without a type or body; group
// events as such.
//
// History is read newest first, so Export reads it twice: once to mark where each
// page starts (one msg id a page), then each page again, from the oldest, writing
// it reversed. It holds one page in memory however long the history. A message
// stored between the two passes below the newest one (a send acknowledged before
// the export began) is still exported; one newer than the first pass saw is not.
// An error before anything is written is the first read's, except not_participant,
// which answers conversation_not_found: an export does not tell whether a
// conversation exists. w is flushed after each page when it can be.
func Export(ctx context.Context, page HistoryPager, format string, w io.Writer) error {
	var header func() error
	var write func(es []wire.Entry) error
	switch format {
	case ExportJSONL:
		enc := json.NewEncoder(w)
		header = func() error { return nil }
		write = func(es []wire.Entry) error {
			for _, e := range es {
				if err := enc.Encode(e); err != nil {
					return err
				}
			}
			return nil
		}
	case ExportCSV:
		cw := csv.NewWriter(w)
		header = func() error { return cw.Write(ExportColumns) }
		write = func(es []wire.Entry) error {
			for _, e := range es {
				if err := cw.Write(csvRow(e)); err != nil {
					return err
				}
			}
			cw.Flush()
			return cw.Error()
		}
	default:
		return wire.Errorf(wire.CodeInvalidField, "format must be %s or %s", ExportJSONL, ExportCSV)
	}
	starts, err := exportPages(ctx, page)
	if err != nil {
		return err
	}
	if err := header(); err != nil {
		return err
	}
	if len(starts) == 0 {
		return write(nil) // the CSV header alone
	}
	return exportFrom(ctx, page, starts, write, w)
}

// exportPages is the first pass: the before of each page, newest page first. The
// first is one past the newest message; none: the history is empty.
func exportPages(ctx context.Context, page HistoryPager) ([]uint64, error) {
	res, err := page(ctx, 0, exportPage)
	if err != nil {
		if we := wire.AsError(err); we.Code == wire.CodeNotParticipant {
			return nil, wire.Errorf(wire.CodeConversationMissing, "no such conversation")
		}
		return nil, err
	}
	if len(res.Messages) == 0 {
		return nil, nil
	}
	starts := []uint64{uint64(res.Messages[0].MsgID) + 1}
	for res.HasMore && len(res.Messages) > 0 {
		before := uint64(res.Messages[len(res.Messages)-1].MsgID)
		starts = append(starts, before)
		if res, err = page(ctx, before, exportPage); err != nil {
			return nil, err
		}
	}
	return starts, nil
}

// exportFrom is the second pass: the messages from starts[k+1] (inclusive) to
// starts[k] (exclusive) for k from the oldest page on, each run written oldest
// first. A run is normally one page; one that grew since the first pass is read
// on until its lower bound.
func exportFrom(ctx context.Context, page HistoryPager, starts []uint64, write func([]wire.Entry) error, w io.Writer) error {
	for k := len(starts) - 1; k >= 0; k-- {
		var lower uint64
		if k+1 < len(starts) {
			lower = starts[k+1]
		}
		var run []wire.Entry
		before := starts[k]
		for {
			res, err := page(ctx, before, exportPage)
			if err != nil {
				return err
			}
			for _, e := range res.Messages {
				if uint64(e.MsgID) >= lower {
					run = append(run, e)
				}
			}
			n := len(res.Messages)
			if !res.HasMore || n == 0 || uint64(res.Messages[n-1].MsgID) <= lower {
				break
			}
			before = uint64(res.Messages[n-1].MsgID)
		}
		slices.Reverse(run)
		if err := write(run); err != nil {
			return err
		}
		if f, ok := w.(flusher); ok {
			f.Flush()
		}
	}
	return nil
}

// csvRow is an entry's row of a CSV export (ExportColumns): the text of a text
// message, the JSON body of anything else, nothing of a recalled message.
func csvRow(e wire.Entry) []string {
	text := ""
	if len(e.Body) > 0 {
		var body struct {
			Text *string `json:"text"`
		}
		if e.Type == "text" && json.Unmarshal(e.Body, &body) == nil && body.Text != nil {
			text = *body.Text
		} else {
			var b bytes.Buffer
			if json.Compact(&b, e.Body) == nil {
				text = b.String()
			} else {
				text = string(e.Body)
			}
		}
	}
	return []string{e.MsgID.String(), e.CreatedAt.UTC().Format(time.RFC3339Nano), e.From, e.AgentID, e.Kind, e.Type,
		text, strconv.FormatBool(e.Recalled)}
}
