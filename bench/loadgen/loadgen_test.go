package loadgen

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// recSource sends GET /x forever (or limit times) and keeps every latency
// Done reports, in the order answers came.
type recSource struct {
	limit int64 // 0 = unbounded
	sent  atomic.Int64
	mu    sync.Mutex
	lat   []time.Duration
}

func (s *recSource) Worker(int) WorkerSource { return s }

func (s *recSource) Next(_ time.Time, c *Call) time.Duration {
	if s.limit > 0 && s.sent.Add(1) > s.limit {
		return Exhausted
	}
	*c = Call{Method: http.MethodGet, Path: "/x"}
	return 0
}

func (s *recSource) Done(_ *Call, r *Response, _ time.Time) {
	s.mu.Lock()
	s.lat = append(s.lat, r.Latency)
	s.mu.Unlock()
}

func (s *recSource) slow(over time.Duration) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, l := range s.lat {
		if l >= over {
			n++
		}
	}
	return n
}

// stallOnce answers 200 at once, except the first request, which it holds
// for stall.
func stallOnce(t *testing.T, stall time.Duration) *httptest.Server {
	var once sync.Once
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		once.Do(func() { time.Sleep(stall) }) // the injected server stall
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func config(srv *httptest.Server, conc int, rate float64, d time.Duration) Config {
	return Config{
		Targets: []string{srv.URL}, Concurrency: conc, Rate: rate, Duration: d,
		Ops: []string{"get"}, Client: NewClient(conc, 5*time.Second),
	}
}

// TestOpenLoopChargesStallToScheduledRequests: at 100 req/s through one
// connection, a 500 ms stall of the first request delays the ~49 requests
// scheduled behind it. Their latency counts from when they were due, so
// about 30 of them (those due in the first 300 ms) record 200 ms or more;
// a closed loop would record just the one stalled request.
func TestOpenLoopChargesStallToScheduledRequests(t *testing.T) {
	srv := stallOnce(t, 500*time.Millisecond)
	src := &recSource{}
	res, err := Run(context.Background(), config(srv, 1, 100, time.Second), src)
	if err != nil {
		t.Fatal(err)
	}
	if n := src.slow(200 * time.Millisecond); n < 25 {
		t.Errorf("%d requests recorded >= 200ms, want about 30: the stall was not charged to requests scheduled during it", n)
	}
	if max := time.Duration(res.Latency.Max()) * time.Microsecond; max < 480*time.Millisecond {
		t.Errorf("max latency %v, want >= 480ms", max)
	}
	if p90 := time.Duration(res.Latency.ValueAtQuantile(90)) * time.Microsecond; p90 < 100*time.Millisecond {
		t.Errorf("p90 %v: the histogram misses the waiting (about a third of requests waited)", p90)
	}
	if res.LateSends < 25 {
		t.Errorf("LateSends = %d, want the requests sent behind schedule", res.LateSends)
	}
	if !res.Open || res.Requests < 80 || res.Requests > 101 {
		t.Errorf("open=%v requests=%d, want an open loop of about 100 requests", res.Open, res.Requests)
	}
	if got := res.Codes[CodeKey{Status: http.StatusOK}]; got != res.Requests {
		t.Errorf("200 count %d, want %d", got, res.Requests)
	}
}

// TestClosedLoopMeasuresFromSend: the same stall in a closed loop is one
// slow request, since the worker sends nothing while it waits.
func TestClosedLoopMeasuresFromSend(t *testing.T) {
	srv := stallOnce(t, 500*time.Millisecond)
	src := &recSource{}
	res, err := Run(context.Background(), config(srv, 1, 0, 700*time.Millisecond), src)
	if err != nil {
		t.Fatal(err)
	}
	// One stalled request; allow a couple of scheduler hiccups on a busy machine.
	if n := src.slow(200 * time.Millisecond); n < 1 || n > 3 {
		t.Errorf("%d requests recorded >= 200ms, want the 1 stalled request", n)
	}
	if res.Open || res.Requests < 2 {
		t.Errorf("open=%v requests=%d, want a closed loop with more than the stalled request", res.Open, res.Requests)
	}
}

func TestRequestBudgetAndWarmup(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(http.StatusConflict)
		w.Write([]byte(`{"status":409,"code":"sold_out"}`))
	}))
	defer srv.Close()
	for _, rate := range []float64{0, 2000} {
		src := &recSource{}
		cfg := config(srv, 4, rate, 10*time.Second)
		cfg.Warmup, cfg.Requests = 100*time.Millisecond, 50
		start := time.Now()
		res, err := Run(context.Background(), cfg, src)
		if err != nil {
			t.Fatal(err)
		}
		if time.Since(start) > 5*time.Second {
			t.Errorf("rate %v: the request budget did not end the run", rate)
		}
		if res.Requests != 50 {
			t.Errorf("rate %v: measured %d requests, want 50", rate, res.Requests)
		}
		if got := res.Codes[CodeKey{Status: http.StatusConflict, Code: "sold_out"}]; got != 50 {
			t.Errorf("rate %v: %d counted as 409 sold_out, want 50 (codes %v)", rate, got, res.Codes)
		}
		src.mu.Lock()
		sent := len(src.lat)
		src.mu.Unlock()
		if sent <= 50 {
			t.Errorf("rate %v: %d answers in all, want warmup requests on top of the 50 measured", rate, sent)
		}
	}
}

func TestExhaustedSourceEndsRun(t *testing.T) {
	srv := stallOnce(t, 0)
	src := &recSource{limit: 30}
	start := time.Now()
	res, err := Run(context.Background(), config(srv, 3, 0, 10*time.Second), src)
	if err != nil {
		t.Fatal(err)
	}
	if time.Since(start) > 5*time.Second || res.Requests != 30 {
		t.Errorf("requests %d after %v, want 30 and an early end", res.Requests, time.Since(start))
	}
}

func TestTransportErrorsAreCounted(t *testing.T) {
	srv := stallOnce(t, 0)
	url := srv.URL
	srv.Close() // nothing listens any more
	cfg := Config{Targets: []string{url}, Concurrency: 1, Duration: time.Second, Requests: 3,
		Ops: []string{"get"}, Client: NewClient(1, time.Second)}
	res, err := Run(context.Background(), cfg, &recSource{})
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Codes[CodeKey{Code: "transport_error"}]; got != 3 {
		t.Errorf("codes %v, want 3 transport errors", res.Codes)
	}
}

func TestValidate(t *testing.T) {
	good := Config{Targets: []string{"http://127.0.0.1:1"}, Concurrency: 1, Duration: time.Second,
		Ops: []string{"x"}, Client: http.DefaultClient}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, mut := range map[string]func(*Config){
		"no target":      func(c *Config) { c.Targets = nil },
		"no workers":     func(c *Config) { c.Concurrency = 0 },
		"negative rate":  func(c *Config) { c.Rate = -1 },
		"unbounded":      func(c *Config) { c.Duration = 0 },
		"no operations":  func(c *Config) { c.Ops = nil },
		"no http client": func(c *Config) { c.Client = nil },
	} {
		c := good
		mut(&c)
		if c.Validate() == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestLimitGroupRefusalsCountApart: a limit_exceeded naming a limit group
// is its own outcome, apart from the resource's own per_user_limit.
func TestLimitGroupRefusalsCountApart(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(http.StatusConflict)
		switch n.Add(1) % 4 {
		case 0:
			w.Write([]byte(`{"status":409,"code":"limit_exceeded","limit":"day-1","rule":"per_user"}`))
		case 1:
			w.Write([]byte(`{"status":409,"code":"limit_exceeded","limit":"day-1","rule":"capacity"}`))
		default:
			w.Write([]byte(`{"status":409,"code":"limit_exceeded","limit":"","rule":"per_user"}`))
		}
	}))
	defer srv.Close()
	cfg := config(srv, 1, 0, 10*time.Second)
	cfg.Requests = 12
	res, err := Run(context.Background(), cfg, &recSource{})
	if err != nil {
		t.Fatal(err)
	}
	perUser := CodeKey{Status: http.StatusConflict, Code: "limit_exceeded", Group: true, Rule: "per_user"}
	capacity := CodeKey{Status: http.StatusConflict, Code: "limit_exceeded", Group: true, Rule: "capacity"}
	own := CodeKey{Status: http.StatusConflict, Code: "limit_exceeded"}
	if res.Codes[perUser] != 3 || res.Codes[capacity] != 3 || res.Codes[own] != 6 {
		t.Errorf("codes %v, want 3 per-user and 3 capacity refusals of the group, 6 of the resource's own limit", res.Codes)
	}
	for k, want := range map[CodeKey]string{
		perUser:  "409 limit_exceeded (limit group per_user)",
		capacity: "409 limit_exceeded (limit group capacity)",
		{Status: http.StatusConflict, Code: "limit_exceeded", Group: true}: "409 limit_exceeded (limit group)",
	} {
		if got := k.String(); got != want {
			t.Errorf("key reads %q, want %q", got, want)
		}
	}
}
