package client_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"allot/actors/domain"
	"allot/client"
)

// script is a fake node that answers the nth request with the nth reply
// and records every request's Idempotency-Key and arrival time.
type script struct {
	mu      sync.Mutex
	replies []reply
	keys    []string
	times   []time.Time
}

type reply struct {
	status     int
	code       string // problem code; "" answers a reservation
	retryAfter string
}

func (s *script) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	n := len(s.keys)
	s.keys = append(s.keys, r.Header.Get("Idempotency-Key"))
	s.times = append(s.times, time.Now())
	rep := s.replies[min(n, len(s.replies)-1)]
	s.mu.Unlock()
	w.Header().Set("X-Allot-Node", "n1")
	if rep.retryAfter != "" {
		w.Header().Set("Retry-After", rep.retryAfter)
	}
	if rep.code != "" {
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(rep.status)
		fmt.Fprintf(w, `{"type":"https://allot.dev/problems/%s","status":%d,"code":%q,"detail":"scripted"}`, rep.code, rep.status, rep.code)
		return
	}
	w.WriteHeader(rep.status)
	fmt.Fprint(w, `{"id":"r1","resource_id":"v1","kind":"voucher","user":"ann","quantity":1,"status":"held",
		"created_at":"2026-12-01T08:00:00Z","expires_at":"2026-12-01T08:15:00Z","updated_at":"2026-12-01T08:00:00Z"}`)
}

func (s *script) requests() ([]string, []time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.keys...), append([]time.Time(nil), s.times...)
}

func newScripted(t *testing.T, opts client.Options, replies ...reply) (*client.Client, *script) {
	t.Helper()
	s := &script{replies: replies}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	if opts.Token == "" {
		opts.Token = "tok"
	}
	c, err := client.New([]string{srv.URL}, opts)
	if err != nil {
		t.Fatal(err)
	}
	return c, s
}

// TestRetryHonoursRetryAfter: a 429 and a 503 with Retry-After: 1 are each
// waited out for a second, and all three attempts carry one key.
func TestRetryHonoursRetryAfter(t *testing.T) {
	c, s := newScripted(t, client.Options{},
		reply{status: 429, code: "rate_limited", retryAfter: "1"},
		reply{status: 503, code: "unavailable", retryAfter: "1"},
		reply{status: 201})
	var resp client.Response
	r, err := c.Reserve(context.Background(), "v1", client.ReserveRequest{Quantity: 1}, client.Capture(&resp))
	if err != nil {
		t.Fatal(err)
	}
	keys, times := s.requests()
	if r.ID != "r1" || r.Status != client.StatusHeld || resp.Attempts != 3 || resp.Status != 201 || len(keys) != 3 {
		t.Fatalf("reservation %+v, response %+v, %d requests", r, resp, len(keys))
	}
	if keys[0] == "" || keys[1] != keys[0] || keys[2] != keys[0] || resp.IdempotencyKey != keys[0] {
		t.Errorf("keys %q (reported %q): want one key on every attempt", keys, resp.IdempotencyKey)
	}
	for i := 1; i < 3; i++ {
		if gap := times[i].Sub(times[i-1]); gap < 950*time.Millisecond || gap > 3*time.Second {
			t.Errorf("attempt %d came %v after the one before: want the Retry-After second", i+1, gap)
		}
	}
}

// TestRetryBacksOffWithoutRetryAfter: without Retry-After the wait is the
// bounded backoff, and outcome_unknown and request_in_progress are
// retried like unavailable.
func TestRetryBacksOffWithoutRetryAfter(t *testing.T) {
	c, s := newScripted(t, client.Options{MinBackoff: 20 * time.Millisecond, MaxBackoff: 40 * time.Millisecond},
		reply{status: 503, code: "outcome_unknown"},
		reply{status: 409, code: "request_in_progress"},
		reply{status: 503, code: "unavailable"},
		reply{status: 201})
	start := time.Now()
	if _, err := c.Confirm(context.Background(), "r1", client.IdempotencyKey("pay-1")); err != nil {
		t.Fatal(err)
	}
	keys, _ := s.requests()
	if len(keys) != 4 || keys[0] != "pay-1" || keys[3] != "pay-1" {
		t.Fatalf("keys %q, want pay-1 four times", keys)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("three backoffs of at most 40ms took %v", took)
	}
}

// TestRetryStopsAtTheDeadline: a Retry-After longer than what is left of
// the context is not waited for: the last answer comes back at once.
func TestRetryStopsAtTheDeadline(t *testing.T) {
	c, s := newScripted(t, client.Options{}, reply{status: 503, code: "unavailable", retryAfter: "5"})
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	start := time.Now()
	_, err := c.Reserve(ctx, "v1", client.ReserveRequest{})
	if took := time.Since(start); took > 500*time.Millisecond {
		t.Errorf("returned after %v: it waited for a Retry-After past the deadline", took)
	}
	var pe *client.ProblemError
	if !errors.Is(err, domain.ErrUnavailable) || !errors.As(err, &pe) || pe.Status != 503 || pe.Detail != "scripted" {
		t.Fatalf("err = %v, want the 503 unavailable", err)
	}
	if keys, _ := s.requests(); len(keys) != 1 {
		t.Errorf("%d attempts, want 1", len(keys))
	}
}

// TestRetryAfterIsCapped: MaxRetryAfter bounds what a server may ask for.
func TestRetryAfterIsCapped(t *testing.T) {
	c, _ := newScripted(t, client.Options{MaxRetryAfter: 50 * time.Millisecond},
		reply{status: 429, code: "rate_limited", retryAfter: "30"}, reply{status: 201})
	start := time.Now()
	if _, err := c.Reserve(context.Background(), "v1", client.ReserveRequest{}); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("took %v: Retry-After 30 was not capped at 50ms", took)
	}
}

// TestRetryGivesUpAfterMaxAttempts.
func TestRetryGivesUpAfterMaxAttempts(t *testing.T) {
	c, s := newScripted(t, client.Options{MaxAttempts: 3, MinBackoff: time.Millisecond},
		reply{status: 503, code: "unavailable"})
	_, err := c.Reserve(context.Background(), "v1", client.ReserveRequest{})
	if !errors.Is(err, domain.ErrUnavailable) {
		t.Fatalf("err = %v", err)
	}
	if keys, _ := s.requests(); len(keys) != 3 {
		t.Errorf("%d attempts, want 3", len(keys))
	}
}

// TestNoKeyNoRetryOfUnknownOutcome: a reserve sent without a key is not
// sent again after outcome_unknown: a second attempt could book twice.
func TestNoKeyNoRetryOfUnknownOutcome(t *testing.T) {
	c, s := newScripted(t, client.Options{}, reply{status: 503, code: "outcome_unknown"}, reply{status: 201})
	_, err := c.Reserve(context.Background(), "v1", client.ReserveRequest{}, client.WithoutIdempotencyKey())
	if !errors.Is(err, domain.ErrOutcomeUnknown) {
		t.Fatalf("err = %v, want outcome unknown", err)
	}
	if keys, _ := s.requests(); len(keys) != 1 || keys[0] != "" {
		t.Errorf("requests with keys %q, want one without", keys)
	}
}

// TestRefusalsAreNotRetried: a decided answer comes back at once.
func TestRefusalsAreNotRetried(t *testing.T) {
	c, s := newScripted(t, client.Options{}, reply{status: 409, code: "sold_out"})
	_, err := c.Reserve(context.Background(), "v1", client.ReserveRequest{})
	if !errors.Is(err, domain.ErrSoldOut) || errors.Is(err, domain.ErrLimitExceeded) {
		t.Fatalf("err = %v, want sold out only", err)
	}
	if keys, _ := s.requests(); len(keys) != 1 {
		t.Errorf("%d attempts, want 1", len(keys))
	}
}
