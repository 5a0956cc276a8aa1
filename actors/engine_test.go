package actors

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"allot/actors/domain"
)

// memLog is an in-memory Log: it encodes and decodes every batch like the
// real one and applies it to a State on another goroutine.
type memLog struct {
	mu      sync.RWMutex
	st      *domain.State
	batches atomic.Int64
	events  atomic.Int64
	refused atomic.Int64 // events State.Apply refused: invariant violations
	delay   time.Duration
	// lateOnce makes the next batch answer "outcome unknown" at once and
	// apply 100 ms later, like an entry that commits after its wait timed out.
	lateOnce atomic.Bool
	applying sync.WaitGroup
}

func newMemLog() *memLog { return &memLog{st: domain.NewState()} }

func (m *memLog) Propose(b *domain.Batch, done func([]error, error)) {
	data := domain.EncodeBatch(nil, &domain.Batch{Term: 1, Events: b.Events}) // stamped, as a ready leader's are
	late := m.lateOnce.CompareAndSwap(true, false)
	m.applying.Add(1)
	go func() {
		defer m.applying.Done()
		delay := m.delay // a stand-in for the disk write
		if late {
			done(nil, fmt.Errorf("wait timed out: %w", domain.ErrOutcomeUnknown))
			delay = 100 * time.Millisecond
		}
		time.Sleep(delay)
		dec, err := domain.DecodeBatch(data)
		if err != nil {
			done(nil, err)
			return
		}
		m.mu.Lock()
		res := make([]error, len(dec.Events))
		for i := range dec.Events {
			if res[i] = m.st.Apply(&dec.Events[i]); res[i] != nil && !errors.Is(res[i], domain.ErrDuplicateKey) {
				m.refused.Add(1)
			}
		}
		m.mu.Unlock()
		m.batches.Add(1)
		m.events.Add(int64(len(dec.Events)))
		if !late {
			done(res, nil)
		}
	}()
}

// Barrier waits for every batch proposed so far to be applied.
func (m *memLog) Barrier(ctx context.Context) error {
	ch := make(chan struct{})
	go func() { m.applying.Wait(); close(ch) }()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// LeaseValid: an in-memory log has no rival leader.
func (m *memLog) LeaseValid() bool { return true }

func (m *memLog) VerifyLeader(context.Context) error { return nil }

func (m *memLog) View(fn func(*domain.State)) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	fn(m.st)
}

func (m *memLog) check(t *testing.T) {
	t.Helper()
	if n := m.refused.Load(); n != 0 {
		t.Fatalf("the log refused %d events the actors accepted", n)
	}
	m.View(func(st *domain.State) {
		if err := st.CheckInvariants(); err != nil {
			t.Fatalf("invariant: %v", err)
		}
	})
}

func newTestEngine(t *testing.T, cfg Config) (*Engine, *memLog) {
	t.Helper()
	log := newMemLog()
	e := New(log, cfg, Hooks{})
	e.SetLeader(true)
	t.Cleanup(e.Close)
	return e, log
}

var admin = domain.Principal{User: "root", Admin: true}

func putVoucher(t *testing.T, e *Engine, id string, capacity, hold int64) {
	t.Helper()
	spec := domain.Spec{Kind: domain.KindVoucher, Capacity: capacity, PerUserLimit: 1, HoldSeconds: hold}
	if _, created, err := e.PutResource(context.Background(), id, spec); err != nil || !created {
		t.Fatalf("put %s: created=%v err=%v", id, created, err)
	}
}

func reserve(e *Engine, resource, user string, idem *domain.IdemKey) (domain.Outcome, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return e.Reserve(ctx, domain.ReserveCommand{
		ResourceID: resource, Caller: domain.Principal{User: user},
		Request: domain.ReserveRequest{User: user, Quantity: 1}, Idem: idem,
	})
}

func TestFlashCrowdNeverOversells(t *testing.T) {
	e, log := newTestEngine(t, Config{})
	putVoucher(t, e, "v1", 100, 0)
	var ok, soldOut atomic.Int64
	var wg sync.WaitGroup
	for u := 0; u < 2000; u++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := reserve(e, "v1", fmt.Sprintf("u%d", u), nil)
			switch {
			case err == nil && out.Code == http.StatusCreated && out.Reservation.Status == domain.StatusConfirmed:
				ok.Add(1)
			case errors.Is(err, domain.ErrSoldOut):
				soldOut.Add(1)
			default:
				t.Errorf("user %d: %+v %v", u, out, err)
			}
		}()
	}
	wg.Wait()
	if ok.Load() != 100 || soldOut.Load() != 1900 {
		t.Fatalf("ok=%d sold_out=%d, want 100 and 1900", ok.Load(), soldOut.Load())
	}
	log.check(t)
	log.View(func(st *domain.State) {
		r, _ := st.Resource("v1")
		if r.Available() != 0 || r.Confirmed != 100 {
			t.Fatalf("available %d confirmed %d", r.Available(), r.Confirmed)
		}
	})
	if b := log.batches.Load(); b > 101 {
		t.Fatalf("%d batches for 101 events", b)
	}
}

func TestIdempotentRetryReturnsTheSameReservation(t *testing.T) {
	e, log := newTestEngine(t, Config{})
	putVoucher(t, e, "v1", 10, 900)
	key := &domain.IdemKey{Key: "k1", Fingerprint: [16]byte{1}}
	first, err := reserve(e, "v1", "alice", key)
	if err != nil || first.Replayed {
		t.Fatalf("first: %+v %v", first, err)
	}
	again, err := reserve(e, "v1", "alice", key)
	if err != nil || !again.Replayed || again.Reservation != first.Reservation || again.Code != http.StatusCreated {
		t.Fatalf("replay: %+v %v, first %+v", again, err, first)
	}
	other := &domain.IdemKey{Key: "k1", Fingerprint: [16]byte{2}}
	if _, err := reserve(e, "v1", "alice", other); !errors.Is(err, domain.ErrIdempotencyKeyReused) {
		t.Fatalf("reused key with another body: %v", err)
	}
	// The same key belongs to another user's scope.
	if out, err := reserve(e, "v1", "bob", key); err != nil || out.Replayed {
		t.Fatalf("bob: %+v %v", out, err)
	}
	log.View(func(st *domain.State) {
		if _, n, _, _ := st.Counts(); n != 2 {
			t.Fatalf("%d reservations, want 2", n)
		}
	})
}

func TestConcurrentSameKeyBooksOnce(t *testing.T) {
	e, log := newTestEngine(t, Config{})
	log.delay = 5 * time.Millisecond
	putVoucher(t, e, "v1", 10, 900)
	key := &domain.IdemKey{Key: "k", Fingerprint: [16]byte{7}}
	var wg sync.WaitGroup
	var created, replayed, busy atomic.Int64
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := reserve(e, "v1", "alice", key)
			switch {
			case err == nil && out.Replayed:
				replayed.Add(1)
			case err == nil:
				created.Add(1)
			case errors.Is(err, domain.ErrRequestInProgress):
				busy.Add(1)
			default:
				t.Errorf("%v", err)
			}
		}()
	}
	wg.Wait()
	if created.Load() != 1 || created.Load()+replayed.Load()+busy.Load() != 20 {
		t.Fatalf("created %d replayed %d in progress %d", created.Load(), replayed.Load(), busy.Load())
	}
}

func TestTransitionsAndOwnership(t *testing.T) {
	e, log := newTestEngine(t, Config{})
	putVoucher(t, e, "v1", 5, 900)
	out, err := reserve(e, "v1", "alice", nil)
	if err != nil {
		t.Fatal(err)
	}
	rid := out.Reservation.ID
	move := func(to domain.Status, who domain.Principal) (domain.Outcome, error) {
		return e.Transition(context.Background(), domain.TransitionCommand{ReservationID: rid, To: to, Caller: who})
	}
	if _, err := move(domain.StatusConfirmed, domain.Principal{User: "mallory"}); !errors.Is(err, domain.ErrPermissionDenied) {
		t.Fatalf("other user confirm: %v", err)
	}
	got, err := move(domain.StatusConfirmed, domain.Principal{User: "alice"})
	if err != nil || got.Reservation.Status != domain.StatusConfirmed || got.Code != http.StatusOK {
		t.Fatalf("confirm: %+v %v", got, err)
	}
	again, err := move(domain.StatusConfirmed, domain.Principal{User: "alice"})
	if err != nil || again.Reservation != got.Reservation {
		t.Fatalf("repeat confirm must be a no-op: %+v %v", again, err)
	}
	if _, err := move(domain.StatusCheckedIn, admin); !errors.Is(err, domain.ErrInvalidState) {
		t.Fatalf("check-in of a voucher: %v", err)
	}
	if got, err := move(domain.StatusCompleted, admin); err != nil || got.Reservation.Status != domain.StatusCompleted {
		t.Fatalf("complete: %+v %v", got, err)
	}
	if _, err := move(domain.StatusCancelled, domain.Principal{User: "alice"}); !errors.Is(err, domain.ErrInvalidState) {
		t.Fatalf("cancel of completed: %v", err)
	}
	if _, err := e.Transition(context.Background(), domain.TransitionCommand{ReservationID: "nope", To: domain.StatusCancelled, Caller: admin}); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("unknown reservation: %v", err)
	}
	log.check(t)
}

func TestHoldsExpireAndReturnStock(t *testing.T) {
	e, log := newTestEngine(t, Config{})
	putVoucher(t, e, "v1", 1, 1)
	out, err := reserve(e, "v1", "alice", nil)
	if err != nil || out.Reservation.Status != domain.StatusHeld {
		t.Fatalf("%+v %v", out, err)
	}
	if _, err := reserve(e, "v1", "bob", nil); !errors.Is(err, domain.ErrSoldOut) {
		t.Fatalf("while held: %v", err)
	}
	waitFor(t, 5*time.Second, func() bool {
		var st domain.Status
		log.View(func(s *domain.State) { r, _ := s.Reservation(out.Reservation.ID); st = r.Status })
		return st == domain.StatusExpired
	})
	log.View(func(s *domain.State) {
		r, _ := s.Reservation(out.Reservation.ID)
		if r.UpdatedAt < out.Reservation.ExpiresAt {
			t.Fatalf("expired early: at %d, due %d", r.UpdatedAt, out.Reservation.ExpiresAt)
		}
	})
	if _, err := reserve(e, "v1", "bob", nil); err != nil {
		t.Fatalf("after expiry: %v", err)
	}
	log.check(t)
}

func TestExpiryTimersRebuiltOnNewTerm(t *testing.T) {
	e, log := newTestEngine(t, Config{})
	putVoucher(t, e, "v1", 1, 1)
	out, err := reserve(e, "v1", "alice", nil)
	if err != nil {
		t.Fatal(err)
	}
	e.SetLeader(false)
	if _, err := reserve(e, "v1", "bob", nil); !errors.Is(err, domain.ErrNotLeader) {
		t.Fatalf("not leading: %v", err)
	}
	time.Sleep(1100 * time.Millisecond) // let the hold fall due while no one leads
	e.SetLeader(true)
	waitFor(t, 5*time.Second, func() bool {
		var st domain.Status
		log.View(func(s *domain.State) { r, _ := s.Reservation(out.Reservation.ID); st = r.Status })
		return st == domain.StatusExpired
	})
	log.check(t)
}

func TestPassivatedActorsReactivateFromCommittedState(t *testing.T) {
	e, log := newTestEngine(t, Config{IdleTimeout: 20 * time.Millisecond})
	putVoucher(t, e, "v1", 3, 0)
	for i := 0; i < 3; i++ {
		waitFor(t, 5*time.Second, func() bool { return e.current().registry.size() == 0 })
		if _, err := reserve(e, "v1", fmt.Sprintf("u%d", i), nil); err != nil {
			t.Fatalf("reserve %d: %v", i, err)
		}
	}
	waitFor(t, 5*time.Second, func() bool { return e.current().registry.size() == 0 })
	if _, err := reserve(e, "v1", "late", nil); !errors.Is(err, domain.ErrSoldOut) {
		t.Fatalf("after passivation: %v", err)
	}
	log.check(t)
}

func TestRoomStaysAreAllOrNothing(t *testing.T) {
	e, log := newTestEngine(t, Config{})
	d0, _ := domain.ParseDay("2026-12-01")
	spec := domain.Spec{Kind: domain.KindRoom, HoldSeconds: 0, Inventory: []domain.InventoryRow{{From: d0, To: d0 + 10, Rooms: 2}}}
	if _, _, err := e.PutResource(context.Background(), "r1", spec); err != nil {
		t.Fatal(err)
	}
	stay := func(user string, in, out domain.Day) error {
		_, err := e.Reserve(context.Background(), domain.ReserveCommand{ResourceID: "r1", Caller: domain.Principal{User: user},
			Request: domain.ReserveRequest{User: user, Quantity: 1, CheckIn: in, CheckOut: out}})
		return err
	}
	var wg sync.WaitGroup
	for u := 0; u < 40; u++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			in := d0 + domain.Day(u%8)
			_ = stay(fmt.Sprintf("u%d", u), in, in+domain.Day(1+u%3))
		}()
	}
	wg.Wait()
	log.check(t)
	log.View(func(st *domain.State) {
		r, _ := st.Resource("r1")
		for d := d0; d < d0+10; d++ {
			if n := r.Night(d); n.Available() < 0 || n.Held+n.Confirmed > 2 {
				t.Fatalf("night %s oversold: %+v", d, n)
			}
		}
	})
}

func TestDeleteRefusedWhileTaken(t *testing.T) {
	e, _ := newTestEngine(t, Config{})
	putVoucher(t, e, "v1", 1, 900)
	if _, err := reserve(e, "v1", "alice", nil); err != nil {
		t.Fatal(err)
	}
	if err := e.DeleteResource(context.Background(), "v1"); !errors.Is(err, domain.ErrInvalidState) {
		t.Fatalf("delete with a hold: %v", err)
	}
	if err := e.DeleteResource(context.Background(), "nope"); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("delete unknown: %v", err)
	}
	if _, err := reserve(e, "nope", "alice", nil); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("reserve unknown: %v", err)
	}
}

func waitFor(t *testing.T, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v", within)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// An entry whose outcome was unknown may still commit. The actor must not
// trust committed state until a barrier shows it complete, or it would sell
// the unit twice.
func TestUnknownOutcomeResyncsBeforeDeciding(t *testing.T) {
	e, log := newTestEngine(t, Config{})
	putVoucher(t, e, "v1", 2, 0)
	log.lateOnce.Store(true)
	if _, err := reserve(e, "v1", "first", nil); !errors.Is(err, domain.ErrOutcomeUnknown) {
		t.Fatalf("want outcome unknown, got %v", err)
	}
	var ok, soldOut int
	for i := 0; i < 200 && ok+soldOut < 3; i++ {
		_, err := reserve(e, "v1", fmt.Sprintf("u%d", i), nil)
		switch {
		case err == nil:
			ok++
		case errors.Is(err, domain.ErrSoldOut):
			soldOut++
		case errors.Is(err, domain.ErrUnavailable): // resyncing
			time.Sleep(5 * time.Millisecond)
		default:
			t.Fatalf("reserve: %v", err)
		}
	}
	if ok != 1 || soldOut != 2 {
		t.Fatalf("after the late commit: %d more sold, %d sold out; want 1 and 2", ok, soldOut)
	}
	log.check(t)
}

// A stale expiry for a resource deleted since must not stop the timers.
func TestExpiryOutlivesDeletedResources(t *testing.T) {
	e, log := newTestEngine(t, Config{})
	putVoucher(t, e, "gone", 1, 900)
	if err := e.DeleteResource(context.Background(), "gone"); err != nil {
		t.Fatal(err)
	}
	e.current().expiry.add("stale", "gone", time.Now().UnixNano())
	putVoucher(t, e, "v1", 1, 1)
	out, err := reserve(e, "v1", "alice", nil)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, func() bool {
		var st domain.Status
		log.View(func(s *domain.State) { r, _ := s.Reservation(out.Reservation.ID); st = r.Status })
		return st == domain.StatusExpired
	})
}
