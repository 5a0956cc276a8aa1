package httpapi

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"allot/actors/domain"
)

// headerForwarded marks a request one node forwarded to the leader; its
// value is the forwarding node's id and a proof that a node made it
// (forwardmark.go). A node that receives such a request
// and does not lead answers 503 instead of forwarding it again, so a stale
// view of who leads costs the client one retry, never a loop.
const headerForwarded = "X-Allot-Forwarded"

// routing says whether a route must run on the leader.
type routing uint8

const (
	onLeader   routing = iota + 1 // writes: forwarded to the leader
	leaderRead                    // reads: forwarded unless ?consistency=stale
)

// forwarder sends requests that need the leader to it: one reverse-proxy
// transport (keep-alive connections to the leader are reused by a flash
// crowd arriving at a follower) and the deadline of a forwarded request.
type forwarder struct {
	transport *http.Transport
	timeout   time.Duration
	errorLog  *log.Logger // the proxy's own complaints (a body copy cut short)
}

func newForwarder(requestTimeout, writeTimeout time.Duration, peerTLS *tls.Config, logger *slog.Logger) *forwarder {
	return &forwarder{
		transport: &http.Transport{
			TLSClientConfig:     peerTLS,
			DialContext:         (&net.Dialer{Timeout: 2 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        1024,
			MaxIdleConnsPerHost: 256,
			IdleConnTimeout:     90 * time.Second,
		},
		// The leader answers by its own RequestTimeout; waiting a little
		// longer lets its answer (outcome_unknown included) come through,
		// and stays within this server's WriteTimeout.
		timeout:  requestTimeout + (writeTimeout-requestTimeout)/2,
		errorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
}

// viaLeader wraps a handler whose route needs the leader. On a node that
// knows another node leads, the request goes there unchanged (method, path,
// query, headers, body); otherwise h runs here, and answers 503 if this
// node cannot serve it (no leader known, barrier not passed, leadership
// just lost: the engine's ErrNotLeader then means nothing was enqueued, and
// the client's retry is forwarded).
func (s *Server) viaLeader(r routing, h authedHandler) authedHandler {
	return func(c *gin.Context, p domain.Principal) error {
		if r == leaderRead && c.Query("consistency") == "stale" {
			return h(c, p)
		}
		leader, ok := s.cfg.Cluster.LeaderHTTPAddr()
		switch {
		case !ok:
			return h(c, p)
		case c.Request.Header.Get(headerForwarded) != "":
			return fmt.Errorf("a forwarded request reached a node that does not lead (the leader is at %s): %w",
				leader, domain.ErrUnavailable)
		default:
			return s.forward(c, leader, r == leaderRead)
		}
	}
}

// forward proxies the request to the leader at base and copies its answer
// back. The leader's answer carries its own X-Allot-Node and the request's
// X-Request-ID, which is sent along so both nodes log the same id.
func (s *Server) forward(c *gin.Context, base string, read bool) error {
	target, err := url.Parse(base)
	if err != nil || target.Host == "" {
		return fmt.Errorf("leader address %q is not a URL: %w", base, domain.ErrUnavailable)
	}
	h := c.Writer.Header()
	reqID := h.Get(headerRequestID)
	h.Del(headerRequestID)
	h.Del(headerNode)
	ctx, cancel := context.WithTimeout(c.Request.Context(), s.fwd.timeout)
	defer cancel()
	proxy := &httputil.ReverseProxy{
		Transport: s.fwd.transport,
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.SetXForwarded()
			pr.Out.Header.Set(headerRequestID, reqID)
			pr.Out.Header.Set(headerForwarded, s.mark.mine)
		},
		ErrorLog: s.fwd.errorLog,
	}
	body := &trackedBody{rc: c.Request.Body}
	// The proxy calls ErrorHandler before it has written anything and
	// returns right after; its error is this handler's.
	var failed error
	proxy.ErrorHandler = func(_ http.ResponseWriter, _ *http.Request, err error) {
		h.Set(headerRequestID, reqID)
		h.Set(headerNode, s.cfg.NodeID)
		if complete, berr := body.state(); !complete && (berr != nil || c.Request.Context().Err() != nil) {
			// The client's body never arrived whole, so the leader cannot
			// have acted on it: not an unknown outcome, and the error text
			// (socket addresses) stays here.
			if berr == nil {
				berr = os.ErrDeadlineExceeded
			}
			failed = bodyReadError(c, berr)
			return
		}
		failed = forwardError(base, err, read)
	}
	out := c.Request.WithContext(ctx)
	if c.Request.Body != nil && c.Request.Body != http.NoBody {
		out.Body = body
	} else {
		body.eof = true
	}
	proxy.ServeHTTP(c.Writer, out)
	return failed
}

// trackedBody is a request body that remembers whether it was read to the
// end and the first error reading it. The proxy's transport reads it on
// its own goroutine.
type trackedBody struct {
	rc  io.ReadCloser
	mu  sync.Mutex
	err error
	eof bool
}

func (b *trackedBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if err != nil {
		b.mu.Lock()
		if err == io.EOF {
			b.eof = true
		} else if b.err == nil {
			b.err = err
		}
		b.mu.Unlock()
	}
	return n, err
}

func (b *trackedBody) Close() error { return b.rc.Close() }

// state says whether the body was read whole, and the first read error.
func (b *trackedBody) state() (complete bool, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.eof, b.err
}

// forwardError classifies a failed forward. Nothing reached the leader when
// the connection could not be made, and a read changes nothing anyway: both
// are unavailable. A write that may have reached the leader is ambiguous.
func forwardError(base string, err error, read bool) error {
	if op, ok := errors.AsType[*net.OpError](err); read || ok && op.Op == "dial" {
		return fmt.Errorf("forward to the leader at %s: %v: %w", base, err, domain.ErrUnavailable)
	}
	return fmt.Errorf("forward to the leader at %s: %v: %w", base, err, domain.ErrOutcomeUnknown)
}

// Close releases the connections kept to other nodes.
func (s *Server) Close() { s.fwd.transport.CloseIdleConnections() }
