// Package cql opens fanline's Cassandra sessions and applies the schema the stores
// declare (timeline, groupstream), idempotently. The stores own their tables and
// statements; this package knows the cluster: hosts, consistency, routing, keyspace.
//
// Sessions are token-aware (a query goes to a replica of its partition) over a
// DC-aware round robin, read and write at LOCAL_QUORUM unless configured otherwise,
// and run lightweight transactions at LOCAL_SERIAL. gocql prepares every statement
// with bound values once per connection and reuses it.
package cql

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/gocql/gocql"
)

// Config configures the Cassandra sessions.
type Config struct {
	// Hosts are contact points, host or host:port. Required.
	Hosts []string
	// Keyspace holds every table. Zero means "fanline".
	Keyspace string
	// Replication is the keyspace's replication map in CQL, used when Migrate creates
	// the keyspace (an existing keyspace keeps its own). Zero means
	// {'class': 'NetworkTopologyStrategy', '<LocalDC>': 3}, or SimpleStrategy with 3
	// replicas without LocalDC.
	Replication string
	// Consistency of reads and writes. Zero means LOCAL_QUORUM.
	Consistency string
	// LocalDC is the data centre queries prefer. Zero: every DC alike.
	LocalDC string
	// Username and Password authenticate when set.
	Username, Password string
	// Timeout bounds one query. Zero means 5 s.
	Timeout time.Duration
}

var keyspaceName = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9_]{0,47}$`)

// fill validates c and fills defaults.
func (c *Config) fill() error {
	if len(c.Hosts) == 0 {
		return errors.New("cql: no hosts configured")
	}
	if c.Keyspace == "" {
		c.Keyspace = "fanline"
	}
	if !keyspaceName.MatchString(c.Keyspace) {
		return fmt.Errorf("cql: bad keyspace name %q", c.Keyspace)
	}
	if c.Replication == "" {
		c.Replication = "{'class': 'SimpleStrategy', 'replication_factor': 3}"
		if c.LocalDC != "" {
			c.Replication = fmt.Sprintf("{'class': 'NetworkTopologyStrategy', '%s': 3}", c.LocalDC)
		}
	}
	if !strings.HasPrefix(c.Replication, "{") || !strings.HasSuffix(c.Replication, "}") || strings.Contains(c.Replication, ";") {
		return fmt.Errorf("cql: replication must be a CQL map like {'class': 'NetworkTopologyStrategy', 'dc1': 3}, not %q", c.Replication)
	}
	if c.Consistency == "" {
		c.Consistency = "LOCAL_QUORUM"
	}
	if _, err := gocql.ParseConsistencyWrapper(c.Consistency); err != nil {
		return fmt.Errorf("cql: %w", err)
	}
	if c.Timeout <= 0 {
		c.Timeout = 5 * time.Second
	}
	return nil
}

// cluster builds the gocql cluster configuration; keyspace may be empty (migrate).
func (c Config) cluster(keyspace string) *gocql.ClusterConfig {
	cl := gocql.NewCluster(c.Hosts...)
	cl.Keyspace = keyspace
	cl.Consistency, _ = gocql.ParseConsistencyWrapper(c.Consistency)
	cl.SerialConsistency = gocql.LocalSerial
	cl.Timeout = c.Timeout
	cl.ConnectTimeout = c.Timeout
	fallback := gocql.RoundRobinHostPolicy()
	if c.LocalDC != "" {
		fallback = gocql.DCAwareRoundRobinPolicy(c.LocalDC)
	}
	cl.PoolConfig.HostSelectionPolicy = gocql.TokenAwareHostPolicy(fallback)
	if c.Username != "" {
		cl.Authenticator = gocql.PasswordAuthenticator{Username: c.Username, Password: c.Password}
	}
	return cl
}

// Open connects to the keyspace, which Migrate must have created.
func Open(c Config) (*gocql.Session, error) {
	if err := c.fill(); err != nil {
		return nil, err
	}
	s, err := c.cluster(c.Keyspace).CreateSession()
	if err != nil {
		return nil, fmt.Errorf("cql: connect to keyspace %s (run `fanline migrate` first): %w", c.Keyspace, err)
	}
	return s, nil
}

// Schema is one store's tables: CREATE ... IF NOT EXISTS statements, in order. A
// later version appends statements (ALTER TABLE ... ADD, new tables), never edits
// applied ones.
type Schema struct {
	Name       string
	Statements []string
}

// KeyspaceStatement is the CREATE KEYSPACE statement Migrate runs.
func (c Config) KeyspaceStatement() (string, error) {
	if err := c.fill(); err != nil {
		return "", err
	}
	return fmt.Sprintf("CREATE KEYSPACE IF NOT EXISTS %s WITH replication = %s", c.Keyspace, c.Replication), nil
}

// versionsTable records how many statements of each schema have been applied.
const versionsTable = `CREATE TABLE IF NOT EXISTS schema_versions (name text PRIMARY KEY, applied int)`

// Migrate creates the keyspace and applies every schema's statements not applied
// yet, waiting for schema agreement after each. Running it again changes nothing.
func Migrate(ctx context.Context, c Config, schemas ...Schema) error {
	ks, err := c.KeyspaceStatement()
	if err != nil {
		return err
	}
	admin, err := c.cluster("").CreateSession()
	if err != nil {
		return fmt.Errorf("cql: connect: %w", err)
	}
	defer admin.Close()
	if err := admin.Query(ks).WithContext(ctx).Exec(); err != nil {
		return fmt.Errorf("cql: create keyspace: %w", err)
	}
	if err := admin.AwaitSchemaAgreement(ctx); err != nil {
		return fmt.Errorf("cql: schema agreement: %w", err)
	}
	s, err := Open(c)
	if err != nil {
		return err
	}
	defer s.Close()
	if err := s.Query(versionsTable).WithContext(ctx).Exec(); err != nil {
		return fmt.Errorf("cql: %w", err)
	}
	for _, sc := range schemas {
		var applied int
		err := s.Query(`SELECT applied FROM schema_versions WHERE name = ?`, sc.Name).WithContext(ctx).Scan(&applied)
		if err != nil && !errors.Is(err, gocql.ErrNotFound) {
			return fmt.Errorf("cql: schema %s: %w", sc.Name, err)
		}
		if applied > len(sc.Statements) {
			return fmt.Errorf("cql: schema %s is at version %d, newer than this binary's %d", sc.Name, applied, len(sc.Statements))
		}
		for i := applied; i < len(sc.Statements); i++ {
			if err := s.Query(sc.Statements[i]).WithContext(ctx).Exec(); err != nil {
				return fmt.Errorf("cql: schema %s statement %d: %w", sc.Name, i+1, err)
			}
			if err := s.AwaitSchemaAgreement(ctx); err != nil {
				return fmt.Errorf("cql: schema agreement: %w", err)
			}
			if err := s.Query(`INSERT INTO schema_versions (name, applied) VALUES (?, ?)`, sc.Name, i+1).WithContext(ctx).Exec(); err != nil {
				return fmt.Errorf("cql: schema %s: %w", sc.Name, err)
			}
		}
	}
	return nil
}
