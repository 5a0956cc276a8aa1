package actors

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"allot/actors/domain"
)

// Regression tests for limit groups under faults at the log seam (ctlLog):
// what a client is told and what a limit actor believes, against what
// committed.

// newCtlLimitEngine is newCtlEngine on a log whose format allows limits.
func newCtlLimitEngine(t *testing.T, cfg Config) (*Engine, *ctlLog) {
	t.Helper()
	e, log := newCtlEngine(t, cfg)
	log.mu.Lock()
	log.st.RaiseLogFormat(domain.BatchV4)
	log.mu.Unlock()
	return e, log
}

// liveActor returns the current term's actor of resource id, nil if none.
func liveActor(e *Engine, id string) *resourceActor {
	s := e.current().registry.shard(id)
	s.Lock()
	defer s.Unlock()
	if en := s.actors[id]; en != nil {
		return en.act
	}
	return nil
}

// waitPending waits until resource id's actor has n events and claims open.
func waitPending(t *testing.T, e *Engine, id string, n int64) {
	t.Helper()
	waitFor(t, 5*time.Second, func() bool {
		a := liveActor(e, id)
		return a != nil && a.pending.Load() == n
	})
}

// heldOf returns the ids of the committed holds of resource id.
func heldOf(log *ctlLog, id string) []string {
	var ids []string
	log.View(func(st *domain.State) {
		st.EachHeldOf(id, func(r domain.Reservation) { ids = append(ids, r.ID) })
	})
	return ids
}

// A hold whose outcome was unknown but which committed gets its expiry
// timer back when its actor resynchronises. When the last thing the actor
// had open was a claim waiting at a limit (not an event), nothing woke it
// once that claim ended: the hold stayed held, and its limit share taken,
// for as long as no request reached the resource.
func TestLimitClaimEndingLastResyncsTheActor(t *testing.T) {
	e, log := newCtlLimitEngine(t, Config{ExpiryRetry: 20 * time.Millisecond})
	mustPutLimit(t, e, "cap1", 0, 1)
	putSpec(t, e, "a", domain.Spec{Kind: domain.KindSlot, Capacity: 10, HoldSeconds: 1, Limits: []string{"cap1"}})

	release := log.blockBarriers()
	defer release()
	log.hold.Store(true)
	ann := async(func() (domain.Outcome, error) { return reserve(e, "a", "ann", nil) })
	p := log.next(t)
	// bob's claim waits at the limit behind ann's grant.
	bob := async(func() (domain.Outcome, error) { return reserve(e, "a", "bob", nil) })
	waitPending(t, e, "a", 2)
	log.commitUnseen(p) // ann's hold committed; the actor was told "unknown"
	if r := await(t, ann, 5*time.Second); !errors.Is(r.err, domain.ErrOutcomeUnknown) {
		t.Fatalf("ann: %+v %v, want outcome unknown", r.v, r.err)
	}
	waitPending(t, e, "a", 1) // only bob's claim is open
	log.hold.Store(false)
	release() // the limit's barrier passes: ann's share is committed, bob is refused
	if r := await(t, bob, 5*time.Second); r.err == nil {
		t.Fatalf("bob: %+v, want a refusal (the limit's capacity is taken)", r.v)
	}
	held := heldOf(log, "a")
	if len(held) != 1 {
		t.Fatalf("committed holds %v, want ann's", held)
	}
	waitFor(t, 5*time.Second, func() bool { return log.status(held[0]) == domain.StatusExpired })
	log.View(func(st *domain.State) {
		if l, _ := st.Limit("cap1"); l.Taken != 0 {
			t.Fatalf("limit taken %d after the hold expired", l.Taken)
		}
		if err := st.CheckInvariants(); err != nil {
			t.Fatal(err)
		}
	})
}

// A limit's barrier shows what committed of the entries proposed before
// it started, not of those proposed later. A grant whose outcome turned
// unknown while the barrier ran was dropped with it: ann's booking, still
// on its way to commit, no longer counted, her second one was granted too,
// and committed state had to refuse it (a rejection in the log, and an
// actor gone dirty).
func TestLimitBarrierCoversOnlyEarlierGrants(t *testing.T) {
	e, log := newCtlLimitEngine(t, Config{})
	mustPutLimit(t, e, "day", 1, 0)
	for _, id := range []string{"a", "b", "c"} {
		putSpec(t, e, id, domain.Spec{Kind: domain.KindSlot, Capacity: 10, Limits: []string{"day"}})
	}
	first := log.blockBarriers()
	defer first()
	log.hold.Store(true)
	bob := async(func() (domain.Outcome, error) { return reserve(e, "a", "bob", nil) })
	log.lose(log.next(t)) // the limit starts a barrier for bob's grant
	await(t, bob, 5*time.Second)
	ann := async(func() (domain.Outcome, error) { return reserve(e, "b", "ann", nil) })
	late := log.next(t) // ann's booking, proposed after that barrier started
	log.lose(late)
	await(t, ann, 5*time.Second)
	// The limit's barrier and the resync barriers of a and b have all
	// taken the first gate; later barriers wait for the second.
	waitFor(t, 5*time.Second, func() bool { return log.barriers.Load() == 3 })
	second := log.blockBarriers()
	defer second()
	first()

	again := async(func() (domain.Outcome, error) { return reserve(e, "c", "ann", nil) })
	var p *ctlProposal
	select {
	case <-log.arrived:
		log.mu.Lock()
		p, log.waiting = log.waiting[0], log.waiting[1:]
		log.mu.Unlock()
	case <-time.After(300 * time.Millisecond):
	}
	log.apply(late) // ann's first booking commits after all
	log.hold.Store(false)
	if p != nil {
		log.commit(p)
	}
	second()
	r := await(t, again, 5*time.Second)
	if id, _ := domain.LimitExceededID(r.err); id != "day" {
		t.Fatalf("ann's second booking: %+v %v, want limit_exceeded by day", r.v, r.err)
	}
	if n := log.refusedRules.Load(); n != 0 {
		t.Fatalf("committed state refused %d events: a grant was given against a booking in flight", n)
	}
	log.View(func(st *domain.State) {
		if err := st.CheckInvariants(); err != nil {
			t.Fatal(err)
		}
	})
}

// A limit change whose outcome is unknown may still commit. Claims decided
// meanwhile under the old spec could pass the new one: here the capacity
// goes from 10 to 1 "unknown", two bookings were granted under 10, and
// committed state had to refuse the second. Claims now wait until a barrier
// shows whether the change committed.
func TestLimitChangeWithUnknownOutcomeHoldsClaims(t *testing.T) {
	e, log := newCtlLimitEngine(t, Config{})
	mustPutLimit(t, e, "q", 0, 10)
	putSpec(t, e, "v1", domain.Spec{Kind: domain.KindVoucher, Capacity: 10, Limits: []string{"q"}})
	putSpec(t, e, "v2", domain.Spec{Kind: domain.KindVoucher, Capacity: 10, Limits: []string{"q"}})
	release := log.blockBarriers()
	defer release()
	log.hold.Store(true)
	change := async(func() (*domain.Limit, error) {
		l, _, err := e.PutLimit(context.Background(), "q", domain.LimitSpec{Capacity: 1})
		return l, err
	})
	pc := log.next(t)
	log.lose(pc)
	if r := await(t, change, 5*time.Second); !errors.Is(r.err, domain.ErrOutcomeUnknown) {
		t.Fatalf("change: %+v %v, want outcome unknown", r.v, r.err)
	}
	ann := async(func() (domain.Outcome, error) { return reserve(e, "v1", "ann", nil) })
	bob := async(func() (domain.Outcome, error) { return reserve(e, "v2", "bob", nil) })
	var granted []*ctlProposal
	for len(granted) < 2 {
		select {
		case <-log.arrived:
			log.mu.Lock()
			granted, log.waiting = append(granted, log.waiting[0]), log.waiting[1:]
			log.mu.Unlock()
			continue
		case <-time.After(300 * time.Millisecond):
		}
		break
	}
	log.apply(pc) // the change commits after all
	log.hold.Store(false)
	for _, p := range granted {
		log.commit(p)
	}
	release()
	ra, rb := await(t, ann, 5*time.Second), await(t, bob, 5*time.Second)
	ok, refused := 0, 0
	for _, r := range []result[domain.Outcome]{ra, rb} {
		switch id, _ := domain.LimitExceededID(r.err); {
		case r.err == nil:
			ok++
		case id == "q":
			refused++
		default:
			t.Errorf("%+v %v", r.v, r.err)
		}
	}
	if ok != 1 || refused != 1 {
		t.Fatalf("%d booked, %d refused; want 1 and 1 under capacity 1", ok, refused)
	}
	if n := log.refusedRules.Load(); n != 0 {
		t.Fatalf("committed state refused %d events: a claim was granted under a spec that did not hold", n)
	}
}

// A barrier that fails at once (a node whose FSM halted says so without
// waiting) is tried again after a pause, not in a loop that takes a core
// for as long as the term lasts.
func TestLimitFailingBarrierIsRetriedAfterAPause(t *testing.T) {
	e, log := newCtlLimitEngine(t, Config{ExpiryRetry: 50 * time.Millisecond})
	mustPutLimit(t, e, "day", 1, 0)
	putSpec(t, e, "a", domain.Spec{Kind: domain.KindSlot, Capacity: 10, Limits: []string{"day"}})
	log.barrierErr.Store(errBox{fmt.Errorf("fsm halted: %w", domain.ErrUnavailable)})
	log.hold.Store(true)
	ann := async(func() (domain.Outcome, error) { return reserve(e, "a", "ann", nil) })
	log.lose(log.next(t)) // the limit's grant is doubtful: it needs a barrier
	await(t, ann, 5*time.Second)
	start := log.barriers.Load()
	time.Sleep(500 * time.Millisecond)
	// The resource's resync and the limit each try about every 50 ms.
	if n := log.barriers.Load() - start; n > 40 {
		t.Fatalf("%d barriers in 500 ms", n)
	}
	log.barrierErr.Store(errBox{})
	log.hold.Store(false)
	if _, err := retryUntil(t, func() (domain.Outcome, error) { return reserve(e, "a", "ann", nil) }); err != nil {
		t.Fatalf("once barriers pass again: %v", err)
	}
}

// A reservation a limit refused leaves nothing behind, not even under its
// Idempotency-Key: the log is untouched, and a retry with the same key once
// the share is free is decided again and booked; a retry of that is the
// recorded answer.
func TestLimitRefusalLeavesTheKeyFree(t *testing.T) {
	e, log := newCtlLimitEngine(t, Config{})
	mustPutLimit(t, e, "day", 1, 0)
	putSpec(t, e, "a", domain.Spec{Kind: domain.KindSlot, Capacity: 10, Limits: []string{"day"}})
	putSpec(t, e, "b", domain.Spec{Kind: domain.KindSlot, Capacity: 10, Limits: []string{"day"}})
	first, err := reserve(e, "a", "ann", nil)
	if err != nil {
		t.Fatal(err)
	}
	key := &domain.IdemKey{Key: "rebook", Fingerprint: [16]byte{1}}
	var before [32]byte
	log.View(func(st *domain.State) { before = st.Hash() })
	if _, err := reserve(e, "b", "ann", key); !errors.Is(err, domain.ErrLimitExceeded) {
		t.Fatalf("second booking of the day: %v", err)
	}
	log.View(func(st *domain.State) {
		if st.Hash() != before {
			t.Fatal("a refusal changed committed state")
		}
		if _, ok := st.Idem("ann", key.Key); ok {
			t.Fatal("a refusal was recorded under its key")
		}
	})
	if _, err := transition(e, first.Reservation.ID, domain.StatusCancelled, domain.Principal{User: "ann"}); err != nil {
		t.Fatal(err)
	}
	booked, err := reserve(e, "b", "ann", key)
	if err != nil || booked.Replayed {
		t.Fatalf("retry once the share is free: %+v %v", booked, err)
	}
	again, err := reserve(e, "b", "ann", key)
	if err != nil || !again.Replayed || again.Reservation.ID != booked.Reservation.ID {
		t.Fatalf("retry of the booking: %+v %v, want %s replayed", again, err, booked.Reservation.ID)
	}
}
