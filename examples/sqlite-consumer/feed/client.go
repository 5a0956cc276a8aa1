package feed

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// ErrNoStream is returned when the server answers 404 on GET /v1/events:
// it has no change stream (an allot older than the stream).
var ErrNoStream = errors.New("the server has no change stream (GET /v1/events answered 404)")

// CompactedError is the 410 offset_compacted answer: the events after the
// offset asked for are no longer kept (they are older than the cluster's
// --event-retention). A consumer that gets it has missed changes and must
// resynchronise from the current state; reading on from Earliest would
// silently skip what was lost.
type CompactedError struct {
	After    int64 // the offset asked for
	Earliest int64 // the oldest offset still kept
}

func (e *CompactedError) Error() string {
	return fmt.Sprintf("offset_compacted: events after %d are gone, the oldest kept is %d", e.After, e.Earliest)
}

// StatusError is an answer the client does not retry (401, 403, 400, ...).
type StatusError struct {
	Status   int
	Code     string
	Detail   string
	earliest int64 // of a 410
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Detail)
}

// Config says where and how a Client reads.
type Config struct {
	// URLs are the base URLs of one or more nodes ("http://127.0.0.1:8080").
	// Any node serves the stream; on a transport error the client moves to
	// the next one.
	URLs []string
	// Token is the bearer token: a consumer (or admin) token.
	Token string
	// Shard is the shard to read; 0 today.
	Shard int
	// Types and Resource are the server-side filters (?type=, ?resource=);
	// empty reads everything.
	Types    string
	Resource string
	// Limit is the most events per page (the server allows 1..1000).
	Limit int
	// Wait is how long the server holds a poll open when nothing is new
	// (at most 60s).
	Wait time.Duration
	// MaxBackoff caps the pause between retries of a failed poll, and a
	// Retry-After the server asks for.
	MaxBackoff time.Duration
	// HTTP is the client to use; nil means one with no overall timeout:
	// every poll has its own deadline of Wait plus 15s.
	HTTP *http.Client
	// Logger reports retries; nil discards.
	Logger *slog.Logger
}

// DefaultConfig is a 30 s long-poll of up to 500 events.
func DefaultConfig() Config {
	return Config{Limit: 500, Wait: 30 * time.Second, MaxBackoff: 30 * time.Second}
}

// Client long-polls GET /v1/events and reads the state a resync starts
// from. It is not safe for concurrent use:
// a consumer reads one shard in order, from one goroutine.
type Client struct {
	cfg  Config
	hc   *http.Client
	log  *slog.Logger
	next int // index into cfg.URLs
}

// New returns a Client; it checks cfg.
func New(cfg Config) (*Client, error) {
	if len(cfg.URLs) == 0 {
		return nil, errors.New("feed: no URL")
	}
	urls := make([]string, len(cfg.URLs))
	for i, u := range cfg.URLs {
		urls[i] = strings.TrimRight(strings.TrimSpace(u), "/")
	}
	cfg.URLs = urls
	if cfg.Token == "" {
		return nil, errors.New("feed: no token")
	}
	d := DefaultConfig()
	if cfg.Limit <= 0 {
		cfg.Limit = d.Limit
	}
	if cfg.Wait < 0 || cfg.Wait > time.Minute {
		return nil, fmt.Errorf("feed: wait %v is outside 0..60s", cfg.Wait)
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = d.MaxBackoff
	}
	c := &Client{cfg: cfg, hc: cfg.HTTP, log: cfg.Logger}
	if c.hc == nil {
		c.hc = &http.Client{}
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	return c, nil
}

// Poll returns the next page after offset after, waiting up to Wait for
// one. It retries what is worth retrying — transport errors, 5xx, 429 and
// 503 (after the Retry-After the server asked for) — until ctx ends, and
// returns *CompactedError on 410, ErrNoStream on 404 and *StatusError on
// any other answer.
func (c *Client) Poll(ctx context.Context, after int64) (*Page, error) {
	q := url.Values{}
	q.Set("after", strconv.FormatInt(after, 10))
	q.Set("limit", strconv.Itoa(c.cfg.Limit))
	if c.cfg.Wait > 0 {
		q.Set("wait", c.cfg.Wait.String())
	}
	if c.cfg.Shard != 0 {
		q.Set("shard", strconv.Itoa(c.cfg.Shard))
	}
	if c.cfg.Types != "" {
		q.Set("type", c.cfg.Types)
	}
	if c.cfg.Resource != "" {
		q.Set("resource", c.cfg.Resource)
	}
	body, err := c.get(ctx, "/v1/events?"+q.Encode(), c.cfg.Wait+15*time.Second)
	var se *StatusError
	switch {
	case errors.As(err, &se) && se.Status == http.StatusGone:
		return nil, &CompactedError{After: after, Earliest: se.earliest}
	case errors.As(err, &se) && se.Status == http.StatusNotFound:
		return nil, ErrNoStream
	case err != nil:
		return nil, err
	}
	var p Page
	if err := json.Unmarshal(body, &p); err != nil {
		return nil, fmt.Errorf("decoding a page of events: %w", err)
	}
	return &p, nil
}

// get sends GET path until it is answered 200 and returns the body. It
// retries transport errors, 5xx and 429 (after the Retry-After asked
// for) until ctx ends; any other answer is a *StatusError.
func (c *Client) get(ctx context.Context, path string, timeout time.Duration) ([]byte, error) {
	for attempt := 0; ; attempt++ {
		body, retryAfter, err := c.once(ctx, path, timeout)
		if err == nil {
			return body, nil
		}
		if ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		var again retryable
		if !errors.As(err, &again) {
			return nil, err // 410, 404, 401, 403, 400: retrying changes nothing
		}
		pause := retryAfter
		if pause <= 0 {
			b := min(100*time.Millisecond<<min(attempt, 10), c.cfg.MaxBackoff)
			pause = b/2 + rand.N(b/2+1)
		}
		pause = min(pause, c.cfg.MaxBackoff)
		c.log.Warn("request failed; retrying", "path", path, "err", err, "in", pause)
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, context.Cause(ctx)
		case <-t.C:
		}
	}
}

// retryable marks an error worth another attempt.
type retryable struct{ err error }

func (r retryable) Error() string { return r.err.Error() }
func (r retryable) Unwrap() error { return r.err }

// once sends one GET. A retryable failure comes back with the pause the
// server asked for (0: use backoff).
func (c *Client) once(ctx context.Context, path string, timeout time.Duration) ([]byte, time.Duration, error) {
	base := c.cfg.URLs[c.next]
	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, base+path, nil)
	if err != nil {
		return nil, 0, err
	}
	req.Header.Set("Authorization", "Bearer "+c.cfg.Token)
	req.Header.Set("Accept", "application/json")
	res, err := c.hc.Do(req)
	if err != nil {
		c.next = (c.next + 1) % len(c.cfg.URLs) // another node may answer
		return nil, 0, retryable{err}
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, 64<<20))
	if err != nil {
		c.next = (c.next + 1) % len(c.cfg.URLs)
		return nil, 0, retryable{err}
	}
	switch {
	case res.StatusCode == http.StatusOK:
		return body, 0, nil
	case res.StatusCode == http.StatusTooManyRequests || res.StatusCode >= 500:
		return nil, retryAfter(res.Header.Get("Retry-After")), retryable{problem(res.StatusCode, body)}
	default:
		return nil, 0, problem(res.StatusCode, body)
	}
}

// retryAfter parses a Retry-After header: delay-seconds or an HTTP date.
func retryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0)
	}
	return 0
}

func problem(status int, body []byte) *StatusError {
	e := &StatusError{Status: status}
	var p struct {
		Code     string `json:"code"`
		Detail   string `json:"detail"`
		Earliest int64  `json:"earliest"`
	}
	if json.Unmarshal(body, &p) == nil && p.Code != "" {
		e.Code, e.Detail, e.earliest = p.Code, p.Detail, p.Earliest
	} else {
		e.Detail = string(body[:min(len(body), 200)])
	}
	return e
}
