package auth

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/fanline/fanline/internal/wire"
)

// FuzzVerify checks Issuer.Verify on any string a client may send as its token. No
// input panics; a rejected token is invalid_token or token_expired. A forged signature
// is out of the fuzzer's reach, so each input is also verified re-signed: its first two
// segments signed with the issuer's secret. That reaches the header and claims checks
// with whatever the fuzzer puts there. A token Verify accepts yields a principal that
// passes CheckUser and is what the signed claims say (sub, role, shop). Seeds live in
// testdata/fuzz/FuzzVerify; the expiry of a seed that should verify is in 2100.
func FuzzVerify(f *testing.F) {
	f.Add("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbm4iLCJyb2xlIjoiYnV5ZXIiLCJleHAiOjQxMDI0NDQ4MDB9.x")
	f.Add("a.b.c")
	iss, err := NewIssuer(fuzzSecret, time.Hour)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, token string) {
		check := func(token string) {
			u, e := iss.Verify(token)
			if e != nil {
				if e.Code != wire.CodeInvalidToken && e.Code != wire.CodeTokenExpired {
					t.Fatalf("Verify(%q): error %v is neither invalid_token nor token_expired", token, e)
				}
				if u != (User{}) {
					t.Fatalf("Verify(%q) failed with a user %+v", token, u)
				}
				return
			}
			if err := CheckUser(u); err != nil {
				t.Fatalf("Verify(%q) accepted %+v, which CheckUser refuses: %v", token, u, err)
			}
			parts := strings.Split(token, ".")
			if len(parts) != 3 {
				t.Fatalf("Verify(%q) accepted a token of %d segments", token, len(parts))
			}
			payload, err := base64.RawURLEncoding.DecodeString(parts[1])
			if err != nil {
				t.Fatalf("Verify(%q) accepted a payload that is not base64url: %v", token, err)
			}
			var c Claims
			if err := json.NewDecoder(bytes.NewReader(payload)).Decode(&c); err != nil {
				t.Fatalf("Verify(%q) accepted claims %q that do not decode: %v", token, payload, err)
			}
			if want := (User{ID: c.Subject, Role: c.Role, Shop: c.Shop}); u != want {
				t.Fatalf("Verify(%q) = %+v; the claims say %+v", token, u, want)
			}
		}
		check(token)
		if i := strings.LastIndexByte(token, '.'); i >= 0 {
			check(token[:i+1] + fuzzHS256(token[:i]))
		}
	})
}

// fuzzSecret is the HS256 secret of FuzzVerify.
const fuzzSecret = "fuzz-secret-0123456789abcdef0123"

// fuzzHS256 is the JWS signature of signing input s with fuzzSecret.
func fuzzHS256(s string) string {
	m := hmac.New(sha256.New, []byte(fuzzSecret))
	m.Write([]byte(s))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}
