package auth

import (
	"testing"
	"time"

	"github.com/fanline/fanline/internal/wire"
	"github.com/golang-jwt/jwt/v5"
)

const secret = "0123456789abcdef0123456789abcdef"

func TestVerify(t *testing.T) {
	iss, err := NewIssuer(secret, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	good, _ := iss.Issue(User{ID: "ann", Role: wire.RoleAgent, Shop: "s1"})
	other, _ := NewIssuer(secret+"x", time.Hour)
	forged, _ := other.Issue(User{ID: "ann", Role: wire.RoleBuyer})
	expired, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, Claims{Role: "buyer", RegisteredClaims: jwt.RegisteredClaims{
		Subject: "ann", ExpiresAt: jwt.NewNumericDate(time.Now().Add(-time.Minute))}}).SignedString([]byte(secret))
	none, _ := jwt.NewWithClaims(jwt.SigningMethodNone, Claims{Role: "buyer", RegisteredClaims: jwt.RegisteredClaims{
		Subject: "ann", ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Minute))}}).SignedString(jwt.UnsafeAllowNoneSignatureType)
	badRole, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, Claims{Role: "root", RegisteredClaims: jwt.RegisteredClaims{
		Subject: "ann", ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Minute))}}).SignedString([]byte(secret))
	noExp, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, Claims{Role: "buyer", RegisteredClaims: jwt.RegisteredClaims{
		Subject: "ann"}}).SignedString([]byte(secret))
	for _, tc := range []struct {
		name  string
		token string
		code  wire.Code
	}{
		{"good", good, ""},
		{"garbage", "abc", wire.CodeInvalidToken},
		{"other secret", forged, wire.CodeInvalidToken},
		{"expired", expired, wire.CodeTokenExpired},
		{"alg none", none, wire.CodeInvalidToken},
		{"bad role", badRole, wire.CodeInvalidToken},
		{"no expiry", noExp, wire.CodeInvalidToken},
	} {
		u, e := iss.Verify(tc.token)
		switch {
		case tc.code == "" && (e != nil || u.ID != "ann" || u.Shop != "s1"):
			t.Errorf("%s: %+v %v", tc.name, u, e)
		case tc.code != "" && (e == nil || e.Code != tc.code):
			t.Errorf("%s: got %v, want %s", tc.name, e, tc.code)
		}
	}
	if _, err := NewIssuer("short", 0); err == nil {
		t.Error("short secret accepted")
	}
}

// TestSecretRotation: during a rotation tokens of the previous secret still verify,
// new ones are signed with the current secret, and after it the old ones do not.
func TestSecretRotation(t *testing.T) {
	const next = "fedcba9876543210fedcba9876543210"
	old, _ := NewIssuer(secret, time.Hour)
	oldTok, _ := old.Issue(User{ID: "ann", Role: wire.RoleBuyer})
	during, err := New(Config{Secret: next, PreviousSecret: secret})
	if err != nil {
		t.Fatal(err)
	}
	if _, e := during.Verify(oldTok); e != nil {
		t.Fatalf("a token of the previous secret during the rotation: %v", e)
	}
	newTok, _ := during.Issue(User{ID: "ann", Role: wire.RoleBuyer})
	after, _ := NewIssuer(next, time.Hour)
	if _, e := after.Verify(newTok); e != nil {
		t.Fatalf("a token issued during the rotation, after it: %v", e)
	}
	if _, e := after.Verify(oldTok); e == nil || e.Code != wire.CodeInvalidToken {
		t.Fatalf("a token of the retired secret after the rotation: %v", e)
	}
	if _, err := New(Config{PreviousSecret: secret, JWKSFile: "x"}); err == nil {
		t.Fatal("a previous secret without a current one")
	}
}
