package httpapi

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"allot/actors/domain"
)

// The HTTP layer's cost on the flash-crowd path, isolated from the engine:
// the real router and middleware (routing, request id, metrics, token
// cache, per-user limiter, body read, strict decode, idempotency hash,
// answer) in front of an engine that answers at once, against a bare gin
// handler doing the same JSON decode and encode. Run with
//
//	go test -run='^$' -bench='^BenchmarkReserveHTTP' -benchmem ./httpapi/
//
// Serve calls ServeHTTP with a reused writer (no sockets: the layer
// alone), Ratio does the same alternating with the ceiling, and Loopback
// sends the requests over keep-alive connections to a real server on
// 127.0.0.1, the sockets and net/http included, alternating likewise.

// instantEngine answers every Reserve with out, or with err when set.
type instantEngine struct {
	out domain.Outcome
	err error
}

func (e *instantEngine) PutResource(context.Context, string, domain.Spec) (*domain.Resource, bool, error) {
	return nil, false, domain.ErrInvalidArgument
}
func (e *instantEngine) DeleteResource(context.Context, string) error {
	return domain.ErrInvalidArgument
}
func (e *instantEngine) PutLimit(context.Context, string, domain.LimitSpec) (*domain.Limit, bool, error) {
	return nil, false, domain.ErrInvalidArgument
}
func (e *instantEngine) DeleteLimit(context.Context, string) error { return domain.ErrInvalidArgument }
func (e *instantEngine) Reserve(context.Context, domain.ReserveCommand) (domain.Outcome, error) {
	return e.out, e.err
}
func (e *instantEngine) Transition(context.Context, domain.TransitionCommand) (domain.Outcome, error) {
	return e.out, e.err
}
func (e *instantEngine) Read(_ context.Context, _ domain.Consistency, fn func(*domain.State) error) error {
	return fn(domain.NewState())
}

// soldOutError is the engine's real refusal of a voucher with no stock
// left, as the resource actor returns it.
func soldOutError(tb testing.TB) error {
	st := domain.NewState()
	spec := domain.Spec{Kind: domain.KindVoucher, Capacity: 1}
	if err := st.Apply(&domain.Event{Type: domain.EvPutResource, At: 1, ResourceID: "flash-1", Spec: spec}); err != nil {
		tb.Fatal(err)
	}
	r, _ := st.Resource("flash-1")
	r = r.Clone()
	res, err := r.DecideReserve(domain.ReserveRequest{User: "u", Quantity: 1}, "r1", 2)
	if err != nil {
		tb.Fatal(err)
	}
	r.ApplyReserve(&res)
	_, err = r.DecideReserve(domain.ReserveRequest{User: "v", Quantity: 1}, "", 3)
	if domain.ErrorCode(err) != "sold_out" {
		tb.Fatalf("want a sold-out refusal, got %v", err)
	}
	return err
}

// acceptedOutcome is a 201 answer with a held voucher reservation.
func acceptedOutcome() domain.Outcome {
	at := testNow().UnixNano()
	return domain.Outcome{Code: http.StatusCreated, Reservation: domain.Reservation{
		ID: "01JD5Q8Z3K0000000000000001", ResourceID: "flash-1", Kind: domain.KindVoucher, User: "user-000123",
		Quantity: 1, Status: domain.StatusHeld, CreatedAt: at, ExpiresAt: at + 900e9, UpdatedAt: at,
	}}
}

// benchServer is a Server on eng configured as the bench's embedded node
// (no per-address limit: the whole crowd comes from one address), with a
// per-user limit too high to refuse so that its cost is still paid. It
// returns the server and a token whose verification is already cached.
func benchServer(tb testing.TB, eng *instantEngine) (*Server, string) {
	tb.Helper()
	secret := []byte(strings.Repeat("s", MinSecretLen))
	cfg := DefaultConfig()
	cfg.Engine, cfg.Reader, cfg.Cluster = eng, eng, &fakeCluster{}
	cfg.NodeID = "n1"
	cfg.AuthSecret = secret
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg.Registry = prometheus.NewRegistry()
	cfg.IPRateLimit.PerSecond = 0
	cfg.RateLimit = RateLimit{PerSecond: 1e12, Burst: 1 << 50, MaxUsers: 1 << 20}
	srv, err := New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(srv.Close)
	tok, err := MintToken(secret, "user-000123", RoleUser, time.Hour)
	if err != nil {
		tb.Fatal(err)
	}
	return srv, tok
}

// ceilingReservation is the reservation-shaped answer of the bare handler.
type ceilingReservation struct {
	ID         string `json:"id"`
	ResourceID string `json:"resource_id"`
	Kind       string `json:"kind"`
	User       string `json:"user"`
	Quantity   int64  `json:"quantity"`
	Status     string `json:"status"`
	CreatedAt  string `json:"created_at"`
	ExpiresAt  string `json:"expires_at,omitempty"`
	UpdatedAt  string `json:"updated_at"`
}

// ceilingProblem is the problem-shaped answer of the bare handler.
type ceilingProblem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
	Code   string `json:"code"`
}

// ceilingHandler is a bare gin engine with the reserve route only: decode
// the body with encoding/json, encode the answer with c.JSON. Nothing
// else: no auth, metrics, limits or checks.
func ceilingHandler(soldOut bool) http.Handler {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.POST("/v1/resources/:id/reservations", func(c *gin.Context) {
		var body reserveBody
		if err := json.NewDecoder(c.Request.Body).Decode(&body); err != nil {
			c.JSON(http.StatusBadRequest, ceilingProblem{Code: "invalid_argument"})
			return
		}
		if soldOut {
			c.JSON(http.StatusConflict, ceilingProblem{Type: typeBase + "sold_out", Title: "Sold out",
				Status: http.StatusConflict, Detail: "0 left: sold out", Code: "sold_out"})
			return
		}
		now := time.Now().UTC()
		c.JSON(http.StatusCreated, ceilingReservation{ID: "01JD5Q8Z3K0000000000000001", ResourceID: c.Param("id"),
			Kind: "voucher", User: "user-000123", Quantity: body.Quantity, Status: "held",
			CreatedAt: now.Format(time.RFC3339Nano), ExpiresAt: now.Add(15 * time.Minute).Format(time.RFC3339Nano),
			UpdatedAt: now.Format(time.RFC3339Nano)})
	})
	return r
}

// benchWriter is a ResponseWriter that keeps the status and the body's
// length and reuses its header map.
type benchWriter struct {
	h      http.Header
	status int
	n      int
}

func (w *benchWriter) Header() http.Header { return w.h }
func (w *benchWriter) WriteHeader(s int) {
	if w.status == 0 {
		w.status = s
	}
}
func (w *benchWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	w.n += len(b)
	return len(b), nil
}

// rewindBody is a request body that can be read again.
type rewindBody struct{ bytes.Reader }

func (*rewindBody) Close() error { return nil }

const benchReserveBody = `{"quantity":1}`

// benchCase is one kind of answer: the handler serving it and the status
// it must answer.
type benchCase struct {
	name   string
	h      http.Handler
	token  string
	status int
}

func reserveBenchCases(b *testing.B) []benchCase {
	soldSrv, soldTok := benchServer(b, &instantEngine{err: soldOutError(b)})
	accSrv, accTok := benchServer(b, &instantEngine{out: acceptedOutcome()})
	return []benchCase{
		{"soldout", soldSrv.Handler(), soldTok, http.StatusConflict},
		{"accept", accSrv.Handler(), accTok, http.StatusCreated},
		{"ceiling-soldout", ceilingHandler(true), soldTok, http.StatusConflict},
		{"ceiling-accept", ceilingHandler(false), accTok, http.StatusCreated},
	}
}

// serveDriver sends the reserve request to one handler through ServeHTTP
// on a reused request and writer.
type serveDriver struct {
	bc   benchCase
	raw  []byte
	body *rewindBody
	req  *http.Request
	w    *benchWriter
}

func newServeDriver(bc benchCase) *serveDriver {
	d := &serveDriver{bc: bc, raw: []byte(benchReserveBody), body: &rewindBody{}, w: &benchWriter{h: make(http.Header)}}
	d.req = httptest.NewRequest(http.MethodPost, "/v1/resources/flash-1/reservations", d.body)
	d.req.Header.Set("Authorization", "Bearer "+bc.token)
	d.req.Header.Set("Content-Type", "application/json")
	d.req.Header.Set(headerIdemKey, "bench-key-000123")
	d.req.ContentLength = int64(len(benchReserveBody))
	return d
}

func (d *serveDriver) serve(b *testing.B) {
	clear(d.w.h)
	d.w.status, d.w.n = 0, 0
	d.body.Reset(d.raw)
	d.bc.h.ServeHTTP(d.w, d.req)
	if d.w.status != d.bc.status || d.w.n == 0 {
		b.Fatalf("%s: status %d (%d bytes), want %d", d.bc.name, d.w.status, d.w.n, d.bc.status)
	}
}

// BenchmarkReserveHTTPServe drives each handler through ServeHTTP, one
// request at a time: the layer's own cost.
func BenchmarkReserveHTTPServe(b *testing.B) {
	for _, bc := range reserveBenchCases(b) {
		b.Run(bc.name, func(b *testing.B) {
			d := newServeDriver(bc)
			d.serve(b) // warm the token cache, pools and metrics
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				d.serve(b)
			}
		})
	}
}

// BenchmarkReserveHTTPRatio alternates allot and the bare gin handler in
// blocks of 64 requests and reports allot's time as a multiple of the
// ceiling's ("x-ceiling"): on a shared, noisy machine both sides see the
// same noise, so the ratio is steadier than two separate ns/op figures.
// ns/op is the sum of both sides.
func BenchmarkReserveHTTPRatio(b *testing.B) {
	cases := reserveBenchCases(b)
	for _, pair := range [][2]benchCase{{cases[0], cases[2]}, {cases[1], cases[3]}} {
		b.Run(pair[0].name, func(b *testing.B) {
			allot, ceil := newServeDriver(pair[0]), newServeDriver(pair[1])
			allot.serve(b)
			ceil.serve(b)
			const block = 64
			var tAllot, tCeil time.Duration
			b.ResetTimer()
			for done := 0; done < b.N; done += block {
				n := min(block, b.N-done)
				t0 := time.Now()
				for range n {
					allot.serve(b)
				}
				t1 := time.Now()
				for range n {
					ceil.serve(b)
				}
				tAllot += t1.Sub(t0)
				tCeil += time.Since(t1)
			}
			b.ReportMetric(float64(tAllot)/float64(tCeil), "x-ceiling")
			b.ReportMetric(float64(tAllot.Nanoseconds())/float64(b.N), "allot-ns/op")
			b.ReportMetric(float64(tCeil.Nanoseconds())/float64(b.N), "ceiling-ns/op")
		})
	}
}

// loopTarget is one handler behind a real http.Server on 127.0.0.1, with
// keep-alive connections to it. The client side is a raw connection that
// writes a prepared request and reads the answer with http.ReadResponse,
// to keep its own cost low.
type loopTarget struct {
	bc    benchCase
	raw   []byte
	conns []*loopConn
}

type loopConn struct {
	net.Conn
	br *bufio.Reader
}

func newLoopTarget(b *testing.B, bc benchCase, conns int) *loopTarget {
	ts := httptest.NewServer(bc.h)
	b.Cleanup(ts.Close)
	addr := strings.TrimPrefix(ts.URL, "http://")
	lt := &loopTarget{bc: bc, raw: []byte("POST /v1/resources/flash-1/reservations HTTP/1.1\r\nHost: " + addr +
		"\r\nAuthorization: Bearer " + bc.token +
		"\r\nContent-Type: application/json\r\nIdempotency-Key: bench-key-000123\r\nContent-Length: " +
		strconv.Itoa(len(benchReserveBody)) + "\r\n\r\n" + benchReserveBody)}
	for range conns {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { c.Close() })
		lt.conns = append(lt.conns, &loopConn{Conn: c, br: bufio.NewReader(c)})
	}
	return lt
}

// roundTrip sends one request on c and reads its answer.
func (lt *loopTarget) roundTrip(c *loopConn) error {
	if _, err := c.Write(lt.raw); err != nil {
		return err
	}
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err == nil && resp.StatusCode != lt.bc.status {
		err = fmt.Errorf("%s: status %d, want %d", lt.bc.name, resp.StatusCode, lt.bc.status)
	}
	return err
}

// round sends n requests spread over all connections at once and returns
// how long they took.
func (lt *loopTarget) round(n int) (time.Duration, error) {
	var next atomic.Int64
	errs := make(chan error, len(lt.conns))
	start := time.Now()
	for _, c := range lt.conns {
		go func() {
			for next.Add(1) <= int64(n) {
				if err := lt.roundTrip(c); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	var first error
	for range lt.conns {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return time.Since(start), first
}

// loopConns is the number of connections per target, as the bench's 64
// workers.
const loopConns = 64

// BenchmarkReserveHTTPLoopback sends the requests over 64 keep-alive
// connections to a real http.Server on 127.0.0.1: closer to what a load
// generator sees, the sockets and net/http included (and the client's
// cost, which is the same on both sides). allot and the bare gin handler
// alternate in rounds of 2048 requests; "x-ceiling" is allot's time as a
// multiple of the ceiling's, ns/op the sum of both sides.
func BenchmarkReserveHTTPLoopback(b *testing.B) {
	cases := reserveBenchCases(b)
	for _, pair := range [][2]benchCase{{cases[0], cases[2]}, {cases[1], cases[3]}} {
		b.Run(pair[0].name, func(b *testing.B) {
			allot, ceil := newLoopTarget(b, pair[0], loopConns), newLoopTarget(b, pair[1], loopConns)
			for _, lt := range []*loopTarget{allot, ceil} {
				if _, err := lt.round(loopConns); err != nil { // connect and warm up
					b.Fatal(err)
				}
			}
			const block = 2048
			var tAllot, tCeil time.Duration
			b.ReportAllocs()
			b.ResetTimer()
			for done := 0; done < b.N; done += block {
				n := min(block, b.N-done)
				da, err := allot.round(n)
				if err != nil {
					b.Fatal(err)
				}
				dc, err := ceil.round(n)
				if err != nil {
					b.Fatal(err)
				}
				tAllot += da
				tCeil += dc
			}
			b.ReportMetric(float64(tAllot)/float64(tCeil), "x-ceiling")
			b.ReportMetric(float64(tAllot.Nanoseconds())/float64(b.N), "allot-ns/op")
			b.ReportMetric(float64(tCeil.Nanoseconds())/float64(b.N), "ceiling-ns/op")
		})
	}
}

// BenchmarkReserveHTTPNewUser is the sold-out answer to a user whose token
// the node has not seen yet, as in a flash crowd where every user tries
// once: the token is verified in full (the cache cannot help) and a rate
// limiter bucket is made. Tokens are used round robin from a pool larger
// than the token cache.
func BenchmarkReserveHTTPNewUser(b *testing.B) {
	srv, _ := benchServer(b, &instantEngine{err: soldOutError(b)})
	secret := []byte(strings.Repeat("s", MinSecretLen))
	toks := make([]string, 2*DefaultConfig().TokenCacheSize)
	for i := range toks {
		tok, err := MintToken(secret, "user-"+strconv.Itoa(i), RoleUser, time.Hour)
		if err != nil {
			b.Fatal(err)
		}
		toks[i] = "Bearer " + tok
	}
	d := newServeDriver(benchCase{name: "new-user", h: srv.Handler(), status: http.StatusConflict})
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		d.req.Header["Authorization"] = []string{toks[i%len(toks)]}
		d.serve(b)
	}
}
