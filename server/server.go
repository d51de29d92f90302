// Package server assembles a fanline node from its configuration: it opens the
// backends, builds the pipeline and the gateway, serves, and shuts down in order. It is
// the wiring cmd/fanline and the end-to-end tests share; no domain logic lives here.
package server

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/fanline/fanline/coldstore"
	csrouting "github.com/fanline/fanline/cs-routing"
	"github.com/fanline/fanline/dispatch"
	"github.com/fanline/fanline/gateway"
	"github.com/fanline/fanline/groupstream"
	"github.com/fanline/fanline/internal/auth"
	"github.com/fanline/fanline/internal/config"
	"github.com/fanline/fanline/internal/cql"
	"github.com/fanline/fanline/internal/ids"
	"github.com/fanline/fanline/internal/kv"
	"github.com/fanline/fanline/internal/metrics"
	"github.com/fanline/fanline/internal/presence"
	"github.com/fanline/fanline/internal/queue"
	"github.com/fanline/fanline/internal/wire"
	"github.com/fanline/fanline/media"
	"github.com/fanline/fanline/timeline"
	"github.com/fanline/fanline/web"
	"github.com/gocql/gocql"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// Server is one fanline node: the roles its configuration names, on the configured
// backends.
type Server struct {
	cfg           config.Config
	log           *slog.Logger
	m             *metrics.Metrics
	db            *pebble.DB              // nil without the dispatch role or the pebble queue
	health        *kv.Health              // db's faults; nil with db
	damaged       chan error              // the first fatal storage fault (kv.Config.OnFatal), buffered
	rdb           *redis.Client           // nil unless a backend is redis
	cassandra     *gocql.Session          // nil unless a backend is cassandra
	redisPresence *presence.RedisRegistry // nil unless presence is redis
	q             queue.Queue
	hub           *gateway.Hub
	relay         *gateway.Relay       // nil unless clustered (presence in redis)
	disp          *dispatch.Dispatcher // nil without the dispatch role
	cold          *coldstore.Scheduler // nil without the dispatch role
	objs          coldstore.Objects    // cold segments and media; nil without the dispatch role
	media         *media.Store         // nil without the dispatch role
	mediaURL      string               // the base of the upload URLs fanline serves itself
	timelines     timeline.Store       // nil without the dispatch role
	router        *csrouting.Router    // nil without the dispatch role
	gw            *gateway.Gateway     // nil without the gateway role
	http          *http.Server
	ln            net.Listener
	admin         *http.Server // nil without admin_addr
	adminLn       net.Listener
}

// pusher is what the pipeline and the customer-service router push through: the local
// Hub in one process, the Relay in a cluster.
type pusher interface {
	dispatch.Pusher
	PushFrame(user string, f wire.ServerFrame)
	PushShop(shop string, f wire.ServerFrame)
}

// New opens the backends and binds the listener; Run serves. cfg comes from
// config.Load, which fills every default.
func New(cfg config.Config, log *slog.Logger) (_ *Server, err error) {
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("server: data dir: %w", err)
	}
	secret, err := jwtSecret(cfg)
	if err != nil {
		return nil, err
	}
	issuer, err := auth.New(auth.Config{Secret: secret, PreviousSecret: cfg.Auth.PreviousJWTSecret, TTL: time.Duration(cfg.Auth.TokenTTL),
		JWKSFile: cfg.Auth.JWKSFile, JWKSURL: cfg.Auth.JWKSURL, JWKSRefresh: time.Duration(cfg.Auth.JWKSRefresh),
		Issuer: cfg.Auth.Issuer, Audience: cfg.Auth.Audience, Logger: log})
	if err != nil {
		return nil, err
	}
	m := metrics.New()
	s := &Server{cfg: cfg, log: log, m: m, damaged: make(chan error, 1)}
	defer func() {
		if err != nil {
			s.closeBackends()
		}
	}()
	// Listen first: the media URLs signed for clients name the bound address.
	if s.ln, err = net.Listen("tcp", cfg.Addr); err != nil {
		return nil, fmt.Errorf("server: listen: %w", err)
	}
	if cfg.Has(config.RoleDispatch) || cfg.Queue.Backend == "pebble" {
		s.db, s.health, err = kv.OpenWithHealth(filepath.Join(cfg.DataDir, "pebble"), kv.Config{Logger: log,
			MinFreeBytes: int64(cfg.Storage.MinFreeBytes), OnFatal: func(err error) {
				select {
				case s.damaged <- err:
				default:
				}
			}})
		if err != nil {
			return nil, err
		}
	}
	if s.q, err = openQueue(cfg, s.db, log, m); err != nil {
		return nil, err
	}
	reg, err := s.presence()
	if err != nil {
		return nil, err
	}
	s.hub = gateway.NewHub(m)
	var push pusher = s.hub
	if s.redisPresence != nil {
		s.relay, err = gateway.NewRelay(s.q, reg, m, gateway.RelayConfig{Partitions: cfg.Queue.PushPartitions, Logger: log})
		if err != nil {
			return nil, err
		}
		push = s.relay
	}
	key, previousKey := nodeKey(secret), ""
	if cfg.Auth.PreviousJWTSecret != "" {
		previousKey = nodeKey(cfg.Auth.PreviousJWTSecret)
	}
	// /metrics and /debug/pprof: on their own listener when admin_addr is set, else
	// on the API port.
	operational := gateway.Operational(m, cfg.DebugPprof)
	if cfg.AdminAddr != "" {
		if s.adminLn, err = net.Listen("tcp", cfg.AdminAddr); err != nil {
			return nil, fmt.Errorf("server: listen on admin_addr: %w", err)
		}
		s.admin = &http.Server{Handler: operational, ReadHeaderTimeout: 10 * time.Second}
		operational = nil
	}
	var svc gateway.Service
	var cs gateway.CS
	var internal http.Handler
	var listenTLS *tls.Config // nil: plain HTTP
	if cfg.Has(config.RoleDispatch) {
		if listenTLS, err = serverTLS(cfg); err != nil {
			return nil, err
		}
		if svc, cs, err = s.pipeline(m, push, secret); err != nil {
			return nil, err
		}
		if cfg.Coldstore.Backend == "minio" {
			if err := s.checkMediaURL(context.Background()); err != nil {
				return nil, fmt.Errorf("server: %w", err)
			}
		}
		// The internal API is for gateway-only nodes, which share the JWT secret the
		// node key comes from; without a secret the key would be public.
		if s.relay != nil && secret != "" {
			internal = gateway.InternalHandler(svc, cs, gateway.InternalConfig{Key: key, PreviousKey: previousKey,
				RequireClientCert: listenTLS != nil && listenTLS.ClientCAs != nil, Logger: log})
		}
	} else {
		remoteTLS, err := remoteTLS(cfg)
		if err != nil {
			return nil, err
		}
		remote, err := gateway.NewRemote(gateway.RemoteConfig{URL: cfg.Cluster.DispatchURL, Key: key, TLS: remoteTLS, Logger: log,
			OnUnreachable: m.DispatchUnreachable.Inc})
		if err != nil {
			return nil, err
		}
		svc, cs = remote, remote
	}
	var handler http.Handler
	if cfg.Has(config.RoleGateway) {
		s.gw = gateway.New(gateway.Config{
			Node:             s.node(),
			DevMode:          cfg.Dev(),
			MaxBodyBytes:     cfg.Limits.MaxBodyBytes,
			HeartbeatTimeout: time.Duration(cfg.Gateway.HeartbeatTimeout),
			SendQueue:        cfg.Gateway.SendQueue,
			Operational:      operational,
			Pprof:            cfg.DebugPprof,
			AllowedOrigins:   cfg.Gateway.AllowedOrigins,
			RatePerSecond:    cfg.Limits.RatePerSecond,
			RateBurst:        cfg.Limits.RateBurst,
			MaxConnsPerUser:  cfg.Limits.MaxConnsPerUser,
			MaxConnsPerIP:    cfg.Limits.MaxConnsPerIP,
			Ready:            s.ready,
			Internal:         internal,
			CS:               cs,
			Console:          web.Handler(),
			Logger:           log,
		}, svc, issuer, reg, s.hub, m)
		handler = s.gw.Handler()
	} else {
		handler = s.opsHandler(internal, operational)
	}
	// A trickled body or a client that never reads cannot hold a handler: reads and
	// writes of one request are bounded, and so is an idle kept-alive connection.
	// WebSockets set their own deadlines per frame once upgraded.
	s.http = &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout: time.Duration(cfg.Gateway.ReadTimeout), WriteTimeout: time.Duration(cfg.Gateway.WriteTimeout),
		IdleTimeout: time.Duration(cfg.Gateway.IdleTimeout), MaxHeaderBytes: 64 << 10, TLSConfig: listenTLS}
	return s, nil
}

// pipeline builds the dispatch role: stores, dedup, customer-service router and the
// dispatcher, pushing through push.
func (s *Server) pipeline(m *metrics.Metrics, push pusher, secret string) (gateway.Service, gateway.CS, error) {
	cfg := s.cfg
	gen, err := ids.NewGenerator(cfg.NodeID, ids.GeneratorConfig{Mark: ids.NewPebbleMark(s.db)})
	if err != nil {
		return nil, nil, err
	}
	dedup, err := s.dedup()
	if err != nil {
		return nil, nil, err
	}
	db := s.db
	m.Registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "fanline_storage_wal_bytes_total", Help: "Bytes written to the embedded store's write-ahead log.",
	}, func() float64 { return float64(db.Metrics().WAL.BytesIn) }))
	timelines, err := s.openTimelines()
	if err != nil {
		return nil, nil, err
	}
	s.timelines = timelines
	streams, err := s.streams()
	if err != nil {
		return nil, nil, err
	}
	if err := s.coldTier(m, streams, s.TrimTimelines); err != nil {
		return nil, nil, err
	}
	if err := s.mediaStore(m, secret, streams); err != nil {
		return nil, nil, err
	}
	router, err := csrouting.NewRouter(csrouting.Config{Store: csrouting.NewPebbleStore(s.db), Notifier: csNotifier{push},
		Waited: func(d time.Duration) { m.CSWait.Observe(d.Seconds()) }})
	if err != nil {
		return nil, nil, err
	}
	m.Registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "fanline_cs_waiting",
		Help: "Customer-service chats waiting in a queue for an agent, in every shop."}, func() float64 { return float64(router.Waiting()) }))
	s.router = router
	cs := csService{router}
	s.disp, err = dispatch.New(dispatch.Config{
		Shops:           cs,
		MaxBodyBytes:    cfg.Limits.MaxBodyBytes,
		RecallWindow:    time.Duration(cfg.Messages.RecallWindow),
		MaxInFlight:     cfg.Limits.MaxInFlightSends,
		MaxStageLag:     time.Duration(cfg.Limits.MaxStageLag),
		MaxGroupMembers: cfg.Limits.MaxGroupMembers,
		Storage:         s.health,
		Media:           s.media,
		Logger:          s.log,
	}, s.q, streams, timelines, dedup, gen, push, m)
	if err != nil {
		return nil, nil, err
	}
	return s.disp, cs, nil
}

// openTimelines builds the configured timeline store.
func (s *Server) openTimelines() (timeline.Store, error) {
	var counters timeline.UnreadCounters
	switch s.cfg.Timeline.Counters {
	case "none":
	case "redis":
		rdb, err := s.redisClient()
		if err != nil {
			return nil, err
		}
		counters = timeline.NewRedisUnreadCounters(rdb, timeline.RedisUnreadCountersConfig{})
	default:
		return nil, fmt.Errorf("server: timeline.counters must be none or redis, not %q", s.cfg.Timeline.Counters)
	}
	switch s.cfg.Timeline.Backend {
	case "pebble":
		return timeline.NewPebbleStore(s.db, timeline.PebbleStoreConfig{Counters: counters}), nil
	case "cassandra":
		cfg := timeline.CassandraStoreConfig{Counters: counters, Batch: cqlBatch(s.cfg),
			EntryTTL: time.Duration(s.cfg.Coldstore.TimelineKeep)}
		switch s.cfg.Timeline.Cache {
		case "none":
		case "redis":
			rdb, err := s.redisClient()
			if err != nil {
				return nil, err
			}
			cfg.Cache = timeline.NewRedisEntryCache(rdb, timeline.RedisEntryCacheConfig{Entries: s.cfg.Timeline.CacheEntries})
		default:
			return nil, fmt.Errorf("server: timeline.cache must be none or redis, not %q", s.cfg.Timeline.Cache)
		}
		session, err := s.cassandraSession()
		if err != nil {
			return nil, err
		}
		return timeline.NewCassandraStore(session, cfg), nil
	default:
		return nil, fmt.Errorf("server: timeline.backend must be pebble or cassandra, not %q", s.cfg.Timeline.Backend)
	}
}

// TrimTimelines drops the user timeline entries older than before (the retention
// run calls it with now - coldstore.timeline_keep), returning how many it dropped;
// see timeline.Trimmer. A node without the dispatch role has no timelines: 0, nil.
func (s *Server) TrimTimelines(ctx context.Context, before time.Time) (int, error) {
	t, ok := s.timelines.(timeline.Trimmer)
	if !ok {
		return 0, nil
	}
	return t.Trim(ctx, before)
}

// streams builds the configured conversation and stream store.
func (s *Server) streams() (groupstream.Store, error) {
	cfg := groupstream.Config{WriteMaxMembers: s.cfg.Fanout.WriteMaxMembers, WriteBackMembers: s.cfg.Fanout.WriteBackMembers,
		CacheBytes: int64(s.cfg.Groupstream.CacheBytes)}
	switch s.cfg.Groupstream.Backend {
	case "pebble":
		return groupstream.NewPebbleStore(s.db, cfg), nil
	case "cassandra":
		session, err := s.cassandraSession()
		if err != nil {
			return nil, err
		}
		return groupstream.NewCassandraStore(session, groupstream.CassandraStoreConfig{Config: cfg, Batch: cqlBatch(s.cfg)}), nil
	default:
		return nil, fmt.Errorf("server: groupstream.backend must be pebble or cassandra, not %q", s.cfg.Groupstream.Backend)
	}
}

// cassandraSession connects to Cassandra once, for every backend configured on it.
func (s *Server) cassandraSession() (*gocql.Session, error) {
	if s.cassandra != nil {
		return s.cassandra, nil
	}
	session, err := cql.Open(cqlConfig(s.cfg))
	if err != nil {
		return nil, err
	}
	s.cassandra = session
	return session, nil
}

func cqlConfig(cfg config.Config) cql.Config {
	c := cfg.Cassandra
	return cql.Config{Hosts: c.Hosts, Keyspace: c.Keyspace, Replication: c.Replication, Consistency: c.Consistency,
		LocalDC: c.LocalDC, Username: c.Username, Password: c.Password, Timeout: time.Duration(c.Timeout)}
}

// cqlBatch is the bound of the Cassandra stores' batches.
func cqlBatch(cfg config.Config) cql.BatchLimits {
	return cql.BatchLimits{Bytes: cfg.Cassandra.BatchBytes, Statements: cfg.Cassandra.BatchStatements}
}

// node names this process in the presence registry and on the push topic.
func (s *Server) node() string { return s.cfg.NodeName }

// nodeKey is the key the nodes of a cluster present to each other's internal API,
// derived from the JWT secret they already share.
func nodeKey(secret string) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte("fanline internal api"))
	return hex.EncodeToString(mac.Sum(nil))
}

// opsHandler serves a dispatch-only node: the internal API, health and (without an
// admin listener) metrics.
func (s *Server) opsHandler(internal, operational http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("POST /internal/v1/", internal)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"ok"}`))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if err := s.ready(); err != nil {
			s.log.Warn("server: not ready", "err", err)
			w.WriteHeader(http.StatusServiceUnavailable)
			_ = json.NewEncoder(w).Encode(wire.ErrorBody{Error: wire.Errorf(wire.CodeUnavailable, "a backend is unreachable")})
			return
		}
		_, _ = w.Write([]byte(`{"status":"ready"}`))
	})
	if operational != nil {
		mux.Handle("GET /metrics", operational)
		mux.Handle("/debug/pprof/", operational)
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		_ = json.NewEncoder(w).Encode(wire.ErrorBody{Error: wire.Errorf(wire.CodeNotFound,
			"no such endpoint on a dispatch node: clients talk to gateway nodes")})
	})
	return mux
}

// Topics lists the queue topics and their partition counts for a configuration.
func Topics(cfg config.Config) map[string]int {
	return map[string]int{dispatch.TopicSend: cfg.Queue.SendPartitions, dispatch.TopicGroup: cfg.Queue.GroupPartitions,
		dispatch.TopicFanout: cfg.Queue.FanoutPartitions, dispatch.TopicControl: cfg.Queue.ControlPartitions,
		gateway.TopicPush: cfg.Queue.PushPartitions, dispatch.TopicDead: 1}
}

// openQueue opens the configured queue backend.
func openQueue(cfg config.Config, db *pebble.DB, log *slog.Logger, m *metrics.Metrics) (queue.Queue, error) {
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
			ClientID: "fanline-" + cfg.NodeName, InstanceID: "fanline-" + cfg.NodeName,
			OnError: func(error) { m.BackendErrors.WithLabelValues("kafka").Inc() }, ConsumerConfig: queue.ConsumerConfig{Logger: log}})
		if err != nil {
			return nil, err
		}
		return q, nil
	default:
		return nil, fmt.Errorf("server: queue.backend must be pebble or kafka, not %q", cfg.Queue.Backend)
	}
}

// Migrate creates or upgrades what the configured distributed backends need, and is
// safe to run again: the Kafka topics, the Cassandra schema, the object store's
// bucket. The embedded backends need nothing.
func Migrate(cfg config.Config, log *slog.Logger) error {
	if cfg.Queue.Backend == "kafka" {
		if err := queue.CreateKafkaTopics(cfg.Kafka.Brokers, Topics(cfg), int16(cfg.Kafka.Replication)); err != nil {
			return err
		}
		log.Info("migrate: kafka topics ready", "topics", Topics(cfg))
	}
	if cfg.Coldstore.Backend == "minio" {
		m, err := coldstore.OpenMinIO(minioConfig(cfg))
		if err != nil {
			return err
		}
		ruled, err := m.EnsureBucket(context.Background(), cfg.Minio.Region)
		if err != nil {
			return err
		}
		log.Info("migrate: object store bucket ready", "bucket", cfg.Minio.Bucket, "abort_incomplete_uploads_rule", ruled)
		if !ruled {
			log.Info("migrate: the server refused the lifecycle rule for abandoned multipart uploads (MinIO does); MinIO aborts them itself after api stale_uploads_expiry (default 24h)")
		}
	}
	var schemas []cql.Schema
	if cfg.Timeline.Backend == "cassandra" {
		schemas = append(schemas, timeline.CassandraSchema)
	}
	if cfg.Groupstream.Backend == "cassandra" {
		schemas = append(schemas, groupstream.CassandraSchema)
	}
	if len(schemas) > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		if err := cql.Migrate(ctx, cqlConfig(cfg), schemas...); err != nil {
			return err
		}
		log.Info("migrate: cassandra schema ready", "keyspace", cfg.Cassandra.Keyspace)
	}
	if cfg.Queue.Backend != "kafka" && len(schemas) == 0 {
		log.Info("migrate: nothing to do for the embedded backends")
	}
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
	rdb.AddHook(errorHook{s.m.BackendErrors.WithLabelValues("redis")})
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
// kept in the data directory so tokens survive restarts; "" when tokens come from an
// identity provider's keys only (config.Check saw to that).
func jwtSecret(cfg config.Config) (string, error) {
	if cfg.Auth.JWTSecret != "" || !cfg.Dev() {
		return cfg.Auth.JWTSecret, nil
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
	if s.health != nil {
		if err := s.health.Err(); err != nil {
			return err
		}
	}
	if s.db != nil {
		_, closer, err := s.db.Get([]byte("readyz"))
		if err == nil {
			closer.Close()
		}
		if err != nil && err != pebble.ErrNotFound {
			return err
		}
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
	if s.cfg.Dev() && s.gw != nil {
		s.log.Warn("dev mode is on: anyone can get a token for any user from POST /v1/dev/token",
			"why", map[bool]string{true: "dev_mode: true is set", false: "the embedded default (loopback, no auth.jwt_secret)"}[s.cfg.DevExplicit()])
	}
	s.log.Info("fanline serving", "addr", s.Addr(), "tls", s.http.TLSConfig != nil, "data", s.cfg.DataDir,
		"roles", s.cfg.Roles, "node", s.node())
	// The background parts: each returns once bctx ends; a part that fails first
	// stops the node.
	bctx, bcancel := context.WithCancel(context.Background())
	defer bcancel()
	var parts sync.WaitGroup
	failed := make(chan error, 4)
	start := func(name string, run func(context.Context) error) {
		parts.Add(1)
		go func() {
			defer parts.Done()
			if err := run(bctx); err != nil && bctx.Err() == nil {
				failed <- fmt.Errorf("server: %s: %w", name, err)
			}
		}()
	}
	if s.disp != nil {
		start("pipeline", s.disp.Run)
		start("cold tier", func(ctx context.Context) error { s.cold.Run(ctx); return nil })
		start("media sweep", func(ctx context.Context) error {
			s.media.Run(ctx, media.SweepInterval(time.Duration(s.cfg.Media.OrphanTTL)))
			return nil
		})
		if s.cfg.Coldstore.Backend == "dir" && s.gw != nil {
			start("media url check", func(ctx context.Context) error {
				if err := s.checkMediaURL(ctx); err != nil && ctx.Err() == nil {
					s.log.Error("server: "+err.Error(), "fix", "set media.public_url to the address clients reach fanline by")
				}
				return nil
			})
		}
	}
	if s.redisPresence != nil {
		start("presence refresh", func(ctx context.Context) error {
			s.redisPresence.Run(ctx, func(err error) { s.log.Warn("server: presence refresh failed", "err", err) })
			return nil
		})
	}
	if s.relay != nil {
		start("push relay", func(ctx context.Context) error { s.relay.Run(ctx); return nil })
		if s.gw != nil {
			start("push receiver", func(ctx context.Context) error {
				return s.hub.Receive(ctx, s.q, s.node(), s.cfg.Queue.PushPartitions, s.log)
			})
		}
	}
	httpErr := make(chan error, 2)
	go func() {
		if s.http.TLSConfig != nil {
			httpErr <- s.http.ServeTLS(s.ln, "", "") // the certificate is in TLSConfig
			return
		}
		httpErr <- s.http.Serve(s.ln)
	}()
	if s.admin != nil {
		s.log.Info("operational endpoints on admin_addr", "addr", s.adminLn.Addr().String())
		go func() { httpErr <- s.admin.Serve(s.adminLn) }()
	}

	var err error
	select {
	case <-ctx.Done():
	case err = <-httpErr:
		err = fmt.Errorf("server: http: %w", err)
	case err = <-failed:
	case e := <-s.damaged:
		// Serving on damaged data would answer wrong or missing data: stop, and exit
		// non-zero (kv.Health logged why).
		err = fmt.Errorf("server: storage: %w", e)
	}
	s.log.Info("fanline shutting down")
	sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer scancel()
	if e := s.http.Shutdown(sctx); e != nil {
		s.log.Warn("server: http shutdown", "err", e)
	}
	if s.admin != nil {
		_ = s.admin.Shutdown(sctx)
	}
	if s.gw != nil {
		s.gw.Close()
	}
	bcancel()
	parts.Wait()
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
	if s.cassandra != nil {
		s.cassandra.Close()
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
	if s.adminLn != nil {
		s.adminLn.Close()
	}
}

// AdminAddr is the address of the operational listener, "" without admin_addr.
func (s *Server) AdminAddr() string {
	if s.adminLn == nil {
		return ""
	}
	return s.adminLn.Addr().String()
}

// Routes lists the public API's endpoints and who may call them (none on a
// dispatch-only node).
func (s *Server) Routes() []gateway.Route {
	if s.gw == nil {
		return nil
	}
	return s.gw.Routes()
}

// errorHook counts a Redis client's failed commands (a missing key is an answer,
// not a failure).
type errorHook struct{ failed prometheus.Counter }

func (errorHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h errorHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		h.count(err)
		return err
	}
}

// count counts err unless it is an answer: a missing key, or a script the server
// does not have cached yet (go-redis then sends it whole).
func (h errorHook) count(err error) {
	if err != nil && !errors.Is(err, redis.Nil) && !strings.HasPrefix(err.Error(), "NOSCRIPT") {
		h.failed.Inc()
	}
}

func (h errorHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		h.count(err)
		return err
	}
}
