package redislua

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/golang-jwt/jwt/v5"
	"github.com/redis/go-redis/v9"

	"allot/bench/localhttp"
)

// Config says where the server's Redis is and how it authenticates.
type Config struct {
	// RedisAddr is host:port of the Redis server.
	RedisAddr string
	// Secret checks the HS256 bearer tokens, as allot does.
	Secret []byte
	// PoolSize is the number of connections to Redis: the bench's
	// concurrency, so that no request waits for a connection.
	PoolSize int
}

// Server is the running seckill service.
type Server struct {
	rdb  *redis.Client
	http *localhttp.Server
	jwt  *jwt.Parser
	key  jwt.Keyfunc
	seq  atomic.Int64
	mu   sync.Mutex
	caps map[string]int64 // voucher: the stock it was seeded with
}

// Start serves the seckill service on 127.0.0.1 at a free port.
func Start(cfg Config) (*Server, error) {
	s := &Server{
		rdb:  redis.NewClient(&redis.Options{Addr: cfg.RedisAddr, PoolSize: max(cfg.PoolSize, 1), MinIdleConns: max(cfg.PoolSize, 1)}),
		jwt:  jwt.NewParser(jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}), jwt.WithExpirationRequired()),
		key:  func(*jwt.Token) (any, error) { return cfg.Secret, nil },
		caps: make(map[string]int64),
	}
	var err error
	if s.http, err = localhttp.Start(s.Handler()); err != nil {
		return nil, errors.Join(err, s.rdb.Close())
	}
	return s, nil
}

// URL is the server's base URL.
func (s *Server) URL() string { return s.http.URL() }

// Shutdown stops the server, waiting for requests in flight until ctx
// ends, and closes its Redis connections.
func (s *Server) Shutdown(ctx context.Context) error {
	return errors.Join(s.http.Shutdown(ctx), s.rdb.Close())
}

// claims are the parts of a bearer token the service reads.
type claims struct {
	jwt.RegisteredClaims
	Role string `json:"role,omitempty"`
}

// Handler routes what the bench's voucher scenarios send: readiness, PUT
// of a voucher (seeds its stock), reserve (the script) and confirm (a
// no-op: the script's purchase is final). A bare gin engine, as allot's
// and the baseline's.
func (s *Server) Handler() http.Handler {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	ready := func(c *gin.Context) { c.Data(http.StatusOK, "application/json", []byte(`{"status":"ready"}`)) }
	r.GET("/healthz", ready)
	r.GET("/readyz", ready)
	r.PUT("/v1/resources/:id", s.putVoucher)
	r.POST("/v1/resources/:id/reservations", s.reserve)
	r.POST("/v1/reservations/:rid/confirm", s.confirm)
	return r
}

// user checks the bearer token and returns its subject and role.
func (s *Server) user(c *gin.Context) (sub, role string, ok bool) {
	h := c.GetHeader("Authorization")
	if len(h) < 7 || !strings.EqualFold(h[:7], "bearer ") {
		problem(c, http.StatusUnauthorized, "unauthenticated", "")
		return "", "", false
	}
	var cl claims
	if _, err := s.jwt.ParseWithClaims(h[7:], &cl, s.key); err != nil || cl.Subject == "" {
		problem(c, http.StatusUnauthorized, "unauthenticated", "")
		return "", "", false
	}
	if cl.Role == "" {
		cl.Role = "user"
	}
	return cl.Subject, cl.Role, true
}

// voucherSpec is the part of PUT /v1/resources/{id} the service models.
type voucherSpec struct {
	Kind         string `json:"kind"`
	Capacity     int64  `json:"capacity"`
	PerUserLimit *int64 `json:"per_user_limit"`
}

func (s *Server) putVoucher(c *gin.Context) {
	if _, role, ok := s.user(c); !ok {
		return
	} else if role != "admin" {
		problem(c, http.StatusForbidden, "permission_denied", "")
		return
	}
	var spec voucherSpec
	if err := json.NewDecoder(c.Request.Body).Decode(&spec); err != nil {
		problem(c, http.StatusBadRequest, "invalid_argument", "")
		return
	}
	// The script knows one unit per user of a voucher, nothing else.
	if spec.Kind != "voucher" || spec.Capacity < 0 || spec.PerUserLimit != nil && *spec.PerUserLimit != 1 {
		problem(c, http.StatusBadRequest, "invalid_argument", "")
		return
	}
	id := c.Param("id")
	if err := Seed(c.Request.Context(), s.rdb, id, spec.Capacity); err != nil {
		problem(c, http.StatusServiceUnavailable, "unavailable", "")
		return
	}
	s.mu.Lock()
	s.caps[id] = spec.Capacity
	s.mu.Unlock()
	b, _ := json.Marshal(map[string]any{"id": id, "kind": "voucher", "capacity": spec.Capacity, "per_user_limit": 1})
	c.Data(http.StatusCreated, "application/json", b)
}

// reservation is allot's reservation answer, as much of it as the
// service knows.
type reservation struct {
	ID         string `json:"id"`
	ResourceID string `json:"resource_id"`
	Kind       string `json:"kind"`
	User       string `json:"user"`
	Quantity   int64  `json:"quantity"`
	Status     string `json:"status"`
	CreatedAt  string `json:"created_at"`
	UpdatedAt  string `json:"updated_at"`
}

type reserveRequest struct {
	Quantity int64 `json:"quantity"`
}

func (s *Server) reserve(c *gin.Context) {
	user, _, ok := s.user(c)
	if !ok {
		return
	}
	var req reserveRequest
	if err := json.NewDecoder(c.Request.Body).Decode(&req); err != nil || req.Quantity != 1 {
		problem(c, http.StatusBadRequest, "invalid_argument", "")
		return
	}
	id := c.Param("id")
	out, err := Reserve(c.Request.Context(), s.rdb, id, user)
	switch {
	case err != nil:
		problem(c, http.StatusServiceUnavailable, "unavailable", "")
	case out == SoldOut:
		problem(c, http.StatusConflict, "sold_out", "")
	case out == AlreadyBought:
		problem(c, http.StatusConflict, "limit_exceeded", `,"limit":""`)
	case out == NoSuchVoucher:
		problem(c, http.StatusNotFound, "not_found", "")
	default:
		now := time.Now().UTC().Format(time.RFC3339Nano)
		b, _ := json.Marshal(reservation{ID: "rl" + strconv.FormatInt(s.seq.Add(1), 36), ResourceID: id, Kind: "voucher",
			User: user, Quantity: 1, Status: "confirmed", CreatedAt: now, UpdatedAt: now})
		c.Data(http.StatusCreated, "application/json", b)
	}
}

// confirm answers 200 confirmed without asking Redis: the script's
// purchase is final, there is no hold to confirm.
func (s *Server) confirm(c *gin.Context) {
	user, _, ok := s.user(c)
	if !ok {
		return
	}
	now := time.Now().UTC().Format(time.RFC3339Nano)
	b, _ := json.Marshal(reservation{ID: c.Param("rid"), Kind: "voucher", User: user, Quantity: 1,
		Status: "confirmed", CreatedAt: now, UpdatedAt: now})
	c.Data(http.StatusOK, "application/json", b)
}

// problem writes an allot-shaped problem; more is extra members, each
// starting with a comma.
func problem(c *gin.Context, status int, code, more string) {
	b := make([]byte, 0, 64+len(more))
	b = append(b, `{"status":`...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, `,"code":"`...)
	b = append(b, code...)
	b = append(b, '"')
	b = append(b, more...)
	b = append(b, '}')
	c.Data(status, "application/problem+json", b)
}
