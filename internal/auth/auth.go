// Package auth issues and verifies fanline's JWTs (HS256) with the claims sub (user id),
// role (buyer, agent or admin) and, for agents and admins, shop.
package auth

import (
	"errors"
	"fmt"
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

// Issuer signs and verifies tokens with one secret.
type Issuer struct {
	secret []byte
	ttl    time.Duration
}

// NewIssuer returns an Issuer. The secret must be at least 32 bytes; ttl zero means 24 h.
func NewIssuer(secret string, ttl time.Duration) (*Issuer, error) {
	if len(secret) < 32 {
		return nil, errors.New("auth: the JWT secret must be at least 32 bytes")
	}
	if ttl <= 0 {
		ttl = 24 * time.Hour
	}
	return &Issuer{secret: []byte(secret), ttl: ttl}, nil
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

// Issue signs a token for u.
func (i *Issuer) Issue(u User) (string, error) {
	if err := CheckUser(u); err != nil {
		return "", err
	}
	now := time.Now()
	c := Claims{Role: u.Role, Shop: u.Shop, RegisteredClaims: jwt.RegisteredClaims{
		Subject: u.ID, IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(i.ttl)),
	}}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(i.secret)
	if err != nil {
		return "", fmt.Errorf("auth: sign: %w", err)
	}
	return s, nil
}

// Verify checks a token's signature, algorithm, expiry and claims.
func (i *Issuer) Verify(token string) (User, *wire.Error) {
	var c Claims
	_, err := jwt.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) { return i.secret, nil },
		jwt.WithValidMethods([]string{"HS256"}), jwt.WithExpirationRequired())
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
