package httpapi

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"allot/actors/domain"
)

func TestRequestIDAndNodeHeaders(t *testing.T) {
	e := newEnv(t, nil)
	// Echoed when sane, on success and on errors alike.
	for _, path := range []string{"/healthz", "/v1/cluster", "/no/such/route"} {
		r := e.do("GET", path, "", "", "X-Request-ID", "client-id 42")
		if r.header.Get("X-Request-ID") != "client-id 42" || r.header.Get("X-Allot-Node") != "n1" {
			t.Errorf("%s: headers %v", path, r.header)
		}
	}
	// Generated when missing or too long, and unique.
	seen := map[string]bool{}
	for _, hdr := range [][]string{nil, nil, {"X-Request-ID", strings.Repeat("x", 129)}} {
		r := e.do("GET", "/healthz", "", "", hdr...)
		id := r.header.Get("X-Request-ID")
		if id == "" || len(id) > 128 || seen[id] {
			t.Errorf("generated id %q (seen before: %v)", id, seen[id])
		}
		seen[id] = true
	}
	// Control characters cannot be sent by net/http's client; call the
	// handler directly.
	req := httptest.NewRequest("GET", "/healthz", nil)
	req.Header.Set("X-Request-ID", "a\x01b")
	rec := httptest.NewRecorder()
	e.srv.Handler().ServeHTTP(rec, req)
	if id := rec.Header().Get("X-Request-ID"); id == "a\x01b" || id == "" {
		t.Errorf("unsafe request id echoed: %q", id)
	}
	req = httptest.NewRequest("POST", "/v1/resources/x/reservations", nil)
	req.Header.Set("Authorization", "Bearer "+e.alice)
	req.Header.Set("Idempotency-Key", "a\x7fb")
	rec = httptest.NewRecorder()
	e.srv.Handler().ServeHTTP(rec, req)
	if rec.Code != http.StatusBadRequest {
		t.Errorf("Idempotency-Key with DEL: status %d", rec.Code)
	}
}

// healthClock is a wall clock shifted by a fixed amount.
type healthClock struct{ shift time.Duration }

func (c healthClock) Now() time.Time { return time.Now().Add(c.shift) }

// /healthz reports the node's wall clock (the configured one) in UTC with
// nanoseconds, for the other nodes' clock-offset probes.
func TestHealthzTime(t *testing.T) {
	for _, shift := range []time.Duration{0, -90 * time.Minute} {
		e := newEnv(t, func(c *Config) {
			if shift != 0 {
				c.Clock = healthClock{shift}
			}
		})
		before := time.Now().Add(shift)
		var st map[string]string
		e.do("GET", "/healthz", "", "").want(t, http.StatusOK, &st)
		after := time.Now().Add(shift)
		if st["status"] != "ok" {
			t.Errorf("healthz %v", st)
		}
		raw := st["time"]
		got, err := time.Parse(time.RFC3339Nano, raw)
		switch {
		case err != nil:
			t.Errorf("time %q: %v", raw, err)
		case !strings.HasSuffix(raw, "Z") || len(raw) != len("2006-01-02T15:04:05.000000000Z"):
			t.Errorf("time %q: want UTC with nine fractional digits", raw)
		case got.Before(before) || got.After(after):
			t.Errorf("shift %v: time %s not within [%s, %s]", shift, raw, before.UTC().Format(time.RFC3339Nano), after.UTC().Format(time.RFC3339Nano))
		}
	}
}

func TestHealthReadyAndUnmatched(t *testing.T) {
	e := newEnv(t, nil)
	var st map[string]string
	e.do("GET", "/healthz", "", "").want(t, http.StatusOK, &st)
	if st["status"] != "ok" {
		t.Errorf("healthz %v", st)
	}
	e.do("GET", "/readyz", "", "").want(t, http.StatusOK, &st)
	if st["status"] != "ready" {
		t.Errorf("readyz %v", st)
	}
	e.cl.setNotReady(errors.New(`no leader "yet"`))
	st = nil
	e.do("GET", "/readyz", "", "").want(t, http.StatusServiceUnavailable, &st)
	if st["status"] != "not_ready" || st["reason"] != `no leader "yet"` {
		t.Errorf("readyz not ready %v", st)
	}
	e.do("GET", "/metrics", "", "").want(t, http.StatusOK, nil)

	e.do("GET", "/v1/nothing", e.alice, "").wantProblem(t, http.StatusNotFound, "not_found")
	e.do("GET", "/v1/resources/", e.alice, "").wantProblem(t, http.StatusNotFound, "not_found")
	e.do("PATCH", "/v1/nothing", e.alice, "{}").wantProblem(t, http.StatusNotFound, "not_found")
}

func TestPanicIsA500(t *testing.T) {
	e := newEnv(t, nil)
	e.putVoucher("v", 1, "")
	e.eng.setHook(func(context.Context, string) error { panic("engine bug") })
	r := e.do("POST", "/v1/resources/v/reservations", e.alice, "", "X-Request-ID", "panic-1")
	r.wantProblem(t, http.StatusInternalServerError, "internal")
	if r.header.Get("X-Request-ID") != "panic-1" {
		t.Errorf("X-Request-ID %q", r.header.Get("X-Request-ID"))
	}
	logs := e.logs.String()
	if !strings.Contains(logs, "engine bug") || !strings.Contains(logs, "panic-1") || !strings.Contains(logs, "goroutine") {
		t.Errorf("panic not logged with request id and stack:\n%s", logs)
	}
	// The server keeps serving.
	e.eng.setHook(nil)
	e.do("GET", "/v1/resources/v", e.alice, "").want(t, http.StatusOK, nil)
	if got := counterValue(t, e.reg, "/v1/resources/:id/reservations", "POST", "500"); got != 1 {
		t.Errorf("500s counted: %v", got)
	}
}

func TestBodyLimit(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MaxBodyBytes = 64 })
	e.putVoucher("v", 1, "")
	body := `{"quantity":1}` + strings.Repeat(" ", 100)
	// With Content-Length, and streamed without one.
	e.do("POST", "/v1/resources/v/reservations", e.alice, body).wantProblem(t, http.StatusRequestEntityTooLarge, "payload_too_large")
	req, err := http.NewRequest("POST", e.url+"/v1/resources/v/reservations", io.MultiReader(strings.NewReader(body)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+e.alice)
	if req.ContentLength != 0 {
		t.Fatalf("request has a known length %d; want it streamed", req.ContentLength)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b := readAllAndCheck(t, e.srv, req, resp)
	resp.Body.Close()
	response{status: resp.StatusCode, header: resp.Header, body: b}.wantProblem(t, http.StatusRequestEntityTooLarge, "payload_too_large")
	// Exactly at the limit is fine.
	e.do("POST", "/v1/resources/v/reservations", e.alice, `{"quantity":1}`+strings.Repeat(" ", 64-14)).want(t, http.StatusCreated, nil)
}

func TestConfigValidate(t *testing.T) {
	eng := newFakeEngine()
	good := DefaultConfig()
	good.Engine, good.Reader, good.Cluster = eng, eng, &fakeCluster{}
	good.NodeID = "n1"
	good.AuthSecret = make([]byte, MinSecretLen)
	good.Registry = prometheus.NewRegistry()
	if err := good.Validate(); err != nil {
		t.Fatalf("good config: %v", err)
	}
	for name, mod := range map[string]func(*Config){
		"no engine":       func(c *Config) { c.Engine = nil },
		"no reader":       func(c *Config) { c.Reader = nil },
		"no cluster":      func(c *Config) { c.Cluster = nil },
		"no node id":      func(c *Config) { c.NodeID = "" },
		"node id newline": func(c *Config) { c.NodeID = "n1\n" },
		"short secret":    func(c *Config) { c.AuthSecret = c.AuthSecret[:MinSecretLen-1] },
		"no logger":       func(c *Config) { c.Logger = nil },
		"no registry":     func(c *Config) { c.Registry = nil },
		"no body":         func(c *Config) { c.MaxBodyBytes = 0 },
		"no timeout":      func(c *Config) { c.RequestTimeout = 0 },
		"long timeout":    func(c *Config) { c.RequestTimeout = time.Minute },
		"negative rate":   func(c *Config) { c.RateLimit.PerSecond = -1 },
		"no burst":        func(c *Config) { c.RateLimit.Burst = 0 },
		"no max users":    func(c *Config) { c.RateLimit.MaxUsers = 0 },
		"negative admin":  func(c *Config) { c.AdminRateLimit.PerSecond = -1 },
		"admin no burst":  func(c *Config) { c.AdminRateLimit = RateLimit{PerSecond: 1, MaxUsers: 1} },
		"ip no burst":     func(c *Config) { c.IPRateLimit.Burst = 0 },
		"ip no max":       func(c *Config) { c.IPRateLimit.MaxUsers = 0 },
		"negative ttl":    func(c *Config) { c.MaxTokenTTL = -time.Second },
		"write too short": func(c *Config) { c.Timeouts.Write = c.RequestTimeout },
		"negative idle":   func(c *Config) { c.Timeouts.Idle = -time.Second },
	} {
		c := good
		mod(&c)
		if err := c.Validate(); !errors.Is(err, domain.ErrInvalidArgument) {
			t.Errorf("%s: Validate() = %v", name, err)
		}
		if _, err := New(c); err == nil {
			t.Errorf("%s: New accepted it", name)
		}
	}
	off := good
	off.RateLimit = RateLimit{}
	if err := off.Validate(); err != nil {
		t.Errorf("rate limit off: %v", err)
	}

	// Metrics go to the given registry, once.
	good.Logger = slog.New(slog.DiscardHandler)
	if _, err := New(good); err != nil {
		t.Fatalf("New: %v", err)
	}
	if _, err := New(good); err == nil {
		t.Error("a second server registered the same metrics on one registry")
	}
}

func TestNewHTTPServerTimeouts(t *testing.T) {
	s := NewHTTPServer("127.0.0.1:0", http.NotFoundHandler())
	if s.Addr != "127.0.0.1:0" || s.Handler == nil || s.ReadTimeout <= 0 || s.ReadHeaderTimeout <= 0 ||
		s.IdleTimeout <= 0 || s.WriteTimeout <= DefaultConfig().RequestTimeout {
		t.Errorf("server %+v", s)
	}
	s = NewHTTPServerTimeouts("a", http.NotFoundHandler(), Timeouts{Read: time.Second, Write: 40 * time.Second})
	if s.ReadTimeout != time.Second || s.WriteTimeout != 40*time.Second ||
		s.ReadHeaderTimeout != DefaultTimeouts().ReadHeader || s.IdleTimeout != DefaultTimeouts().Idle {
		t.Errorf("server %+v", s)
	}
}
