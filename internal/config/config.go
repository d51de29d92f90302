// Package config is the whole server's configuration: one YAML file, then environment
// overrides (FANLINE_<SECTION>_<FIELD>, e.g. FANLINE_LIMITS_RATE_PER_SECOND), then
// command-line flags. Every field's zero value means the default written beside it.
package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fanline/fanline/internal/auth"
	"gopkg.in/yaml.v3"
)

// Duration is a time.Duration written as "24h", "90s" in YAML and the environment.
type Duration time.Duration

// UnmarshalYAML reads a duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("config: %q is not a duration", n.Value)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes a duration string.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// Config is fanline's configuration.
type Config struct {
	// Addr is where the HTTP API, WebSocket and console listen. Default 127.0.0.1:8080.
	Addr string `yaml:"addr"`
	// DataDir holds the embedded backends' data. Default ./data.
	DataDir string `yaml:"data_dir"`
	// NodeID makes this node's msg_ids unique (0-1023). Default 0.
	NodeID int `yaml:"node_id"`
	// NodeName names this node to the others: presence records a connection's node
	// by it, pushes reach a gateway by it, and Kafka knows the dispatch node's group
	// membership by it. Unique among live nodes. Default node-<node_id>; gateways
	// that a Kubernetes Deployment scales set it to the pod's name.
	NodeName string `yaml:"node_name"`
	// DevMode turns on POST /v1/dev/token, where anyone gets a token for any user.
	// Default: on only for the embedded single-process default (both roles, a
	// loopback addr, no auth.jwt_secret and no JWKS); any of those set turns it off
	// unless dev_mode: true is written, and then every start logs a warning.
	DevMode *bool `yaml:"dev_mode"`
	// LogLevel is debug, info, warn or error. Default info.
	LogLevel string `yaml:"log_level"`
	// Roles are what this process runs: gateway (HTTP API, WebSockets, console) and
	// dispatch (the pipeline's stages, the stores, customer-service routing, and the
	// internal API gateway-only nodes call). FANLINE_ROLES or --roles:
	// comma-separated. Default both, one process.
	Roles []string `yaml:"roles"`
	// DebugPprof serves Go's profiler under /debug/pprof/ (on admin_addr when set,
	// else on the API port). Default false; it exposes internals.
	DebugPprof bool `yaml:"debug_pprof"`
	// AdminAddr is a separate listener for /metrics and /debug/pprof, which then
	// leave the public port. Default: none (metrics on the API port).
	AdminAddr string `yaml:"admin_addr"`

	Storage struct {
		// MinFreeBytes is the free space kept in data_dir's file system for the work
		// already accepted: with less, sends and other changes answer 503
		// unavailable (Retry-After) until there is room again. Default 268435456
		// (256 MiB); negative: no reserve (a write failing for want of space still
		// counts).
		MinFreeBytes int `yaml:"min_free_bytes"`
	} `yaml:"storage"`

	Auth struct {
		// JWTSecret signs tokens (at least 32 bytes). Default: in dev mode a random
		// secret kept in DataDir/jwt.secret; required otherwise.
		JWTSecret string `yaml:"jwt_secret"`
		// JWTSecretFile names a file holding jwt_secret (a mounted Kubernetes or
		// Docker secret, a systemd credential); surrounding white space is
		// ignored. Not with jwt_secret.
		JWTSecretFile string `yaml:"jwt_secret_file"`
		// PreviousJWTSecret is the secret being rotated out: tokens it signed still
		// verify and nodes still presenting its node key are accepted, while
		// jwt_secret signs. Default none. See docs/operations.md, "Rotating keys".
		PreviousJWTSecret string `yaml:"jwt_secret_previous"`
		// TokenTTL is the lifetime of dev tokens. Default 24h.
		TokenTTL Duration `yaml:"token_ttl"`
		// JWKSURL and JWKSFile are an identity provider's public keys (RFC 7517) for
		// RS256 and ES256 tokens, chosen by kid; the URL is cached and refetched
		// every jwks_refresh and on an unknown kid. Default none (HS256 only).
		JWKSURL  string `yaml:"jwks_url"`
		JWKSFile string `yaml:"jwks_file"`
		// JWKSRefresh is how often jwks_url is fetched again. Default 10m.
		JWKSRefresh Duration `yaml:"jwks_refresh"`
		// Issuer and Audience, when set, must match every token's iss and aud.
		// Default: not checked.
		Issuer   string `yaml:"issuer"`
		Audience string `yaml:"audience"`
	} `yaml:"auth"`

	Limits struct {
		// MaxBodyBytes bounds a message body. Default 65536.
		MaxBodyBytes int `yaml:"max_body_bytes"`
		// RatePerSecond is each user's sustained send rate. Default 100; negative: off.
		RatePerSecond float64 `yaml:"rate_per_second"`
		// RateBurst is each user's burst of sends. Default 2 x RatePerSecond.
		RateBurst int `yaml:"rate_burst"`
		// MaxInFlightSends bounds sends processed at once; past it sends get 503
		// overloaded. Default 10000.
		MaxInFlightSends int `yaml:"max_in_flight_sends"`
		// MaxStageLag bounds how long an acknowledged message may wait for delivery
		// (stored, and in every recipient's timeline): while the oldest one on its way
		// is older, sends get 503 overloaded with Retry-After. Default 1s; negative:
		// no bound.
		MaxStageLag Duration `yaml:"max_stage_lag"`
		// MaxGroupMembers bounds a group's members. Default 20000.
		MaxGroupMembers int `yaml:"max_group_members"`
		// MaxConnsPerUser and MaxConnsPerIP bound open WebSockets on one gateway node
		// (per token's inbox, per client address). Default 20 and 10000; negative: off.
		MaxConnsPerUser int `yaml:"max_conns_per_user"`
		MaxConnsPerIP   int `yaml:"max_conns_per_ip"`
	} `yaml:"limits"`

	Messages struct {
		// RecallWindow is how long a sender may recall a message. Default 24h.
		RecallWindow Duration `yaml:"recall_window"`
	} `yaml:"messages"`

	Fanout struct {
		// WriteMaxMembers: groups up to this size are written into every member's
		// timeline; larger groups are read from one stream. Default 500.
		WriteMaxMembers int `yaml:"write_max_members"`
		// WriteBackMembers: a read-fanout group returns to write-fanout when it has
		// fewer members than this. Default 400; at most write_max_members.
		WriteBackMembers int `yaml:"write_back_members"`
	} `yaml:"fanout"`

	Gateway struct {
		// HeartbeatTimeout closes a WebSocket that sent no frame for this long.
		// Default 60s.
		HeartbeatTimeout Duration `yaml:"heartbeat_timeout"`
		// SendQueue is each connection's queue of outgoing frames; a connection whose
		// queue is full is closed. Default 256.
		SendQueue int `yaml:"send_queue"`
		// AllowedOrigins are the browser origins (scheme://host[:port]) that may open
		// a WebSocket; "*" allows any. Default: the same origin only (apps that send
		// no Origin header are not browsers and are let through).
		AllowedOrigins []string `yaml:"allowed_origins"`
		// ReadTimeout bounds reading one request with its body, WriteTimeout writing
		// one response, IdleTimeout a kept-alive connection between requests.
		// Default 30s, 60s, 120s. WebSockets set their own deadlines per frame.
		ReadTimeout  Duration `yaml:"read_timeout"`
		WriteTimeout Duration `yaml:"write_timeout"`
		IdleTimeout  Duration `yaml:"idle_timeout"`
	} `yaml:"gateway"`

	Presence struct {
		// Backend is memory (one process) or redis (shared by every gateway node).
		// Default memory.
		Backend string `yaml:"backend"`
		// TTL is how long a node's presence entries live without a refresh (redis):
		// a crashed node's users go offline after at most this long. Default 90s.
		TTL Duration `yaml:"ttl"`
	} `yaml:"presence"`

	Dedup struct {
		// Backend keeps (sender, client_msg_id) reservations in pebble (data_dir) or
		// redis (shared by pipeline nodes; see docs/operations.md). Default pebble.
		Backend string `yaml:"backend"`
	} `yaml:"dedup"`

	Timeline struct {
		// Backend keeps user timelines and conversation state in pebble (data_dir)
		// or cassandra. Default pebble.
		Backend string `yaml:"backend"`
		// Cache puts each user's newest entries in redis in front of cassandra:
		// redis or none. Default none.
		Cache string `yaml:"cache"`
		// CacheEntries is how many entries per user the cache keeps. Default 256.
		CacheEntries int `yaml:"cache_entries"`
		// Counters keeps a copy of each user's unread counts in redis (changed by
		// Lua scripts), so GET /v1/unread reads one hash instead of every
		// conversation state: redis or none. Default none.
		Counters string `yaml:"counters"`
	} `yaml:"timeline"`

	Groupstream struct {
		// Backend keeps conversations, messages, group streams and read positions in
		// pebble (data_dir) or cassandra. Default pebble.
		Backend string `yaml:"backend"`
		// CacheBytes bounds the memory kept of conversations, member lists and read
		// positions (bytes, however many groups there are). Default 64 MiB.
		CacheBytes int `yaml:"cache_bytes"`
	} `yaml:"groupstream"`

	Coldstore struct {
		// Backend keeps cold history segments (and media) in a local directory
		// (dir: data_dir/cold) or on MinIO/S3 (minio: see the minio section).
		// Default dir.
		Backend string `yaml:"backend"`
		// After is the age past which a conversation's messages move to cold
		// segments. Default 720h (30 days); any Go duration.
		After Duration `yaml:"after"`
		// Interval is how often the scheduler looks for cold history (and runs
		// retention and the timeline trim). Default 1h.
		Interval Duration `yaml:"interval"`
		// TimelineKeep is how long user timeline entries stay; past it they are
		// dropped (their messages live on in history) and a sync from an older
		// cursor answers 410 cursor_expired. Default 720h.
		TimelineKeep Duration `yaml:"timeline_keep"`
		// MaxBytesPerSecond bounds the bytes the scheduler reads from the warm store
		// and writes to object storage, so moves never crowd out live traffic.
		// Default 1048576 (1 MiB/s: about 6,000 text messages a second, more than
		// a node takes in on average; see docs/benchmarks.md, Cold tier).
		MaxBytesPerSecond int `yaml:"max_bytes_per_second"`
		// BusyFraction bounds the share of time the scheduler moves: after every
		// 2 ms of work it rests (1-f)/f times as long, so a move takes at most about
		// that share of one core from live traffic, and never holds a processor
		// for long. 1: no rest.
		// Default 0.25.
		BusyFraction float64 `yaml:"busy_fraction"`
		// SegmentMessages bounds the messages (and stream entries) of one segment.
		// Default 10000.
		SegmentMessages int `yaml:"segment_messages"`
		// CacheBytes bounds the local cache of cold blocks read. Default 64 MiB.
		CacheBytes int `yaml:"cache_bytes"`
	} `yaml:"coldstore"`

	Minio struct {
		// Endpoint is the MinIO/S3 server, host:port. Required with
		// coldstore.backend minio.
		Endpoint string `yaml:"endpoint"`
		// Bucket holds cold segments and media; `fanline migrate` creates it.
		// Default fanline.
		Bucket string `yaml:"bucket"`
		// AccessKey and SecretKey authenticate. Required with coldstore.backend minio.
		AccessKey string `yaml:"access_key"`
		SecretKey string `yaml:"secret_key"`
		// SecretKeyFile names a file holding secret_key. Not with secret_key.
		SecretKeyFile string `yaml:"secret_key_file"`
		// Secure uses HTTPS. Default false.
		Secure bool `yaml:"secure"`
		// Region of the bucket. Default us-east-1.
		Region string `yaml:"region"`
	} `yaml:"minio"`

	Media struct {
		// PublicURL is the base of the URLs fanline signs for clients' uploads and
		// downloads: how clients reach fanline (coldstore.backend dir) or MinIO
		// (minio), http(s)://host[:port]. Checked at start-up. Default: the API's
		// own address (dir), the MinIO endpoint (minio).
		PublicURL string `yaml:"public_url"`
		// AllowedTypes are the mime types uploads may have ("video/*" allows every
		// video type). Default: JPEG, PNG, GIF, WebP, HEIC/HEIF and AVIF images (no
		// SVG, which can carry script), mp4/quicktime/webm video, pdf, office
		// documents, zip, plain text and csv.
		AllowedTypes []string `yaml:"allowed_types"`
		// MaxBytes bounds one upload. Default 104857600 (100 MiB).
		MaxBytes int `yaml:"max_bytes"`
		// PartSize: uploads to MinIO larger than this are multipart, in parts of
		// this size. Default 16777216 (16 MiB); at least 5 MiB.
		PartSize int `yaml:"part_size"`
		// UploadTTL and DownloadTTL are how long signed upload and download URLs
		// hold. Default 15m, 5m.
		UploadTTL   Duration `yaml:"upload_ttl"`
		DownloadTTL Duration `yaml:"download_ttl"`
		// OrphanTTL: an upload no message carries is deleted this long after it
		// was started. Default 24h.
		OrphanTTL Duration `yaml:"orphan_ttl"`
		// ThumbMaxSourceBytes bounds the images thumbnails are made of. Default
		// 52428800 (50 MiB).
		ThumbMaxSourceBytes int `yaml:"thumb_max_source_bytes"`
	} `yaml:"media"`

	Retention struct {
		// Direct, Group and Shop are how long each kind of conversation's messages
		// are kept; past it the scheduler deletes whole cold segments, unless a
		// legal hold covers the conversation. Default 0: keep forever.
		Direct Duration `yaml:"direct"`
		Group  Duration `yaml:"group"`
		Shop   Duration `yaml:"shop"`
	} `yaml:"retention"`

	Cassandra struct {
		// Hosts are contact points (FANLINE_CASSANDRA_HOSTS: comma-separated).
		// Required when a backend is cassandra.
		Hosts []string `yaml:"hosts"`
		// Keyspace holds the tables `fanline migrate` creates. Default fanline.
		Keyspace string `yaml:"keyspace"`
		// Replication is the CQL replication map migrate gives a new keyspace.
		// Default {'class': 'NetworkTopologyStrategy', '<local_dc>': 3}, or
		// SimpleStrategy with 3 replicas without local_dc.
		Replication string `yaml:"replication"`
		// Consistency of reads and writes. Default LOCAL_QUORUM.
		Consistency string `yaml:"consistency"`
		// LocalDC is the data centre queries prefer. Default: none preferred.
		LocalDC string `yaml:"local_dc"`
		// Username and Password authenticate when set. Default none.
		Username string `yaml:"username"`
		Password string `yaml:"password"`
		// PasswordFile names a file holding password. Not with password.
		PasswordFile string `yaml:"password_file"`
		// Timeout bounds one query. Default 5s.
		Timeout Duration `yaml:"timeout"`
		// BatchBytes bounds a batch that writes several partitions (a user's timeline
		// entries, a group's members' user_groups rows) by estimated size: Cassandra
		// refuses one past batch_size_fail_threshold (50 KiB by default) and warns
		// past batch_size_warn_threshold (5 KiB). Default 32 KiB.
		BatchBytes int `yaml:"batch_bytes"`
		// BatchStatements bounds the statements of such a batch. Default 500.
		BatchStatements int `yaml:"batch_statements"`
	} `yaml:"cassandra"`

	Cluster struct {
		// DispatchURL is where a gateway-only node reaches the dispatch node's
		// internal API, http:// or https://, e.g. http://10.0.0.5:8080. Required
		// with roles: [gateway].
		DispatchURL string `yaml:"dispatch_url"`
		// TLSCert and TLSKey (PEM files) are this node's certificate and key. A node
		// with the dispatch role serves its whole addr over TLS with them (TLS 1.2
		// or later; gateways then use an https dispatch_url); a gateway-only node
		// presents them as its client certificate. TLSCA (PEM file) is the
		// cluster's CA: a gateway-only node checks the dispatch node's certificate
		// against it (default: the system roots), and a dispatch node with it
		// requires a client certificate it signed on the internal API (mutual
		// TLS). Default: none of it, plain HTTP on a private network.
		TLSCert string `yaml:"tls_cert"`
		TLSKey  string `yaml:"tls_key"`
		TLSCA   string `yaml:"tls_ca"`
	} `yaml:"cluster"`

	Redis struct {
		// Addr is the Redis server, host:port. Required when a backend is redis.
		Addr string `yaml:"addr"`
		// Password authenticates to Redis. Default none.
		Password string `yaml:"password"`
		// PasswordFile names a file holding password. Not with password.
		PasswordFile string `yaml:"password_file"`
		// DB is the Redis database number. Default 0.
		DB int `yaml:"db"`
	} `yaml:"redis"`

	Queue struct {
		// Backend is pebble (embedded, in DataDir) or kafka. Default pebble.
		Backend string `yaml:"backend"`
		// SendPartitions (direct and shop chats), GroupPartitions (groups),
		// FanoutPartitions and ControlPartitions (receipts, recalls, membership
		// events) size the stages' topics. Default 8 each.
		SendPartitions    int `yaml:"send_partitions"`
		GroupPartitions   int `yaml:"group_partitions"`
		FanoutPartitions  int `yaml:"fanout_partitions"`
		ControlPartitions int `yaml:"control_partitions"`
		// PushPartitions sizes the push topic that carries pushes to the gateway
		// nodes when presence is in redis; each node reads one partition, so give it
		// at least as many as gateway nodes. Default 16.
		PushPartitions int `yaml:"push_partitions"`
	} `yaml:"queue"`

	Kafka struct {
		// Brokers are the bootstrap brokers (FANLINE_KAFKA_BROKERS: comma-separated).
		// Required when queue.backend is kafka.
		Brokers []string `yaml:"brokers"`
		// Replication is the replication factor `fanline migrate` gives new topics.
		// Default 3.
		Replication int `yaml:"replication"`
	} `yaml:"kafka"`
}

// UnknownEnv returns the FANLINE_ variables of environ that name no configuration
// key (a typo, or a key of another version), sorted.
func UnknownEnv(environ []string) []string {
	env := fanlineEnv(environ)
	var c Config
	_ = applyEnv(reflect.ValueOf(&c).Elem(), "FANLINE", env) // Load reports bad values
	out := make([]string, 0, len(env))
	for k := range env {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// fanlineEnv is environ's FANLINE_ variables.
func fanlineEnv(environ []string) map[string]string {
	env := map[string]string{}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, "FANLINE_") {
			env[k] = v
		}
	}
	return env
}

// Load reads file (if not empty) and applies environment overrides from environ.
func Load(file string, environ []string) (Config, error) {
	var c Config
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return c, fmt.Errorf("config: %w", err)
		}
		dec := yaml.NewDecoder(strings.NewReader(string(b)))
		dec.KnownFields(true)
		if err := dec.Decode(&c); err != nil {
			return c, fmt.Errorf("config: %s: %w", file, err)
		}
	}
	if err := applyEnv(reflect.ValueOf(&c).Elem(), "FANLINE", fanlineEnv(environ)); err != nil {
		return c, err
	}
	if err := c.readSecretFiles(); err != nil {
		return c, err
	}
	c.fill()
	return c, nil
}

// readSecretFiles sets each secret that names a file from the file's content.
func (c *Config) readSecretFiles() error {
	for _, s := range []struct {
		name        string
		value, file *string
	}{
		{"auth.jwt_secret", &c.Auth.JWTSecret, &c.Auth.JWTSecretFile},
		{"minio.secret_key", &c.Minio.SecretKey, &c.Minio.SecretKeyFile},
		{"cassandra.password", &c.Cassandra.Password, &c.Cassandra.PasswordFile},
		{"redis.password", &c.Redis.Password, &c.Redis.PasswordFile},
	} {
		if *s.file == "" {
			continue
		}
		if *s.value != "" {
			return fmt.Errorf("config: set %s or %s_file, not both", s.name, s.name)
		}
		b, err := os.ReadFile(*s.file)
		if err != nil {
			return fmt.Errorf("config: %s_file: %w", s.name, err)
		}
		if *s.value = strings.TrimSpace(string(b)); *s.value == "" {
			return fmt.Errorf("config: %s_file %s is empty", s.name, *s.file)
		}
	}
	return nil
}

// fill replaces zero values with the defaults documented on each field, so the
// configuration printed at start-up is the one in force.
func (c *Config) fill() {
	if c.NodeName == "" {
		c.NodeName = fmt.Sprintf("node-%d", c.NodeID)
	}
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	defDur := func(v *Duration, d time.Duration) {
		if *v == 0 {
			*v = Duration(d)
		}
	}
	if c.Addr == "" {
		c.Addr = "127.0.0.1:8080"
	}
	if c.DataDir == "" {
		c.DataDir = "./data"
	}
	if c.LogLevel == "" {
		c.LogLevel = "info"
	}
	defDur(&c.Auth.TokenTTL, 24*time.Hour)
	defDur(&c.Auth.JWKSRefresh, 10*time.Minute)
	def(&c.Limits.MaxConnsPerUser, 20)
	def(&c.Limits.MaxConnsPerIP, 10000)
	defDur(&c.Gateway.ReadTimeout, 30*time.Second)
	defDur(&c.Gateway.WriteTimeout, 60*time.Second)
	defDur(&c.Gateway.IdleTimeout, 120*time.Second)
	def(&c.Limits.MaxBodyBytes, 64<<10)
	if c.Limits.RatePerSecond == 0 {
		c.Limits.RatePerSecond = 100
	}
	if c.Limits.RateBurst == 0 && c.Limits.RatePerSecond > 0 {
		c.Limits.RateBurst = max(1, int(2*c.Limits.RatePerSecond))
	}
	def(&c.Limits.MaxInFlightSends, 10000)
	defDur(&c.Limits.MaxStageLag, time.Second)
	def(&c.Limits.MaxGroupMembers, 20000)
	defDur(&c.Messages.RecallWindow, 24*time.Hour)
	defDur(&c.Gateway.HeartbeatTimeout, 60*time.Second)
	def(&c.Gateway.SendQueue, 256)
	if c.Presence.Backend == "" {
		c.Presence.Backend = "memory"
	}
	defDur(&c.Presence.TTL, 90*time.Second)
	if c.Dedup.Backend == "" {
		c.Dedup.Backend = "pebble"
	}
	if c.Queue.Backend == "" {
		c.Queue.Backend = "pebble"
	}
	def(&c.Kafka.Replication, 3)
	def(&c.Queue.SendPartitions, 8)
	def(&c.Queue.GroupPartitions, 8)
	def(&c.Queue.FanoutPartitions, 8)
	def(&c.Queue.ControlPartitions, 8)
	def(&c.Queue.PushPartitions, 16)
	if c.Timeline.Backend == "" {
		c.Timeline.Backend = "pebble"
	}
	if c.Groupstream.Backend == "" {
		c.Groupstream.Backend = "pebble"
	}
	def(&c.Groupstream.CacheBytes, 64<<20)
	def(&c.Storage.MinFreeBytes, 256<<20)
	if c.Timeline.Cache == "" {
		c.Timeline.Cache = "none"
	}
	def(&c.Timeline.CacheEntries, 256)
	if c.Timeline.Counters == "" {
		c.Timeline.Counters = "none"
	}
	if c.Cassandra.Keyspace == "" {
		c.Cassandra.Keyspace = "fanline"
	}
	if c.Cassandra.Consistency == "" {
		c.Cassandra.Consistency = "LOCAL_QUORUM"
	}
	defDur(&c.Cassandra.Timeout, 5*time.Second)
	def(&c.Cassandra.BatchBytes, 32<<10)
	def(&c.Cassandra.BatchStatements, 500)
	if c.Coldstore.Backend == "" {
		c.Coldstore.Backend = "dir"
	}
	defDur(&c.Coldstore.After, 30*24*time.Hour)
	defDur(&c.Coldstore.Interval, time.Hour)
	defDur(&c.Coldstore.TimelineKeep, 30*24*time.Hour)
	def(&c.Coldstore.MaxBytesPerSecond, 1<<20)
	def(&c.Coldstore.SegmentMessages, 10000)
	if c.Coldstore.BusyFraction == 0 {
		c.Coldstore.BusyFraction = 0.25
	}
	def(&c.Coldstore.CacheBytes, 64<<20)
	if c.Minio.Bucket == "" {
		c.Minio.Bucket = "fanline"
	}
	def(&c.Media.MaxBytes, 100<<20)
	def(&c.Media.PartSize, 16<<20)
	defDur(&c.Media.UploadTTL, 15*time.Minute)
	defDur(&c.Media.DownloadTTL, 5*time.Minute)
	defDur(&c.Media.OrphanTTL, 24*time.Hour)
	def(&c.Media.ThumbMaxSourceBytes, 50<<20)
	if c.Minio.Region == "" {
		c.Minio.Region = "us-east-1"
	}
	if len(c.Roles) == 0 {
		c.Roles = []string{RoleGateway, RoleDispatch}
	}
	def(&c.Fanout.WriteMaxMembers, 500)
	def(&c.Fanout.WriteBackMembers, min(400, c.Fanout.WriteMaxMembers))
}

// applyEnv sets v's fields from the variables of env named prefix_KEY (nested
// keys joined by _), deleting each one it uses, and reports every bad value.
func applyEnv(v reflect.Value, prefix string, env map[string]string) error {
	var errs []error
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		tag := strings.Split(t.Field(i).Tag.Get("yaml"), ",")[0]
		name := prefix + "_" + strings.ToUpper(tag)
		f := v.Field(i)
		if f.Kind() == reflect.Struct {
			errs = append(errs, applyEnv(f, name, env))
			continue
		}
		s, ok := env[name]
		if !ok {
			continue
		}
		delete(env, name) // what is left names no key (UnknownEnv)
		if err := setField(f, s); err != nil {
			errs = append(errs, fmt.Errorf("config: %s=%q: %w", name, s, err))
		}
	}
	return errors.Join(errs...)
}

func setField(f reflect.Value, s string) error {
	switch f.Interface().(type) {
	case Duration:
		d, err := time.ParseDuration(s)
		f.Set(reflect.ValueOf(Duration(d)))
		return err
	case *bool:
		b, err := strconv.ParseBool(s)
		f.Set(reflect.ValueOf(&b))
		return err
	}
	switch f.Kind() {
	case reflect.String:
		f.SetString(s)
	case reflect.Slice:
		if f.Type().Elem().Kind() != reflect.String {
			return fmt.Errorf("unsupported list type %s", f.Type())
		}
		f.Set(reflect.ValueOf(strings.Split(s, ",")))
	case reflect.Bool:
		b, err := strconv.ParseBool(s)
		f.SetBool(b)
		return err
	case reflect.Int:
		n, err := strconv.Atoi(s)
		f.SetInt(int64(n))
		return err
	case reflect.Float64:
		n, err := strconv.ParseFloat(s, 64)
		f.SetFloat(n)
		return err
	default:
		return fmt.Errorf("unsupported field kind %s", f.Kind())
	}
	return nil
}

// The roles a process can run.
const (
	RoleGateway  = "gateway"
	RoleDispatch = "dispatch"
)

// Has reports whether this process runs role.
func (c Config) Has(role string) bool { return slices.Contains(c.Roles, role) }

// MaxCassandraGroupMembers bounds limits.max_group_members on Cassandra: a group's
// creation, or a change that removes and adds every member, is one conditional
// batch of a statement per member added or removed (and two more: the record and the
// change's announcement), and gocql sends at most 65,535.
const MaxCassandraGroupMembers = 32000

// Check reports the first contradiction between settings that each look fine alone.
func (c Config) Check() error {
	for _, r := range c.Roles {
		if r != RoleGateway && r != RoleDispatch {
			return fmt.Errorf("config: unknown role %q (roles are gateway and dispatch)", r)
		}
	}
	split := !c.Has(RoleGateway) || !c.Has(RoleDispatch)
	if split && (c.Queue.Backend != "kafka" || c.Presence.Backend != "redis") {
		return errors.New("config: running gateway and dispatch in separate processes needs queue.backend kafka and presence.backend redis")
	}
	if !c.Has(RoleDispatch) && c.Cluster.DispatchURL == "" {
		return errors.New("config: a gateway-only node needs cluster.dispatch_url")
	}
	if split && c.Auth.JWTSecret == "" {
		return errors.New("config: nodes of a cluster must share auth.jwt_secret")
	}
	if s := c.Auth.JWTSecret; s != "" && len(s) < auth.MinSecretBytes {
		return fmt.Errorf("config: auth.jwt_secret is %d bytes; it must be at least %d", len(s), auth.MinSecretBytes)
	}
	if p := c.Auth.PreviousJWTSecret; p != "" && (len(p) < auth.MinSecretBytes || c.Auth.JWTSecret == "") {
		return fmt.Errorf("config: auth.jwt_secret_previous needs auth.jwt_secret and at least %d bytes", auth.MinSecretBytes)
	}
	if (c.Cluster.TLSCert == "") != (c.Cluster.TLSKey == "") {
		return errors.New("config: cluster.tls_cert and cluster.tls_key go together")
	}
	if !c.Has(RoleDispatch) {
		u, err := url.Parse(c.Cluster.DispatchURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("config: cluster.dispatch_url %q must be an http:// or https:// URL", c.Cluster.DispatchURL)
		}
		if u.Scheme == "http" && (c.Cluster.TLSCA != "" || c.Cluster.TLSCert != "") {
			return errors.New("config: cluster.tls_ca and cluster.tls_cert on a gateway-only node are for an https cluster.dispatch_url, not http")
		}
	} else if c.Cluster.TLSCA != "" && c.Cluster.TLSCert == "" {
		return errors.New("config: cluster.tls_ca on a dispatch node checks the gateways' client certificates, which needs TLS: set cluster.tls_cert and cluster.tls_key")
	}
	if c.Coldstore.BusyFraction <= 0 || c.Coldstore.BusyFraction > 1 {
		return fmt.Errorf("config: coldstore.busy_fraction is %v; it must be above 0 and at most 1", c.Coldstore.BusyFraction)
	}
	switch c.Coldstore.Backend {
	case "dir":
	case "minio":
		if c.Minio.Endpoint == "" || c.Minio.AccessKey == "" || c.Minio.SecretKey == "" {
			return errors.New("config: coldstore.backend minio needs minio.endpoint, minio.access_key and minio.secret_key")
		}
	default:
		return fmt.Errorf("config: unknown coldstore.backend %q (dir or minio)", c.Coldstore.Backend)
	}
	if c.Media.PartSize < 5<<20 {
		return fmt.Errorf("config: media.part_size is %d; S3 parts are at least 5 MiB (5242880)", c.Media.PartSize)
	}
	if c.Media.PublicURL != "" {
		u, err := url.Parse(c.Media.PublicURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" {
			return fmt.Errorf("config: media.public_url %q must be an http:// or https:// URL", c.Media.PublicURL)
		}
	}
	if c.Groupstream.Backend == "cassandra" && c.Limits.MaxGroupMembers > MaxCassandraGroupMembers {
		return fmt.Errorf("config: limits.max_group_members is %d; on groupstream.backend cassandra it must be at most %d "+
			"(a membership change is one batch, of at most 65,535 statements)", c.Limits.MaxGroupMembers, MaxCassandraGroupMembers)
	}
	if !c.Dev() && c.Auth.JWTSecret == "" && c.Auth.JWKSURL == "" && c.Auth.JWKSFile == "" {
		return errors.New("config: with dev_mode off, set auth.jwt_secret or auth.jwks_url/jwks_file to verify tokens")
	}
	return nil
}

// Dev reports whether dev mode is on: as dev_mode says when it is written, else only
// for the embedded single-process default with no token keys configured, listening
// on a loopback address.
func (c Config) Dev() bool {
	if c.DevMode != nil {
		return *c.DevMode
	}
	return c.Has(RoleGateway) && c.Has(RoleDispatch) && c.Auth.JWTSecret == "" && c.Auth.JWKSURL == "" &&
		c.Auth.JWKSFile == "" && loopback(c.Addr)
}

// DevExplicit reports whether dev mode is on because the configuration says so
// (rather than by the embedded default).
func (c Config) DevExplicit() bool { return c.DevMode != nil && *c.DevMode }

// loopback reports whether addr (host:port) listens on loopback interfaces only.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Masked renders the configuration as YAML with secrets hidden, for the start-up log,
// with dev mode as in force.
func (c Config) Masked() string {
	dev := c.Dev()
	c.DevMode = &dev
	if c.Auth.JWTSecret != "" {
		c.Auth.JWTSecret = "***"
	} else {
		c.Auth.JWTSecret = "(dev mode: generated, kept in data_dir/jwt.secret)"
	}
	if c.Auth.PreviousJWTSecret != "" {
		c.Auth.PreviousJWTSecret = "***"
	}
	if c.Redis.Password != "" {
		c.Redis.Password = "***"
	}
	if c.Cassandra.Password != "" {
		c.Cassandra.Password = "***"
	}
	if c.Minio.SecretKey != "" {
		c.Minio.SecretKey = "***"
	}
	b, _ := yaml.Marshal(c)
	return string(b)
}
