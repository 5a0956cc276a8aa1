// Package httpapi is allot's HTTP layer: the routes of the v1 API on gin,
// bearer-token authentication, per-user rate limiting, body limits, problem
// details and HTTP metrics. It calls the engine, reader and cluster through
// the narrow interfaces of engine.go and holds no state of its own beyond
// the rate limiter's buckets and a cache of verified tokens.
package httpapi

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"allot/actors/domain"
	"allot/httpapi/jsonview"
)

const (
	// Header names in canonical form, so that reading and setting them
	// needs no canonicalising copy.
	headerRequestID = "X-Request-Id"
	headerNode      = "X-Allot-Node"
	headerIdemKey   = "Idempotency-Key"
	headerReplayed  = "Idempotent-Replayed"

	maxRequestIDLen = 128
)

// Server serves the v1 API. It is safe for concurrent use; create it with
// New and mount Handler on an http.Server (see NewHTTPServer).
type Server struct {
	cfg     Config
	log     *slog.Logger
	router  *gin.Engine
	parser  *jwt.Parser
	limiter *rateLimiter // nil when rate limiting is off
	// adminLimiter throttles admin and consumer tokens, ipLimiter client
	// addresses before authentication; nil when off.
	adminLimiter *rateLimiter
	ipLimiter    *rateLimiter
	// mark signs the requests this node forwards (forwardmark.go).
	mark   forwardMark
	tokens *tokenCache // nil when token caching is off
	// macs holds *hs256Verifier keyed with AuthSecret (hs256.go).
	macs    *sync.Pool
	metrics *httpMetrics
	fwd     *forwarder
	// deadlines bounds engine and reader calls (deadline.go).
	deadlines *sharedDeadlines

	// bufs holds *bytes.Buffer for request bodies, reused across requests
	// because every write reads its whole body (it is hashed for the
	// Idempotency-Key fingerprint).
	bufs sync.Pool
	// answers holds *[]byte for encoding answers (answerbuf.go).
	answers sync.Pool

	// events is what the events routes share (events.go).
	events eventServing

	// Generated request ids are reqIDPrefix + a counter: unique across
	// nodes and restarts without a random read per request.
	reqIDPrefix string
	reqIDSeq    atomic.Uint64
	// nodeHeader is the X-Allot-Node value of every answer, shared (see
	// respond.go).
	nodeHeader []string
}

// New builds a Server from a validated Config and registers its metrics on
// cfg.Registry. It puts gin in release mode, which is process-wide: gin's
// debug output would otherwise go to stdout.
func New(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	var seed [8]byte
	if _, err := rand.Read(seed[:]); err != nil {
		return nil, fmt.Errorf("httpapi: request id seed: %w", err)
	}
	m, err := newHTTPMetrics(cfg.Registry)
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg:         cfg,
		log:         cfg.Logger,
		parser:      newTokenParser(cfg.PublicKeys != nil),
		metrics:     m,
		fwd:         newForwarder(cfg.RequestTimeout, cfg.Timeouts.write(), cfg.PeerTLS, cfg.Logger),
		reqIDPrefix: hex.EncodeToString(seed[:]) + "-",
		nodeHeader:  []string{cfg.NodeID},
		macs:        newHS256Pool(cfg.AuthSecret),
		deadlines:   newSharedDeadlines(cfg.RequestTimeout),
	}
	s.bufs.New = func() any { return new(bytes.Buffer) }
	s.answers.New = func() any { b := make([]byte, 0, 512); return &b }
	s.events.init()
	if s.mark, err = newForwardMark(cfg.AuthSecret, cfg.NodeID); err != nil {
		return nil, err
	}
	if cfg.RateLimit.PerSecond > 0 {
		s.limiter = newRateLimiter(cfg.RateLimit)
	}
	if cfg.AdminRateLimit.PerSecond > 0 {
		s.adminLimiter = newRateLimiter(cfg.AdminRateLimit)
	}
	if cfg.IPRateLimit.PerSecond > 0 {
		s.ipLimiter = newRateLimiter(cfg.IPRateLimit)
	}
	if cfg.TokenCacheSize > 0 {
		s.tokens = newTokenCache(cfg.TokenCacheSize)
	}
	gin.SetMode(gin.ReleaseMode)
	s.router = gin.New()
	// Unknown paths answer 404 problems instead of redirects; a known
	// path with a method it does not serve answers 405 with Allow (gin
	// sets the header).
	s.router.RedirectTrailingSlash = false
	s.router.RedirectFixedPath = false
	s.router.HandleMethodNotAllowed = true
	s.routes()
	return s, nil
}

// Handler returns the http.Handler serving every route.
func (s *Server) Handler() http.Handler { return s.router }

// NewHTTPServer returns an http.Server for h with the default timeouts
// (DefaultTimeouts), so that slow or idle clients cannot hold connections
// forever.
func NewHTTPServer(addr string, h http.Handler) *http.Server {
	return NewHTTPServerTimeouts(addr, h, DefaultTimeouts())
}

// NewHTTPServerTimeouts is NewHTTPServer with the given timeouts; a zero
// one takes its default. The write timeout must leave room for a write that
// runs to Config.RequestTimeout (Config.Validate checks it).
func NewHTTPServerTimeouts(addr string, h http.Handler, t Timeouts) *http.Server {
	d := DefaultTimeouts()
	pick := func(v, def time.Duration) time.Duration {
		if v > 0 {
			return v
		}
		return def
	}
	return &http.Server{
		Addr:              addr,
		Handler:           h,
		ReadHeaderTimeout: pick(t.ReadHeader, d.ReadHeader),
		ReadTimeout:       pick(t.Read, d.Read),
		WriteTimeout:      pick(t.Write, d.Write),
		IdleTimeout:       pick(t.Idle, d.Idle),
		MaxHeaderBytes:    64 << 10,
	}
}

func (s *Server) routes() {
	r := s.router
	r.Use(s.requestHeaders)
	r.NoRoute(s.instrumentUnmatched(), s.answer(func(c *gin.Context) error {
		return fmt.Errorf("no route for %s %s: %w", c.Request.Method, c.Request.URL.Path, domain.ErrNotFound)
	}))
	r.NoMethod(s.instrumentUnmatched(), s.answer(func(c *gin.Context) error {
		return fmt.Errorf("%s is not allowed on %s (allowed: %s): %w",
			c.Request.Method, c.Request.URL.Path, c.Writer.Header().Get("Allow"), errMethodNotAllowed)
	}))

	s.handle(http.MethodGet, "/healthz", s.healthz)
	s.handle(http.MethodGet, "/readyz", s.readyz)
	// A collector that fails (say, a bridged library's metric breaking a
	// rule) is logged and left out; everything else is still served.
	metrics := promhttp.HandlerFor(s.cfg.Registry, promhttp.HandlerOpts{
		ErrorHandling: promhttp.ContinueOnError,
		ErrorLog:      slog.NewLogLogger(s.log.Handler(), slog.LevelError),
	})
	s.handle(http.MethodGet, "/metrics", gin.WrapH(metrics))
	s.pprofRoutes()
	s.handle(http.MethodGet, "/v1/openapi.yaml", openAPI)

	// Writes and default reads need the leader: a follower forwards them
	// (after authenticating and rate limiting the caller itself).
	write := func(h authedHandler, adminOnly bool) gin.HandlerFunc {
		return s.authed(s.viaLeader(onLeader, h), adminOnly)
	}
	read := func(h authedHandler) gin.HandlerFunc { return s.authed(s.viaLeader(leaderRead, h), false) }

	s.handle(http.MethodPut, "/v1/resources/:id", write(s.putResource, true))
	s.handle(http.MethodGet, "/v1/resources/:id", read(s.getResource))
	s.handle(http.MethodDelete, "/v1/resources/:id", write(s.deleteResource, true))
	s.handle(http.MethodGet, "/v1/resources", read(s.listResources))
	s.handle(http.MethodPost, "/v1/resources/:id/reservations", write(s.reserve, false))

	s.handle(http.MethodPut, "/v1/limits/:id", write(s.putLimit, true))
	s.handle(http.MethodGet, "/v1/limits/:id", read(s.getLimit))
	s.handle(http.MethodDelete, "/v1/limits/:id", write(s.deleteLimit, true))
	s.handle(http.MethodGet, "/v1/limits", read(s.listLimits))

	s.handle(http.MethodGet, "/v1/reservations/:rid", read(s.getReservation))
	s.handle(http.MethodGet, "/v1/reservations", read(s.listReservations))
	// Ownership of confirm and cancel is the engine's check (it sees the
	// reservation); check-in and complete are admin-only by role.
	s.handle(http.MethodPost, "/v1/reservations/:rid/confirm", write(s.transition(domain.StatusConfirmed), false))
	s.handle(http.MethodPost, "/v1/reservations/:rid/cancel", write(s.transition(domain.StatusCancelled), false))
	s.handle(http.MethodPost, "/v1/reservations/:rid/check-in", write(s.transition(domain.StatusCheckedIn), true))
	s.handle(http.MethodPost, "/v1/reservations/:rid/complete", write(s.transition(domain.StatusCompleted), true))

	// The change stream: every node serves its own committed copy, never
	// forwarded; roles are checked by the handlers (admin and consumer).
	s.handle(http.MethodGet, "/v1/events", s.authed(s.listEvents, false))
	s.handle(http.MethodGet, "/v1/events/stream", s.authed(s.streamEvents, false))

	// Every node answers for itself; membership changes run on the leader.
	s.handle(http.MethodGet, "/v1/cluster", s.authed(s.clusterInfo, false))
	s.handle(http.MethodGet, "/v1/cluster/audit", s.authed(s.clusterAudit, true))
	s.handle(http.MethodGet, "/v1/cluster/hello", s.authed(s.clusterHello, true))
	s.handle(http.MethodPost, "/v1/cluster/nodes", write(s.addNode, true))
	s.handle(http.MethodDelete, "/v1/cluster/nodes/:id", write(s.removeNode, true))

	s.webhookRoutes()
	s.consoleRoutes()
}

// handle registers a route behind its own pre-resolved metrics. A GET
// route serves HEAD too (gin does not route one to the other); net/http
// drops the body of a HEAD answer.
func (s *Server) handle(method, path string, h gin.HandlerFunc) {
	s.router.Handle(method, path, s.instrument(path, method), h)
	if method == http.MethodGet {
		s.router.Handle(http.MethodHead, path, s.instrument(path, http.MethodHead), h)
	}
}

// requestHeaders sets X-Request-ID and X-Allot-Node before anything can
// answer, so that every response carries them.
func (s *Server) requestHeaders(c *gin.Context) {
	h := c.Writer.Header()
	var id string
	if v := c.Request.Header[headerRequestID]; len(v) > 0 {
		id = v[0]
	}
	if !printableASCII(id, maxRequestIDLen) {
		var buf [64]byte
		id = string(strconv.AppendUint(append(buf[:0], s.reqIDPrefix...), s.reqIDSeq.Add(1), 36))
	}
	h[headerRequestID] = []string{id}
	h[headerNode] = s.nodeHeader
}

// instrument returns the first handler of a route: it counts and times the
// request and recovers a panic into a 500 problem. Recovery lives here, not
// in a separate middleware, so that the panic's 500 is what gets counted.
func (s *Server) instrument(route, method string) gin.HandlerFunc {
	rm := s.metrics.route(route, method)
	return func(c *gin.Context) {
		start := time.Now()
		s.metrics.inFlight.Inc()
		defer func() {
			p := recover()
			if p != nil && p != http.ErrAbortHandler {
				s.recovered(c, p)
			}
			rm.observe(c.Writer.Status(), time.Since(start))
			s.metrics.inFlight.Dec()
			if p == http.ErrAbortHandler {
				panic(p)
			}
		}()
		c.Next()
	}
}

// instrumentUnmatched is instrument for requests no route matched, labelled
// with route "unmatched". Methods outside the standard set are labelled
// "other", which keeps the label set bounded.
func (s *Server) instrumentUnmatched() gin.HandlerFunc {
	byMethod := make(map[string]gin.HandlerFunc)
	for _, m := range []string{
		http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut,
		http.MethodPatch, http.MethodDelete, http.MethodOptions,
	} {
		byMethod[m] = s.instrument(unmatchedRoute, m)
	}
	other := s.instrument(unmatchedRoute, "other")
	return func(c *gin.Context) {
		if h, ok := byMethod[c.Request.Method]; ok {
			h(c)
			return
		}
		other(c)
	}
}

// recovered logs a handler panic with its stack and answers 500 unless the
// handler already started its response.
func (s *Server) recovered(c *gin.Context, p any) {
	s.log.LogAttrs(c.Request.Context(), slog.LevelError, "panic in handler",
		slog.String("request_id", c.Writer.Header().Get(headerRequestID)),
		slog.String("method", c.Request.Method), slog.String("path", c.Request.URL.Path),
		slog.Any("panic", p), slog.String("stack", string(debug.Stack())))
	if c.Writer.Written() {
		return
	}
	s.writeProblem(c, kindOf(string(domain.CodeInternal)), "internal error; see the server log for request "+c.Writer.Header().Get(headerRequestID), nil)
}

// healthTimeLayout is RFC 3339 in UTC with all nine fractional digits.
const healthTimeLayout = "2006-01-02T15:04:05.000000000Z"

// healthz answers liveness, with this node's wall clock as "time": other
// nodes read it to measure their clock offset to this one, so it is read
// as late as possible and needs no token.
func (s *Server) healthz(c *gin.Context) {
	var now time.Time
	if s.cfg.Clock != nil {
		now = s.cfg.Clock.Now()
	} else {
		now = time.Now()
	}
	b := make([]byte, 0, 64)
	b = append(b, `{"status":"ok","time":"`...)
	b = now.UTC().AppendFormat(b, healthTimeLayout)
	c.Data(http.StatusOK, "application/json", append(b, `"}`...))
}

func (s *Server) readyz(c *gin.Context) {
	if err := s.cfg.Cluster.Ready(); err != nil {
		b := append([]byte(`{"status":"not_ready","reason":`), jsonview.AppendString(nil, err.Error())...)
		c.Header("Retry-After", "1")
		c.Data(http.StatusServiceUnavailable, "application/json", append(b, '}'))
		return
	}
	c.Data(http.StatusOK, "application/json", []byte(`{"status":"ready"}`))
}
