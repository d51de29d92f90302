package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/fanline/fanline/client"
	"github.com/fanline/fanline/internal/wire"
)

const holdUsage = `usage:
  fanline hold add CONVERSATION_ID [--reason TEXT]     place the operators' legal hold
  fanline hold remove CONVERSATION_ID [--reason TEXT]  remove it
  fanline hold list [CONVERSATION_ID]                  every held conversation, or one's holds
flags (anywhere after the subcommand):
  --url URL      the server (env FANLINE_URL; default http://127.0.0.1:8080)
  --token TOKEN  an operator token (env FANLINE_TOKEN)
  --reason TEXT  why (kept with the hold, and logged)
`

// errHoldUsage is the usage, as the error of a wrong command line.
var errHoldUsage = errors.New(strings.TrimSpace(holdUsage))

// hold runs `fanline hold`: a thin client of the /v1/ops/holds endpoints.
func hold(args []string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return holdCmd(ctx, args, os.Getenv, os.Stdout)
}

func holdCmd(ctx context.Context, args []string, getenv func(string) string, out io.Writer) error {
	if len(args) == 0 {
		return errHoldUsage
	}
	sub := args[0]
	fs := flag.NewFlagSet("hold "+sub, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	base := fs.String("url", envOr(getenv, "FANLINE_URL", "http://127.0.0.1:8080"), "server URL")
	token := fs.String("token", getenv("FANLINE_TOKEN"), "operator token")
	reason := fs.String("reason", "", "why")
	// Flags may come before or after the conversation id.
	var pos []string
	rest := args[1:]
	for {
		if err := fs.Parse(rest); err != nil {
			return fmt.Errorf("%v\n%w", err, errHoldUsage)
		}
		if fs.NArg() == 0 {
			break
		}
		pos, rest = append(pos, fs.Arg(0)), fs.Args()[1:]
	}
	if *token == "" {
		return errors.New("hold: an operator token is needed (--token or FANLINE_TOKEN)")
	}
	var conv wire.ID
	if len(pos) > 1 || (len(pos) == 0 && sub != "list") {
		return errHoldUsage
	}
	if len(pos) == 1 {
		id, err := strconv.ParseUint(pos[0], 10, 64)
		if err != nil || id == 0 {
			return fmt.Errorf("hold: %q is not a conversation id", pos[0])
		}
		conv = wire.ID(id)
	}
	ops := client.NewOps(*base, *token)
	switch sub {
	case "add":
		h, err := ops.PutHold(ctx, conv, *reason)
		if err != nil {
			return err
		}
		return printHolds(out, []wire.Hold{h})
	case "remove":
		if err := ops.DeleteHold(ctx, conv, *reason); err != nil {
			return err
		}
		_, err := fmt.Fprintf(out, "removed the ops hold on %s\n", conv)
		return err
	case "list":
		if conv != 0 {
			hs, err := ops.Hold(ctx, conv)
			if err != nil {
				return err
			}
			return printHolds(out, hs.Holds)
		}
		var all []wire.Hold
		for after := wire.ID(0); ; {
			page, err := ops.ListHolds(ctx, after, 0)
			if err != nil {
				return err
			}
			for _, c := range page.Conversations {
				all = append(all, c.Holds...)
			}
			if page.NextAfter == 0 {
				return printHolds(out, all)
			}
			after = page.NextAfter
		}
	}
	return fmt.Errorf("hold: unknown subcommand %q\n%w", sub, errHoldUsage)
}

func envOr(getenv func(string) string, key, def string) string {
	if v := getenv(key); v != "" {
		return v
	}
	return def
}

// printHolds writes holds as a table.
func printHolds(out io.Writer, hs []wire.Hold) error {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CONVERSATION\tSCOPE\tBY\tAT\tREASON")
	for _, h := range hs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", h.ConversationID, h.Scope, h.By, h.At.Format(time.RFC3339), h.Reason)
	}
	return tw.Flush()
}
