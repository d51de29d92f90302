// Package auth issues and verifies fanline's JWTs. A token carries the claims sub (user
// id), role (buyer, agent, admin or operator) and, for agents and admins, shop.
//
// An [Issuer] accepts two kinds of token, chosen by [Config]:
//
//   - HS256 tokens signed with a shared secret. fanline signs these itself ([Issuer.Issue],
//     used for development tokens); they are accepted only when a secret is configured.
//   - RS256 and ES256 (P-256) tokens from an external identity provider, checked against the
//     public keys of a JWKS (RFC 7517) read from a file or fetched from a URL. The key is
//     chosen by the token's kid; a token without a kid is accepted only when the set holds
//     exactly one key of its type. A JWKS URL is re-fetched lazily, inside Verify, when the
//     cached set is older than Config.JWKSRefresh, and on an unknown kid at most once per
//     30 s, so the provider can rotate its keys. No goroutine is started.
//
// Every token must carry exp; iss and aud are required when configured; alg none, HS256
// without a secret (so an RSA public key cannot be used as an HMAC secret) and keys whose
// use or alg do not fit the token are refused. Verify reports an expired token as
// wire.CodeTokenExpired and every other failure as wire.CodeInvalidToken.
//
// Concurrency: an Issuer is safe for concurrent use by any number of goroutines.
package auth

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/fanline/fanline/internal/wire"
	"github.com/golang-jwt/jwt/v5"
)

// Claims are a token's claims.
type Claims struct {
	Role string `json:"role"`
	Shop string `json:"shop,omitempty"`
	jwt.RegisteredClaims
}

// User is who a verified token speaks for.
type User = wire.Principal

const (
	defaultTTL         = 24 * time.Hour
	defaultJWKSRefresh = 10 * time.Minute
	// minRefetch is the least time between two fetches of a JWKS URL caused by an unknown
	// kid, and the delay before a failed refresh is retried.
	minRefetch = 30 * time.Second
	// fetchTimeout bounds one fetch of a JWKS URL.
	fetchTimeout = 10 * time.Second
	// maxJWKSSize is the largest JWKS document read, file or URL.
	maxJWKSSize = 1 << 20
	// leeway is the clock skew allowed on exp, nbf and iat.
	leeway = 30 * time.Second
)

// MinSecretBytes is the shortest HS256 secret accepted.
const MinSecretBytes = 32

// Config configures an Issuer. At least one of Secret, JWKSFile and JWKSURL must be set;
// JWKSFile and JWKSURL exclude each other.
type Config struct {
	// Secret is the HS256 secret, at least 32 bytes. Empty means HS256 tokens are neither
	// issued nor accepted.
	Secret string
	// PreviousSecret is a former HS256 secret whose tokens still verify while a
	// rotation is under way (tokens are signed with Secret only). Empty means none.
	PreviousSecret string
	// TTL is the lifetime of the tokens Issue signs. Zero means 24 h.
	TTL time.Duration
	// JWKSFile is the path of a JWKS (RFC 7517) JSON document of public keys for RS256 and
	// ES256 tokens. It is read once, by New. Empty means no key file.
	JWKSFile string
	// JWKSURL is the http or https URL of a JWKS document. New fetches it and fails if it
	// cannot; Verify re-fetches it lazily (see JWKSRefresh). Empty means no key URL.
	JWKSURL string
	// JWKSRefresh is how old the set fetched from JWKSURL may grow before Verify fetches it
	// again. Zero means 10 min. Independently, a token with an unknown kid causes a fetch at
	// most once per 30 s. A failed fetch keeps the previous keys.
	JWKSRefresh time.Duration
	// Issuer, when set, must equal a token's iss; Issue puts it in the tokens it signs.
	// Empty means iss is not checked.
	Issuer string
	// Audience, when set, must be one of a token's aud; Issue puts it in the tokens it
	// signs. Empty means aud is not checked.
	Audience string
	// HTTPClient fetches JWKSURL. Nil means a client of fanline's own; each fetch is
	// bounded by a 10 s timeout either way.
	HTTPClient *http.Client
	// Logger reports failed JWKS refreshes. Nil means they are not logged.
	Logger *slog.Logger
}

// Issuer signs and verifies tokens.
type Issuer struct {
	secret   []byte // nil: no HS256
	previous []byte // nil: no former secret
	ttl      time.Duration
	issuer   string
	audience string
	keys     keySource // nil: no RS256/ES256
	methods  []string  // the algorithms Verify accepts
}

// New validates cfg, fills its defaults and returns an Issuer. It reads JWKSFile or
// fetches JWKSURL, and fails if the key set cannot be had.
func New(cfg Config) (*Issuer, error) {
	if cfg.Secret != "" && len(cfg.Secret) < MinSecretBytes {
		return nil, errors.New("auth: the JWT secret must be at least 32 bytes")
	}
	if cfg.PreviousSecret != "" && (cfg.Secret == "" || len(cfg.PreviousSecret) < MinSecretBytes) {
		return nil, errors.New("auth: a previous JWT secret needs a current one, and at least 32 bytes")
	}
	if cfg.Secret == "" && cfg.JWKSFile == "" && cfg.JWKSURL == "" {
		return nil, errors.New("auth: set a JWT secret, a JWKS file or a JWKS URL")
	}
	if cfg.JWKSFile != "" && cfg.JWKSURL != "" {
		return nil, errors.New("auth: set a JWKS file or a JWKS URL, not both")
	}
	if cfg.TTL < 0 {
		return nil, errors.New("auth: the token TTL must not be negative")
	}
	if cfg.JWKSRefresh < 0 {
		return nil, errors.New("auth: the JWKS refresh interval must not be negative")
	}
	if cfg.TTL == 0 {
		cfg.TTL = defaultTTL
	}
	if cfg.JWKSRefresh == 0 {
		cfg.JWKSRefresh = defaultJWKSRefresh
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: fetchTimeout}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}

	i := &Issuer{ttl: cfg.TTL, issuer: cfg.Issuer, audience: cfg.Audience}
	if cfg.Secret != "" {
		i.secret = []byte(cfg.Secret)
		if cfg.PreviousSecret != "" {
			i.previous = []byte(cfg.PreviousSecret)
		}
		i.methods = append(i.methods, jwt.SigningMethodHS256.Alg())
	}
	switch {
	case cfg.JWKSFile != "":
		set, err := readJWKSFile(cfg.JWKSFile)
		if err != nil {
			return nil, err
		}
		i.keys = set
	case cfg.JWKSURL != "":
		u, err := url.Parse(cfg.JWKSURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, errors.New("auth: the JWKS URL must be an http or https URL")
		}
		r, err := newRemoteKeys(cfg.JWKSURL, cfg.HTTPClient, cfg.JWKSRefresh, cfg.Logger)
		if err != nil {
			return nil, err
		}
		i.keys = r
	}
	if i.keys != nil {
		i.methods = append(i.methods, jwt.SigningMethodRS256.Alg(), jwt.SigningMethodES256.Alg())
	}
	return i, nil
}

// NewIssuer returns an Issuer that signs and verifies HS256 tokens with secret. The secret
// must be at least 32 bytes; ttl zero means 24 h.
func NewIssuer(secret string, ttl time.Duration) (*Issuer, error) {
	if len(secret) < MinSecretBytes {
		return nil, errors.New("auth: the JWT secret must be at least 32 bytes")
	}
	return New(Config{Secret: secret, TTL: ttl})
}

func readJWKSFile(path string) (*keySet, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("auth: JWKS file: %w", err)
	}
	defer f.Close()
	set, err := readJWKS(f)
	if err != nil {
		return nil, fmt.Errorf("auth: JWKS file %s: %w", path, err)
	}
	return set, nil
}

// CheckUser validates the fields a token is issued for.
func CheckUser(u User) *wire.Error {
	if !wire.ValidUserID(u.ID) {
		return wire.Errorf(wire.CodeInvalidUserID, "user_id must be 1-64 characters of [A-Za-z0-9_.:@-]")
	}
	switch u.Role {
	case wire.RoleBuyer:
		if u.Shop != "" {
			return wire.Errorf(wire.CodeInvalidField, "buyers have no shop_id")
		}
	case wire.RoleAgent, wire.RoleAdmin:
		if !wire.ValidUserID(u.Shop) {
			return wire.Errorf(wire.CodeInvalidField, "agents and admins need a shop_id of 1-64 characters of [A-Za-z0-9_.:@-]")
		}
	case wire.RoleOperator:
		if u.Shop != "" {
			return wire.Errorf(wire.CodeInvalidField, "operators have no shop_id")
		}
	default:
		return wire.Errorf(wire.CodeInvalidField, "role must be buyer, agent, admin or operator")
	}
	return nil
}

// Issue signs an HS256 token for u, with the configured iss and aud. It fails if the
// Issuer has no secret.
func (i *Issuer) Issue(u User) (string, error) {
	if i.secret == nil {
		return "", errors.New("auth: no JWT secret is configured, so tokens cannot be issued")
	}
	if err := CheckUser(u); err != nil {
		return "", err
	}
	now := time.Now()
	c := Claims{Role: u.Role, Shop: u.Shop, RegisteredClaims: jwt.RegisteredClaims{
		Subject: u.ID, Issuer: i.issuer, IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(i.ttl)),
	}}
	if i.audience != "" {
		c.Audience = jwt.ClaimStrings{i.audience}
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(i.secret)
	if err != nil {
		return "", fmt.Errorf("auth: sign: %w", err)
	}
	return s, nil
}

// Verify checks a token's algorithm, signature, expiry, issuer, audience and claims.
func (i *Issuer) Verify(token string) (User, *wire.Error) {
	opts := []jwt.ParserOption{jwt.WithValidMethods(i.methods), jwt.WithExpirationRequired(), jwt.WithLeeway(leeway)}
	if i.issuer != "" {
		opts = append(opts, jwt.WithIssuer(i.issuer))
	}
	if i.audience != "" {
		opts = append(opts, jwt.WithAudience(i.audience))
	}
	var c Claims
	_, err := jwt.ParseWithClaims(token, &c, i.key, opts...)
	if errors.Is(err, jwt.ErrTokenExpired) {
		return User{}, wire.Errorf(wire.CodeTokenExpired, "the token has expired; get a new one")
	}
	if err != nil {
		return User{}, wire.Errorf(wire.CodeInvalidToken, "the token is not valid")
	}
	u := User{ID: c.Subject, Role: c.Role, Shop: c.Shop}
	if CheckUser(u) != nil {
		return User{}, wire.Errorf(wire.CodeInvalidToken, "the token's claims are not valid")
	}
	return u, nil
}

// key is the jwt.Keyfunc of Verify. The parser has already checked that the token's alg
// is one of i.methods, so HS256 reaches here only when a secret is configured.
func (i *Issuer) key(t *jwt.Token) (any, error) {
	if _, ok := t.Header["crit"]; ok {
		return nil, errors.New("auth: critical header parameters are not supported")
	}
	alg := t.Method.Alg()
	if alg == jwt.SigningMethodHS256.Alg() {
		if i.secret == nil {
			return nil, errors.New("auth: HS256 is not accepted")
		}
		if i.previous != nil {
			return jwt.VerificationKeySet{Keys: []jwt.VerificationKey{i.secret, i.previous}}, nil
		}
		return i.secret, nil
	}
	if i.keys == nil {
		return nil, errors.New("auth: no key set is configured")
	}
	var kid string
	if v, ok := t.Header["kid"]; ok {
		if kid, ok = v.(string); !ok || kid == "" {
			return nil, errors.New("auth: the token's kid is not a string")
		}
	}
	return i.keys.key(kid, alg)
}
