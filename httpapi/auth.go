package httpapi

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/golang-jwt/jwt/v5"

	"allot/actors/domain"
)

// Roles a token may carry; a missing role is RoleUser.
const (
	RoleUser  = "user"
	RoleAdmin = "admin"
)

// claims is the payload of an allot bearer token.
type claims struct {
	jwt.RegisteredClaims
	Role string `json:"role,omitempty"`
}

// newTokenParser accepts HS256 only (so neither "none" nor a public-key
// algorithm can be smuggled in with the shared secret) and requires exp.
func newTokenParser() *jwt.Parser {
	return jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithExpirationRequired(),
	)
}

// MintToken returns an HS256 bearer token for user sub with role ("" means
// RoleUser), valid for ttl from now.
func MintToken(secret []byte, sub, role string, ttl time.Duration) (string, error) {
	switch {
	case len(secret) < MinSecretLen:
		return "", fmt.Errorf("token secret must be at least %d bytes: %w", MinSecretLen, domain.ErrInvalidArgument)
	case sub == "" || len(sub) > domain.MaxUserLen:
		return "", fmt.Errorf("token subject must be 1-%d bytes: %w", domain.MaxUserLen, domain.ErrInvalidArgument)
	case ttl <= 0:
		return "", fmt.Errorf("token ttl must be positive: %w", domain.ErrInvalidArgument)
	}
	if role == "" {
		role = RoleUser
	}
	if role != RoleUser && role != RoleAdmin {
		return "", fmt.Errorf("token role must be %q or %q, not %q: %w", RoleUser, RoleAdmin, role, domain.ErrInvalidArgument)
	}
	now := time.Now()
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   sub,
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
		},
		Role: role,
	})
	return tok.SignedString(secret)
}

// authenticate turns the Authorization header into the caller.
func (s *Server) authenticate(header string) (domain.Principal, error) {
	const scheme = "bearer "
	if header == "" {
		return domain.Principal{}, fmt.Errorf("missing bearer token: %w", domain.ErrUnauthenticated)
	}
	if len(header) <= len(scheme) || !strings.EqualFold(header[:len(scheme)], scheme) {
		return domain.Principal{}, fmt.Errorf("authorization scheme must be Bearer: %w", domain.ErrUnauthenticated)
	}
	tok := strings.TrimSpace(header[len(scheme):])
	if s.tokens != nil {
		if p, ok := s.tokens.get(tok, time.Now().UnixNano()); ok {
			return p, nil
		}
	}
	var cl claims
	_, err := s.parser.ParseWithClaims(tok, &cl, func(*jwt.Token) (any, error) {
		return s.cfg.AuthSecret, nil
	})
	if err != nil {
		return domain.Principal{}, fmt.Errorf("invalid token: %v: %w", err, domain.ErrUnauthenticated)
	}
	if cl.Subject == "" || len(cl.Subject) > domain.MaxUserLen {
		return domain.Principal{}, fmt.Errorf("token subject must be 1-%d bytes: %w", domain.MaxUserLen, domain.ErrUnauthenticated)
	}
	p := domain.Principal{User: cl.Subject}
	switch cl.Role {
	case "", RoleUser:
	case RoleAdmin:
		p.Admin = true
	default:
		return domain.Principal{}, fmt.Errorf("unknown token role %q: %w", cl.Role, domain.ErrUnauthenticated)
	}
	if s.tokens != nil {
		// The parser requires exp, so ExpiresAt is set.
		s.tokens.put(strings.Clone(tok), p, cl.ExpiresAt.UnixNano())
	}
	return p, nil
}

// authedHandler is a /v1 handler with its authenticated caller.
type authedHandler func(c *gin.Context, p domain.Principal)

// authed wraps h with authentication, the caller's rate limit and, when
// adminOnly, the admin check. The caller is passed as an argument rather than
// stored in the gin context: no map, no boxing, no type assertion.
func (s *Server) authed(h authedHandler, adminOnly bool) gin.HandlerFunc {
	return func(c *gin.Context) {
		header := c.Request.Header.Get("Authorization")
		p, err := s.authenticate(header)
		if err != nil {
			if header == "" {
				c.Header("WWW-Authenticate", `Bearer realm="allot"`)
			} else {
				c.Header("WWW-Authenticate", `Bearer realm="allot", error="invalid_token"`)
			}
			s.fail(c, err)
			return
		}
		if s.limiter != nil {
			if ok, wait := s.limiter.allow(p.User, s.limiter.now()); !ok {
				c.Header("Retry-After", strconv.FormatInt(retryAfterSeconds(wait), 10))
				s.fail(c, fmt.Errorf("user %q is over %g requests/s: %w", p.User, s.cfg.RateLimit.PerSecond, domain.ErrRateLimited))
				return
			}
		}
		if adminOnly && !p.Admin {
			s.fail(c, fmt.Errorf("%s %s needs the admin role: %w", c.Request.Method, c.FullPath(), domain.ErrPermissionDenied))
			return
		}
		h(c, p)
	}
}

// retryAfterSeconds rounds a wait up to whole seconds, at least 1, as the
// Retry-After header counts in seconds.
func retryAfterSeconds(d time.Duration) int64 {
	return max(1, int64((d+time.Second-1)/time.Second))
}
