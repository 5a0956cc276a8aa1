package actors

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"allot/actors/domain"
)

// streamLog is an in-memory Log that numbers changes like the FSM (log
// format 4) and keeps them as an EventSource, with JSON that carries only
// the offset, type and resource.
type streamLog struct {
	*memLog
	deposed  atomic.Bool  // LeaseValid false, VerifyLeader fails
	verifies atomic.Int64 // VerifyLeader calls
	emu      sync.Mutex
	events   []StreamEvent
	earlier  uint64 // offsets up to it were pruned
	changed  chan struct{}
}

func newStreamLog() *streamLog {
	l := &streamLog{memLog: newMemLog(), changed: make(chan struct{})}
	l.st.RaiseLogFormat(domain.BatchV4)
	return l
}

func (l *streamLog) Propose(b *domain.Batch, done func([]error, error)) {
	stamped := *b
	stamped.Term = 1 // as a node does from log format 2 on
	data := domain.EncodeBatch(nil, &stamped)
	go func() {
		dec, err := domain.DecodeBatch(data)
		if err != nil {
			done(nil, err)
			return
		}
		res := make([]error, len(dec.Events))
		var out []StreamEvent
		l.mu.Lock()
		for i := range dec.Events {
			var ch domain.Change
			changed, err := l.st.ApplyChange(&dec.Events[i], &ch)
			if res[i] = err; err != nil && !errors.Is(err, domain.ErrDuplicateKey) {
				l.refused.Add(1)
			}
			if changed {
				js := fmt.Sprintf(`{"offset":%d,"type":%q,"resource_id":%q}`, ch.Offset, ch.Type, ch.ResourceID)
				out = append(out, StreamEvent{Offset: ch.Offset, At: ch.At, Type: ch.Type, ResourceID: []byte(ch.ResourceID), JSON: []byte(js)})
			}
		}
		l.mu.Unlock()
		if len(out) > 0 {
			l.emu.Lock()
			l.events = append(l.events, out...)
			close(l.changed)
			l.changed = make(chan struct{})
			l.emu.Unlock()
		}
		done(res, nil)
	}()
}

func (l *streamLog) LeaseValid() bool { return !l.deposed.Load() }

func (l *streamLog) VerifyLeader(context.Context) error {
	l.verifies.Add(1)
	if l.deposed.Load() {
		return errors.New("deposed")
	}
	return nil
}

func (l *streamLog) Head() uint64 {
	l.emu.Lock()
	defer l.emu.Unlock()
	if len(l.events) == 0 {
		return l.earlier
	}
	return l.events[len(l.events)-1].Offset
}

func (l *streamLog) Changed() <-chan struct{} {
	l.emu.Lock()
	defer l.emu.Unlock()
	return l.changed
}

func (l *streamLog) ReadEvents(after uint64, fn func(StreamEvent) bool) (uint64, error) {
	l.emu.Lock()
	defer l.emu.Unlock()
	earliest := l.earlier + 1
	if after+1 < earliest {
		return earliest, nil
	}
	for _, ev := range l.events {
		if ev.Offset > after && !fn(ev) {
			break
		}
	}
	return earliest, nil
}

// prune drops the events up to off.
func (l *streamLog) prune(off uint64) {
	l.emu.Lock()
	defer l.emu.Unlock()
	for len(l.events) > 0 && l.events[0].Offset <= off {
		l.events = l.events[1:]
	}
	l.earlier = off
}

// receiver is a webhook endpoint that checks signatures, fails the
// requests fail picks, and records what it took.
type receiver struct {
	t      *testing.T
	secret string
	fail   func(n int) bool // of the n-th request, from 1

	mu       sync.Mutex
	requests int
	batches  []recvBatch // acknowledged
	failed   []recvBatch
}

type recvBatch struct {
	id      string
	body    string
	offsets []uint64
	types   []string
	rids    []string
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	id, ts := r.Header.Get("webhook-id"), r.Header.Get("webhook-timestamp")
	if want := Sign([]byte(rc.secret), id, ts, body); r.Header.Get("webhook-signature") != want || r.Header.Get("Content-Type") != "application/json" {
		rc.t.Errorf("bad signature or type: %q %q", r.Header.Get("webhook-signature"), r.Header.Get("Content-Type"))
	}
	var msg struct {
		Events []struct {
			Offset     uint64 `json:"offset"`
			Type       string `json:"type"`
			ResourceID string `json:"resource_id"`
		} `json:"events"`
	}
	if err := json.Unmarshal(body, &msg); err != nil {
		rc.t.Errorf("body %s: %v", body, err)
	}
	b := recvBatch{id: id, body: string(body)}
	for _, ev := range msg.Events {
		b.offsets, b.types, b.rids = append(b.offsets, ev.Offset), append(b.types, ev.Type), append(b.rids, ev.ResourceID)
	}
	rc.mu.Lock()
	rc.requests++
	n := rc.requests
	fail := rc.fail != nil && rc.fail(n)
	if fail {
		rc.failed = append(rc.failed, b)
	} else {
		rc.batches = append(rc.batches, b)
	}
	rc.mu.Unlock()
	if fail {
		http.Error(w, "try again", http.StatusInternalServerError)
	}
}

func (rc *receiver) snapshot() (ok, failed []recvBatch) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]recvBatch(nil), rc.batches...), append([]recvBatch(nil), rc.failed...)
}

const testHookSecret = "0123456789abcdef0123456789abcdef"

func newHookEngine(t *testing.T, maxBatch int) (*Engine, *streamLog) {
	t.Helper()
	log := newStreamLog()
	cfg := Config{Webhooks: WebhookConfig{Timeout: 2 * time.Second, BackoffMin: 5 * time.Millisecond, BackoffMax: 40 * time.Millisecond, MaxBatch: maxBatch}}
	cfg.Events = log
	e := New(log, cfg, Hooks{})
	e.SetLeader(true)
	t.Cleanup(func() {
		e.Close()
		if n := log.refused.Load(); n != 0 {
			t.Errorf("the log refused %d events", n)
		}
	})
	return e, log
}

func hook(id, url string) domain.Webhook {
	return domain.Webhook{ID: id, URL: url, Secret: testHookSecret}
}

func cursorOf(e *Engine, id string) uint64 {
	w, _ := e.committedWebhook(id)
	return w.Delivered
}

// TestSign checks the signature against a vector computed with another
// HMAC implementation (Python's hmac and base64 modules).
func TestSign(t *testing.T) {
	got := Sign([]byte(testHookSecret), "orders-42", "1700000000", []byte(`{"events":[{"offset":42}]}`))
	if want := "v1,CpMobVbnRPBDnXegf8vQJlM4r/8YpWuvBAK6J8qAr30="; got != want {
		t.Fatalf("signature %s, want %s", got, want)
	}
}

func TestBackoffDelay(t *testing.T) {
	for _, c := range []struct {
		failures int
		want     time.Duration
	}{{1, time.Second}, {2, 2 * time.Second}, {3, 4 * time.Second}, {9, 256 * time.Second}, {10, 5 * time.Minute}, {1000, 5 * time.Minute}} {
		if got := backoffDelay(time.Second, 5*time.Minute, c.failures); got != c.want {
			t.Errorf("after %d failures: %v, want %v", c.failures, got, c.want)
		}
	}
}

// TestWebhookDelivery: a receiver that fails every third request gets every
// event its filter lets through, in order, in batches of at most MaxBatch,
// each failed batch sent again unchanged (same webhook-id, same body); the
// cursor moves past the events the filter skips and reaches the head.
func TestWebhookDelivery(t *testing.T) {
	e, log := newHookEngine(t, 7)
	rc := &receiver{t: t, secret: testHookSecret, fail: func(n int) bool { return n%3 == 0 }}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	ctx := context.Background()
	for i := range 20 { // before the webhook: "earliest" sends them
		putVoucher(t, e, fmt.Sprintf("keep-%02d", i), 1, 0)
	}
	w := hook("orders", srv.URL+"/in")
	w.ResourcePrefix, w.Types = "keep-", []string{"reservation.*", "resource.created"}
	got, created, err := e.PutWebhook(ctx, w, domain.WebhookStart{From: domain.StartEarliest})
	if err != nil || !created || got.Delivered != 0 {
		t.Fatalf("put: %+v %v %v", got, created, err)
	}
	for i := range 30 {
		putVoucher(t, e, fmt.Sprintf("skip-%02d", i), 1, 0)
		if _, err := reserve(e, fmt.Sprintf("keep-%02d", i%20), fmt.Sprintf("u%d", i), nil); err != nil && !errors.Is(err, domain.ErrSoldOut) {
			t.Fatal(err)
		}
	}
	head := log.Head()
	waitUntil(t, "the cursor to reach the head", func() bool { return cursorOf(e, "orders") == head })

	ok, failed := rc.snapshot()
	var offsets []uint64
	for _, b := range ok {
		if len(b.offsets) == 0 || len(b.offsets) > 7 {
			t.Fatalf("batch of %d events", len(b.offsets))
		}
		if b.id != fmt.Sprintf("orders-%d", b.offsets[0]) {
			t.Fatalf("webhook-id %s for a batch from %d", b.id, b.offsets[0])
		}
		for i, rid := range b.rids {
			if !strings.HasPrefix(rid, "keep-") || !(strings.HasPrefix(b.types[i], "reservation.") || b.types[i] == "resource.created") {
				t.Fatalf("filtered event sent: %s %s", b.types[i], rid)
			}
		}
		offsets = append(offsets, b.offsets...)
	}
	if len(offsets) != 40 { // 20 created, 20 held (the rest sold out)
		t.Fatalf("%d events delivered, want 40: %v", len(offsets), offsets)
	}
	for i := 1; i < len(offsets); i++ {
		if offsets[i] <= offsets[i-1] {
			t.Fatalf("out of order: %v", offsets)
		}
	}
	if len(failed) == 0 {
		t.Fatal("no request failed")
	}
	for _, f := range failed {
		found := false
		for _, b := range ok {
			found = found || b.id == f.id && b.body == f.body
		}
		if !found {
			t.Fatalf("failed batch %s was not sent again unchanged", f.id)
		}
	}
	if st, _ := e.WebhookStatus("orders"); st.State != domain.DeliveryActive || st.LastError != "" || st.LastAttemptAt == 0 {
		t.Fatalf("status %+v", st)
	}
	ms := e.WebhookMetrics()
	if len(ms) != 1 || ms[0].LagEvents != 0 || ms[0].LagSeconds != 0 || ms[0].Cursor != head ||
		ms[0].Failures != uint64(len(failed)) || ms[0].Deliveries != uint64(len(ok)) {
		t.Fatalf("metrics %+v (%d ok, %d failed)", ms, len(ok), len(failed))
	}
}

// TestWebhookPauseReplayDelete: a paused webhook is sent nothing while
// another goes on, resumes where it stopped, a replay sends again from the
// offset given, and a deleted one is sent nothing more.
func TestWebhookPauseReplayDelete(t *testing.T) {
	e, log := newHookEngine(t, 100)
	ra := &receiver{t: t, secret: testHookSecret}
	rb := &receiver{t: t, secret: testHookSecret}
	sa, sb := httptest.NewServer(ra), httptest.NewServer(rb)
	defer sa.Close()
	defer sb.Close()
	ctx := context.Background()
	for _, w := range []domain.Webhook{hook("a", sa.URL), hook("b", sb.URL)} {
		if _, _, err := e.PutWebhook(ctx, w, domain.WebhookStart{From: domain.StartNow}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.PauseWebhook(ctx, "a", true); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		putVoucher(t, e, fmt.Sprintf("v%d", i), 1, 0)
	}
	head := log.Head()
	waitUntil(t, "b to catch up", func() bool { return cursorOf(e, "b") == head })
	if ok, _ := ra.snapshot(); len(ok) != 0 || cursorOf(e, "a") != 0 {
		t.Fatalf("paused webhook got %d batches, cursor %d", len(ok), cursorOf(e, "a"))
	}
	if st, _ := e.WebhookStatus("a"); st.State != domain.DeliveryPaused {
		t.Fatalf("status %+v", st)
	}
	if ms := e.WebhookMetrics(); ms[0].ID != "a" || ms[0].LagEvents != head || ms[0].LagSeconds < 0 {
		t.Fatalf("metrics %+v", ms)
	}
	if w, err := e.PauseWebhook(ctx, "a", false); err != nil || w.Paused {
		t.Fatalf("resume: %+v %v", w, err)
	}
	waitUntil(t, "a to catch up", func() bool { return cursorOf(e, "a") == head })

	if w, err := e.ReplayWebhook(ctx, "b", 2); err != nil || w.Delivered != 2 {
		t.Fatalf("replay: %+v %v", w, err)
	}
	waitUntil(t, "b to catch up again", func() bool { return cursorOf(e, "b") == head })
	ok, _ := rb.snapshot()
	last := ok[len(ok)-1]
	if last.offsets[0] != 3 || last.offsets[len(last.offsets)-1] != head {
		t.Fatalf("replay sent %v", last.offsets)
	}
	if _, err := e.ReplayWebhook(ctx, "b", head+1); !errors.Is(err, domain.ErrInvalidArgument) {
		t.Fatalf("replay past the head: %v", err)
	}

	if err := e.DeleteWebhook(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	if err := e.DeleteWebhook(ctx, "b"); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	n := len(ok)
	putVoucher(t, e, "after-delete", 1, 0)
	head = log.Head()
	waitUntil(t, "a to catch up", func() bool { return cursorOf(e, "a") == head })
	if ok, _ := rb.snapshot(); len(ok) != n {
		t.Fatalf("a deleted webhook got %d more batches", len(ok)-n)
	}
	if _, ok := e.WebhookStatus("b"); ok {
		t.Fatal("status of a deleted webhook")
	}
}

// TestWebhookStart: "now" is the head, "earliest" just before the oldest
// event kept, an offset between the two is taken, others are refused; an
// update keeps the cursor.
func TestWebhookStart(t *testing.T) {
	e, log := newHookEngine(t, 100)
	ctx := context.Background()
	for i := range 6 {
		putVoucher(t, e, fmt.Sprintf("v%d", i), 1, 0)
	}
	log.prune(2)
	url := "http://127.0.0.1:1/unused" // never reached: the webhooks are paused at once or caught up
	for _, c := range []struct {
		start domain.WebhookStart
		want  uint64
		err   error
	}{
		{domain.WebhookStart{From: domain.StartNow}, 6, nil},
		{domain.WebhookStart{From: domain.StartEarliest}, 2, nil},
		{domain.WebhookStart{From: domain.StartAfter, After: 4}, 4, nil},
		{domain.WebhookStart{From: domain.StartAfter, After: 2}, 2, nil},
		{domain.WebhookStart{From: domain.StartAfter, After: 1}, 0, domain.ErrInvalidArgument},
		{domain.WebhookStart{From: domain.StartAfter, After: 7}, 0, domain.ErrInvalidArgument},
	} {
		id := fmt.Sprintf("h%d-%d", c.start.From, c.start.After)
		w, created, err := e.PutWebhook(ctx, hook(id, url), c.start)
		if !errors.Is(err, c.err) || err == nil && (w.Delivered != c.want || !created) {
			t.Fatalf("%+v: %+v created=%v %v", c.start, w, created, err)
		}
		if err == nil {
			if _, err := e.PauseWebhook(ctx, id, true); err != nil {
				t.Fatal(err)
			}
		}
	}
	w, created, err := e.PutWebhook(ctx, hook("h1-0", "https://elsewhere.example/x"), domain.WebhookStart{From: domain.StartEarliest})
	if err != nil || created || w.Delivered != 6 || w.URL != "https://elsewhere.example/x" || !w.Paused {
		t.Fatalf("update: %+v created=%v %v", w, created, err)
	}
}

// TestWebhookNeedsLogFormat4: before the cluster allows log format 4 no
// webhook event is proposed: a node of an older binary would stop on it.
func TestWebhookNeedsLogFormat4(t *testing.T) {
	e, _ := newTestEngine(t, Config{})
	_, _, err := e.PutWebhook(context.Background(), hook("h", "https://x.example/"), domain.WebhookStart{From: domain.StartNow})
	if !errors.Is(err, domain.ErrUnavailable) {
		t.Fatalf("put on format 1: %v", err)
	}
}

// TestWebhookPrunedEvents: events pruned before they were delivered are
// skipped; delivery goes on with the oldest kept.
func TestWebhookPrunedEvents(t *testing.T) {
	e, log := newHookEngine(t, 100)
	rc := &receiver{t: t, secret: testHookSecret}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	ctx := context.Background()
	if _, _, err := e.PutWebhook(ctx, hook("h", srv.URL), domain.WebhookStart{From: domain.StartNow}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.PauseWebhook(ctx, "h", true); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		putVoucher(t, e, fmt.Sprintf("v%d", i), 1, 0)
	}
	log.prune(3)
	if _, err := e.PauseWebhook(ctx, "h", false); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the cursor to reach the head", func() bool { return cursorOf(e, "h") == 5 })
	ok, _ := rc.snapshot()
	if len(ok) != 1 || fmt.Sprint(ok[0].offsets) != "[4 5]" {
		t.Fatalf("sent %+v", ok)
	}
	if m := e.WebhookMetrics(); len(m) != 1 || m[0].Skipped != 3 {
		t.Fatalf("metrics %+v, want 3 events skipped", m)
	}
}

// TestWebhookRetrySendsTheSameBatch: events committed while a batch fails
// do not join it when it is sent again: the retry carries the same events
// under the same webhook-id (a receiver that deduplicates by webhook-id
// would otherwise drop the new ones), and they follow in the next batch.
func TestWebhookRetrySendsTheSameBatch(t *testing.T) {
	e, log := newHookEngine(t, 100)
	rc := &receiver{t: t, secret: testHookSecret, fail: func(n int) bool { return n == 1 }}
	first := make(chan struct{})
	more := make(chan struct{})
	var once sync.Once
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		once.Do(func() { close(first); <-more }) // the first attempt answers only after more events committed
		rc.ServeHTTP(w, r)
	}))
	defer srv.Close()
	ctx := context.Background()
	if _, _, err := e.PutWebhook(ctx, hook("h", srv.URL), domain.WebhookStart{From: domain.StartNow}); err != nil {
		t.Fatal(err)
	}
	putVoucher(t, e, "v0", 1, 0)
	<-first
	for i := 1; i <= 3; i++ {
		putVoucher(t, e, fmt.Sprintf("v%d", i), 1, 0)
	}
	close(more)
	waitUntil(t, "the cursor to reach the head", func() bool { return cursorOf(e, "h") == log.Head() })
	ok, failed := rc.snapshot()
	if len(failed) != 1 || len(ok) != 2 || ok[0].id != failed[0].id || ok[0].body != failed[0].body ||
		fmt.Sprint(ok[0].offsets) != "[1]" || fmt.Sprint(ok[1].offsets) != "[2 3 4]" {
		t.Fatalf("failed %+v\nacknowledged %+v", failed, ok)
	}
}

// TestWebhookDeposedLeaderSendsNothing: a leader that cannot show it still
// leads (no lease, no quorum) sends no batch: its batches would arrive
// among its successor's.
func TestWebhookDeposedLeaderSendsNothing(t *testing.T) {
	e, log := newHookEngine(t, 100)
	rc := &receiver{t: t, secret: testHookSecret}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	if _, _, err := e.PutWebhook(context.Background(), hook("h", srv.URL), domain.WebhookStart{From: domain.StartNow}); err != nil {
		t.Fatal(err)
	}
	log.deposed.Store(true)
	putVoucher(t, e, "v0", 1, 0)
	waitUntil(t, "the deliverer to check leadership a few times, or send", func() bool {
		ok, failed := rc.snapshot()
		return log.verifies.Load() >= 3 || len(ok)+len(failed) > 0
	})
	if ok, failed := rc.snapshot(); len(ok)+len(failed) != 0 {
		t.Fatalf("a deposed leader sent %d batches", len(ok)+len(failed))
	}
	log.deposed.Store(false)
	waitUntil(t, "the cursor to reach the head", func() bool { return cursorOf(e, "h") == log.Head() })
}

// TestWebhookReplayAfterAFilterChange: a batch with other events can start
// at an offset already sent (the filters changed, then a replay), and then
// carries the same webhook-id, as the API fixes the id to
// "<webhook id>-<first offset>". What a receiver that deduplicates by event
// offset, as the API says it does, needs is that the new event is in it.
func TestWebhookReplayAfterAFilterChange(t *testing.T) {
	e, _ := newHookEngine(t, 100)
	rc := &receiver{t: t, secret: testHookSecret}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	ctx := context.Background()
	only := hook("h", srv.URL)
	only.ResourcePrefix = "a"
	if _, _, err := e.PutWebhook(ctx, only, domain.WebhookStart{From: domain.StartNow}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.PauseWebhook(ctx, "h", true); err != nil { // so that one batch carries them
		t.Fatal(err)
	}
	for _, id := range []string{"a1", "b1", "a2"} {
		putVoucher(t, e, id, 1, 0)
	}
	if _, err := e.PauseWebhook(ctx, "h", false); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the cursor to reach 3", func() bool { return cursorOf(e, "h") == 3 })
	if _, _, err := e.PutWebhook(ctx, hook("h", srv.URL), domain.WebhookStart{}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.ReplayWebhook(ctx, "h", 0); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the replayed batch", func() bool { ok, _ := rc.snapshot(); return len(ok) == 2 })
	ok, _ := rc.snapshot()
	if fmt.Sprint(ok[0].offsets) != "[1 3]" || fmt.Sprint(ok[1].offsets) != "[1 2 3]" {
		t.Fatalf("sent %+v", ok)
	}
	if ok[0].id != "h-1" || ok[1].id != "h-1" {
		t.Fatalf("webhook-ids %q and %q, want h-1 for both (<webhook id>-<first offset>)", ok[0].id, ok[1].id)
	}
}
