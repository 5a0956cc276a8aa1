package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"allot/actors/domain"
	"allot/httpapi"
	"allot/httpapi/openapicheck"
)

var testSecret = []byte("0123456789abcdef0123456789abcdef")

func startNode(t *testing.T, dir string) *Server {
	t.Helper()
	cfg := DefaultConfig()
	cfg.DataDir, cfg.HTTPAddr, cfg.RaftAddr = dir, "127.0.0.1:0", "127.0.0.1:0"
	cfg.AuthSecret = testSecret
	cfg.HTTP.IPRateLimit.PerSecond = 0 // every test client is 127.0.0.1
	s, err := Start(cfg)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	c := newClient(t, s.HTTPAddr())
	waitFor(t, 10*time.Second, func() bool { return c.status("GET", "/readyz", "", nil) == http.StatusOK })
	return s
}

// client is a tiny HTTP client for tests, with one token per user.
type client struct {
	t    *testing.T
	base string
	hc   *http.Client
	mu   sync.Mutex
	toks map[string]string
}

func newClient(t *testing.T, addr string) *client {
	tr := &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 256, IdleConnTimeout: 30 * time.Second}
	t.Cleanup(tr.CloseIdleConnections)
	return &client{t: t, base: "http://" + addr, hc: &http.Client{Transport: tr, Timeout: 30 * time.Second}, toks: map[string]string{}}
}

func (c *client) token(user string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if tok, ok := c.toks[user]; ok {
		return tok
	}
	role := "user"
	if user == "admin" {
		role = "admin"
	}
	tok, err := httpapi.MintToken(testSecret, user, role, time.Hour)
	if err != nil {
		c.t.Fatal(err)
	}
	c.toks[user] = tok
	return tok
}

type response struct {
	Code     int
	Body     []byte
	Replayed bool
	Header   http.Header
}

func (c *client) do(method, path, user string, body any, header ...string) (response, error) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		return response{}, err
	}
	if user != "" {
		req.Header.Set("Authorization", "Bearer "+c.token(user))
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil {
		checkOpenAPI(c.t, req, resp, b)
	}
	return response{Code: resp.StatusCode, Body: b, Replayed: resp.Header.Get("Idempotent-Replayed") == "true", Header: resp.Header}, err
}

// checkOpenAPI fails the test unless a node's answer is one
// docs/openapi.yaml allows: the description is checked against the real
// engine and cluster here, as against the handlers in httpapi's tests.
func checkOpenAPI(t testing.TB, req *http.Request, resp *http.Response, body []byte) {
	t.Helper()
	spec, err := openapicheck.Load()
	if err == nil {
		err = spec.Check(openapicheck.Answer{Request: req, Status: resp.StatusCode, Header: resp.Header, Body: body})
	}
	if err != nil {
		t.Errorf("%v\nbody: %.500s", err, body)
	}
}

func (c *client) status(method, path, user string, body any) int {
	r, err := c.do(method, path, user, body)
	if err != nil {
		return 0
	}
	return r.Code
}

func (c *client) mustJSON(method, path, user string, body any, wantCode int, out any) {
	c.t.Helper()
	r, err := c.do(method, path, user, body)
	if err != nil || r.Code != wantCode {
		c.t.Fatalf("%s %s: %d %s %v (want %d)", method, path, r.Code, r.Body, err, wantCode)
	}
	if out != nil {
		if err := json.Unmarshal(r.Body, out); err != nil {
			c.t.Fatalf("%s %s: %v in %s", method, path, err, r.Body)
		}
	}
}

type reservationJSON struct {
	ID, ResourceID, User, Status string
	Quantity                     int
	ExpiresAt                    string `json:"expires_at"`
}

func (r *reservationJSON) UnmarshalJSON(b []byte) error {
	var raw struct {
		ID         string `json:"id"`
		ResourceID string `json:"resource_id"`
		User       string `json:"user"`
		Status     string `json:"status"`
		Quantity   int    `json:"quantity"`
		ExpiresAt  string `json:"expires_at"`
	}
	err := json.Unmarshal(b, &raw)
	*r = reservationJSON{raw.ID, raw.ResourceID, raw.User, raw.Status, raw.Quantity, raw.ExpiresAt}
	return err
}

type resourceJSON struct {
	Available int `json:"available"`
	Held      int `json:"held"`
	Confirmed int `json:"confirmed"`
}

func TestFlashCrowdOverHTTP(t *testing.T) {
	s := startNode(t, t.TempDir())
	c := newClient(t, s.HTTPAddr())
	c.mustJSON("PUT", "/v1/resources/seckill-1", "admin", map[string]any{"kind": "voucher", "capacity": 100, "hold_seconds": 0}, http.StatusCreated, nil)

	const users = 2000
	type result struct{ first, retry response }
	results := make([]result, users)
	var wg sync.WaitGroup
	work := make(chan int)
	for w := 0; w < 64; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for u := range work {
				user, key := fmt.Sprintf("user-%d", u), fmt.Sprintf("key-%d", u)
				var err error
				results[u].first, err = c.do("POST", "/v1/resources/seckill-1/reservations", user, map[string]int{"quantity": 1}, "Idempotency-Key", key)
				if err == nil {
					results[u].retry, err = c.do("POST", "/v1/resources/seckill-1/reservations", user, map[string]int{"quantity": 1}, "Idempotency-Key", key)
				}
				if err != nil {
					t.Errorf("user %d: %v", u, err)
				}
			}
		}()
	}
	for u := 0; u < users; u++ {
		work <- u
	}
	close(work)
	wg.Wait()

	won := map[string]string{} // user -> reservation id
	for u, r := range results {
		switch r.first.Code {
		case http.StatusCreated:
			var res reservationJSON
			if err := json.Unmarshal(r.first.Body, &res); err != nil {
				t.Fatal(err)
			}
			if _, twice := won[res.User]; twice {
				t.Fatalf("user %s booked twice", res.User)
			}
			won[res.User] = res.ID
			if r.retry.Code != http.StatusCreated || !r.retry.Replayed || !bytes.Equal(r.retry.Body, r.first.Body) {
				t.Fatalf("user %d: replay %d %v %s differs from %s", u, r.retry.Code, r.retry.Replayed, r.retry.Body, r.first.Body)
			}
		case http.StatusConflict:
			if !bytes.Contains(r.first.Body, []byte(`"sold_out"`)) || r.retry.Code != http.StatusConflict || r.retry.Replayed {
				t.Fatalf("user %d: %d %s then %d %s", u, r.first.Code, r.first.Body, r.retry.Code, r.retry.Body)
			}
		default:
			t.Fatalf("user %d: %d %s", u, r.first.Code, r.first.Body)
		}
	}
	if len(won) != 100 {
		t.Fatalf("%d reservations, want exactly 100", len(won))
	}
	var res resourceJSON
	c.mustJSON("GET", "/v1/resources/seckill-1", "admin", nil, http.StatusOK, &res)
	if res.Available != 0 || res.Confirmed != 100 {
		t.Fatalf("resource after the crowd: %+v", res)
	}
	var list struct {
		Items []reservationJSON `json:"items"`
		Next  string            `json:"next"`
	}
	c.mustJSON("GET", "/v1/reservations?resource=seckill-1&limit=1000", "admin", nil, http.StatusOK, &list)
	if len(list.Items) != 100 || list.Next != "" {
		t.Fatalf("listed %d reservations (next %q)", len(list.Items), list.Next)
	}
	for _, it := range list.Items {
		if won[it.User] != it.ID {
			t.Fatalf("listed reservation %s of %s was not acknowledged", it.ID, it.User)
		}
	}
	checkInvariants(t, s)
}

func TestHoldsExpireAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	s := startNode(t, dir)
	c := newClient(t, s.HTTPAddr())
	c.mustJSON("PUT", "/v1/resources/slot-1", "admin", map[string]any{"kind": "slot", "capacity": 2, "hold_seconds": 1}, http.StatusCreated, nil)
	var a, b reservationJSON
	c.mustJSON("POST", "/v1/resources/slot-1/reservations", "alice", nil, http.StatusCreated, &a)
	c.mustJSON("POST", "/v1/resources/slot-1/reservations", "bob", nil, http.StatusCreated, &b)
	if a.Status != "held" || a.ExpiresAt == "" {
		t.Fatalf("want a hold: %+v", a)
	}
	// alice's hold expires while the node runs.
	waitFor(t, 10*time.Second, func() bool {
		var r reservationJSON
		c.mustJSON("GET", "/v1/reservations/"+a.ID, "alice", nil, http.StatusOK, &r)
		return r.Status == "expired"
	})
	// bob's falls due while the node is down.
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	time.Sleep(1200 * time.Millisecond)
	s = startNode(t, dir)
	c = newClient(t, s.HTTPAddr())
	waitFor(t, 10*time.Second, func() bool {
		var r reservationJSON
		c.mustJSON("GET", "/v1/reservations/"+b.ID, "bob", nil, http.StatusOK, &r)
		return r.Status == "expired"
	})
	var res resourceJSON
	c.mustJSON("GET", "/v1/resources/slot-1", "admin", nil, http.StatusOK, &res)
	if res.Available != 2 || res.Held != 0 {
		t.Fatalf("stock not returned: %+v", res)
	}
	expiresAt, _ := time.Parse(time.RFC3339Nano, b.ExpiresAt)
	var r struct {
		UpdatedAt time.Time `json:"updated_at"`
	}
	c.mustJSON("GET", "/v1/reservations/"+b.ID, "bob", nil, http.StatusOK, &r)
	if r.UpdatedAt.Before(expiresAt) {
		t.Fatalf("expired at %v, before it was due at %v", r.UpdatedAt, expiresAt)
	}
	checkInvariants(t, s)
}

func checkInvariants(t *testing.T, s *Server) {
	t.Helper()
	err := s.Node().Read(context.Background(), domain.ReadStale, func(st *domain.State) error { return st.CheckInvariants() })
	if err != nil {
		t.Fatalf("invariants: %v", err)
	}
}

func waitFor(t *testing.T, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v", within)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
