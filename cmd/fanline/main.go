// Command fanline runs the fanline IM backend.
//
//	fanline serve [--addr HOST:PORT] [--data DIR] [--config FILE] [--roles gateway,dispatch]
//	fanline migrate [--config FILE]
//	fanline bench SCENARIO [flags]
//	fanline hold add|remove|list [CONVERSATION_ID] [--url URL] [--token TOKEN] [--reason TEXT]
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/fanline/fanline/internal/config"
	"github.com/fanline/fanline/server"
)

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "serve":
		err = serve(os.Args[2:])
	case "migrate":
		err = migrate(os.Args[2:])
	case "bench":
		err = bench(os.Args[2:])
	case "hold":
		err = hold(os.Args[2:])
	case "-h", "--help", "help":
		usage()
		return
	default:
		fmt.Fprintf(os.Stderr, "fanline: unknown command %q\n", os.Args[1])
		usage()
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "fanline:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprint(os.Stderr, `usage:
  fanline serve [--addr HOST:PORT] [--data DIR] [--config FILE] [--roles gateway,dispatch]
  fanline migrate [--config FILE]  (create Kafka topics; idempotent)
  fanline bench SCENARIO [flags]   (fanline bench -h for scenarios)
  fanline hold add|remove|list [CONVERSATION_ID] [--url URL] [--token TOKEN] [--reason TEXT]
                                   (legal holds, with an operator token)
`)
}

// setup parses the flags shared by serve and migrate, loads the configuration and
// builds the logger.
func setup(name string, args []string, serving bool) (config.Config, *slog.Logger, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	file := fs.String("config", "", "YAML config file")
	var addr, data, roles *string
	if serving {
		addr = fs.String("addr", "", "listen address (default 127.0.0.1:8080)")
		data = fs.String("data", "", "data directory (default ./data)")
		roles = fs.String("roles", "", "comma-separated roles to run: gateway, dispatch (default both)")
	}
	if err := fs.Parse(args); err != nil {
		return config.Config{}, nil, err
	}
	cfg, err := config.Load(*file, os.Environ())
	if err != nil {
		return cfg, nil, err
	}
	if serving && *addr != "" {
		cfg.Addr = *addr
	}
	if serving && *data != "" {
		cfg.DataDir = *data
	}
	if serving && *roles != "" {
		cfg.Roles = strings.Split(*roles, ",")
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.LogLevel)); err != nil {
		return cfg, nil, fmt.Errorf("log_level: %w", err)
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	log.Info("configuration", "config", cfg.Masked())
	return cfg, log, nil
}

func serve(args []string) error {
	cfg, log, err := setup("serve", args, true)
	if err != nil {
		return err
	}
	s, err := server.New(cfg, log)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return s.Run(ctx)
}

func migrate(args []string) error {
	cfg, log, err := setup("migrate", args, false)
	if err != nil {
		return err
	}
	return server.Migrate(cfg, log)
}
