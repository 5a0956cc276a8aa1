// Package api is the load generator's admin client for allot's HTTP API:
// it waits for readiness, creates the resources a scenario needs and reads
// the final state back for verification. Calls retry 429 and 503 politely
// (Retry-After, backoff) and move to the next target on transport errors.
package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"allot/actors/domain"
	"allot/bench/scenario"
)

// Retry policy of admin calls.
const (
	maxAttempts   = 10
	baseBackoff   = 100 * time.Millisecond
	maxBackoff    = 2 * time.Second
	maxRetryAfter = 5 * time.Second
	maxBody       = 8 << 20
)

// StatusError is an answer the client did not expect. It unwraps to the
// domain sentinel of its problem code, so callers match it with errors.Is.
type StatusError struct {
	Method, Path string
	Status       int
	Code         string
	Detail       string
	// Earliest is the oldest offset kept, from a 410 offset_compacted.
	Earliest int64
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("%s %s: %d %s: %s", e.Method, e.Path, e.Status, e.Code, e.Detail)
}

// Unwrap maps the problem code to its sentinel (nil if unknown).
func (e *StatusError) Unwrap() error {
	switch e.Code {
	case "invalid_argument", "payload_too_large":
		return domain.ErrInvalidArgument
	case "unauthenticated":
		return domain.ErrUnauthenticated
	case "permission_denied":
		return domain.ErrPermissionDenied
	case "not_found":
		return domain.ErrNotFound
	case "invalid_state":
		return domain.ErrInvalidState
	case "rate_limited":
		return domain.ErrRateLimited
	case "unavailable":
		return domain.ErrUnavailable
	case "outcome_unknown":
		return domain.ErrOutcomeUnknown
	case "idempotency_key_reused":
		return domain.ErrIdempotencyKeyReused
	case "request_in_progress":
		return domain.ErrRequestInProgress
	}
	return nil
}

// Client talks to one allot cluster as an admin. It is safe for concurrent
// use.
type Client struct {
	targets []string
	hc      *http.Client
	auths   []string      // "Bearer ..." of each admin identity
	turn    atomic.Uint64 // which identity sends the next call

	mu   sync.Mutex
	next int        // target to use
	rng  *rand.Rand // backoff jitter
	date time.Time  // latest server Date header seen
}

// New returns a client for the given base URLs that authenticates with
// admin tokens, taking turns. The server rate-limits each user, so several
// admin identities let setup and read-back run in parallel without being
// throttled; a 429 is still waited out politely.
func New(targets []string, hc *http.Client, adminTokens []string) *Client {
	c := &Client{targets: targets, hc: hc, rng: rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 0))}
	for _, t := range adminTokens {
		c.auths = append(c.auths, "Bearer "+t)
	}
	return c
}

// reply is a 2xx answer.
type reply struct {
	status int
	body   []byte
	date   time.Time // the server's Date header; zero if absent
}

// WaitReady polls GET /readyz on every target until each answers 200.
func (c *Client) WaitReady(ctx context.Context) error {
	for _, t := range c.targets {
		for {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, t+"/readyz", nil)
			if err != nil {
				return err
			}
			res, err := c.hc.Do(req)
			if err == nil {
				io.Copy(io.Discard, io.LimitReader(res.Body, maxBody))
				res.Body.Close()
				if res.StatusCode == http.StatusOK {
					break
				}
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("waiting for %s to be ready: %w", t, context.Cause(ctx))
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	return nil
}

// PutResources creates (or updates) defs, parallel at a time.
func (c *Client) PutResources(ctx context.Context, defs []scenario.ResourceDef, parallel int) error {
	return forEach(ctx, len(defs), parallel, func(ctx context.Context, i int) error {
		d := defs[i]
		r, err := c.do(ctx, http.MethodPut, "/v1/resources/"+d.ID, d.Body)
		if err != nil {
			return err
		}
		if r.status != http.StatusCreated && r.status != http.StatusOK {
			return fmt.Errorf("PUT /v1/resources/%s: unexpected status %d", d.ID, r.status)
		}
		return nil
	})
}

// do sends one request, retrying 429, 503 and transport errors, and
// returns the final 2xx answer; any other answer is a *StatusError.
func (c *Client) do(ctx context.Context, method, path string, body []byte) (reply, error) {
	var last error
	for attempt := 1; attempt <= maxAttempts; attempt++ {
		r, retryAfter, err := c.once(ctx, method, path, body)
		switch {
		case err != nil:
			if ctx.Err() != nil {
				return reply{}, err
			}
			last = err
			c.rotate()
		case r.status == http.StatusTooManyRequests || r.status == http.StatusServiceUnavailable:
			last = statusError(method, path, r.status, r.body)
		case r.status >= 200 && r.status < 300:
			return r, nil
		default:
			return reply{}, statusError(method, path, r.status, r.body)
		}
		if err := c.pause(ctx, attempt, retryAfter); err != nil {
			return reply{}, fmt.Errorf("%s %s: %w (last: %v)", method, path, err, last)
		}
	}
	return reply{}, fmt.Errorf("%s %s: gave up after %d attempts: %w", method, path, maxAttempts, last)
}

func (c *Client) once(ctx context.Context, method, path string, body []byte) (reply, time.Duration, error) {
	c.mu.Lock()
	base := c.targets[c.next]
	c.mu.Unlock()
	var rd io.Reader = http.NoBody
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, base+path, rd)
	if err != nil {
		return reply{}, 0, err
	}
	req.Header.Set("Authorization", c.auths[c.turn.Add(1)%uint64(len(c.auths))])
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := c.hc.Do(req)
	if err != nil {
		return reply{}, 0, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, maxBody))
	if err != nil {
		return reply{}, 0, err
	}
	r := reply{status: res.StatusCode, body: b}
	if d, err := http.ParseTime(res.Header.Get("Date")); err == nil {
		r.date = d
	}
	var retryAfter time.Duration
	if s, err := strconv.Atoi(res.Header.Get("Retry-After")); err == nil && s > 0 {
		retryAfter = time.Duration(s) * time.Second
	}
	return r, retryAfter, nil
}

func (c *Client) rotate() {
	c.mu.Lock()
	c.next = (c.next + 1) % len(c.targets)
	c.mu.Unlock()
}

// pause waits before attempt+1: Retry-After if given, else exponential
// backoff with jitter.
func (c *Client) pause(ctx context.Context, attempt int, retryAfter time.Duration) error {
	d := min(retryAfter, maxRetryAfter)
	if d == 0 {
		b := min(baseBackoff<<(attempt-1), maxBackoff)
		c.mu.Lock()
		d = b/2 + time.Duration(c.rng.Int64N(int64(b)))
		c.mu.Unlock()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-t.C:
		return nil
	}
}

func statusError(method, path string, status int, body []byte) error {
	e := &StatusError{Method: method, Path: path, Status: status}
	var p struct {
		Code     string `json:"code"`
		Detail   string `json:"detail"`
		Earliest int64  `json:"earliest"`
	}
	if json.Unmarshal(body, &p) == nil {
		e.Code, e.Detail, e.Earliest = p.Code, p.Detail, p.Earliest
	} else {
		e.Detail = string(body[:min(len(body), 200)])
	}
	return e
}

// forEach runs fn(i) for i in [0, n), parallel at a time, and returns the
// first error; after one, the rest are skipped.
func forEach(ctx context.Context, n, parallel int, fn func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	work := make(chan int)
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	for range max(1, min(parallel, n)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				if err := fn(ctx, i); err != nil {
					once.Do(func() { first = err; cancel(err) })
				}
			}
		}()
	}
feed:
	for i := range n {
		select {
		case work <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()
	if first != nil {
		return first
	}
	return ctx.Err()
}
