package actors

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"allot/actors/domain"
)

// Webhook delivery (API.md "Webhooks"), on the leader only: one deliverer
// per webhook reads the events after the webhook's committed cursor from
// this node's event log (committed changes only, so never ahead of
// commit), skips those its filters exclude, POSTs the rest in batches in
// offset order with one batch in flight, and after a 2xx commits the
// cursor through the log before it sends the next batch. A new leader
// starts from the committed cursor, so a receiver sees every event at least
// once and in order; a batch whose answer was lost with the leadership is
// sent again.

// maxScan bounds the events one read looks at, so that a filter that
// excludes almost everything does not hold a read transaction for long:
// the cursor moves past what was looked at, and the next read goes on.
const maxScan = 10000

// hookManager runs the deliverers of one term: one per committed webhook,
// started and stopped as webhooks come and go.
type hookManager struct {
	term  *term
	kick  chan struct{} // cap 1: reconcile with committed state
	wg    sync.WaitGroup
	mu    sync.Mutex
	hooks map[string]*deliverer
}

func newHookManager(t *term) *hookManager {
	return &hookManager{term: t, kick: make(chan struct{}, 1), hooks: make(map[string]*deliverer)}
}

// nudge tells the deliverer of id (and the manager) that its committed
// webhook changed.
func (m *hookManager) nudge(id string) {
	m.mu.Lock()
	d := m.hooks[id]
	m.mu.Unlock()
	if d != nil {
		d.nudge()
	}
	select {
	case m.kick <- struct{}{}:
	default:
	}
}

func (m *hookManager) status(id string) (domain.WebhookDelivery, bool) {
	m.mu.Lock()
	d := m.hooks[id]
	m.mu.Unlock()
	if d == nil {
		return domain.WebhookDelivery{}, false
	}
	return d.status(), true
}

// run reconciles the deliverers with committed state at the start of the
// term and after every webhook write of this node; only the leader writes
// webhooks, and the term starts after its barrier, so nothing else changes
// them meanwhile.
func (m *hookManager) run(ctx context.Context) {
	defer m.wg.Wait()
	e := m.term.engine
	if e.cfg.Events == nil {
		return
	}
	for {
		var ids []string
		e.log.View(func(st *domain.State) {
			st.ListWebhooks("", func(w domain.Webhook) bool {
				ids = append(ids, w.ID)
				return true
			})
		})
		m.reconcile(ctx, ids)
		select {
		case <-ctx.Done():
			return
		case <-m.kick:
		}
	}
}

func (m *hookManager) reconcile(ctx context.Context, ids []string) {
	live := make(map[string]bool, len(ids))
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, id := range ids {
		live[id] = true
		if m.hooks[id] != nil {
			continue
		}
		dctx, cancel := context.WithCancel(ctx)
		d := &deliverer{term: m.term, id: id, cancel: cancel, wake: make(chan struct{}, 1), state: domain.DeliveryActive}
		m.hooks[id] = d
		m.wg.Add(1)
		go func() { defer m.wg.Done(); d.run(dctx) }()
	}
	for id, d := range m.hooks {
		if !live[id] {
			d.cancel()
			delete(m.hooks, id)
		}
	}
	m.term.engine.hookCounts.forget(func(id string) bool { return live[id] })
}

// deliverer sends one webhook's events.
type deliverer struct {
	term   *term
	id     string
	cancel context.CancelFunc
	wake   chan struct{} // cap 1: the committed webhook changed

	mu          sync.Mutex
	state       domain.DeliveryState
	lastErr     string
	lastAttempt int64

	// pending is the batch built but not yet acknowledged: a retry sends
	// the same events under the same webhook-id.
	pending *hookBatch
}

// hookBatch is one POST: the events after cursor up to last (those the
// filters let through; none when all were skipped).
type hookBatch struct {
	cursor  uint64 // the committed cursor it was read after
	updated int64  // the webhook's UpdatedAt then: a changed spec builds anew
	first   uint64 // offset of the first event in the body, 0 for none
	last    uint64 // the cursor after it is acknowledged
	body    []byte
	msgID   string // the webhook-id, see messageID
}

func (d *deliverer) nudge() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

func (d *deliverer) status() domain.WebhookDelivery {
	d.mu.Lock()
	defer d.mu.Unlock()
	return domain.WebhookDelivery{State: d.state, LastError: d.lastErr, LastAttemptAt: d.lastAttempt}
}

func (d *deliverer) setState(s domain.DeliveryState, lastErr string) {
	d.mu.Lock()
	d.state, d.lastErr = s, lastErr
	d.mu.Unlock()
}

// wait blocks until ch, a nudge or the end of ctx (false); a nil ch waits
// for the other two only.
func (d *deliverer) wait(ctx context.Context, ch <-chan struct{}, timer <-chan time.Time) bool {
	select {
	case <-ctx.Done():
		return false
	case <-ch:
	case <-timer:
	case <-d.wake:
	}
	return true
}

func (d *deliverer) run(ctx context.Context) {
	e := d.term.engine
	cfg := &e.cfg.Webhooks
	src := e.cfg.Events
	failures := 0
	for ctx.Err() == nil {
		changed := src.Changed() // before Head: a move after it wakes the wait
		var w domain.Webhook
		var ok bool
		e.log.View(func(st *domain.State) { w, ok = st.Webhook(d.id) })
		switch {
		case !ok: // deleted: the manager stops this deliverer
			d.wait(ctx, nil, nil)
			continue
		case w.Paused:
			d.pending, failures = nil, 0
			d.setState(domain.DeliveryPaused, "")
			d.wait(ctx, nil, nil)
			continue
		}
		if w.Delivered >= src.Head() {
			d.pending, failures = nil, 0
			d.setState(domain.DeliveryActive, "")
			d.wait(ctx, changed, nil)
			continue
		}
		b, err := d.batch(&w)
		if err != nil {
			failures++
			d.setState(domain.DeliveryRetrying, err.Error())
			d.backoff(ctx, cfg, failures)
			continue
		}
		if b.last == b.cursor { // nothing readable after the cursor yet
			d.wait(ctx, changed, nil)
			continue
		}
		if b.first != 0 {
			if !e.log.LeaseValid() && e.log.VerifyLeader(ctx) != nil {
				// A deposed leader that has not noticed yet sends
				// nothing: its batches would arrive among the new
				// leader's.
				d.wait(ctx, nil, time.After(cfg.BackoffMin))
				continue
			}
			if err := d.send(ctx, &w, b); err != nil {
				if ctx.Err() != nil {
					return
				}
				failures++
				e.hookCounts.add(d.id, func(n *hookCount) { n.failures++ })
				d.setState(domain.DeliveryRetrying, err.Error())
				d.backoff(ctx, cfg, failures)
				continue
			}
			e.hookCounts.add(d.id, func(n *hookCount) { n.deliveries++ })
			failures = 0
			d.setState(domain.DeliveryActive, "")
		}
		if err := d.advance(ctx, b); err != nil && ctx.Err() == nil {
			// The batch is delivered but the cursor did not commit (or
			// may not have): read the committed cursor again after a
			// pause; at worst the batch is sent once more.
			e.cfg.Logger.Warn("webhook cursor not committed", "webhook", d.id, "to", b.last, "error", err)
			d.wait(ctx, nil, time.After(cfg.BackoffMin))
		}
	}
}

// backoff waits before the next attempt after failures failures in a row;
// a change of the webhook (pause, replay, new spec) ends the wait.
func (d *deliverer) backoff(ctx context.Context, cfg *WebhookConfig, failures int) {
	t := time.NewTimer(backoffDelay(cfg.BackoffMin, cfg.BackoffMax, failures))
	defer t.Stop()
	d.wait(ctx, nil, t.C)
}

// backoffDelay is min doubled for every failure after the first, at most
// max.
func backoffDelay(lo, hi time.Duration, failures int) time.Duration {
	d := lo
	for i := 1; i < failures && d < hi; i++ {
		d *= 2
	}
	return min(d, hi)
}

// batch returns the batch to send after w's committed cursor: the pending
// one when it was read after the same cursor and spec, else a new one read
// from the event log. Events the pruning took before they were delivered
// are skipped (said so in the log, and counted); nothing else can send
// them.
func (d *deliverer) batch(w *domain.Webhook) (*hookBatch, error) {
	if p := d.pending; p != nil && p.cursor == w.Delivered && p.updated == w.UpdatedAt {
		return p, nil
	}
	d.pending = nil
	e := d.term.engine
	maxBatch := e.cfg.Webhooks.MaxBatch
	b := &hookBatch{cursor: w.Delivered, updated: w.UpdatedAt, last: w.Delivered}
	filter := w.Filter()
	b.body = append(b.body, `{"events":[`...)
	n, scanned := 0, 0
	earliest, err := e.cfg.Events.ReadEvents(w.Delivered, func(ev StreamEvent) bool {
		if n == maxBatch || scanned == maxScan {
			return false
		}
		scanned++
		b.last = ev.Offset
		if !filter.Match(ev.Type, ev.ResourceID) {
			return true
		}
		if n > 0 {
			b.body = append(b.body, ',')
		} else {
			b.first = ev.Offset
		}
		b.body = append(b.body, ev.JSON...)
		n++
		return true
	})
	if err != nil {
		return nil, fmt.Errorf("read events after %d: %w", w.Delivered, err)
	}
	if scanned == 0 && earliest > w.Delivered+1 {
		e.cfg.Logger.Error("webhook events pruned before they were delivered; delivery goes on after them",
			"webhook", d.id, "after", w.Delivered, "earliest", earliest)
		b.last = earliest - 1
		e.hookCounts.add(d.id, func(n *hookCount) { n.skipped += b.last - w.Delivered })
	}
	b.body = append(b.body, "]}"...)
	b.msgID = messageID(d.id, b)
	d.pending = b
	return b, nil
}

// messageID is a batch's webhook-id, "<webhook id>-<first offset>" as the
// API fixes it: a retry of the batch sends the same id. It does not name
// the content: after the filters change and a replay, or after a failover
// that cuts batches differently, a batch with other events can start at an
// offset already sent. Receivers deduplicate by event offset, which holds
// in every case (docs/DOWNSTREAM.md).
func messageID(webhook string, b *hookBatch) string {
	return webhook + "-" + strconv.FormatUint(b.first, 10)
}

// send POSTs the batch once; nil means a 2xx answer.
func (d *deliverer) send(ctx context.Context, w *domain.Webhook, b *hookBatch) error {
	e := d.term.engine
	cfg := &e.cfg.Webhooks
	now := e.cfg.Clock.Now()
	d.mu.Lock()
	d.lastAttempt = now.UnixNano()
	d.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(b.body))
	if err != nil {
		return fmt.Errorf("request: %w", err)
	}
	msgID := b.msgID
	ts := strconv.FormatInt(now.Unix(), 10)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "allot-webhook")
	req.Header.Set("webhook-id", msgID)
	req.Header.Set("webhook-timestamp", ts)
	req.Header.Set("webhook-signature", Sign([]byte(w.Secret), msgID, ts, b.body))
	resp, err := e.hookClient.Do(req)
	if err != nil {
		return fmt.Errorf("POST %s: %w", w.URL, err)
	}
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // so the connection is reused
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("POST %s: %s: %q", w.URL, resp.Status, bytes.TrimSpace(snippet))
	}
	return nil
}

// advance commits the cursor after the batch and waits for the outcome.
func (d *deliverer) advance(ctx context.Context, b *hookBatch) error {
	e := d.term.engine
	ev := domain.Event{Type: domain.EvAdvanceWebhook, At: d.term.clock.now(),
		Hook: &domain.WebhookOp{Webhook: domain.Webhook{ID: d.id}, From: b.cursor, To: b.last}}
	done := make(chan error, 1)
	e.log.Propose(&domain.Batch{Events: []domain.Event{ev}}, func(results []error, err error) {
		if err == nil && len(results) == 1 {
			err = results[0]
		}
		done <- err
	})
	select {
	case err := <-done:
		if err == nil {
			d.pending = nil
		}
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Sign is the Standard Webhooks signature of a message: "v1," and the
// base64 (standard alphabet) HMAC-SHA256, keyed with the secret's bytes, of
// "<msgID>.<timestamp>.<body>".
func Sign(secret []byte, msgID, timestamp string, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(msgID))
	mac.Write([]byte{'.'})
	mac.Write([]byte(timestamp))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}
