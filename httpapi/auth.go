package httpapi

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
	"github.com/golang-jwt/jwt/v5"

	"allot/actors/domain"
)

// Roles a token may carry; a missing role is RoleUser. A consumer is a
// downstream service: it reads everything an admin reads and writes nothing.
const (
	RoleUser     = "user"
	RoleAdmin    = "admin"
	RoleConsumer = "consumer"
)

// claims is the payload of an allot bearer token. It implements jwt.Claims
// itself rather than embedding jwt.RegisteredClaims, whose NumericDate also
// takes a quoted number: exp, nbf and iat here must be JSON numbers.
type claims struct {
	Subject   string           `json:"sub"`
	Issuer    string           `json:"iss,omitempty"`
	Audience  jwt.ClaimStrings `json:"aud,omitempty"`
	ExpiresAt *strictDate      `json:"exp,omitempty"`
	NotBefore *strictDate      `json:"nbf,omitempty"`
	IssuedAt  *strictDate      `json:"iat,omitempty"`
	Role      string           `json:"role,omitempty"`
}

// strictDate is a jwt.NumericDate that refuses a JSON string.
type strictDate struct{ jwt.NumericDate }

func (d *strictDate) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || (b[0] != '-' && (b[0] < '0' || b[0] > '9')) {
		return errors.New("a time claim must be a JSON number")
	}
	return d.NumericDate.UnmarshalJSON(b)
}

func (d *strictDate) date() *jwt.NumericDate {
	if d == nil {
		return nil
	}
	return &d.NumericDate
}

func (c *claims) GetExpirationTime() (*jwt.NumericDate, error) { return c.ExpiresAt.date(), nil }
func (c *claims) GetNotBefore() (*jwt.NumericDate, error)      { return c.NotBefore.date(), nil }
func (c *claims) GetIssuedAt() (*jwt.NumericDate, error)       { return c.IssuedAt.date(), nil }
func (c *claims) GetIssuer() (string, error)                   { return c.Issuer, nil }
func (c *claims) GetSubject() (string, error)                  { return c.Subject, nil }
func (c *claims) GetAudience() (jwt.ClaimStrings, error)       { return c.Audience, nil }

// newTokenParser accepts HS256, plus RS256 and EdDSA when an identity
// provider's keys are configured, and requires exp. "none" is never
// accepted, and keyFunc pairs each algorithm with its own kind of key, so a
// token cannot have its signature checked with the wrong one.
func newTokenParser(publicKeys bool) *jwt.Parser {
	methods := []string{jwt.SigningMethodHS256.Alg()}
	if publicKeys {
		methods = append(methods, jwt.SigningMethodRS256.Alg(), jwt.SigningMethodEdDSA.Alg())
	}
	return jwt.NewParser(jwt.WithValidMethods(methods), jwt.WithExpirationRequired())
}

// validSubject reports whether sub can name a user: 1 to domain.MaxUserLen
// bytes of valid UTF-8 without control characters, so that it is safe to
// log, echo and store. U+FFFD is refused too: encoding/json puts it in
// place of invalid UTF-8, which would otherwise slip through.
func validSubject(sub string) bool {
	if sub == "" || len(sub) > domain.MaxUserLen || !utf8.ValidString(sub) {
		return false
	}
	for _, r := range sub {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' || r == utf8.RuneError {
			return false
		}
	}
	return true
}

// validRole reports whether role ("" meaning RoleUser) is one a token may carry.
func validRole(role string) bool {
	switch role {
	case "", RoleUser, RoleAdmin, RoleConsumer:
		return true
	}
	return false
}

// MintToken returns an HS256 bearer token for user sub with role ("" means
// RoleUser), valid for ttl from now.
func MintToken(secret []byte, sub, role string, ttl time.Duration) (string, error) {
	switch {
	case len(secret) < MinSecretLen:
		return "", fmt.Errorf("token secret must be at least %d bytes: %w", MinSecretLen, domain.ErrInvalidArgument)
	case !validSubject(sub):
		return "", fmt.Errorf("token subject must be 1-%d bytes of printable UTF-8: %w", domain.MaxUserLen, domain.ErrInvalidArgument)
	case ttl <= 0:
		return "", fmt.Errorf("token ttl must be positive: %w", domain.ErrInvalidArgument)
	case !validRole(role):
		return "", fmt.Errorf("token role must be %q, %q or %q, not %q: %w", RoleUser, RoleAdmin, RoleConsumer, role, domain.ErrInvalidArgument)
	}
	if role == "" {
		role = RoleUser
	}
	now := time.Now()
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, &claims{
		Subject:   sub,
		IssuedAt:  &strictDate{*jwt.NewNumericDate(now)},
		ExpiresAt: &strictDate{*jwt.NewNumericDate(now.Add(ttl))},
		Role:      role,
	})
	return tok.SignedString(secret)
}

// caller is an authenticated request's principal and role. A consumer's
// principal has Admin set, which is what read handlers look at to show
// everything; authed keeps it away from every write and admin-only route.
type caller struct {
	p    domain.Principal
	role string
}

// authenticate turns the Authorization header into the caller.
func (s *Server) authenticate(header string) (caller, error) {
	return s.authenticateAt(header, time.Now())
}

// authenticateAt is authenticate with the clock read by the caller (authed
// reads it once for the limits and the token).
func (s *Server) authenticateAt(header string, now time.Time) (caller, error) {
	const scheme = "bearer "
	if header == "" {
		return caller{}, fmt.Errorf("missing bearer token: %w", domain.ErrUnauthenticated)
	}
	if len(header) <= len(scheme) || !strings.EqualFold(header[:len(scheme)], scheme) {
		return caller{}, fmt.Errorf("authorization scheme must be Bearer: %w", domain.ErrUnauthenticated)
	}
	tok := strings.TrimSpace(header[len(scheme):])
	if s.tokens != nil {
		if c, ok := s.tokens.get(tok, now.UnixNano()); ok {
			return c, nil
		}
	}
	var cl claims
	alg := jwt.SigningMethodHS256.Alg()
	if !s.plainHS256(tok, now, &cl) {
		t, err := s.parser.ParseWithClaims(tok, &cl, s.keyFunc)
		if err != nil {
			return caller{}, fmt.Errorf("invalid token: %v: %w", err, domain.ErrUnauthenticated)
		}
		alg = t.Method.Alg()
	}
	if !validSubject(cl.Subject) {
		return caller{}, fmt.Errorf("token subject must be 1-%d bytes of printable UTF-8: %w", domain.MaxUserLen, domain.ErrUnauthenticated)
	}
	user, err := s.user(alg, &cl)
	if err != nil {
		return caller{}, err
	}
	// The parser requires exp, so ExpiresAt is set.
	exp := cl.ExpiresAt.Time
	if limit := s.cfg.MaxTokenTTL; limit > 0 && exp.After(now.Add(limit)) {
		return caller{}, fmt.Errorf("token exp %s lies more than the max token ttl (%s) ahead: %w",
			exp.UTC().Format(time.RFC3339), limit, domain.ErrUnauthenticated)
	}
	c := caller{p: domain.Principal{User: user}, role: cl.Role}
	switch cl.Role {
	case "", RoleUser:
		c.role = RoleUser
	case RoleAdmin:
		c.p.Admin = true
	case RoleConsumer:
		c.p.Admin, c.p.ReadOnly = true, true
	default:
		return caller{}, fmt.Errorf("unknown token role %q: %w", cl.Role, domain.ErrUnauthenticated)
	}
	if s.tokens != nil {
		s.tokens.put(strings.Clone(tok), c, exp.UnixNano())
	}
	return c, nil
}

// user checks what sets the two kinds of token apart and returns the user
// name: an identity provider's token must carry the configured issuer (and
// audience, if one is set) and its sub is namespaced with SubjectPrefix; an
// HS256 token's sub is the name as it is, and must not be in that namespace.
func (s *Server) user(alg string, cl *claims) (string, error) {
	prefix := s.cfg.SubjectPrefix
	if alg == jwt.SigningMethodHS256.Alg() {
		if s.cfg.PublicKeys != nil && strings.HasPrefix(cl.Subject, prefix) {
			return "", fmt.Errorf("an HS256 token's subject must not start with %q, which names identity provider users: %w", prefix, domain.ErrUnauthenticated)
		}
		return cl.Subject, nil
	}
	if cl.Issuer != s.cfg.Issuer {
		return "", fmt.Errorf("token issuer must be %q: %w", s.cfg.Issuer, domain.ErrUnauthenticated)
	}
	if aud := s.cfg.Audience; aud != "" && !slices.Contains(cl.Audience, aud) {
		return "", fmt.Errorf("token audience must include %q: %w", aud, domain.ErrUnauthenticated)
	}
	user := prefix + cl.Subject
	if !validSubject(user) {
		return "", fmt.Errorf("token subject with the prefix %q must be 1-%d bytes: %w", prefix, domain.MaxUserLen, domain.ErrUnauthenticated)
	}
	return user, nil
}

// keyFunc hands the parser the shared secret for HS256 tokens and the
// identity provider's key (pinned to its algorithm) for the others.
func (s *Server) keyFunc(t *jwt.Token) (any, error) {
	if t.Method.Alg() == jwt.SigningMethodHS256.Alg() {
		return s.cfg.AuthSecret, nil
	}
	if s.cfg.PublicKeys == nil {
		return nil, fmt.Errorf("alg %s is not accepted", t.Method.Alg())
	}
	return s.cfg.PublicKeys.verifyKey(t)
}

// authedHandler is a /v1 handler with its authenticated caller. Like a
// handler, it returns its failure rather than answering it.
type authedHandler func(c *gin.Context, p domain.Principal) error

// authed wraps h with, in this order: the per-IP limit (before any token
// is looked at, so a flood of garbage tokens costs little), authentication,
// the caller's rate limit, and the role checks. A consumer token passes only
// GET and HEAD routes that are not adminOnly: every write in the API is
// another method. The caller is passed as an argument rather than stored in
// the gin context: no map, no boxing, no type assertion.
func (s *Server) authed(h authedHandler, adminOnly bool) gin.HandlerFunc {
	return s.answer(func(c *gin.Context) error {
		now := time.Now()
		if s.ipLimiter != nil && !s.mark.valid(c.Request.Header.Get(headerForwarded)) {
			ip := c.RemoteIP()
			if ok, wait := s.ipLimiter.allow(ip, s.ipLimiter.at(now)); !ok {
				c.Header("Retry-After", strconv.FormatInt(retryAfterSeconds(wait), 10))
				return fmt.Errorf("address %s is over %g requests/s: %w", ip, s.cfg.IPRateLimit.PerSecond, domain.ErrRateLimited)
			}
		}
		header := c.Request.Header.Get("Authorization")
		who, err := s.authenticateAt(header, now)
		if err != nil {
			if header == "" {
				c.Header("WWW-Authenticate", `Bearer realm="allot"`)
			} else {
				c.Header("WWW-Authenticate", `Bearer realm="allot", error="invalid_token"`)
			}
			return err
		}
		lim, rate := s.limiter, s.cfg.RateLimit.PerSecond
		if who.role != RoleUser {
			lim, rate = s.adminLimiter, s.cfg.AdminRateLimit.PerSecond
		}
		if lim != nil {
			if ok, wait := lim.allow(who.p.User, lim.at(now)); !ok {
				c.Header("Retry-After", strconv.FormatInt(retryAfterSeconds(wait), 10))
				return fmt.Errorf("user %q is over %g requests/s: %w", who.p.User, rate, domain.ErrRateLimited)
			}
		}
		switch {
		case who.role == RoleConsumer && c.Request.Method != http.MethodGet && c.Request.Method != http.MethodHead:
			return fmt.Errorf("%s %s is a write and a consumer token writes nothing: %w", c.Request.Method, c.FullPath(), domain.ErrPermissionDenied)
		case adminOnly && who.role != RoleAdmin:
			return fmt.Errorf("%s %s needs the admin role: %w", c.Request.Method, c.FullPath(), domain.ErrPermissionDenied)
		}
		return h(c, who.p)
	})
}

// retryAfterSeconds rounds a wait up to whole seconds, at least 1, as the
// Retry-After header counts in seconds.
func retryAfterSeconds(d time.Duration) int64 {
	return max(1, int64((d+time.Second-1)/time.Second))
}
