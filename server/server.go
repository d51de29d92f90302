// Package server assembles a fanline node from its configuration: it opens the
// backends, builds the pipeline and the gateway, serves, and shuts down in order. It is
// the wiring cmd/fanline and the end-to-end tests share; no domain logic lives here.
package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/cockroachdb/pebble/v2"
	csrouting "github.com/fanline/fanline/cs-routing"
	"github.com/fanline/fanline/dispatch"
	"github.com/fanline/fanline/gateway"
	"github.com/fanline/fanline/groupstream"
	"github.com/fanline/fanline/internal/auth"
	"github.com/fanline/fanline/internal/config"
	"github.com/fanline/fanline/internal/ids"
	"github.com/fanline/fanline/internal/kv"
	"github.com/fanline/fanline/internal/metrics"
	"github.com/fanline/fanline/internal/presence"
	"github.com/fanline/fanline/internal/queue"
	"github.com/fanline/fanline/timeline"
	"github.com/fanline/fanline/web"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// Server is one fanline node running every role on the embedded backends.
type Server struct {
	cfg           config.Config
	log           *slog.Logger
	db            *pebble.DB
	rdb           *redis.Client           // nil unless a backend is redis
	redisPresence *presence.RedisRegistry // nil unless presence is redis
	q             queue.Queue
	disp          *dispatch.Dispatcher
	router        *csrouting.Router
	gw            *gateway.Gateway
	http          *http.Server
	ln            net.Listener
}

// New opens the backends and binds the listener; Run serves. cfg comes from
// config.Load, which fills every default.
func New(cfg config.Config, log *slog.Logger) (_ *Server, err error) {
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("server: data dir: %w", err)
	}
	secret, err := jwtSecret(cfg)
	if err != nil {
		return nil, err
	}
	issuer, err := auth.NewIssuer(secret, time.Duration(cfg.Auth.TokenTTL))
	if err != nil {
		return nil, err
	}
	gen, err := ids.NewGenerator(cfg.NodeID)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: log}
	defer func() {
		if err != nil {
			s.closeBackends()
		}
	}()
	if s.db, err = kv.Open(filepath.Join(cfg.DataDir, "pebble"), log); err != nil {
		return nil, err
	}
	if s.q, err = openQueue(cfg, s.db, log); err != nil {
		return nil, err
	}
	reg, err := s.presence()
	if err != nil {
		return nil, err
	}
	dedup, err := s.dedup()
	if err != nil {
		return nil, err
	}
	m := metrics.New()
	db := s.db
	m.Registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "fanline_storage_wal_bytes_total", Help: "Bytes written to the embedded store's write-ahead log.",
	}, func() float64 { return float64(db.Metrics().WAL.BytesIn) }))
	hub := gateway.NewHub(m)
	router, err := csrouting.NewRouter(csrouting.Config{Store: csrouting.NewPebbleStore(s.db), Notifier: csNotifier{hub}})
	if err != nil {
		return nil, err
	}
	s.router = router
	cs := csService{router}
	s.disp, err = dispatch.New(dispatch.Config{
		Shops:           cs,
		MaxBodyBytes:    cfg.Limits.MaxBodyBytes,
		RecallWindow:    time.Duration(cfg.Messages.RecallWindow),
		RatePerSecond:   cfg.Limits.RatePerSecond,
		RateBurst:       cfg.Limits.RateBurst,
		MaxInFlight:     cfg.Limits.MaxInFlightSends,
		MaxGroupMembers: cfg.Limits.MaxGroupMembers,
		Logger:          log,
	}, s.q, groupstream.NewPebbleStore(s.db, groupstream.Config{
		WriteMaxMembers:  cfg.Fanout.WriteMaxMembers,
		WriteBackMembers: cfg.Fanout.WriteBackMembers,
	}), timeline.NewPebbleStore(s.db), dedup, gen, hub, m)
	if err != nil {
		return nil, err
	}
	s.gw = gateway.New(gateway.Config{
		Node:             fmt.Sprintf("node-%d", cfg.NodeID),
		DevMode:          cfg.Dev(),
		MaxBodyBytes:     cfg.Limits.MaxBodyBytes,
		HeartbeatTimeout: time.Duration(cfg.Gateway.HeartbeatTimeout),
		SendQueue:        cfg.Gateway.SendQueue,
		Pprof:            cfg.DebugPprof,
		Ready:            s.ready,
		CS:               cs,
		Console:          web.Handler(),
		Logger:           log,
	}, s.disp, issuer, reg, hub, m)
	if s.ln, err = net.Listen("tcp", cfg.Addr); err != nil {
		return nil, fmt.Errorf("server: listen: %w", err)
	}
	s.http = &http.Server{Handler: s.gw.Handler(), ReadHeaderTimeout: 10 * time.Second}
	return s, nil
}

// Topics lists the queue topics and their partition counts for a configuration.
func Topics(cfg config.Config) map[string]int {
	return map[string]int{dispatch.TopicSend: cfg.Queue.SendPartitions, dispatch.TopicGroup: cfg.Queue.GroupPartitions,
		dispatch.TopicFanout: cfg.Queue.FanoutPartitions, dispatch.TopicControl: cfg.Queue.ControlPartitions}
}

// openQueue opens the configured queue backend.
func openQueue(cfg config.Config, db *pebble.DB, log *slog.Logger) (queue.Queue, error) {
	// Each case returns an untyped nil on failure: a nil *PebbleQueue in the interface
	// would not compare equal to nil.
	switch cfg.Queue.Backend {
	case "pebble":
		q, err := queue.NewPebbleQueue(db, queue.PebbleQueueConfig{Topics: Topics(cfg), Groups: dispatch.Groups,
			ConsumerConfig: queue.ConsumerConfig{Logger: log}})
		if err != nil {
			return nil, err
		}
		return q, nil
	case "kafka":
		q, err := queue.NewKafkaQueue(queue.KafkaQueueConfig{Brokers: cfg.Kafka.Brokers, Topics: Topics(cfg),
			ClientID: fmt.Sprintf("fanline-node-%d", cfg.NodeID), ConsumerConfig: queue.ConsumerConfig{Logger: log}})
		if err != nil {
			return nil, err
		}
		return q, nil
	default:
		return nil, fmt.Errorf("server: queue.backend must be pebble or kafka, not %q", cfg.Queue.Backend)
	}
}

// Migrate creates or upgrades what the configured distributed backends need, and is
// safe to run again: today the Kafka topics. The embedded backends need nothing.
func Migrate(cfg config.Config, log *slog.Logger) error {
	if cfg.Queue.Backend != "kafka" {
		log.Info("migrate: nothing to do for the embedded queue")
		return nil
	}
	if err := queue.CreateKafkaTopics(cfg.Kafka.Brokers, Topics(cfg), int16(cfg.Kafka.Replication)); err != nil {
		return err
	}
	log.Info("migrate: kafka topics ready", "topics", Topics(cfg))
	return nil
}

// presence builds the configured presence registry.
func (s *Server) presence() (presence.Registry, error) {
	switch s.cfg.Presence.Backend {
	case "memory":
		return presence.NewMemoryRegistry(), nil
	case "redis":
		rdb, err := s.redisClient()
		if err != nil {
			return nil, err
		}
		s.redisPresence = presence.NewRedisRegistry(rdb, presence.RedisRegistryConfig{TTL: time.Duration(s.cfg.Presence.TTL)})
		return s.redisPresence, nil
	default:
		return nil, fmt.Errorf("server: presence.backend must be memory or redis, not %q", s.cfg.Presence.Backend)
	}
}

// dedup builds the configured dedup store.
func (s *Server) dedup() (dispatch.Dedup, error) {
	switch s.cfg.Dedup.Backend {
	case "pebble":
		return dispatch.NewPebbleDedup(s.db, s.cfg.Queue.Backend == "pebble"), nil
	case "redis":
		rdb, err := s.redisClient()
		if err != nil {
			return nil, err
		}
		return dispatch.NewRedisDedup(rdb, ""), nil
	default:
		return nil, fmt.Errorf("server: dedup.backend must be pebble or redis, not %q", s.cfg.Dedup.Backend)
	}
}

// redisClient connects to Redis once, for every backend configured on it.
func (s *Server) redisClient() (*redis.Client, error) {
	if s.rdb != nil {
		return s.rdb, nil
	}
	if s.cfg.Redis.Addr == "" {
		return nil, errors.New("server: a redis backend needs redis.addr")
	}
	rdb := redis.NewClient(&redis.Options{Addr: s.cfg.Redis.Addr, Password: s.cfg.Redis.Password, DB: s.cfg.Redis.DB})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := rdb.Ping(ctx).Err(); err != nil {
		rdb.Close()
		return nil, fmt.Errorf("server: redis %s: %w", s.cfg.Redis.Addr, err)
	}
	s.rdb = rdb
	return rdb, nil
}

// jwtSecret returns the configured secret; in dev mode without one, a random secret
// kept in the data directory so tokens survive restarts.
func jwtSecret(cfg config.Config) (string, error) {
	if cfg.Auth.JWTSecret != "" {
		return cfg.Auth.JWTSecret, nil
	}
	if !cfg.Dev() {
		return "", errors.New("server: auth.jwt_secret is required when dev_mode is off")
	}
	path := filepath.Join(cfg.DataDir, "jwt.secret")
	if b, err := os.ReadFile(path); err == nil {
		return string(b), nil
	}
	buf := make([]byte, 32)
	if _, err := rand.Read(buf); err != nil {
		return "", err
	}
	secret := hex.EncodeToString(buf)
	if err := os.WriteFile(path, []byte(secret), 0o600); err != nil {
		return "", fmt.Errorf("server: write %s: %w", path, err)
	}
	return secret, nil
}

func (s *Server) ready() error {
	_, closer, err := s.db.Get([]byte("readyz"))
	if err == nil {
		closer.Close()
	}
	if err != nil && err != pebble.ErrNotFound {
		return err
	}
	if s.rdb != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		return s.rdb.Ping(ctx).Err()
	}
	return nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Run serves until ctx is done or a part fails, then shuts down: stop accepting, close
// WebSockets after their in-flight frames, let the stages finish their batches, close
// the backends.
func (s *Server) Run(ctx context.Context) error {
	if s.cfg.Dev() {
		s.log.Warn("dev mode is on: anyone can get a token from POST /v1/dev/token; set dev_mode: false in production")
	}
	s.log.Info("fanline serving", "addr", s.Addr(), "data", s.cfg.DataDir)
	dctx, dcancel := context.WithCancel(context.Background())
	defer dcancel()
	dispErr := make(chan error, 1)
	go func() { dispErr <- s.disp.Run(dctx) }()
	refreshDone := make(chan struct{})
	go func() {
		defer close(refreshDone)
		if s.redisPresence != nil {
			s.redisPresence.Run(dctx, func(err error) { s.log.Warn("server: presence refresh failed", "err", err) })
		}
	}()
	httpErr := make(chan error, 1)
	go func() { httpErr <- s.http.Serve(s.ln) }()

	var err error
	dispDone := false
	select {
	case <-ctx.Done():
	case err = <-httpErr:
		err = fmt.Errorf("server: http: %w", err)
	case err = <-dispErr:
		dispDone = true
		err = fmt.Errorf("server: pipeline: %w", err)
	}
	s.log.Info("fanline shutting down")
	sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer scancel()
	if e := s.http.Shutdown(sctx); e != nil {
		s.log.Warn("server: http shutdown", "err", e)
	}
	s.gw.Close()
	dcancel()
	if !dispDone {
		<-dispErr
	}
	<-refreshDone
	s.closeBackends()
	s.log.Info("fanline stopped")
	return err
}

func (s *Server) closeBackends() {
	if s.router != nil {
		s.router.Stop()
	}
	if s.rdb != nil {
		s.rdb.Close()
	}
	if s.q != nil {
		s.q.Close()
	}
	if s.db != nil {
		if err := s.db.Close(); err != nil {
			s.log.Warn("server: close pebble", "err", err)
		}
	}
	if s.ln != nil {
		s.ln.Close()
	}
}
