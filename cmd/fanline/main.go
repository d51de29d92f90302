// Command fanline runs the fanline IM backend.
//
//	fanline serve [--addr HOST:PORT] [--data DIR] [--config FILE] [--roles gateway,dispatch] [--check-config]
//	fanline migrate [--config FILE]
//	fanline version
//	fanline healthcheck [--url URL]
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
	case "version", "--version":
		fmt.Println(versionLine())
	case "healthcheck":
		err = healthcheck(os.Args[2:])
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
                [--check-config]   (validate the configuration and exit)
  fanline migrate [--config FILE]  (create Kafka topics; idempotent)
  fanline version                  (the version and commit built in)
  fanline healthcheck [--url URL]  (exit 0 if the node's /healthz answers 200)
  fanline bench SCENARIO [flags]   (fanline bench -h for scenarios)
  fanline hold add|remove|list [CONVERSATION_ID] [--url URL] [--token TOKEN] [--reason TEXT]
                                   (legal holds, with an operator token)
`)
}

// setup parses the flags shared by serve and migrate, loads the configuration and
// builds the logger. checkOnly is serve's --check-config.
func setup(name string, args []string, serving bool) (cfg config.Config, log *slog.Logger, checkOnly bool, err error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	file := fs.String("config", "", "YAML config file")
	var addr, data, roles *string
	var check *bool
	if serving {
		addr = fs.String("addr", "", "listen address (default 127.0.0.1:8080)")
		data = fs.String("data", "", "data directory (default ./data)")
		roles = fs.String("roles", "", "comma-separated roles to run: gateway, dispatch (default both)")
		check = fs.Bool("check-config", false, "validate the configuration (file, environment, flags) and exit")
	}
	if err := fs.Parse(args); err != nil {
		return cfg, nil, false, err
	}
	checkOnly = check != nil && *check
	if cfg, err = config.Load(*file, os.Environ()); err != nil {
		return cfg, nil, false, err
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
		return cfg, nil, false, fmt.Errorf("log_level: %w", err)
	}
	log = slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	if !checkOnly {
		log.Info("configuration", "config", cfg.Masked())
	}
	return cfg, log, checkOnly, nil
}

func serve(args []string) error {
	cfg, log, checkOnly, err := setup("serve", args, true)
	if err != nil {
		return err
	}
	if checkOnly {
		if err := cfg.Check(); err != nil {
			return err
		}
		if unknown := config.UnknownEnv(os.Environ()); len(unknown) > 0 {
			return fmt.Errorf("config: %s name no configuration key", strings.Join(unknown, ", "))
		}
		fmt.Printf("configuration ok: roles %s, queue %s, stores %s/%s, presence %s, cold %s, dev mode %v\n",
			strings.Join(cfg.Roles, ","), cfg.Queue.Backend, cfg.Groupstream.Backend, cfg.Timeline.Backend,
			cfg.Presence.Backend, cfg.Coldstore.Backend, cfg.Dev())
		return nil
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
	cfg, log, _, err := setup("migrate", args, false)
	if err != nil {
		return err
	}
	return server.Migrate(cfg, log)
}
