package actors

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"allot/actors/domain"
)

// Regression tests for the write-path defects of the faults review: each
// injects the fault at the log seam (ctlLog) and checks what the client was
// told against what was committed.

func transition(e *Engine, rid string, to domain.Status, who domain.Principal) (domain.Outcome, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return e.Transition(ctx, domain.TransitionCommand{ReservationID: rid, To: to, Caller: who})
}

func putSpec(t *testing.T, e *Engine, id string, spec domain.Spec) {
	t.Helper()
	if _, _, err := e.PutResource(context.Background(), id, spec); err != nil {
		t.Fatalf("put %s: %v", id, err)
	}
}

// retryUntil repeats op while it answers unavailable (an actor recovering).
func retryUntil[T any](t *testing.T, op func() (T, error)) (T, error) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		v, err := op()
		if !errors.Is(err, domain.ErrUnavailable) || time.Now().After(deadline) {
			return v, err
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Defect 2: a repeated confirm was answered 200 from the working copy while
// the confirm that made it a no-op was still in flight; if that one was lost,
// the client held a 200 "confirmed" for a hold that later expired.
func TestDefect2RepeatedConfirmWaitsForTheConfirmInFlight(t *testing.T) {
	alice := domain.Principal{User: "alice"}
	for _, tc := range []struct {
		name    string
		settle  func(*ctlLog, *ctlProposal)
		wantErr error // for the repeat; nil: 200 confirmed
	}{
		{"first confirm lost", (*ctlLog).lose, domain.ErrUnavailable},
		{"first confirm commits", (*ctlLog).commit, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, log := newCtlEngine(t, Config{ExpiryRetry: 20 * time.Millisecond})
			putVoucher(t, e, "v1", 5, 900)
			out, err := reserve(e, "v1", "alice", nil)
			if err != nil {
				t.Fatal(err)
			}
			rid := out.Reservation.ID
			log.hold.Store(true)
			first := async(func() (domain.Outcome, error) { return transition(e, rid, domain.StatusConfirmed, alice) })
			p := log.next(t)
			repeat := async(func() (domain.Outcome, error) { return transition(e, rid, domain.StatusConfirmed, alice) })
			silent(t, repeat, 300*time.Millisecond)
			log.hold.Store(false)
			tc.settle(log, p)
			await(t, first, 5*time.Second)
			got := await(t, repeat, 5*time.Second)
			if tc.wantErr == nil {
				if got.err != nil || got.v.Reservation.Status != domain.StatusConfirmed {
					t.Fatalf("repeat after the commit: %+v %v, want 200 confirmed", got.v, got.err)
				}
				return
			}
			if !errors.Is(got.err, tc.wantErr) || errors.Is(got.err, domain.ErrOutcomeUnknown) {
				t.Fatalf("repeat behind a lost confirm: %+v %v, want %v", got.v, got.err, tc.wantErr)
			}
			if s := log.status(rid); s != domain.StatusHeld {
				t.Fatalf("committed status %s, want held (the confirm was lost)", s)
			}
			// The client's retry, once the actor has recovered, does confirm.
			again, err := retryUntil(t, func() (domain.Outcome, error) { return transition(e, rid, domain.StatusConfirmed, alice) })
			if err != nil || again.Reservation.Status != domain.StatusConfirmed || log.status(rid) != domain.StatusConfirmed {
				t.Fatalf("retry: %+v %v, committed %s", again, err, log.status(rid))
			}
		})
	}
}

// Defect 2, delete: a DELETE's 404 behind a delete still in flight.
func TestDefect2DeleteNotFoundWaitsForTheDeleteInFlight(t *testing.T) {
	e, log := newCtlEngine(t, Config{})
	putVoucher(t, e, "v1", 5, 900)
	log.hold.Store(true)
	first := async(func() (struct{}, error) { return struct{}{}, e.DeleteResource(context.Background(), "v1") })
	p := log.next(t)
	repeat := async(func() (struct{}, error) { return struct{}{}, e.DeleteResource(context.Background(), "v1") })
	silent(t, repeat, 300*time.Millisecond)
	log.hold.Store(false)
	log.lose(p)
	await(t, first, 5*time.Second)
	if got := await(t, repeat, 5*time.Second); errors.Is(got.err, domain.ErrNotFound) || !errors.Is(got.err, domain.ErrUnavailable) {
		t.Fatalf("repeat delete behind a lost delete: %v, want unavailable", got.err)
	}
	var exists bool
	log.View(func(st *domain.State) { _, exists = st.Resource("v1") })
	if !exists {
		t.Fatal("the lost delete removed the resource")
	}
}

// The proposer finishes batches in proposal order even when the log reports
// a later one first: an actor's answers depend on it.
func TestBatchesFinishInProposalOrder(t *testing.T) {
	e, log := newCtlEngine(t, Config{})
	putVoucher(t, e, "v1", 5, 900)
	log.hold.Store(true)
	a := async(func() (domain.Outcome, error) { return reserve(e, "v1", "alice", nil) })
	pa := log.next(t)
	b := async(func() (domain.Outcome, error) { return reserve(e, "v1", "bob", nil) })
	pb := log.next(t)
	log.commit(pb)
	silent(t, b, 200*time.Millisecond)
	log.commit(pa)
	if ra, rb := await(t, a, 5*time.Second), await(t, b, 5*time.Second); ra.err != nil || rb.err != nil {
		t.Fatalf("alice %v, bob %v", ra.err, rb.err)
	}
}

// Defect 3: one Idempotency-Key made two reservations when the retry was
// decided before the first attempt's entry applied (its wait had timed out
// and leadership moved on). The FSM now refuses the second and the retry
// gets the first answer.
func TestDefect3OneKeyNeverBooksTwice(t *testing.T) {
	e, log := newCtlEngine(t, Config{})
	putSpec(t, e, "v1", domain.Spec{Kind: domain.KindVoucher, Capacity: 5, HoldSeconds: 900}) // no per-user limit
	key := &domain.IdemKey{Key: "order-1", Fingerprint: [16]byte{9}}
	log.hold.Store(true)
	first := async(func() (domain.Outcome, error) { return reserve(e, "v1", "alice", key) })
	p1 := log.next(t)
	p1.finish(nil, fmt.Errorf("no outcome after the apply timeout: %w", domain.ErrOutcomeUnknown))
	if r := await(t, first, 5*time.Second); !errors.Is(r.err, domain.ErrOutcomeUnknown) {
		t.Fatalf("first attempt: %v, want outcome unknown", r.err)
	}
	e.SetLeader(false) // the entry is still in the log, not yet applied
	e.SetLeader(true)
	retry := async(func() (domain.Outcome, error) { return reserve(e, "v1", "alice", key) })
	p2 := log.next(t)
	log.apply(p1) // the first attempt commits after all
	log.hold.Store(false)
	log.commit(p2)
	got := await(t, retry, 5*time.Second)
	var ids []string
	log.View(func(st *domain.State) {
		st.ListReservations("alice", "", "", func(r domain.Reservation) bool { ids = append(ids, r.ID); return true })
	})
	if len(ids) != 1 {
		t.Fatalf("alice has %d reservations %v for one key", len(ids), ids)
	}
	if got.err != nil || got.v.Reservation.ID != ids[0] || !got.v.Replayed || got.v.Code != http.StatusCreated {
		t.Fatalf("retry: %+v %v, want the replayed first reservation %s", got.v, got.err, ids[0])
	}
	if n := log.refusedRules.Load(); n != 0 {
		t.Fatalf("%d events refused by the rules", n)
	}
}

// Defect 4: a hold whose reserve had an unknown outcome but did commit got
// no expiry timer until the next election.
func TestDefect4HoldWithUnknownOutcomeStillExpires(t *testing.T) {
	e, log := newCtlEngine(t, Config{ExpiryRetry: 20 * time.Millisecond})
	putVoucher(t, e, "v1", 5, 1)
	log.hold.Store(true)
	r := async(func() (domain.Outcome, error) { return reserve(e, "v1", "alice", nil) })
	p := log.next(t)
	log.hold.Store(false)
	log.commitUnseen(p)
	if got := await(t, r, 5*time.Second); !errors.Is(got.err, domain.ErrOutcomeUnknown) {
		t.Fatalf("reserve: %v, want outcome unknown", got.err)
	}
	var rid string
	log.View(func(st *domain.State) {
		st.ListReservations("alice", "", "", func(r domain.Reservation) bool { rid = r.ID; return false })
	})
	if rid == "" {
		t.Fatal("the reserve did not commit")
	}
	// No other request comes; the hold expires by itself.
	waitFor(t, 10*time.Second, func() bool { return log.status(rid) == domain.StatusExpired })
}

// Defect 5: an expiry that reached an actor while it was recovering from an
// unknown outcome was dropped, and the hold never expired.
func TestDefect5ExpiryReachingARecoveringActorIsNotDropped(t *testing.T) {
	e, log := newCtlEngine(t, Config{ExpiryRetry: 20 * time.Millisecond})
	putVoucher(t, e, "v1", 5, 1)
	held, err := reserve(e, "v1", "alice", nil)
	if err != nil {
		t.Fatal(err)
	}
	release := log.blockBarriers()
	defer release()
	log.hold.Store(true)
	r := async(func() (domain.Outcome, error) { return reserve(e, "v1", "bob", nil) })
	p := log.next(t)
	log.hold.Store(false)
	log.lose(p) // the actor is dirty; its resync waits on the blocked barrier
	await(t, r, 5*time.Second)
	// alice's hold falls due while the actor cannot decide.
	time.Sleep(time.Until(time.Unix(0, held.Reservation.ExpiresAt)) + 200*time.Millisecond)
	if s := log.status(held.Reservation.ID); s != domain.StatusHeld {
		t.Fatalf("status %s while the actor recovers, want held", s)
	}
	release()
	waitFor(t, 10*time.Second, func() bool { return log.status(held.Reservation.ID) == domain.StatusExpired })
}

// A step back of the wall clock neither delays nor drops an expiry (the
// second half of defect 5: such expiries were refused as "not due" and lost).
func TestExpiryIgnoresWallClockStepBack(t *testing.T) {
	clock := &testClock{}
	e, log := newCtlEngine(t, Config{Clock: clock, ExpiryRetry: 20 * time.Millisecond})
	putVoucher(t, e, "v1", 5, 1)
	held, err := reserve(e, "v1", "alice", nil)
	if err != nil {
		t.Fatal(err)
	}
	clock.offset.Store(int64(-time.Hour))
	waitFor(t, 10*time.Second, func() bool { return log.status(held.Reservation.ID) == domain.StatusExpired })
}

// testClock is the machine's clock shifted by offset (Unix ns).
type testClock struct{ offset atomic.Int64 }

func (c *testClock) Now() time.Time { return time.Now().Add(time.Duration(c.offset.Load())) }

// Defect 7: leader time went backwards across leaders: a leader whose clock
// was behind stamped times before those already committed (and accepted a
// confirm after the expires_at a client had been shown).
func TestDefect7LeaderTimeNeverGoesBack(t *testing.T) {
	e, log := newCtlEngine(t, Config{})
	// A previous leader, its clock an hour ahead, committed at +1h.
	ahead := time.Now().Add(time.Hour).UnixNano()
	log.apply(&ctlProposal{data: domain.EncodeBatch(nil, &domain.Batch{Events: []domain.Event{{
		Type: domain.EvPutResource, At: ahead, ResourceID: "v1",
		Spec: domain.Spec{Kind: domain.KindVoucher, Capacity: 5, PerUserLimit: 1, HoldSeconds: 1},
	}}})})
	e.SetLeader(false)
	e.SetLeader(true)
	out, err := reserve(e, "v1", "alice", nil)
	if err != nil {
		t.Fatal(err)
	}
	if out.Reservation.CreatedAt < ahead {
		t.Fatalf("created at %s, before the committed %s", domain.FormatTime(out.Reservation.CreatedAt), domain.FormatTime(ahead))
	}
}

// Defect 7, forward step: a jump of the wall clock within a term does not
// move leader time, so it cannot prune every idempotency record at once.
func TestDefect7ForwardStepKeepsIdempotencyRecords(t *testing.T) {
	clock := &testClock{}
	e, log := newCtlEngine(t, Config{Clock: clock})
	putVoucher(t, e, "v1", 5, 900)
	key := &domain.IdemKey{Key: "k", Fingerprint: [16]byte{3}}
	first, err := reserve(e, "v1", "alice", key)
	if err != nil {
		t.Fatal(err)
	}
	clock.offset.Store(int64(48 * time.Hour))
	if _, err := reserve(e, "v1", "bob", nil); err != nil { // an event at the stepped time
		t.Fatal(err)
	}
	again, err := reserve(e, "v1", "alice", key)
	if err != nil || !again.Replayed || again.Reservation.ID != first.Reservation.ID {
		t.Fatalf("retry after the step: %+v %v", again, err)
	}
	log.View(func(st *domain.State) {
		if _, _, idem, _ := st.Counts(); idem != 1 {
			t.Fatalf("%d idempotency records, want 1", idem)
		}
	})
}

// Defect 11: passivation ignored a dirty actor, so its successor reloaded
// committed state without the barrier an unknown outcome needs.
func TestDefect11DirtyActorIsNotPassivated(t *testing.T) {
	var passivated atomic.Int64
	log := newCtlLog()
	e := New(log, Config{IdleTimeout: 30 * time.Millisecond}, Hooks{Passivated: func() { passivated.Add(1) }})
	e.SetLeader(true)
	t.Cleanup(e.Close)
	putVoucher(t, e, "v1", 5, 900)
	release := log.blockBarriers()
	defer release()
	log.hold.Store(true)
	r := async(func() (domain.Outcome, error) { return reserve(e, "v1", "alice", nil) })
	p := log.next(t)
	log.hold.Store(false)
	log.commitUnseen(p)
	await(t, r, 5*time.Second)
	time.Sleep(20 * 30 * time.Millisecond) // twenty idle timeouts
	if n := passivated.Load(); n != 0 {
		t.Fatalf("a dirty actor passivated %d times", n)
	}
	release()
	waitFor(t, 10*time.Second, func() bool { return passivated.Load() == 1 })
}

// Defect 12, engine side: a leader gives definite answers that are not
// commits (sold out, not found) only under the lease or after confirming it
// still leads; a deposed leader answers unavailable.
func TestDefect12RejectionsNeedTheLease(t *testing.T) {
	e, log := newCtlEngine(t, Config{})
	putVoucher(t, e, "v1", 1, 900)
	if _, err := reserve(e, "v1", "alice", nil); err != nil {
		t.Fatal(err)
	}
	log.lease.Store(false)
	log.verifyErr.Store(errBox{fmt.Errorf("another node leads: %w", domain.ErrNotLeader)})
	for name, op := range map[string]func() error{
		"sold out": func() error { _, err := reserve(e, "v1", "bob", nil); return err },
		"unknown reservation": func() error {
			_, err := transition(e, "nope", domain.StatusCancelled, admin)
			return err
		},
		"unknown resource": func() error { _, err := reserve(e, "nope", "bob", nil); return err },
	} {
		if err := op(); !errors.Is(err, domain.ErrUnavailable) && !errors.Is(err, domain.ErrNotLeader) {
			t.Errorf("%s from a deposed leader: %v, want unavailable", name, err)
		}
	}
	log.verifyErr.Store(errBox{}) // a quorum confirms: the answer stands
	if _, err := reserve(e, "v1", "bob", nil); !errors.Is(err, domain.ErrSoldOut) {
		t.Fatalf("after the check: %v, want sold out", err)
	}
	log.lease.Store(true)
	before := log.verifies.Load()
	if _, err := reserve(e, "v1", "carol", nil); !errors.Is(err, domain.ErrSoldOut) {
		t.Fatalf("under the lease: %v", err)
	}
	if log.verifies.Load() != before {
		t.Fatal("a rejection under the lease asked the quorum")
	}
}

// An event that never reached the proposer (the term ended while the actor
// waited for room in its queue) must not release answers that wait for an
// earlier event still in flight: that one may yet be lost.
func TestAbandonedEventKeepsEarlierAnswersWaiting(t *testing.T) {
	e, log := newCtlEngine(t, Config{QueueSize: 1, MaxInflightBatches: 1})
	spec := domain.Spec{Kind: domain.KindVoucher, Capacity: 1, HoldSeconds: 900}
	putSpec(t, e, "v1", spec)
	log.hold.Store(true)
	a := async(func() (domain.Outcome, error) { return reserve(e, "v1", "alice", nil) })
	p1 := log.next(t) // the only slot
	b := async(func() (domain.Outcome, error) { return reserve(e, "v1", "bob", nil) })
	silent(t, b, 50*time.Millisecond) // sold out behind alice's event: held in the gate
	for range 3 {                     // fill the proposer, its queue, and block the actor
		go func() { _, _, _ = e.PutResource(context.Background(), "v1", spec) }()
		time.Sleep(20 * time.Millisecond)
	}
	stopped := make(chan struct{})
	go func() { e.SetLeader(false); close(stopped) }()
	select {
	case r := <-b:
		if errors.Is(r.err, domain.ErrSoldOut) {
			t.Fatal("bob was told sold_out while the reservation that took the unit was still in flight")
		}
	case <-time.After(300 * time.Millisecond):
	}
	<-stopped
	log.lose(p1) // alice's reservation never commits
	await(t, a, 5*time.Second)
	if r := await(t, b, 5*time.Second); errors.Is(r.err, domain.ErrSoldOut) {
		t.Fatal("bob was told sold_out for a unit nobody took")
	}
}

// A PUT is answered from committed state: events of its actor that were
// lost are not in the answer.
func TestPutAnswersFromCommittedState(t *testing.T) {
	e, log := newCtlEngine(t, Config{})
	spec := domain.Spec{Kind: domain.KindVoucher, Capacity: 5, HoldSeconds: 900}
	log.hold.Store(true)
	create := async(func() (bool, error) { _, c, err := e.PutResource(context.Background(), "v1", spec); return c, err })
	p1 := log.next(t)
	update := async(func() (bool, error) { _, c, err := e.PutResource(context.Background(), "v1", spec); return c, err })
	p2 := log.next(t)
	log.lose(p1) // the create is lost ...
	log.hold.Store(false)
	log.commit(p2) // ... and the second PUT is what creates v1
	await(t, create, 5*time.Second)
	if r := await(t, update, 5*time.Second); r.err != nil || !r.v {
		t.Fatalf("second PUT: created=%v %v, want created (it made the resource)", r.v, r.err)
	}
}
