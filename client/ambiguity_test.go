package client_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"allot/actors/domain"
	"allot/client"
)

// TestNoKeyNotResentAfterGateway504: a POST sent without an
// Idempotency-Key is not sent again after a 504 from a gateway in front of
// the node (no problem body): the gateway may have passed the reserve on,
// so a second send could book twice.
func TestNoKeyNotResentAfterGateway504(t *testing.T) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			w.WriteHeader(http.StatusGatewayTimeout) // e.g. nginx: upstream timed out
			w.Write([]byte("<html>504 Gateway Time-out</html>"))
			return
		}
		w.Header().Set("X-Allot-Node", "n1")
		w.WriteHeader(201)
		w.Write([]byte(`{"id":"r2","resource_id":"v1","user":"ann","quantity":1,"status":"held"}`))
	}))
	defer srv.Close()
	c, _ := client.New([]string{srv.URL}, client.Options{Token: "t", MinBackoff: time.Millisecond})
	_, err := c.Reserve(context.Background(), "v1", client.ReserveRequest{Quantity: 1}, client.WithoutIdempotencyKey())
	if got := n.Load(); got != 1 {
		t.Errorf("a keyless reserve was sent %d times after a 504 (err %v): want 1 and an outcome-unknown error", got, err)
	}
}

// hangUp reads the request and closes the connection without answering:
// the node may have acted on it.
func hangUp(w http.ResponseWriter, r *http.Request) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err == nil {
		conn.Close()
	}
}

// TestKeyedTransportErrorsAreOutcomeUnknown: a keyed write whose
// attempts all end in transport errors after being sent may have been
// acted on: its error matches domain.ErrOutcomeUnknown ("retry later with
// the same key").
func TestKeyedTransportErrorsAreOutcomeUnknown(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(hangUp))
	defer srv.Close()
	c, _ := client.New([]string{srv.URL}, client.Options{Token: "t", MaxAttempts: 2, MinBackoff: time.Millisecond})
	_, err := c.Reserve(context.Background(), "v1", client.ReserveRequest{Quantity: 1}, client.IdempotencyKey("order-1"))
	if !errors.Is(err, domain.ErrOutcomeUnknown) {
		t.Errorf("err = %v: does not match domain.ErrOutcomeUnknown", err)
	}
}

// TestDeadlineMidWriteIsOutcomeUnknown: the context ending while a write
// is in flight leaves its outcome unknown, keyed or not.
func TestDeadlineMidWriteIsOutcomeUnknown(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(300 * time.Millisecond) // the node is deciding
	}))
	defer srv.Close()
	c, _ := client.New([]string{srv.URL}, client.Options{Token: "t"})
	for _, opt := range []client.CallOption{client.IdempotencyKey("order-2"), client.WithoutIdempotencyKey()} {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		_, err := c.Reserve(ctx, "v1", client.ReserveRequest{Quantity: 1}, opt)
		cancel()
		if !errors.Is(err, domain.ErrOutcomeUnknown) {
			t.Errorf("err = %v: does not match domain.ErrOutcomeUnknown", err)
		}
	}
}

// TestDeleteRetryAfterUnknownOutcome: the server keeps no key for a
// DELETE, so when its first attempt committed unseen the retry answers 404;
// the delete asked for happened, and the call succeeds.
func TestDeleteRetryAfterUnknownOutcome(t *testing.T) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/problem+json")
		if n.Add(1) == 1 {
			w.WriteHeader(503) // the delete committed, the answer was lost
			w.Write([]byte(`{"status":503,"code":"outcome_unknown","detail":"deadline"}`))
			return
		}
		w.WriteHeader(404)
		w.Write([]byte(`{"status":404,"code":"not_found","detail":"resource v1 not found"}`))
	}))
	defer srv.Close()
	c, _ := client.New([]string{srv.URL}, client.Options{Token: "t", MinBackoff: time.Millisecond})
	if err := c.DeleteResource(context.Background(), "v1"); err != nil || n.Load() != 2 {
		t.Errorf("a delete whose first attempt committed returns %v after %d attempts", err, n.Load())
	}
}

// TestRetryKeepsIdentity: a TokenSource taking turns between identities
// is asked once per call, so every attempt of one write goes as the same
// user (an Idempotency-Key is scoped to its user on the server).
func TestRetryKeepsIdentity(t *testing.T) {
	var auths []string
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auths = append(auths, r.Header.Get("Authorization")+" key="+r.Header.Get("Idempotency-Key"))
		w.Header().Set("Content-Type", "application/problem+json")
		if n.Add(1) == 1 {
			w.WriteHeader(503)
			w.Write([]byte(`{"status":503,"code":"outcome_unknown","detail":"deadline"}`))
			return
		}
		w.WriteHeader(201)
		w.Write([]byte(`{"id":"r2","resource_id":"v1","user":"bob","quantity":1,"status":"held"}`))
	}))
	defer srv.Close()
	var turn atomic.Int32
	toks := []string{"token-of-ann", "token-of-bob"}
	c, _ := client.New([]string{srv.URL}, client.Options{MinBackoff: time.Millisecond,
		TokenSource: func(context.Context) (string, error) { return toks[int(turn.Add(1)-1)%2], nil }})
	if _, err := c.Reserve(context.Background(), "v1", client.ReserveRequest{Quantity: 1}); err != nil {
		t.Fatal(err)
	}
	if len(auths) != 2 || auths[0][:20] != auths[1][:20] {
		t.Errorf("one call's attempts went as %q: the key no longer deduplicates", auths)
	}
}

// TestAmbiguityRemembered: after outcome_unknown then unavailable (which
// says only that the second attempt wrote nothing), the call's error still
// matches domain.ErrOutcomeUnknown.
func TestAmbiguityRemembered(t *testing.T) {
	c, s := newScripted(t, client.Options{MaxAttempts: 2, MinBackoff: time.Millisecond},
		reply{status: 503, code: "outcome_unknown"},
		reply{status: 503, code: "unavailable"})
	_, err := c.Reserve(context.Background(), "v1", client.ReserveRequest{Quantity: 1}, client.IdempotencyKey("order-3"))
	if keys, _ := s.requests(); len(keys) != 2 {
		t.Fatalf("%d attempts", len(keys))
	}
	if !errors.Is(err, domain.ErrOutcomeUnknown) {
		t.Errorf("err = %v: the first attempt may have booked, but the error says only unavailable", err)
	}
}

// TestNoKeyTriesNextNodeWhenNoConnection: a keyless POST whose connection
// could not be made was never sent, so the next node is tried.
func TestNoKeyTriesNextNodeWhenNoConnection(t *testing.T) {
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close() // nothing listens there now
	var n atomic.Int32
	live := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		w.Header().Set("X-Allot-Node", "n2")
		w.WriteHeader(201)
		w.Write([]byte(`{"id":"r1","resource_id":"v1","user":"ann","quantity":1,"status":"held"}`))
	}))
	defer live.Close()
	c, _ := client.New([]string{deadURL, live.URL}, client.Options{Token: "t", MinBackoff: time.Millisecond})
	if _, err := c.Reserve(context.Background(), "v1", client.ReserveRequest{Quantity: 1}, client.WithoutIdempotencyKey()); err != nil || n.Load() != 1 {
		t.Errorf("keyless reserve with the first node down: %v, %d sends to the second", err, n.Load())
	}
}
