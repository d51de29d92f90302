package auth

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fanline/fanline/internal/wire"
	"github.com/golang-jwt/jwt/v5"
)

const (
	testIss = "https://idp.example"
	testAud = "fanline"
)

// Test keys, generated once: RSA generation is slow under -race.
var (
	keysOnce     sync.Once
	rsa1, rsa2   *rsa.PrivateKey
	ec1, ec2     *ecdsa.PrivateKey
	errGenerated error
)

func testKeys(t *testing.T) {
	t.Helper()
	keysOnce.Do(func() {
		if rsa1, errGenerated = rsa.GenerateKey(rand.Reader, 2048); errGenerated != nil {
			return
		}
		if rsa2, errGenerated = rsa.GenerateKey(rand.Reader, 2048); errGenerated != nil {
			return
		}
		if ec1, errGenerated = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); errGenerated != nil {
			return
		}
		ec2, errGenerated = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	})
	if errGenerated != nil {
		t.Fatal(errGenerated)
	}
}

var b64u = base64.RawURLEncoding.EncodeToString

// rsaJWK is the JWK of pub with kid and any extra members (use, alg).
func rsaJWK(kid string, pub *rsa.PublicKey, extra ...string) map[string]string {
	m := map[string]string{"kty": "RSA", "kid": kid, "n": b64u(pub.N.Bytes()), "e": b64u(big.NewInt(int64(pub.E)).Bytes())}
	for i := 0; i+1 < len(extra); i += 2 {
		m[extra[i]] = extra[i+1]
	}
	return m
}

func ecJWK(t *testing.T, kid string, pub *ecdsa.PublicKey) map[string]string {
	b, err := pub.Bytes() // 0x04 || x || y
	if err != nil {
		t.Fatal(err)
	}
	return map[string]string{"kty": "EC", "crv": "P-256", "kid": kid, "use": "sig", "x": b64u(b[1:33]), "y": b64u(b[33:])}
}

func jwksDoc(t *testing.T, keys ...map[string]string) []byte {
	b, err := json.Marshal(map[string]any{"keys": keys})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// claims are valid claims for a buyer from the test identity provider; edit changes them.
func claims(edit func(*Claims)) Claims {
	c := Claims{Role: wire.RoleBuyer, RegisteredClaims: jwt.RegisteredClaims{
		Subject: "ann", Issuer: testIss, Audience: jwt.ClaimStrings{testAud},
		ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour)),
	}}
	if edit != nil {
		edit(&c)
	}
	return c
}

// sign signs c with m and key; kid "" leaves the header without one. header edits it.
func sign(t *testing.T, m jwt.SigningMethod, key any, kid string, c Claims, header map[string]any) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, c)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	for k, v := range header {
		tok.Header[k] = v
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func writeFile(t *testing.T, b []byte) string {
	p := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestVerifyJWKSFile(t *testing.T) {
	testKeys(t)
	path := writeFile(t, jwksDoc(t,
		rsaJWK("rsa1", &rsa1.PublicKey, "use", "sig", "alg", "RS256"),
		ecJWK(t, "ec1", &ec1.PublicKey),
		rsaJWK("enc", &rsa2.PublicKey, "use", "enc"),
		rsaJWK("ps", &rsa2.PublicKey, "alg", "PS256"),
		map[string]string{"kty": "OKP", "crv": "Ed25519", "kid": "ed", "x": b64u(make([]byte, 32))},
	))
	iss, err := New(Config{JWKSFile: path, Issuer: testIss, Audience: testAud})
	if err != nil {
		t.Fatal(err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(&rsa1.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	none, err := jwt.NewWithClaims(jwt.SigningMethodNone, claims(nil)).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	rs, es := jwt.SigningMethodRS256, jwt.SigningMethodES256
	for _, tc := range []struct {
		name  string
		token string
		code  wire.Code // "" = accepted
	}{
		{"RS256", sign(t, rs, rsa1, "rsa1", claims(nil), nil), ""},
		{"ES256", sign(t, es, ec1, "ec1", claims(nil), nil), ""},
		{"ES256 without kid, one EC key", sign(t, es, ec1, "", claims(nil), nil), ""},
		{"RS256 without kid, several RSA keys", sign(t, rs, rsa1, "", claims(nil), nil), wire.CodeInvalidToken},
		{"key not in the set", sign(t, rs, rsa2, "rsa1", claims(nil), nil), wire.CodeInvalidToken},
		{"EC key not in the set", sign(t, es, ec2, "ec1", claims(nil), nil), wire.CodeInvalidToken},
		{"wrong issuer", sign(t, rs, rsa1, "rsa1", claims(func(c *Claims) { c.Issuer = "https://evil.example" }), nil), wire.CodeInvalidToken},
		{"no issuer", sign(t, rs, rsa1, "rsa1", claims(func(c *Claims) { c.Issuer = "" }), nil), wire.CodeInvalidToken},
		{"wrong audience", sign(t, rs, rsa1, "rsa1", claims(func(c *Claims) { c.Audience = jwt.ClaimStrings{"other"} }), nil), wire.CodeInvalidToken},
		{"no audience", sign(t, rs, rsa1, "rsa1", claims(func(c *Claims) { c.Audience = nil }), nil), wire.CodeInvalidToken},
		{"audience among several", sign(t, rs, rsa1, "rsa1", claims(func(c *Claims) { c.Audience = jwt.ClaimStrings{"other", testAud} }), nil), ""},
		{"expired", sign(t, rs, rsa1, "rsa1", claims(func(c *Claims) { c.ExpiresAt = jwt.NewNumericDate(time.Now().Add(-time.Minute)) }), nil), wire.CodeTokenExpired},
		{"no expiry", sign(t, rs, rsa1, "rsa1", claims(func(c *Claims) { c.ExpiresAt = nil }), nil), wire.CodeInvalidToken},
		{"bad role", sign(t, rs, rsa1, "rsa1", claims(func(c *Claims) { c.Role = "root" }), nil), wire.CodeInvalidToken},
		{"alg none", none, wire.CodeInvalidToken},
		{"HS256 with the RSA public key as secret", sign(t, jwt.SigningMethodHS256, pubPEM, "rsa1", claims(nil), nil), wire.CodeInvalidToken},
		{"HS256 with the modulus as secret", sign(t, jwt.SigningMethodHS256, rsa1.N.Bytes(), "", claims(nil), nil), wire.CodeInvalidToken},
		{"RS512 not accepted", sign(t, jwt.SigningMethodRS512, rsa1, "rsa1", claims(nil), nil), wire.CodeInvalidToken},
		{"unknown kid", sign(t, rs, rsa1, "nope", claims(nil), nil), wire.CodeInvalidToken},
		{"kid of an EC key on RS256", sign(t, rs, rsa1, "ec1", claims(nil), nil), wire.CodeInvalidToken},
		{"kid of an unsupported key", sign(t, es, ec1, "ed", claims(nil), nil), wire.CodeInvalidToken},
		{"key use enc", sign(t, rs, rsa2, "enc", claims(nil), nil), wire.CodeInvalidToken},
		{"key alg PS256", sign(t, rs, rsa2, "ps", claims(nil), nil), wire.CodeInvalidToken},
		{"kid not a string", sign(t, rs, rsa1, "", claims(nil), map[string]any{"kid": 7}), wire.CodeInvalidToken},
		{"crit header", sign(t, rs, rsa1, "rsa1", claims(nil), map[string]any{"crit": []string{"exp"}}), wire.CodeInvalidToken},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, e := iss.Verify(tc.token)
			switch {
			case tc.code == "" && (e != nil || u != User{ID: "ann", Role: wire.RoleBuyer}):
				t.Errorf("got %+v, %v; want ann", u, e)
			case tc.code != "" && (e == nil || e.Code != tc.code):
				t.Errorf("got %v, want %s", e, tc.code)
			case e != nil && strings.Contains(e.Error(), tc.token):
				t.Errorf("the error echoes the token: %v", e)
			}
		})
	}
	if _, err := iss.Issue(User{ID: "ann", Role: wire.RoleBuyer}); err == nil {
		t.Error("Issue without a secret succeeded")
	}
}

// TestSecretAndJWKS checks an Issuer with both: its own tokens carry iss and aud and
// verify, as do the identity provider's.
func TestSecretAndJWKS(t *testing.T) {
	testKeys(t)
	iss, err := New(Config{Secret: secret, JWKSFile: writeFile(t, jwksDoc(t, rsaJWK("rsa1", &rsa1.PublicKey))), Issuer: testIss, Audience: testAud})
	if err != nil {
		t.Fatal(err)
	}
	own, err := iss.Issue(User{ID: "ann", Role: wire.RoleBuyer})
	if err != nil {
		t.Fatal(err)
	}
	var c Claims
	if _, _, err := jwt.NewParser().ParseUnverified(own, &c); err != nil {
		t.Fatal(err)
	}
	if c.Issuer != testIss || len(c.Audience) != 1 || c.Audience[0] != testAud {
		t.Errorf("issued iss %q aud %q; want %q %q", c.Issuer, c.Audience, testIss, testAud)
	}
	plain, err := NewIssuer(secret, time.Hour) // same secret, no iss or aud
	if err != nil {
		t.Fatal(err)
	}
	noIss, _ := plain.Issue(User{ID: "ann", Role: wire.RoleBuyer})
	for _, tc := range []struct {
		name  string
		token string
		code  wire.Code
	}{
		{"own token", own, ""},
		{"RS256", sign(t, jwt.SigningMethodRS256, rsa1, "rsa1", claims(nil), nil), ""},
		{"HS256 without iss and aud", noIss, wire.CodeInvalidToken},
		{"HS256 with the RSA modulus as secret", sign(t, jwt.SigningMethodHS256, rsa1.N.Bytes(), "rsa1", claims(nil), nil), wire.CodeInvalidToken},
	} {
		u, e := iss.Verify(tc.token)
		switch {
		case tc.code == "" && (e != nil || u.ID != "ann"):
			t.Errorf("%s: got %+v, %v", tc.name, u, e)
		case tc.code != "" && (e == nil || e.Code != tc.code):
			t.Errorf("%s: got %v, want %s", tc.name, e, tc.code)
		}
	}
}

func TestNew(t *testing.T) {
	testKeys(t)
	good := writeFile(t, jwksDoc(t, rsaJWK("rsa1", &rsa1.PublicKey)))
	notJSON := writeFile(t, []byte("not json"))
	badKey := writeFile(t, jwksDoc(t, map[string]string{"kty": "RSA", "kid": "x", "n": "!!", "e": "AQAB"}))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/jwks" {
			http.Error(w, "no", http.StatusInternalServerError)
			return
		}
		w.Write(jwksDoc(t, rsaJWK("rsa1", &rsa1.PublicKey)))
	}))
	defer srv.Close()
	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close()
	for _, tc := range []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"secret", Config{Secret: secret}, true},
		{"JWKS file", Config{JWKSFile: good}, true},
		{"JWKS URL", Config{JWKSURL: srv.URL + "/jwks"}, true},
		{"secret and JWKS URL", Config{Secret: secret, JWKSURL: srv.URL + "/jwks", HTTPClient: srv.Client()}, true},
		{"nothing", Config{}, false},
		{"short secret", Config{Secret: "short", JWKSFile: good}, false},
		{"file and URL", Config{JWKSFile: good, JWKSURL: srv.URL + "/jwks"}, false},
		{"missing file", Config{JWKSFile: filepath.Join(t.TempDir(), "none.json")}, false},
		{"file not JSON", Config{JWKSFile: notJSON}, false},
		{"file with a bad key", Config{JWKSFile: badKey}, false},
		{"unreachable URL", Config{JWKSURL: gone.URL + "/jwks"}, false},
		{"URL answers 500", Config{JWKSURL: srv.URL + "/other"}, false},
		{"URL not http", Config{JWKSURL: "ftp://idp.example/jwks"}, false},
		{"negative TTL", Config{Secret: secret, TTL: -time.Second}, false},
		{"negative refresh", Config{JWKSFile: good, JWKSRefresh: -time.Second}, false},
	} {
		_, err := New(tc.cfg)
		if (err == nil) != tc.ok {
			t.Errorf("%s: err %v, want ok %v", tc.name, err, tc.ok)
		}
		if err != nil && !strings.HasPrefix(err.Error(), "auth: ") {
			t.Errorf("%s: error %q lacks the package prefix", tc.name, err)
		}
	}
	if _, err := New(Config{Secret: "short"}); err == nil || err.Error() != "auth: the JWT secret must be at least 32 bytes" {
		t.Errorf("short secret: %v", err)
	}
}

func TestReadJWKS(t *testing.T) {
	testKeys(t)
	rsaOK := rsaJWK("r", &rsa1.PublicKey)
	padded := rsaJWK("p", &rsa1.PublicKey)
	padded["e"] = base64.URLEncoding.EncodeToString(big.NewInt(int64(rsa1.E)).Bytes())
	short := rsaJWK("s", &rsa1.PublicKey)
	short["n"] = b64u(bytes.Repeat([]byte{0xff}, 128)) // 1024 bits
	even := rsaJWK("e", &rsa1.PublicKey)
	even["e"] = b64u([]byte{1, 0, 0})
	offCurve := ecJWK(t, "o", &ec1.PublicKey)
	offCurve["y"] = offCurve["x"]
	shortX := ecJWK(t, "x", &ec1.PublicKey)
	shortX["x"] = b64u(make([]byte, 31))
	okp := map[string]string{"kty": "OKP", "crv": "Ed25519", "x": b64u(make([]byte, 32))}
	p384 := map[string]string{"kty": "EC", "crv": "P-384", "x": b64u(make([]byte, 48)), "y": b64u(make([]byte, 48))}
	for _, tc := range []struct {
		name string
		doc  []byte
		keys int // -1 = error
	}{
		{"RSA and EC", jwksDoc(t, rsaOK, ecJWK(t, "e", &ec1.PublicKey)), 2},
		{"padded base64", jwksDoc(t, padded), 1},
		{"unsupported keys kept", jwksDoc(t, okp, p384, rsaOK), 3},
		{"only unsupported keys", jwksDoc(t, okp, p384), -1},
		{"no keys", []byte(`{"keys":[]}`), -1},
		{"no keys member", []byte(`{}`), -1},
		{"not JSON", []byte(`[`), -1},
		{"bad base64", jwksDoc(t, map[string]string{"kty": "RSA", "n": "a+b/", "e": "AQAB"}), -1},
		{"missing exponent", jwksDoc(t, map[string]string{"kty": "RSA", "n": rsaOK["n"]}), -1},
		{"1024-bit modulus", jwksDoc(t, short), -1},
		{"even exponent", jwksDoc(t, even), -1},
		{"point not on P-256", jwksDoc(t, offCurve), -1},
		{"short x", jwksDoc(t, shortX), -1},
		{"larger than 1 MiB", append(jwksDoc(t, rsaOK), bytes.Repeat([]byte(" "), maxJWKSSize)...), -1},
	} {
		set, err := readJWKS(bytes.NewReader(tc.doc))
		switch {
		case tc.keys < 0 && err == nil:
			t.Errorf("%s: accepted", tc.name)
		case tc.keys >= 0 && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.keys >= 0 && len(set.keys) != tc.keys:
			t.Errorf("%s: %d keys, want %d", tc.name, len(set.keys), tc.keys)
		}
	}
}

// fakeClock is the clock of a remoteKeys under test.
type fakeClock struct {
	mu sync.Mutex // guards t
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// jwksServer serves a JWKS that the test can swap, or an error status.
type jwksServer struct {
	*httptest.Server
	doc    atomic.Pointer[[]byte]
	status atomic.Int32 // 0 = 200
	hits   atomic.Int32
}

func newJWKSServer(t *testing.T, doc []byte) *jwksServer {
	s := &jwksServer{}
	s.serve(doc)
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		if st := s.status.Load(); st != 0 {
			http.Error(w, "down", int(st))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(*s.doc.Load())
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) serve(doc []byte) { s.doc.Store(&doc); s.status.Store(0) }

// newURLIssuer returns an Issuer for srv whose cache runs on a fake clock.
func newURLIssuer(t *testing.T, srv *jwksServer, log *slog.Logger) (*Issuer, *fakeClock) {
	t.Helper()
	iss, err := New(Config{JWKSURL: srv.URL, HTTPClient: srv.Client(), Issuer: testIss, Audience: testAud, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	clk := &fakeClock{t: time.Now()} // not before the fetch New made
	iss.keys.(*remoteKeys).now = clk.now
	return iss, clk
}

// TestJWKSURLRotation walks a key rotation at the identity provider, step by step.
func TestJWKSURLRotation(t *testing.T) {
	testKeys(t)
	setA := jwksDoc(t, rsaJWK("a", &rsa1.PublicKey))
	setB := jwksDoc(t, rsaJWK("b", &rsa2.PublicKey))
	setBC := jwksDoc(t, rsaJWK("b", &rsa2.PublicKey), ecJWK(t, "c", &ec1.PublicKey))
	srv := newJWKSServer(t, setA)
	var logs bytes.Buffer
	iss, clk := newURLIssuer(t, srv, slog.New(slog.NewTextHandler(&logs, nil)))
	tokA := sign(t, jwt.SigningMethodRS256, rsa1, "a", claims(nil), nil)
	tokB := sign(t, jwt.SigningMethodRS256, rsa2, "b", claims(nil), nil)
	tokC := sign(t, jwt.SigningMethodES256, ec1, "c", claims(nil), nil)
	for _, st := range []struct {
		name    string
		advance time.Duration
		serve   []byte // non-nil: the server switches to this set
		down    bool   // the server answers 503
		token   string
		code    wire.Code
		hits    int32 // fetches so far, New's included
	}{
		{name: "old key", token: tokA, hits: 1},
		{name: "new kid within 30 s of the last fetch", serve: setB, token: tokB, code: wire.CodeInvalidToken, hits: 1},
		{name: "new kid after 30 s: refetched", advance: 31 * time.Second, token: tokB, hits: 2},
		{name: "retired kid: refetch rate-limited", advance: 10 * time.Second, token: tokA, code: wire.CodeInvalidToken, hits: 2},
		{name: "unknown kid: refetch rate-limited", advance: 10 * time.Second, token: tokC, code: wire.CodeInvalidToken, hits: 2},
		{name: "known kid, set not yet due", advance: 5 * time.Minute, token: tokB, hits: 2},
		{name: "refresh due, server down: old keys kept", advance: 5 * time.Minute, down: true, token: tokB, hits: 3},
		{name: "failed refresh retried after 30 s, not before", advance: 10 * time.Second, token: tokB, hits: 3},
		{name: "server back: periodic retry picks up a new key", advance: 25 * time.Second, serve: setBC, token: tokC, hits: 4},
		{name: "fresh set: no fetch", advance: time.Minute, token: tokB, hits: 4},
	} {
		clk.advance(st.advance)
		if st.serve != nil {
			srv.serve(st.serve)
		}
		if st.down {
			srv.status.Store(http.StatusServiceUnavailable)
		}
		_, e := iss.Verify(st.token)
		switch {
		case st.code == "" && e != nil:
			t.Errorf("%s: %v", st.name, e)
		case st.code != "" && (e == nil || e.Code != st.code):
			t.Errorf("%s: got %v, want %s", st.name, e, st.code)
		}
		if got := srv.hits.Load(); got != st.hits {
			t.Errorf("%s: %d fetches, want %d", st.name, got, st.hits)
		}
	}
	if !strings.Contains(logs.String(), "JWKS refresh failed") {
		t.Errorf("the failed refresh was not logged: %q", logs.String())
	}
}

// TestJWKSURLSingleFlight checks that while a refresh is under way, callers with a known kid
// go on with the cached set, a caller with the new kid waits for the refresh, and only one
// fetch is made.
func TestJWKSURLSingleFlight(t *testing.T) {
	testKeys(t)
	setA := jwksDoc(t, rsaJWK("a", &rsa1.PublicKey))
	setAB := jwksDoc(t, rsaJWK("a", &rsa1.PublicKey), rsaJWK("b", &rsa2.PublicKey))
	started := make(chan struct{}, 16)
	release := make(chan struct{})
	var releaseOnce sync.Once
	unblock := func() { releaseOnce.Do(func() { close(release) }) }
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hits.Add(1) == 1 {
			w.Write(setA)
			return
		}
		started <- struct{}{}
		<-release
		w.Write(setAB)
	}))
	defer srv.Close()
	defer unblock() // before Close, which waits for the handler
	iss, err := New(Config{JWKSURL: srv.URL, HTTPClient: srv.Client(), Issuer: testIss, Audience: testAud})
	if err != nil {
		t.Fatal(err)
	}
	clk := &fakeClock{t: time.Now()}
	iss.keys.(*remoteKeys).now = clk.now
	clk.advance(11 * time.Minute) // the set is due for refresh

	tokA := sign(t, jwt.SigningMethodRS256, rsa1, "a", claims(nil), nil)
	tokB := sign(t, jwt.SigningMethodRS256, rsa2, "b", claims(nil), nil)
	deadline := time.After(10 * time.Second)
	results := make(chan *wire.Error, 16)
	verify := func(tok string) {
		_, e := iss.Verify(tok)
		results <- e
	}
	const callers = 8
	for range callers {
		go verify(tokA)
	}
	select {
	case <-started:
	case <-deadline:
		t.Fatal("no refresh started")
	}
	// One caller is fetching; the others must finish on the cached set.
	for range callers - 1 {
		select {
		case e := <-results:
			if e != nil {
				t.Errorf("known kid during refresh: %v", e)
			}
		case <-deadline:
			t.Fatal("callers with a known kid waited for the refresh")
		}
	}
	go verify(tokB) // unknown in the cached set: waits for the fetch under way
	unblock()
	for range 2 {
		select {
		case e := <-results:
			if e != nil {
				t.Errorf("after refresh: %v", e)
			}
		case <-deadline:
			t.Fatal("refresh never finished")
		}
	}
	if got := hits.Load(); got != 2 {
		t.Errorf("%d fetches, want 2 (New and one refresh)", got)
	}
}
