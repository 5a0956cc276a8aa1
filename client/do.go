package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"allot/actors/domain"
)

// request is one API call as the methods describe it.
type request struct {
	method, path string
	query        url.Values
	body         any // marshalled as JSON; nil sends no body
	out          any // the 2xx body is decoded into it; nil discards it
	// self: the route is answered by the node asked, never forwarded
	// (/v1/events, /v1/cluster).
	self bool
	// wait is how long the server may hold the answer (an event long-poll),
	// added to the attempt's timeout.
	wait time.Duration
	// status, if set, is given the 2xx status.
	status *int
}

// do sends req, retrying what may succeed later, and decodes its answer.
func (c *Client) do(ctx context.Context, req request, opts []CallOption) error {
	var cl call
	for _, o := range opts {
		o(&cl)
	}
	write := req.method != http.MethodGet && req.method != http.MethodHead
	var body []byte
	if req.body != nil {
		var err error
		if body, err = json.Marshal(req.body); err != nil {
			return fmt.Errorf("client: %s %s: encoding the body: %w", req.method, req.path, err)
		}
	}
	key := ""
	if write && !cl.noKey {
		if key = cl.key; key == "" {
			key = rand.Text()
		}
	}
	q := url.Values{}
	for k, v := range req.query {
		q[k] = v
	}
	for k, v := range cl.query {
		q[k] = v
	}
	toLeader := write
	if !write && !req.self {
		level := cl.consistency
		if level == "" {
			level = c.opts.Consistency
		}
		if level != "" {
			q.Set("consistency", string(level))
		}
		toLeader = level != Stale
	}
	target := req.path
	if len(q) > 0 {
		target += "?" + q.Encode()
	}
	// A POST without a key that may have reached the server is not sent
	// again: it could act twice. PUT and DELETE may be (the server keeps no
	// key for them, so a retry of one that was acted on answers as if it
	// had not been: a 404 for a delete done, "updated" for a create; an
	// error after an ambiguous attempt says outcome unknown).
	replayable := key != "" || req.method != http.MethodPost

	tok := c.opts.Token
	if c.opts.TokenSource != nil {
		var err error
		if tok, err = c.opts.TokenSource(ctx); err != nil {
			return fmt.Errorf("client: %s %s: token: %w", req.method, req.path, err)
		}
	}

	if cl.resp != nil {
		*cl.resp = Response{IdempotencyKey: key}
	}
	limit := c.opts.MaxAttempts
	if cl.maxAttempts > 0 {
		limit = cl.maxAttempts
	}
	var last error
	// ambiguous: an attempt of this write may have been acted on; an
	// error that ends the call then says so, whatever the last answer.
	ambiguous := false
	unknown := func(err error) error {
		if ambiguous && !errors.Is(err, domain.ErrOutcomeUnknown) {
			return fmt.Errorf("%w (an attempt may have been acted on: %w)", err, domain.ErrOutcomeUnknown)
		}
		return err
	}
	for attempt := 1; ; attempt++ {
		if toLeader && c.route.needRefresh() {
			c.refreshLeader(ctx)
		}
		base := c.route.pick(toLeader)
		a, err := c.attempt(ctx, req, base, target, body, tok, key, cl.requestID)
		cl.record(attempt, base, a)
		var retryAfter time.Duration
		switch {
		case err != nil:
			// A request that never left (no connection) was not acted on.
			sent := !notSent(err)
			ambiguous = ambiguous || write && sent
			if ctx.Err() != nil {
				return unknown(errors.Join(fmt.Errorf("client: %s %s: %w", req.method, req.path, context.Cause(ctx)), last))
			}
			c.route.failed(base, true)
			if write && !replayable && sent {
				return fmt.Errorf("client: %s %s: %w (the request may have been acted on: %w)", req.method, req.path, err, domain.ErrOutcomeUnknown)
			}
			last = fmt.Errorf("client: %s %s on %s: %w", req.method, req.path, base, err)
		case a.status >= 200 && a.status < 300:
			c.route.answered(base, a.node, req.self || !toLeader, toLeader)
			if req.status != nil {
				*req.status = a.status
			}
			if req.out == nil || len(a.body) == 0 {
				return nil
			}
			if err := json.Unmarshal(a.body, req.out); err != nil {
				return fmt.Errorf("client: %s %s: decoding the answer: %w", req.method, req.path, err)
			}
			return nil
		default:
			pe := newProblem(req.method, req.path, a.status, a.node, a.body)
			if ambiguous && req.method == http.MethodDelete && a.status == http.StatusNotFound {
				// An earlier attempt may have done the delete: what was
				// asked for, the thing gone, holds.
				return nil
			}
			if write && (pe.Code == "outcome_unknown" || pe.Code == "" && a.status >= 500) {
				ambiguous = true
			}
			// Without a key only allot's own word that nothing was done
			// (rate_limited, unavailable) makes a second send safe; a bare
			// 502/503/504 from a gateway may follow a delivered request.
			if !pe.Retryable() || !replayable && pe.Code != "rate_limited" && pe.Code != "unavailable" {
				if key != "" && req.method == http.MethodPost && pe.Code != "outcome_unknown" && pe.Code != "" {
					// A reserve or transition answers a retried key with the
					// first attempt's answer: this one is definite.
					return pe
				}
				return unknown(pe)
			}
			if a.status == http.StatusServiceUnavailable {
				c.route.failed(base, false)
			}
			last = pe
			retryAfter = a.retryAfter
		}
		if attempt >= limit {
			return unknown(fmt.Errorf("client: gave up after %d attempts: %w", attempt, last))
		}
		if err := c.pause(ctx, attempt, retryAfter); err != nil {
			return unknown(last)
		}
	}
}

// record fills the caller's Capture, if any, with attempt's answer a (nil
// when there was none) from base.
func (cl *call) record(attempt int, base string, a *answer) {
	r := cl.resp
	if r == nil {
		return
	}
	r.Attempts, r.URL = attempt, base
	if a == nil {
		return
	}
	r.Status, r.Node, r.RequestID, r.Header = a.status, a.node, a.header.Get("X-Request-ID"), a.header
	r.Replayed = a.header.Get("Idempotent-Replayed") == "true"
	if d, err := http.ParseTime(a.header.Get("Date")); err == nil {
		r.Date = d
	}
}

// answer is one attempt's answer.
type answer struct {
	status     int
	node       string
	header     http.Header
	body       []byte
	retryAfter time.Duration
}

// attempt sends one request to base.
func (c *Client) attempt(ctx context.Context, req request, base, target string, body []byte, tok, key, requestID string) (*answer, error) {
	ctx, cancel := context.WithTimeout(ctx, c.opts.RequestTimeout+req.wait)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	hr, err := http.NewRequestWithContext(ctx, req.method, base+target, rd)
	if err != nil {
		return nil, err
	}
	if tok != "" {
		hr.Header.Set("Authorization", "Bearer "+tok)
	}
	if body != nil {
		hr.Header.Set("Content-Type", "application/json")
	}
	hr.Header.Set("Accept", "application/json")
	hr.Header.Set("User-Agent", c.opts.UserAgent)
	if key != "" {
		hr.Header.Set("Idempotency-Key", key)
	}
	if requestID != "" {
		hr.Header.Set("X-Request-ID", requestID)
	}
	res, err := c.hc.Do(hr)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, c.opts.MaxResponseBytes+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > c.opts.MaxResponseBytes {
		return nil, fmt.Errorf("answer over %d bytes", c.opts.MaxResponseBytes)
	}
	a := &answer{status: res.StatusCode, node: res.Header.Get("X-Allot-Node"), header: res.Header, body: b}
	a.retryAfter = parseRetryAfter(res.Header.Get("Retry-After"), time.Now())
	return a, nil
}

// parseRetryAfter reads Retry-After as seconds or an HTTP date; 0 when
// absent or unreadable.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil {
		return time.Duration(max(s, 0)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// pause waits before attempt+1: the server's Retry-After (capped) if it
// named one, else a doubling backoff with jitter. It returns an error at
// once, without waiting, when ctx would end before the wait does: the
// caller then reports the last answer rather than a deadline.
func (c *Client) pause(ctx context.Context, attempt int, retryAfter time.Duration) error {
	d := min(retryAfter, c.opts.MaxRetryAfter)
	if d <= 0 {
		b := c.opts.MinBackoff << min(attempt-1, 20)
		d = c.jitter(min(b, c.opts.MaxBackoff))
	}
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < d {
		return context.DeadlineExceeded
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

// refreshLeader asks GET /v1/cluster for the leader's address, briefly and
// at most once; a failure leaves writes going through any node.
func (c *Client) refreshLeader(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, min(c.opts.RequestTimeout, 2*time.Second))
	defer cancel()
	var info ClusterInfo
	if c.do(ctx, request{method: http.MethodGet, path: "/v1/cluster", out: &info, self: true}, []CallOption{maxOne}) == nil {
		c.route.learn(&info)
	}
}

// notSent reports whether err means the request never reached a server: the
// connection could not be made.
func notSent(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}
