package client

import (
	"context"
	"fmt"
	"iter"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// maxWait is the longest wait GET /v1/events takes.
const maxWait = 60 * time.Second

// EventQuery selects events of the change stream; the zero value reads
// every event up to the head and stops.
type EventQuery struct {
	// Types are event types and families ("reservation.*",
	// "resource.created"); none means every type. Filters skip events, but
	// the reader's offset still moves past them.
	Types []string
	// Resource keeps the events of this resource id only.
	Resource string
	// PageSize is the events per request (1–1000); 0 is the server's
	// default (100).
	PageSize int
	// Follow keeps reading once caught up: each request then waits up to
	// Wait for the next event (a long-poll), until the context ends or the
	// loop stops. Without it, All ends once it has reached the head.
	Follow bool
	// Wait is how long a request waits when there is nothing new (Follow
	// only); 0 means 30s, at most 60s.
	Wait time.Duration
}

// EventReader reads the change stream (admin, consumer) in offset order
// from a cursor it keeps: Next is the offset to resume after, in this
// process or in another that stored it. Any node serves the stream from its
// own committed copy, the same events at the same offsets on every node.
// Safe for use by one goroutine at a time.
type EventReader struct {
	c    *Client
	q    EventQuery
	opts []CallOption

	mu             sync.Mutex
	next           int64
	head, earliest int64
}

// EventReader returns a reader of the events after offset after (0: from
// the first).
func (c *Client) EventReader(after int64, q EventQuery, opts ...CallOption) *EventReader {
	if q.Wait <= 0 {
		q.Wait = 30 * time.Second
	}
	q.Wait = min(q.Wait, maxWait)
	return &EventReader{c: c, q: q, opts: opts, next: after}
}

// Next is the offset of the last event the reader yielded or skipped past:
// pass it as after to resume.
func (r *EventReader) Next() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.next
}

// Head is the newest offset the last answer reported committed.
func (r *EventReader) Head() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.head
}

// Earliest is the oldest offset kept, as the last answer reported it.
func (r *EventReader) Earliest() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.earliest
}

// SetNext moves the cursor: the next read returns the events after offset
// after. After ErrOffsetCompacted, SetNext(problem.Earliest-1) skips the
// events no longer kept (reconcile from the current state first).
func (r *EventReader) SetNext(after int64) {
	r.mu.Lock()
	r.next = after
	r.mu.Unlock()
}

// Page reads one page after the cursor and moves the cursor past it
// (wait > 0: the request waits that long for an event if there is none).
// An after below the oldest event kept is a *ProblemError matching
// ErrOffsetCompacted, its Earliest the oldest offset kept.
func (r *EventReader) Page(ctx context.Context, wait time.Duration) (*EventPage, error) {
	p, err := r.fetch(ctx, wait)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.next = max(r.next, p.Next)
	r.mu.Unlock()
	return p, nil
}

// fetch reads the page after the cursor, checking that its events are in
// offset order after it; it does not move the cursor.
func (r *EventReader) fetch(ctx context.Context, wait time.Duration) (*EventPage, error) {
	after := r.Next()
	q := url.Values{"after": {strconv.FormatInt(after, 10)}}
	if len(r.q.Types) > 0 {
		q.Set("type", strings.Join(r.q.Types, ","))
	}
	if r.q.Resource != "" {
		q.Set("resource", r.q.Resource)
	}
	if r.q.PageSize > 0 {
		q.Set("limit", strconv.Itoa(r.q.PageSize))
	}
	if wait > 0 {
		q.Set("wait", min(wait, maxWait).String())
	}
	p := new(EventPage)
	req := request{method: http.MethodGet, path: "/v1/events", query: q, out: p, self: true, wait: wait}
	if err := r.c.do(ctx, req, r.opts); err != nil {
		return nil, err
	}
	prev := after
	for _, e := range p.Events {
		if e.Offset <= prev {
			return nil, fmt.Errorf("client: GET /v1/events after %d: offset %d follows %d", after, e.Offset, prev)
		}
		prev = e.Offset
	}
	if p.Next < prev {
		p.Next = prev
	}
	r.mu.Lock()
	r.head, r.earliest = p.Head, p.Earliest
	r.mu.Unlock()
	return p, nil
}

// All iterates over the events after the cursor in offset order, moving
// the cursor as each is yielded, so that after a break Next is the last
// one the loop saw. It ends when caught up with the head (unless Follow),
// or with an error as its last pair: the context's when it ends, a
// *ProblemError matching ErrOffsetCompacted when the events after the
// cursor are gone.
func (r *EventReader) All(ctx context.Context) iter.Seq2[Event, error] {
	return func(yield func(Event, error) bool) {
		for {
			var wait time.Duration
			if r.q.Follow {
				wait = r.q.Wait
			}
			p, err := r.fetch(ctx, wait)
			if err != nil {
				yield(Event{}, err)
				return
			}
			for _, e := range p.Events {
				r.mu.Lock()
				r.next = e.Offset
				r.mu.Unlock()
				if !yield(e, nil) {
					return
				}
			}
			r.mu.Lock()
			r.next = max(r.next, p.Next)
			caught := r.next >= p.Head
			r.mu.Unlock()
			if caught && !r.q.Follow {
				return
			}
		}
	}
}
