package client

import (
	"net/http"
	"net/url"
	"time"
)

// Consistency is the ?consistency= level of a read.
type Consistency string

// Read levels (API.md "Reads").
const (
	// Leader: the leader answers from committed state while it leads
	// (the server's default).
	Leader Consistency = "leader"
	// Stale: the node asked answers from its committed state, possibly a
	// little behind.
	Stale Consistency = "stale"
	// Linearizable: reflects every write acknowledged before the read.
	Linearizable Consistency = "linearizable"
)

// CallOption changes one call.
type CallOption func(*call)

// call is what the options of one call set.
type call struct {
	key         string // Idempotency-Key; "" draws one
	noKey       bool
	consistency Consistency
	requestID   string
	query       url.Values
	resp        *Response
	maxAttempts int // 0: Options.MaxAttempts
}

// maxOne sends a call once, without retries.
func maxOne(c *call) { c.maxAttempts = 1 }

// IdempotencyKey sends key as the write's Idempotency-Key (1–255 printable
// ASCII characters) instead of a random one: retrying the call later with
// the same key and body gets the first answer.
func IdempotencyKey(key string) CallOption { return func(c *call) { c.key = key } }

// WithoutIdempotencyKey sends the write without an Idempotency-Key. A
// reserve or transition is then not retried once it may have reached the
// server (a transport error, outcome_unknown): it could happen twice.
func WithoutIdempotencyKey() CallOption { return func(c *call) { c.noKey = true } }

// WithConsistency reads at level instead of the client's default.
func WithConsistency(level Consistency) CallOption {
	return func(c *call) { c.consistency = level }
}

// RequestID sends id as X-Request-ID, which the server echoes and logs.
func RequestID(id string) CallOption { return func(c *call) { c.requestID = id } }

// Nights asks GetResource for a room type's nights [from, to) (YYYY-MM-DD)
// instead of the whole inventory.
func Nights(from, to string) CallOption {
	return func(c *call) {
		if c.query == nil {
			c.query = url.Values{}
		}
		c.query.Set("from", from)
		c.query.Set("to", to)
	}
}

// Capture fills r with the last answer of the call, also when it fails.
func Capture(r *Response) CallOption { return func(c *call) { c.resp = r } }

// Response describes the answer of a call, for callers that need more
// than its body (see Capture).
type Response struct {
	// Status is the HTTP status of the last attempt (0 if none was
	// answered).
	Status int
	// Node is the node that answered (X-Allot-Node), URL the base URL the
	// request was sent to.
	Node, URL string
	// RequestID is the answer's X-Request-ID.
	RequestID string
	// IdempotencyKey is the key the write was sent with.
	IdempotencyKey string
	// Replayed is set when the answer is a stored one for the key
	// (Idempotent-Replayed: true): an earlier attempt had succeeded.
	Replayed bool
	// Date is the server's clock when it answered (its Date header).
	Date time.Time
	// Attempts counts the requests sent for the call.
	Attempts int
	// Header is the last answer's header.
	Header http.Header
}
