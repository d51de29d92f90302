package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"strings"
)

// keySource finds the public key that verifies a token signed with alg (RS256 or ES256)
// under kid ("" when the token has none).
type keySource interface {
	key(kid, alg string) (crypto.PublicKey, error)
}

var (
	_ keySource = (*keySet)(nil)
	_ keySource = (*remoteKeys)(nil)
)

// errUnknownKid means no key in the set has the token's kid; a remote set may be
// re-fetched to find it.
var errUnknownKid = errors.New("auth: no key has the token's kid")

// Key kinds: what a JWK's kty (and crv) make it.
const (
	kindRSA  = "RSA"
	kindP256 = "EC P-256"
)

// kindFor is the kind of key an algorithm needs.
var kindFor = map[string]string{"RS256": kindRSA, "ES256": kindP256}

// jwk is one key of a set.
type jwk struct {
	kid  string
	use  string // "" when absent
	alg  string // "" when absent
	kind string // kindRSA, kindP256, or "" for a key fanline cannot use (kept so its kid is known)
	pub  crypto.PublicKey
}

// keySet is a parsed JWKS. It is never modified after it is built, so it may be shared.
type keySet struct {
	keys []jwk
}

// key picks the key for a token: the one with its kid, or, for a token without a kid, the
// only key of the kind its alg needs. The key must be of that kind, and its use and alg,
// where present, must be "sig" and the token's alg.
func (s *keySet) key(kid, alg string) (crypto.PublicKey, error) {
	kind := kindFor[alg]
	if kind == "" {
		return nil, errors.New("auth: unsupported algorithm")
	}
	var match *jwk
	n, known := 0, false
	for i := range s.keys {
		k := &s.keys[i]
		if kid != "" {
			if k.kid != kid {
				continue
			}
			known = true
		}
		if k.kind == kind {
			match, n = k, n+1
		}
	}
	switch {
	case kid != "" && !known:
		return nil, errUnknownKid
	case n == 0:
		return nil, errors.New("auth: no key of the token's type")
	case n > 1:
		return nil, errors.New("auth: more than one key fits the token")
	case match.use != "" && match.use != "sig":
		return nil, errors.New("auth: the key is not for signatures")
	case match.alg != "" && match.alg != alg:
		return nil, errors.New("auth: the key is for another algorithm")
	}
	return match.pub, nil
}

// readJWKS parses a JWKS document of at most maxJWKSSize bytes. Keys of a type fanline
// does not support are kept but never match; a malformed RSA or P-256 key, or a set with
// no usable key, is an error.
func readJWKS(r io.Reader) (*keySet, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxJWKSSize+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxJWKSSize {
		return nil, errors.New("the JWKS is larger than 1 MiB")
	}
	var doc struct {
		Keys []struct {
			Kty string `json:"kty"`
			Kid string `json:"kid"`
			Use string `json:"use"`
			Alg string `json:"alg"`
			N   string `json:"n"`
			E   string `json:"e"`
			Crv string `json:"crv"`
			X   string `json:"x"`
			Y   string `json:"y"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("the JWKS is not valid JSON: %w", err)
	}
	set := &keySet{}
	usable := 0
	for n, j := range doc.Keys {
		k := jwk{kid: j.Kid, use: j.Use, alg: j.Alg}
		var err error
		switch {
		case j.Kty == "RSA":
			k.kind = kindRSA
			k.pub, err = rsaKey(j.N, j.E)
		case j.Kty == "EC" && j.Crv == "P-256":
			k.kind = kindP256
			k.pub, err = p256Key(j.X, j.Y)
		}
		if err != nil {
			return nil, fmt.Errorf("JWKS key %d (kid %q): %w", n, j.Kid, err)
		}
		if k.kind != "" {
			usable++
		}
		set.keys = append(set.keys, k)
	}
	if usable == 0 {
		return nil, errors.New("the JWKS has no RSA or P-256 key")
	}
	return set, nil
}

// rsaKey builds an RSA public key from the base64url modulus and exponent of a JWK.
func rsaKey(n64, e64 string) (*rsa.PublicKey, error) {
	nb, err := b64(n64)
	if err != nil {
		return nil, fmt.Errorf("n: %w", err)
	}
	eb, err := b64(e64)
	if err != nil {
		return nil, fmt.Errorf("e: %w", err)
	}
	n := new(big.Int).SetBytes(nb)
	if bits := n.BitLen(); bits < 2048 || bits > 8192 {
		return nil, fmt.Errorf("the modulus has %d bits; want 2048 to 8192", bits)
	}
	e := new(big.Int).SetBytes(eb)
	if !e.IsInt64() || e.Int64() < 3 || e.Int64() > 1<<31-1 || e.Bit(0) == 0 {
		return nil, errors.New("the exponent is not an odd number from 3 to 2^31-1")
	}
	return &rsa.PublicKey{N: n, E: int(e.Int64())}, nil
}

// p256Key builds a P-256 public key from the base64url coordinates of a JWK, checking
// that the point is on the curve.
func p256Key(x64, y64 string) (*ecdsa.PublicKey, error) {
	x, err := b64(x64)
	if err != nil {
		return nil, fmt.Errorf("x: %w", err)
	}
	y, err := b64(y64)
	if err != nil {
		return nil, fmt.Errorf("y: %w", err)
	}
	if len(x) != 32 || len(y) != 32 {
		return nil, errors.New("x and y must be 32 bytes each")
	}
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
	if err != nil {
		return nil, errors.New("the point is not on P-256")
	}
	return pub, nil
}

// b64 decodes base64url, with or without padding.
func b64(s string) ([]byte, error) {
	if s == "" {
		return nil, errors.New("missing")
	}
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
	if err != nil {
		return nil, errors.New("not base64url")
	}
	return b, nil
}
