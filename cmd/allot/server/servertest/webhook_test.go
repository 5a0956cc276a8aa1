package servertest_test

import (
	"bufio"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"allot/cmd/allot/server"
	"allot/cmd/allot/server/servertest"
)

const hookSecret = "e2e-webhook-secret-0123456789abcdef"

// hookReceiver is a webhook endpoint: it checks every signature with its
// own HMAC, answers every third request 500, and records each request in
// the order it arrived.
type hookReceiver struct {
	mu       sync.Mutex
	requests []hookRequest
	badSigs  int
}

type hookRequest struct {
	id     string
	failed bool
	events []hookEvent
}

type hookEvent struct {
	Offset      uint64 `json:"offset"`
	Type        string `json:"type"`
	Reservation struct {
		ID string `json:"id"`
	} `json:"reservation"`
}

func (rc *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	id, ts := r.Header.Get("webhook-id"), r.Header.Get("webhook-timestamp")
	mac := hmac.New(sha256.New, []byte(hookSecret))
	mac.Write([]byte(id + "." + ts + "." + string(body)))
	want := "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
	var msg struct {
		Events []hookEvent `json:"events"`
	}
	err := json.Unmarshal(body, &msg)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	sec, _ := strconv.ParseInt(ts, 10, 64)
	if r.Header.Get("webhook-signature") != want || err != nil || len(msg.Events) == 0 || len(msg.Events) > 100 ||
		id != fmt.Sprintf("orders-%d", msg.Events[0].Offset) || time.Since(time.Unix(sec, 0)).Abs() > time.Minute {
		rc.badSigs++
	}
	req := hookRequest{id: id, failed: len(rc.requests)%3 == 2, events: msg.Events}
	rc.requests = append(rc.requests, req)
	if req.failed {
		http.Error(w, "not now", http.StatusInternalServerError)
	}
}

func (rc *hookReceiver) snapshot() ([]hookRequest, int) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]hookRequest(nil), rc.requests...), rc.badSigs
}

type webhookView struct {
	Delivered uint64 `json:"delivered"`
	Head      uint64 `json:"head"`
	State     string `json:"state"`
	LastError string `json:"last_error"`
}

// TestWebhookDeliveryAcrossLeaderKill: a crowd of reservations with the
// leader killed in the middle, delivered to a receiver that fails every
// third batch. Every event up to the head arrives at least once and every
// 201 as its reservation.held; signatures are valid; within what arrives,
// a batch either continues where the one before it ended or is sent again
// from a committed cursor (the end of a batch acknowledged before), never
// past one; and the committed cursor reaches the head.
func TestWebhookDeliveryAcrossLeaderKill(t *testing.T) {
	c := servertest.MakeCluster(t, 3, servertest.Options{Tune: func(_ int, cfg *server.Config) {
		cfg.Engine.Webhooks.BackoffMin = 20 * time.Millisecond
		cfg.Engine.Webhooks.BackoffMax = 200 * time.Millisecond
		cfg.Engine.Webhooks.Timeout = 2 * time.Second
	}})
	rc := &hookReceiver{}
	srv := httptest.NewServer(rc)
	defer srv.Close()

	old := c.Leader()
	f := c.Followers()[0]
	c.Client(f.Index()).Must("PUT", "/v1/resources/flash", map[string]any{"kind": "voucher", "capacity": 250, "hold_seconds": 0}, http.StatusCreated)
	c.Client(f.Index()).Must("PUT", "/v1/webhooks/orders", map[string]any{"url": srv.URL + "/hook", "secret": hookSecret, "start": "earliest"}, http.StatusCreated)

	// The crowd: 300 users, one reservation each, retried with the same
	// Idempotency-Key on any running node until definite.
	const users, workers = 300, 12
	var created, soldOut atomic.Int64
	var mu sync.Mutex
	ids := map[string]bool{} // reservation ids answered 201
	work := make(chan int)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for u := range work {
				user := fmt.Sprintf("user-%03d", u)
				deadline := time.Now().Add(20 * time.Second)
				for attempt := 0; ; attempt++ {
					if time.Now().After(deadline) {
						t.Errorf("%s: no definite answer", user)
						break
					}
					running := c.Running()
					nd := running[(u+attempt)%len(running)]
					r, err := c.Client(nd.Index()).As(user, "user").Do("POST", "/v1/resources/flash/reservations", nil, "Idempotency-Key", "order-"+user)
					if err != nil || r.Status == http.StatusServiceUnavailable {
						time.Sleep(20 * time.Millisecond)
						continue
					}
					switch r.Status {
					case http.StatusCreated:
						var res struct {
							ID string `json:"id"`
						}
						if err := r.Decode(&res); err != nil {
							t.Error(err)
						}
						mu.Lock()
						ids[res.ID] = true
						mu.Unlock()
						created.Add(1)
					case http.StatusConflict:
						soldOut.Add(1)
					default:
						t.Errorf("%s: %d %s", user, r.Status, r.Body)
					}
					break
				}
			}
		})
	}
	go func() {
		for u := range users {
			work <- u
		}
		close(work)
	}()
	c.WaitFor("a third of the crowd through", func() error {
		if n := created.Load() + soldOut.Load(); n < users/3 {
			return fmt.Errorf("%d answered", n)
		}
		return nil
	})
	c.Stop(old.Index())
	nl := c.Leader()
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	if created.Load() != 250 || soldOut.Load() != 50 {
		t.Fatalf("%d created, %d sold out", created.Load(), soldOut.Load())
	}

	cl := c.Client(nl.Index())
	var head uint64
	c.WaitFor("the cursor to reach the head", func() error {
		var w webhookView
		if err := cl.Must("GET", "/v1/webhooks/orders", nil, http.StatusOK).Decode(&w); err != nil {
			return err
		}
		head = w.Head
		if w.Delivered != w.Head || w.Head < 251 {
			return fmt.Errorf("delivered %d of %d (%s %s)", w.Delivered, w.Head, w.State, w.LastError)
		}
		return nil
	})

	reqs, bad := rc.snapshot()
	if bad != 0 {
		t.Fatalf("%d requests with a bad signature, id or body", bad)
	}
	seen := make([]bool, head+1)
	held := map[string]bool{}
	ends := map[uint64]bool{0: true} // cursors a batch may start after: 0 and the end of every acknowledged batch
	var prevLast, maxAcked uint64
	resends, failed := 0, 0
	for i, r := range reqs {
		first, last := r.events[0].Offset, r.events[len(r.events)-1].Offset
		for j, ev := range r.events {
			if ev.Offset != first+uint64(j) {
				t.Fatalf("request %d: offsets not consecutive: %d at %d", i, ev.Offset, j)
			}
		}
		switch {
		case first == prevLast+1:
		case first <= prevLast && ends[first-1] && first <= maxAcked+1:
			resends++
		default:
			t.Fatalf("request %d starts at %d after a batch ending at %d (acknowledged up to %d)", i, first, prevLast, maxAcked)
		}
		prevLast = last
		if r.failed {
			failed++
			continue
		}
		ends[last] = true
		maxAcked = max(maxAcked, last)
		for _, ev := range r.events {
			if ev.Offset <= head {
				seen[ev.Offset] = true
			}
			if ev.Type == "reservation.held" || ev.Type == "reservation.confirmed" { // hold_seconds 0: confirmed at once
				held[ev.Reservation.ID] = true
			}
		}
	}
	for off := uint64(1); off <= head; off++ {
		if !seen[off] {
			t.Fatalf("event %d of %d never acknowledged", off, head)
		}
	}
	for id := range ids {
		if !held[id] {
			t.Fatalf("reservation %s answered 201 but not delivered", id)
		}
	}
	if failed == 0 {
		t.Fatal("no batch failed")
	}
	t.Logf("head %d, %d requests (%d failed, %d sent again), leader %s killed, %s took over", head, len(reqs), failed, resends, old.ID(), nl.ID())

	// The new leader's metrics: caught up, with failures and deliveries.
	resp, err := http.Get(nl.URL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		name, val, ok := strings.Cut(sc.Text(), `{webhook="orders"} `)
		if ok && strings.HasPrefix(name, "allot_webhook_") {
			v, _ := strconv.ParseFloat(val, 64)
			got[name] = v
		}
	}
	if got["allot_webhook_lag_events"] != 0 || got["allot_webhook_lag_seconds"] != 0 || got["allot_webhook_cursor"] != float64(head) ||
		got["allot_webhook_deliveries_total"] == 0 {
		t.Fatalf("metrics %v", got)
	}
	if _, ok := got["allot_webhook_failures_total"]; !ok {
		t.Fatalf("no failures counter: %v", got)
	}

	// The killed node comes back and catches up by a snapshot: webhook and
	// cursor included, every node's state hashes alike. Then it (or the
	// other) takes over and delivers what follows from the cursor.
	c.Restart(old.Index())
	c.InstallSnapshot(old.Index())
	c.WaitConverged()
	var w webhookView
	if err := c.Client(old.Index()).Must("GET", "/v1/webhooks/orders?consistency=stale", nil, http.StatusOK).Decode(&w); err != nil {
		t.Fatal(err)
	}
	if w.Delivered != head || w.State != "active" {
		t.Fatalf("%s after the snapshot: %+v, want delivered %d", old.ID(), w, head)
	}
	third := c.TransferLeadership()
	c.Client(third.Index()).Must("PUT", "/v1/resources/later", map[string]any{"kind": "voucher", "capacity": 5, "hold_seconds": 0}, http.StatusCreated)
	c.WaitFor("the next event delivered by "+third.ID(), func() error {
		reqs, _ := rc.snapshot()
		last := reqs[len(reqs)-1]
		if r := last.events[len(last.events)-1]; last.failed || r.Offset != head+1 || r.Type != "resource.created" {
			return fmt.Errorf("last request %+v", last)
		}
		return nil
	})
}
