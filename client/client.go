package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Options configures a Client; the zero value works with a Token.
type Options struct {
	// Token is the bearer token (a JWT) sent with every request.
	Token string
	// TokenSource, when set, is asked for the token of every call instead
	// of Token: tokens that rotate, or several identities taking turns. It
	// is asked once per call, so that every attempt of a write goes as the
	// same user (an Idempotency-Key is scoped to its user).
	TokenSource func(ctx context.Context) (string, error)
	// HTTPClient sends the requests; nil uses a client of its own. Its
	// Timeout, if any, must exceed RequestTimeout plus the longest event
	// wait asked for.
	HTTPClient *http.Client
	// Consistency is the level of reads that do not name one
	// (WithConsistency); "" leaves it to the server (leader).
	Consistency Consistency
	// RequestTimeout bounds each attempt (an event long-poll gets its wait
	// on top), so that a node that hangs is left for another; 0 means 15s.
	RequestTimeout time.Duration
	// MaxAttempts bounds the requests one call sends; 0 means 10. The
	// context's deadline bounds them too.
	MaxAttempts int
	// MinBackoff and MaxBackoff bound the wait between attempts when the
	// server names none (Retry-After): it doubles from MinBackoff up to
	// MaxBackoff, with jitter. 0 means 50ms and 2s.
	MinBackoff, MaxBackoff time.Duration
	// MaxRetryAfter caps a server's Retry-After; 0 means 10s.
	MaxRetryAfter time.Duration
	// MaxResponseBytes bounds an answer's body; 0 means 16 MiB.
	MaxResponseBytes int64
	// UserAgent is sent as User-Agent; "" means "allot-go-client".
	UserAgent string
}

func (o *Options) fill() {
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = 15 * time.Second
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 10
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = 50 * time.Millisecond
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 2 * time.Second
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = o.MinBackoff
	}
	if o.MaxRetryAfter <= 0 {
		o.MaxRetryAfter = 10 * time.Second
	}
	if o.MaxResponseBytes <= 0 {
		o.MaxResponseBytes = 16 << 20
	}
	if o.UserAgent == "" {
		o.UserAgent = "allot-go-client"
	}
}

// Client calls one allot cluster. It is safe for concurrent use.
type Client struct {
	opts  Options
	hc    *http.Client
	nodes []string // base URLs as given, without a trailing slash
	route *router

	mu  sync.Mutex
	rng *rand.Rand // backoff jitter
}

// New returns a client of the cluster whose nodes answer at the base URLs
// nodes ("http://10.0.0.1:8080"); one is enough, more let it go on when a
// node is down.
func New(nodes []string, opts Options) (*Client, error) {
	if len(nodes) == 0 {
		return nil, errors.New("client: no node URL")
	}
	opts.fill()
	c := &Client{opts: opts, hc: opts.HTTPClient, rng: rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))}
	if c.hc == nil {
		c.hc = &http.Client{Transport: &http.Transport{
			Proxy: http.ProxyFromEnvironment, MaxIdleConnsPerHost: 64, IdleConnTimeout: 90 * time.Second,
		}}
	}
	for _, n := range nodes {
		n = strings.TrimRight(strings.TrimSpace(n), "/")
		u, err := url.Parse(n)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Path != "" {
			return nil, fmt.Errorf("client: %q is not a base URL like http://host:8080", n)
		}
		c.nodes = append(c.nodes, n)
	}
	c.route = newRouter(c.nodes)
	return c, nil
}

// Nodes is the base URLs the client was given.
func (c *Client) Nodes() []string { return append([]string(nil), c.nodes...) }

// LeaderURL is the base URL writes go to now: the leader's when known,
// else "".
func (c *Client) LeaderURL() string { return c.route.leaderURL() }

// WaitReady polls GET /readyz on every node until each answers 200 (it
// knows a leader and has caught up), or ctx ends.
func (c *Client) WaitReady(ctx context.Context) error {
	for _, n := range c.nodes {
		for {
			err := c.ready(ctx, n)
			if err == nil {
				break
			}
			t := time.NewTimer(100 * time.Millisecond)
			select {
			case <-ctx.Done():
				t.Stop()
				return fmt.Errorf("client: waiting for %s to be ready: %w (last: %v)", n, context.Cause(ctx), err)
			case <-t.C:
			}
		}
	}
	return nil
}

func (c *Client) ready(ctx context.Context, base string) error {
	ctx, cancel := context.WithTimeout(ctx, c.opts.RequestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/readyz", nil)
	if err != nil {
		return err
	}
	res, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("%d %s", res.StatusCode, strings.TrimSpace(string(b)))
	}
	return nil
}

// jitter is a random duration in [d/2, d).
func (c *Client) jitter(d time.Duration) time.Duration {
	if d <= 1 {
		return d
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return d/2 + time.Duration(c.rng.Int64N(int64(d/2)))
}
