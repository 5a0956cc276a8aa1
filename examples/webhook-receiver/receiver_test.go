package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"allot/examples/sqlite-consumer/feed"
	"allot/examples/sqlite-consumer/orders"
	"allot/examples/webhook-receiver/verify"
)

var secret = []byte("whsec-example-0123456789abcdef-0123456789")

type fixture struct {
	t   *testing.T
	st  *orders.Store
	srv *httptest.Server
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	st, err := orders.Open(filepath.Join(t.TempDir(), "hooks.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	rc := &receiver{v: verify.New(secret), st: st, log: slog.New(slog.DiscardHandler)}
	srv := httptest.NewServer(rc)
	t.Cleanup(srv.Close)
	return &fixture{t: t, st: st, srv: srv}
}

// events makes reservation events with offsets from..to: reservation
// r<offset> made held.
func events(from, to int64) []feed.Event {
	var out []feed.Event
	for off := from; off <= to; off++ {
		id := fmt.Sprintf("r%d", off)
		out = append(out, feed.Event{Offset: off, Type: feed.TypeHeld, At: time.Unix(1764576000+off, 0).UTC(),
			ResourceID: "flash-1", Kind: "voucher",
			Reservation: &feed.Reservation{ID: id, ResourceID: "flash-1", Kind: "voucher", User: "u" + id,
				Quantity: 1, Status: "held", CreatedAt: "2026-12-01T08:00:00Z", UpdatedAt: "2026-12-01T08:00:00Z"}})
	}
	return out
}

func body(t *testing.T, evs []feed.Event) []byte {
	t.Helper()
	b, err := json.Marshal(feed.Batch{Events: evs})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// post delivers body as allot would, signed with key at ts (and any extra
// signatures in front); it returns the status and the body of the answer.
func (f *fixture) post(body []byte, id string, ts time.Time, sig string) (int, string) {
	f.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, f.srv.URL, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(verify.HeaderID, id)
	req.Header.Set(verify.HeaderTimestamp, strconv.FormatInt(ts.Unix(), 10))
	req.Header.Set(verify.HeaderSignature, sig)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// deliver posts a correctly signed batch.
func (f *fixture) deliver(evs []feed.Event) (int, string) {
	f.t.Helper()
	id := fmt.Sprintf("hook-1-%d", evs[0].Offset)
	now := time.Now()
	b := body(f.t, evs)
	return f.post(b, id, now, verify.Sign(secret, id, now.Unix(), b))
}

// stored is the orders' count, the history's count and the offset.
func (f *fixture) stored() (orders, history int, offset int64) {
	f.t.Helper()
	db := f.st.DB()
	if err := db.QueryRow(`SELECT count(*) FROM orders`).Scan(&orders); err != nil {
		f.t.Fatal(err)
	}
	if err := db.QueryRow(`SELECT count(*) FROM order_events`).Scan(&history); err != nil {
		f.t.Fatal(err)
	}
	if err := db.QueryRow(`SELECT coalesce(max(last_offset), 0) FROM consumer_offset`).Scan(&offset); err != nil {
		f.t.Fatal(err)
	}
	return
}

func (f *fixture) wantStored(orders, history int, offset int64) {
	f.t.Helper()
	if o, h, off := f.stored(); o != orders || h != history || off != offset {
		f.t.Fatalf("stored %d orders, %d history rows, offset %d; want %d, %d, %d", o, h, off, orders, history, offset)
	}
}

func TestValidDeliveryIsStored(t *testing.T) {
	f := newFixture(t)
	if st, b := f.deliver(events(1, 3)); st != http.StatusOK || b != "{\"offset\":3,\"applied\":3}\n" {
		t.Fatalf("delivery: %d %s", st, b)
	}
	f.wantStored(3, 3, 3)
	var status string
	if err := f.st.DB().QueryRow(`SELECT status FROM orders WHERE reservation_id = 'r2'`).Scan(&status); err != nil || status != "held" {
		t.Fatalf("r2: %q, %v", status, err)
	}
}

func TestTamperedBodyIsRefused(t *testing.T) {
	f := newFixture(t)
	b := body(t, events(1, 2))
	now := time.Now()
	sig := verify.Sign(secret, "hook-1-1", now.Unix(), b)
	tampered := bytes.Replace(b, []byte(`"ur1"`), []byte(`"mallory"`), 1)
	if bytes.Equal(tampered, b) {
		t.Fatal("the test did not change the body")
	}
	if st, _ := f.post(tampered, "hook-1-1", now, sig); st != http.StatusUnauthorized {
		t.Fatalf("tampered body: %d, want 401", st)
	}
	f.wantStored(0, 0, 0)
}

func TestWrongSecretIsRefused(t *testing.T) {
	f := newFixture(t)
	b := body(t, events(1, 2))
	now := time.Now()
	if st, _ := f.post(b, "hook-1-1", now, verify.Sign([]byte("not-the-secret-0123456789abcdef-xyz"), "hook-1-1", now.Unix(), b)); st != http.StatusUnauthorized {
		t.Fatalf("wrong secret: %d, want 401", st)
	}
	if st, _ := f.post(b, "hook-1-1", now, ""); st != http.StatusUnauthorized {
		t.Fatalf("no signature: %d, want 401", st)
	}
	f.wantStored(0, 0, 0)
}

func TestStaleTimestampIsRefused(t *testing.T) {
	f := newFixture(t)
	b := body(t, events(1, 2))
	for _, at := range []time.Time{time.Now().Add(-6 * time.Minute), time.Now().Add(6 * time.Minute)} {
		// Correctly signed, but recorded (or dated) too far away: a replay.
		if st, _ := f.post(b, "hook-1-1", at, verify.Sign(secret, "hook-1-1", at.Unix(), b)); st != http.StatusUnauthorized {
			t.Fatalf("timestamp %v: %d, want 401", time.Until(at).Round(time.Minute), st)
		}
	}
	f.wantStored(0, 0, 0)
}

// Several signatures, one of them valid: during a secret rotation.
func TestOneOfSeveralSignatures(t *testing.T) {
	f := newFixture(t)
	b := body(t, events(1, 1))
	now := time.Now()
	sig := verify.Sign([]byte("the old secret, retired........"), "hook-1-1", now.Unix(), b) + " " + verify.Sign(secret, "hook-1-1", now.Unix(), b)
	if st, _ := f.post(b, "hook-1-1", now, sig); st != http.StatusOK {
		t.Fatalf("%d, want 200", st)
	}
	f.wantStored(1, 1, 1)
}

// A batch delivered again (its 200 was lost), and a new leader re-sending
// from the committed cursor with newer events behind: acknowledged each
// time, applied once.
func TestReplayedBatchIsAppliedOnce(t *testing.T) {
	f := newFixture(t)
	if st, _ := f.deliver(events(1, 3)); st != http.StatusOK {
		t.Fatal(st)
	}
	if st, b := f.deliver(events(1, 3)); st != http.StatusOK || b != "{\"offset\":3,\"applied\":0}\n" {
		t.Fatalf("the same batch again: %d %s, want 200 with nothing applied", st, b)
	}
	f.wantStored(3, 3, 3)
	if st, b := f.deliver(events(2, 5)); st != http.StatusOK || b != "{\"offset\":5,\"applied\":2}\n" {
		t.Fatalf("re-sent from an older cursor: %d %s, want 200 with 2 applied", st, b)
	}
	f.wantStored(5, 5, 5)
}

// A delivery the receiver could not store durably is not acknowledged.
func TestStoreFailureIsNotAcknowledged(t *testing.T) {
	f := newFixture(t)
	f.st.Close()
	if st, _ := f.deliver(events(1, 1)); st < 500 {
		t.Fatalf("delivery into a closed database: %d, want 5xx", st)
	}
}

func TestMalformedDeliveries(t *testing.T) {
	f := newFixture(t)
	now := time.Now()
	bad := []byte(`{"events":[{"offset":"x"}]}`)
	if st, _ := f.post(bad, "hook-1-1", now, verify.Sign(secret, "hook-1-1", now.Unix(), bad)); st != http.StatusBadRequest {
		t.Fatalf("signed garbage: %d, want 400", st)
	}
	disorder := body(t, append(events(3, 3), events(2, 2)...))
	if st, _ := f.post(disorder, "hook-1-3", now, verify.Sign(secret, "hook-1-3", now.Unix(), disorder)); st == http.StatusOK {
		t.Fatal("a batch out of order was acknowledged")
	}
	res, err := http.Get(f.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("GET: %d, want 405", res.StatusCode)
	}
	f.wantStored(0, 0, 0)
}
