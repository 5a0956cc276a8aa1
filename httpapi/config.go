package httpapi

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"allot/actors/domain"
)

// MinSecretLen is the shortest HS256 secret accepted: RFC 7518 §3.2 asks
// for a key at least as long as the hash output.
const MinSecretLen = 32

// writeTimeout is NewHTTPServer's WriteTimeout; RequestTimeout must stay
// below it so a write that runs to its deadline can still be answered.
const writeTimeout = 30 * time.Second

// Config configures a Server. Start from DefaultConfig and fill in the
// parts that have no default (Engine, Reader, Cluster, NodeID, AuthSecret,
// Registry).
type Config struct {
	// Engine performs writes. Required.
	Engine Engine
	// Reader serves reads from committed state. Required.
	Reader Reader
	// Cluster reports membership and readiness. Required.
	Cluster Cluster
	// Webhooks manages webhooks; nil serves no webhook routes.
	Webhooks Webhooks

	// NodeID is sent in the X-Allot-Node header of every response.
	// Required: 1-128 printable ASCII characters.
	NodeID string

	// AuthSecret is the HS256 key that bearer tokens are verified with. It
	// is shared by all nodes of a cluster. At least MinSecretLen bytes.
	AuthSecret []byte

	// PeerTLS, when set, is the TLS client configuration for requests to
	// the other nodes (forwarding, /v1/cluster's state probes) when they
	// serve HTTPS: which CA their certificates are checked against. Nil
	// uses the system roots.
	PeerTLS *tls.Config

	// Logger receives panics, internal errors and ambiguous write outcomes.
	// Client errors (4xx) are counted in metrics, not logged.
	Logger *slog.Logger

	// Registry is where the HTTP metrics are registered and what /metrics
	// serves. It is the server's own registry, never the global default, so
	// that several servers can live in one process. Required.
	Registry *prometheus.Registry

	// MaxBodyBytes bounds a request body; a longer one is answered with
	// 413 payload_too_large before it is decoded.
	MaxBodyBytes int64

	// RequestTimeout is the deadline of one engine or reader call. A write
	// still waiting for its commit when it passes is answered with
	// 503 outcome_unknown. Must be below the HTTP server's WriteTimeout
	// (Timeouts.Write) so the answer can still be written.
	RequestTimeout time.Duration

	// RateLimit throttles each authenticated user (role user) on this node.
	RateLimit RateLimit

	// AdminRateLimit throttles each admin and consumer token's subject on
	// this node; PerSecond 0 (the default) leaves them unthrottled.
	AdminRateLimit RateLimit

	// IPRateLimit throttles each client address before its token is even
	// looked at, so that a flood of garbage tokens stays cheap. Requests a
	// follower forwarded were limited on that follower and skip it here.
	IPRateLimit RateLimit

	// PublicKeys, when set, also accepts tokens of an external identity
	// provider: RS256 or EdDSA, signed by the key their kid names (see
	// KeySet). HS256 tokens signed with AuthSecret are still accepted.
	PublicKeys *KeySet

	// Issuer is the iss every PublicKeys token must carry, and Audience,
	// when set, a value its aud must hold: without them a token the
	// identity provider issued to another application would be accepted.
	// Issuer is required with PublicKeys.
	Issuer, Audience string

	// SubjectPrefix is put in front of a PublicKeys token's sub to make its
	// user name, so that the identity provider's "alice" is not the local
	// "alice"; HS256 tokens whose sub starts with it are refused, so the
	// shared secret cannot mint a name of the identity provider's either.
	// Required with PublicKeys.
	SubjectPrefix string

	// MaxTokenTTL refuses tokens whose exp lies further ahead than this, so
	// that a leaked token cannot live for years. 0 disables the bound.
	MaxTokenTTL time.Duration

	// Timeouts are the HTTP server's (see NewHTTPServer).
	Timeouts Timeouts

	// TokenCacheSize is how many verified bearer tokens are remembered
	// until they expire, so that a token sent again skips decoding and
	// signature checking. 0 disables the cache.
	TokenCacheSize int

	// Events is this node's committed copy of the change stream, what
	// GET /v1/events and /v1/events/stream serve; nil answers them with
	// 503 unavailable.
	Events EventStream

	// EventKeepAlive is how long an event stream may stay silent before it
	// sends a comment line, so that proxies and clients do not take it
	// for dead. 0 is the default, 15s.
	EventKeepAlive time.Duration

	// Clock is read for the "time" of /healthz, from which the other nodes
	// measure their clock offset to this one: give it the clock the engine
	// stamps leader time from. nil is the machine's.
	Clock Clock
}

// Timeouts bound how long a client may hold a connection; see http.Server.
// Write must stay above RequestTimeout so a write that runs to its deadline
// can still be answered.
type Timeouts struct {
	ReadHeader time.Duration
	Read       time.Duration
	Write      time.Duration
	Idle       time.Duration
}

// DefaultTimeouts are NewHTTPServer's defaults.
func DefaultTimeouts() Timeouts {
	return Timeouts{ReadHeader: 5 * time.Second, Read: 15 * time.Second, Write: writeTimeout, Idle: 2 * time.Minute}
}

// write is the write timeout in effect: the default when unset.
func (t Timeouts) write() time.Duration {
	if t.Write > 0 {
		return t.Write
	}
	return writeTimeout
}

// Clock is a wall clock (actors.Clock satisfies it).
type Clock interface {
	Now() time.Time
}

// RateLimit is a per-user token bucket. Every request under /v1 takes one
// token; a user without a token gets 429 rate_limited with Retry-After.
type RateLimit struct {
	// PerSecond is the refill rate in requests per second; 0 disables the
	// limiter.
	PerSecond float64
	// Burst is the bucket size: how many requests a user may send at once
	// after being idle.
	Burst int
	// MaxUsers bounds the memory of the limiter: beyond this many tracked
	// users, an arbitrary bucket is dropped to make room (which only ever
	// lets a request through that would have waited). Buckets idle long
	// enough to be full again are dropped anyway.
	MaxUsers int
}

// DefaultSubjectPrefix is the default SubjectPrefix, and maxSubjectPrefix
// its longest allowed value.
const (
	DefaultSubjectPrefix = "idp:"
	maxSubjectPrefix     = 64
)

// DefaultConfig returns a Config with defaults for everything that has one.
func DefaultConfig() Config {
	return Config{
		Logger:         slog.Default(),
		MaxBodyBytes:   64 << 10,
		RequestTimeout: 10 * time.Second,
		RateLimit:      RateLimit{PerSecond: 100, Burst: 200, MaxUsers: 1 << 20},
		AdminRateLimit: RateLimit{PerSecond: 0, Burst: 0, MaxUsers: 1 << 12},
		IPRateLimit:    RateLimit{PerSecond: 1000, Burst: 2000, MaxUsers: 1 << 18},
		MaxTokenTTL:    720 * time.Hour,
		Timeouts:       DefaultTimeouts(),
		TokenCacheSize: 1 << 14,
		SubjectPrefix:  DefaultSubjectPrefix,
		EventKeepAlive: defaultEventKeepAlive,
	}
}

// Validate reports the first problem with the configuration, wrapping
// domain.ErrInvalidArgument.
func (c *Config) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("httpapi config: %s: %w", fmt.Sprintf(format, args...), domain.ErrInvalidArgument)
	}
	switch {
	case c.Engine == nil:
		return bad("Engine is required")
	case c.Reader == nil:
		return bad("Reader is required")
	case c.Cluster == nil:
		return bad("Cluster is required")
	case !printableASCII(c.NodeID, 128):
		return bad("NodeID must be 1-128 printable ASCII characters")
	case len(c.AuthSecret) < MinSecretLen:
		return bad("AuthSecret must be at least %d bytes", MinSecretLen)
	case c.Logger == nil:
		return bad("Logger is required")
	case c.Registry == nil:
		return bad("Registry is required")
	case c.MaxBodyBytes <= 0:
		return bad("MaxBodyBytes must be positive")
	case c.RequestTimeout <= 0:
		return bad("RequestTimeout must be positive")
	case c.RequestTimeout >= c.Timeouts.write():
		return bad("RequestTimeout (%s) must be below the write timeout (%s)", c.RequestTimeout, c.Timeouts.write())
	case c.Timeouts.ReadHeader < 0 || c.Timeouts.Read < 0 || c.Timeouts.Write < 0 || c.Timeouts.Idle < 0:
		return bad("Timeouts must not be negative")
	case c.MaxTokenTTL < 0:
		return bad("MaxTokenTTL must not be negative")
	case c.PublicKeys != nil && !printableASCII(c.Issuer, domain.MaxUserLen):
		return bad("Issuer must be 1-%d printable ASCII characters when PublicKeys is set", domain.MaxUserLen)
	case c.PublicKeys != nil && !printableASCII(c.SubjectPrefix, maxSubjectPrefix):
		return bad("SubjectPrefix must be 1-%d printable ASCII characters when PublicKeys is set", maxSubjectPrefix)
	}
	for _, rl := range []struct {
		name string
		rl   RateLimit
	}{{"RateLimit", c.RateLimit}, {"AdminRateLimit", c.AdminRateLimit}, {"IPRateLimit", c.IPRateLimit}} {
		switch {
		case rl.rl.PerSecond < 0:
			return bad("%s.PerSecond must not be negative", rl.name)
		case rl.rl.PerSecond > 0 && rl.rl.Burst < 1:
			return bad("%s.Burst must be at least 1", rl.name)
		case rl.rl.PerSecond > 0 && rl.rl.MaxUsers < 1:
			return bad("%s.MaxUsers must be at least 1", rl.name)
		}
	}
	switch {
	case c.TokenCacheSize < 0:
		return bad("TokenCacheSize must not be negative")
	case c.EventKeepAlive < 0:
		return bad("EventKeepAlive must not be negative")
	}
	return nil
}

// printableASCII reports whether s is 1 to maxLen characters of printable
// ASCII (space through tilde): safe to echo in a header and to log.
func printableASCII(s string, maxLen int) bool {
	if len(s) == 0 || len(s) > maxLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
