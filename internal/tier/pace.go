package tier

import "context"

// A move reads and deletes long runs of a conversation's history in the warm
// store. So that it never holds one of the process's processors for long (live
// sends queue behind it when it does), the cold tier carries a pace function on
// the move's context, the way net/http/httptrace carries its hooks, and the warm
// stores call Pace between small steps of that work, outside any lock; the
// function rests there when the move has worked long enough.

type paceKey struct{}

// WithPace returns ctx carrying pace, which Pace calls.
func WithPace(ctx context.Context, pace func(context.Context) error) context.Context {
	return context.WithValue(ctx, paceKey{}, pace)
}

// Pace calls the pace function ctx carries, if any, and returns its error (ctx's
// end while it rests).
func Pace(ctx context.Context) error {
	if pace, ok := ctx.Value(paceKey{}).(func(context.Context) error); ok {
		return pace(ctx)
	}
	return nil
}

// PaceRows is how many rows the warm stores' long loops handle between calls of
// Pace.
const PaceRows = 64
