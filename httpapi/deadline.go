package httpapi

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// sharedDeadlines hands out the deadline contexts of engine and reader
// calls. context.WithTimeout per request costs four allocations and a
// runtime timer, the largest share of a sold-out rejection's cost; requests
// that start within the same short window share one context instead. A
// shared context is never cancelled early or reused, so a caller that keeps
// it (or a goroutine started from it) sees an ordinary deadline.
//
// The window is at most timeout/64 (and 10 ms): a call's deadline falls
// between timeout minus the window and timeout after it starts, never
// later, so RequestTimeout stays below the server's write timeout.
//
// The contexts do not descend from the request's: a client that hangs up
// does not cut short the wait for a decision that is being made anyway,
// which then still reaches the logs and metrics. The wait is bounded by
// the deadline either way. Reads, which may wait for a leader's lease or
// for the log to apply and decide nothing, keep the request's context
// (Server.read).
type sharedDeadlines struct {
	timeout time.Duration
	window  time.Duration
	cur     atomic.Pointer[deadlineSlot]
	mu      sync.Mutex // serialises making the next slot
}

// deadlineSlot is the context shared by the calls that start before
// reuseUntil.
type deadlineSlot struct {
	ctx        context.Context
	cancel     context.CancelFunc // released by the deadline's own timer; kept for vet
	reuseUntil time.Time
}

func newSharedDeadlines(timeout time.Duration) *sharedDeadlines {
	return &sharedDeadlines{timeout: timeout, window: min(timeout/64, 10*time.Millisecond)}
}

// context returns a context whose deadline lies between timeout-window
// and timeout after now, the time the call starts. (A caller that read
// its clock, was descheduled, and arrives after a later caller made the
// current slot shares that slot: its deadline is timeout after the slot's
// start, which is when its call in effect starts.)
func (d *sharedDeadlines) context(now time.Time) context.Context {
	if s := d.cur.Load(); s != nil && now.Before(s.reuseUntil) {
		return s.ctx
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if s := d.cur.Load(); s != nil && now.Before(s.reuseUntil) {
		return s.ctx
	}
	ctx, cancel := context.WithDeadline(context.Background(), now.Add(d.timeout))
	d.cur.Store(&deadlineSlot{ctx: ctx, cancel: cancel, reuseUntil: now.Add(d.window)})
	return ctx
}
