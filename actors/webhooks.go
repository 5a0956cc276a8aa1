package actors

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"allot/actors/domain"
)

// EventSource is the node's copy of the change stream as webhook delivery
// reads it; cmd wires storage.EventLog to it. It holds committed changes
// only, so nothing read from it is ahead of commit.
type EventSource interface {
	// Head is the offset of the newest event readers may see.
	Head() uint64
	// Changed returns a channel closed once Head has moved past what it
	// was when Changed was called.
	Changed() <-chan struct{}
	// ReadEvents calls fn for the events after `after` up to Head, oldest
	// first, until fn returns false, and returns the oldest offset kept
	// (Head+1 when none). When the events right after `after` were pruned
	// it calls fn for none and returns an earliest above after+1. fn runs
	// inside a read transaction: it must not block, and the event's byte
	// slices are valid only during the call.
	ReadEvents(after uint64, fn func(StreamEvent) bool) (earliest uint64, err error)
}

// StreamEvent is one event of the change stream.
type StreamEvent struct {
	Offset     uint64
	At         int64 // leader time of the change, Unix ns
	Type       domain.ChangeType
	ResourceID []byte
	JSON       []byte // the event as the API shows it
}

// WebhookConfig tunes webhook delivery (API.md "Webhooks").
type WebhookConfig struct {
	// Timeout bounds one POST: no answer within it is a failure.
	Timeout time.Duration
	// BackoffMin is the wait after the first failure; it doubles with each
	// further one up to BackoffMax.
	BackoffMin, BackoffMax time.Duration
	// MaxBatch is the most events one POST carries.
	MaxBatch int
	// Transport sends the POSTs; nil is a transport of the engine's own.
	Transport http.RoundTripper
}

// DefaultWebhookConfig returns the defaults of API.md: 10 s, 1 s doubling to
// 5 min, 100 events.
func DefaultWebhookConfig() WebhookConfig {
	return WebhookConfig{Timeout: 10 * time.Second, BackoffMin: time.Second, BackoffMax: 5 * time.Minute, MaxBatch: 100}
}

func (c *WebhookConfig) fill() {
	d := DefaultWebhookConfig()
	if c.Timeout <= 0 {
		c.Timeout = d.Timeout
	}
	if c.BackoffMin <= 0 {
		c.BackoffMin = d.BackoffMin
	}
	if c.BackoffMax < c.BackoffMin {
		c.BackoffMax = max(d.BackoffMax, c.BackoffMin)
	}
	if c.MaxBatch <= 0 || c.MaxBatch > d.MaxBatch {
		c.MaxBatch = d.MaxBatch
	}
	if c.Transport == nil {
		c.Transport = &http.Transport{
			MaxIdleConnsPerHost:   2, // one batch in flight per webhook
			IdleConnTimeout:       90 * time.Second,
			ResponseHeaderTimeout: c.Timeout,
		}
	}
}

// hookWrites serializes the webhook writes of the HTTP API on this node:
// each is checked against committed state and proposed only once the one
// before it has an outcome, so no write is refused by Apply because of
// another (a pause proposed behind a delete of the same webhook). Cursor
// advances of the deliverers need no turn: Apply ignores a stale one.
type hookTurn chan struct{}

// webhookWrite checks and proposes one webhook event, waits until it is
// committed and returns webhook id as committed then (found=false once
// deleted), read before its deliverer hears of the change: a replay answers
// with the cursor it set. build reads committed state and returns the event
// (At filled in here) or why there is none; its errors are definite
// answers, sent under the lease.
func (e *Engine) webhookWrite(ctx context.Context, id string, build func(st *domain.State) (domain.Event, error)) (w domain.Webhook, found bool, err error) {
	t := e.current()
	if t == nil {
		return w, false, fmt.Errorf("this node does not lead: %w", domain.ErrNotLeader)
	}
	select {
	case e.hookTurn <- struct{}{}:
	case <-ctx.Done():
		return w, false, fmt.Errorf("another webhook write is still running: %w", domain.ErrUnavailable)
	case <-t.ctx.Done():
		return w, false, fmt.Errorf("leadership is changing: %w", domain.ErrUnavailable)
	}
	now := t.clock.now()
	var ev domain.Event
	e.log.View(func(st *domain.State) {
		if f := st.LogFormat(); f < domain.BatchV4 {
			err = fmt.Errorf("webhooks need log format %d, the cluster is at %d (a node runs an older binary): %w", domain.BatchV4, f, domain.ErrUnavailable)
			return
		}
		ev, err = build(st)
	})
	if err != nil {
		<-e.hookTurn
		return w, false, e.confirmed(ctx, err)
	}
	ev.At = now
	done := make(chan error, 1)
	e.log.Propose(&domain.Batch{Events: []domain.Event{ev}}, func(results []error, err error) {
		if err == nil && len(results) == 1 {
			err = results[0]
		}
		if !errors.Is(err, domain.ErrOutcomeUnknown) {
			<-e.hookTurn
			done <- err
			return
		}
		// The entry may still commit: the next write waits until this
		// node has applied what it proposed, or leadership is gone.
		go func() {
			bctx, cancel := context.WithTimeout(context.Background(), e.cfg.Webhooks.Timeout)
			_ = e.log.Barrier(bctx)
			cancel()
			<-e.hookTurn
		}()
		done <- err
	})
	select {
	case err = <-done:
	case <-ctx.Done():
		return w, false, fmt.Errorf("%v: %w", ctx.Err(), domain.ErrOutcomeUnknown)
	}
	if err != nil {
		if !errors.Is(err, domain.ErrOutcomeUnknown) && !errors.Is(err, domain.ErrNotLeader) && !errors.Is(err, domain.ErrUnavailable) {
			err = fmt.Errorf("webhook event refused by the log (a bug): %w", err)
		}
		return w, false, err
	}
	w, found = e.committedWebhook(id)
	t.hooks.nudge(id)
	return w, found, nil
}

// committedWebhook reads webhook id after a write committed.
func (e *Engine) committedWebhook(id string) (w domain.Webhook, ok bool) {
	e.log.View(func(st *domain.State) { w, ok = st.Webhook(id) })
	return w, ok
}

// PutWebhook creates (created=true) or updates a webhook and returns it as
// committed. start places the cursor of a new webhook; an update keeps the
// cursor (a replay moves it).
func (e *Engine) PutWebhook(ctx context.Context, spec domain.Webhook, start domain.WebhookStart) (domain.Webhook, bool, error) {
	if err := spec.ValidateSpec(); err != nil {
		return domain.Webhook{}, false, err
	}
	spec.Delivered, spec.Paused, spec.CreatedAt, spec.UpdatedAt = 0, false, 0, 0
	created := false
	w, ok, err := e.webhookWrite(ctx, spec.ID, func(st *domain.State) (domain.Event, error) {
		op := &domain.WebhookOp{Webhook: spec}
		if _, exists := st.Webhook(spec.ID); !exists {
			if st.WebhookCount() >= domain.MaxWebhooks {
				return domain.Event{}, fmt.Errorf("at most %d webhooks: %w", domain.MaxWebhooks, domain.ErrInvalidState)
			}
			cur, err := e.resolveStart(st.EventHead(), start)
			if err != nil {
				return domain.Event{}, err
			}
			op.Webhook.Delivered, created = cur, true
		}
		return domain.Event{Type: domain.EvPutWebhook, Hook: op}, nil
	})
	if err != nil {
		return domain.Webhook{}, false, err
	}
	if !ok {
		return domain.Webhook{}, false, fmt.Errorf("webhook %s was deleted again before the answer: %w", spec.ID, domain.ErrNotFound)
	}
	return w, created, nil
}

// resolveStart turns "start" into a cursor: now is the committed event
// head, earliest is just before the oldest event this node keeps, and an
// offset must lie between the two.
func (e *Engine) resolveStart(head uint64, start domain.WebhookStart) (uint64, error) {
	earliest := e.earliest(head)
	switch start.From {
	case domain.StartNow, 0:
		return head, nil
	case domain.StartEarliest:
		return earliest - 1, nil
	}
	return e.checkCursor(start.After, head, earliest)
}

func (e *Engine) checkCursor(after, head, earliest uint64) (uint64, error) {
	switch {
	case after > head:
		return 0, fmt.Errorf("offset %d is past the newest event %d: %w", after, head, domain.ErrInvalidArgument)
	case after+1 < earliest:
		return 0, fmt.Errorf("events after %d were pruned; the oldest kept is %d: %w", after, earliest, domain.ErrInvalidArgument)
	}
	return after, nil
}

// earliest is the oldest event kept (head+1 when none or without a stream).
func (e *Engine) earliest(head uint64) uint64 {
	if e.cfg.Events == nil {
		return head + 1
	}
	earliest, err := e.cfg.Events.ReadEvents(e.cfg.Events.Head(), func(StreamEvent) bool { return false })
	if err != nil {
		return head + 1
	}
	return min(earliest, head+1)
}

// DeleteWebhook removes a webhook; its delivery stops.
func (e *Engine) DeleteWebhook(ctx context.Context, id string) error {
	_, _, err := e.webhookWrite(ctx, id, func(st *domain.State) (domain.Event, error) {
		if _, ok := st.Webhook(id); !ok {
			return domain.Event{}, fmt.Errorf("webhook %s: %w", id, domain.ErrNotFound)
		}
		return domain.Event{Type: domain.EvDeleteWebhook, Hook: &domain.WebhookOp{Webhook: domain.Webhook{ID: id}}}, nil
	})
	return err
}

// PauseWebhook pauses (true) or resumes a webhook and returns it as
// committed; doing what is done already commits nothing.
func (e *Engine) PauseWebhook(ctx context.Context, id string, paused bool) (domain.Webhook, error) {
	noop := false
	w, ok, err := e.webhookWrite(ctx, id, func(st *domain.State) (domain.Event, error) {
		w, ok := st.Webhook(id)
		if !ok {
			return domain.Event{}, fmt.Errorf("webhook %s: %w", id, domain.ErrNotFound)
		}
		if w.Paused == paused {
			noop = true
			return domain.Event{}, errNoop
		}
		return domain.Event{Type: domain.EvPauseWebhook, Hook: &domain.WebhookOp{Webhook: domain.Webhook{ID: id}, Paused: paused}}, nil
	})
	switch {
	case noop && errors.Is(err, errNoop):
		w, ok = e.committedWebhook(id)
	case err != nil:
		return domain.Webhook{}, err
	}
	if !ok {
		return domain.Webhook{}, fmt.Errorf("webhook %s: %w", id, domain.ErrNotFound)
	}
	return w, nil
}

// errNoop ends a webhook write that has nothing to commit; it is answered
// under the lease like any other answer from committed state.
var errNoop = errors.New("nothing to change")

// ReplayWebhook sets a webhook's cursor to after: delivery goes on with the
// event after it, backwards or forwards.
func (e *Engine) ReplayWebhook(ctx context.Context, id string, after uint64) (domain.Webhook, error) {
	w, ok, err := e.webhookWrite(ctx, id, func(st *domain.State) (domain.Event, error) {
		if _, ok := st.Webhook(id); !ok {
			return domain.Event{}, fmt.Errorf("webhook %s: %w", id, domain.ErrNotFound)
		}
		head := st.EventHead()
		if _, err := e.checkCursor(after, head, e.earliest(head)); err != nil {
			return domain.Event{}, err
		}
		return domain.Event{Type: domain.EvReplayWebhook, Hook: &domain.WebhookOp{Webhook: domain.Webhook{ID: id}, To: after}}, nil
	})
	if err != nil {
		return domain.Webhook{}, err
	}
	if !ok {
		return domain.Webhook{}, fmt.Errorf("webhook %s: %w", id, domain.ErrNotFound)
	}
	return w, nil
}

// WebhookStatus is this node's delivery status of webhook id: false on a
// node that does not lead, or before its deliverer has started.
func (e *Engine) WebhookStatus(id string) (domain.WebhookDelivery, bool) {
	t := e.current()
	if t == nil {
		return domain.WebhookDelivery{}, false
	}
	return t.hooks.status(id)
}

// WebhookMetric is one webhook's delivery as metrics show it.
type WebhookMetric struct {
	ID                   string
	Cursor               uint64
	LagEvents            uint64  // events after the cursor up to the head
	LagSeconds           float64 // age of the oldest of them; 0 when caught up
	Failures, Deliveries uint64  // on this node, since it started
	Skipped              uint64  // events pruned before they were delivered, on this node
}

// WebhookMetrics reports every webhook's delivery while this node leads,
// nothing otherwise (delivery runs on the leader only).
func (e *Engine) WebhookMetrics() []WebhookMetric {
	t := e.current()
	if t == nil {
		return nil
	}
	var out []WebhookMetric
	e.log.View(func(st *domain.State) {
		st.ListWebhooks("", func(w domain.Webhook) bool {
			out = append(out, WebhookMetric{ID: w.ID, Cursor: w.Delivered})
			return true
		})
	})
	now := t.clock.now()
	for i := range out {
		m := &out[i]
		n := e.hookCounts.get(m.ID)
		m.Failures, m.Deliveries, m.Skipped = n.failures, n.deliveries, n.skipped
		if e.cfg.Events == nil {
			continue
		}
		if head := e.cfg.Events.Head(); head > m.Cursor {
			m.LagEvents = head - m.Cursor
			_, _ = e.cfg.Events.ReadEvents(m.Cursor, func(ev StreamEvent) bool {
				m.LagSeconds = max(0, time.Duration(now-ev.At).Seconds())
				return false
			})
		}
	}
	return out
}

// hookCounts are the delivery counters per webhook on this node; they
// outlive terms, so a counter resets only when the process restarts.
type hookCounts struct {
	mu sync.Mutex
	m  map[string]*hookCount
}

// hookCount is one webhook's counters.
type hookCount struct {
	failures, deliveries uint64 // POSTs
	skipped              uint64 // events pruned before they were delivered
}

// add changes webhook id's counters with fn.
func (c *hookCounts) add(id string, fn func(*hookCount)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[string]*hookCount)
	}
	n := c.m[id]
	if n == nil {
		n = new(hookCount)
		c.m[id] = n
	}
	fn(n)
}

func (c *hookCounts) get(id string) hookCount {
	c.mu.Lock()
	defer c.mu.Unlock()
	if n := c.m[id]; n != nil {
		return *n
	}
	return hookCount{}
}

// forget drops the counters of webhooks that no longer exist.
func (c *hookCounts) forget(keep func(id string) bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for id := range c.m {
		if !keep(id) {
			delete(c.m, id)
		}
	}
}
