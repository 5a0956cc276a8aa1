package actors

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"allot/actors/domain"
)

func (m *memLog) raiseLogFormat(v uint8) {
	m.mu.Lock()
	m.st.RaiseLogFormat(v)
	m.mu.Unlock()
}

// finished returns how many reservations committed state holds, and how
// many of them are prunable.
func (m *memLog) finished() (reservations, finished int) {
	m.View(func(st *domain.State) {
		_, reservations, _, _ = st.Counts()
		finished = st.Finished()
	})
	return reservations, finished
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func cancelAs(e *Engine, user, rid string) (domain.Outcome, error) {
	return e.Transition(context.Background(), domain.TransitionCommand{
		ReservationID: rid, To: domain.StatusCancelled, Caller: domain.Principal{User: user}})
}

// TestRetentionBoundsReserveCancelCycles: a user cycling reserve → cancel
// leaves nothing behind once Retention has passed: the leader prunes the
// cancelled reservations and a completed one (whose unit stays taken), a
// confirmed one stays, counts stay right, a
// transition on a pruned id is not_found, and a retry of an
// Idempotency-Key whose reservation is gone gets the answer on record.
func TestRetentionBoundsReserveCancelCycles(t *testing.T) {
	const retention = 25 * time.Millisecond
	e, log := newTestEngine(t, Config{Retention: retention, PruneInterval: 5 * time.Millisecond})
	log.raiseLogFormat(domain.BatchV3)
	putVoucher(t, e, "v", 10, 60)

	keep, err := reserve(e, "v", "bob", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Transition(context.Background(), domain.TransitionCommand{
		ReservationID: keep.Reservation.ID, To: domain.StatusConfirmed, Caller: domain.Principal{User: "bob"}}); err != nil {
		t.Fatal(err)
	}
	done, err := reserve(e, "v", "carol", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, to := range []domain.Status{domain.StatusConfirmed, domain.StatusCompleted} {
		if _, err := e.Transition(context.Background(), domain.TransitionCommand{
			ReservationID: done.Reservation.ID, To: to, Caller: admin}); err != nil {
			t.Fatal(err)
		}
	}
	key := &domain.IdemKey{Key: "k1", Fingerprint: [16]byte{1}}
	first, err := reserve(e, "v", "alice", key)
	if err != nil {
		t.Fatal(err)
	}
	cancelKey := &domain.IdemKey{Key: "k2", Fingerprint: [16]byte{2}}
	cancelFirst := func() (domain.Outcome, error) {
		return e.Transition(context.Background(), domain.TransitionCommand{ReservationID: first.Reservation.ID,
			To: domain.StatusCancelled, Caller: domain.Principal{User: "alice"}, Idem: cancelKey})
	}
	if _, err := cancelFirst(); err != nil {
		t.Fatal(err)
	}
	// Cycle for twenty retention periods: what is held at any time is what
	// finished within about one of them, not everything so far.
	cycles, most := 0, 0
	for start := time.Now(); cycles < 100 || time.Since(start) < 20*retention; cycles++ {
		i := cycles
		out, err := reserve(e, "v", "alice", nil) // per-user limit 1: only after the cancel
		if err != nil {
			t.Fatalf("cycle %d: %v", i, err)
		}
		if _, err := cancelAs(e, "alice", out.Reservation.ID); err != nil {
			t.Fatalf("cycle %d: %v", i, err)
		}
		_, f := log.finished()
		most = max(most, f)
	}
	waitUntil(t, "every cancelled reservation pruned", func() bool {
		n, f := log.finished()
		return n == 1 && f == 0
	})
	t.Logf("%d cycles: at most %d finished reservations held at once", cycles, most)
	if most > cycles/2 {
		t.Fatalf("%d cycles: %d finished reservations held at once", cycles, most)
	}
	log.check(t)
	log.View(func(st *domain.State) {
		if res, ok := st.Reservation(keep.Reservation.ID); !ok || res.Status != domain.StatusConfirmed {
			t.Fatalf("the confirmed reservation: %+v, %v", res, ok)
		}
		r, _ := st.Resource("v")
		if _, ok := st.Reservation(done.Reservation.ID); ok {
			t.Fatal("the completed reservation was not pruned")
		}
		// carol's completed unit stays taken, and hers.
		if r.Confirmed != 2 || r.Held != 0 || r.UserUnits["bob"] != 1 || r.UserUnits["carol"] != 1 || r.UserUnits["alice"] != 0 {
			t.Fatalf("counts after pruning: %+v", r)
		}
	})

	if _, err := reserve(e, "v", "carol", nil); !errors.Is(err, domain.ErrLimitExceeded) {
		t.Fatalf("carol past her limit once her completed reservation was pruned: %v", err)
	}
	_, err = cancelAs(e, "alice", first.Reservation.ID)
	if !errors.Is(err, domain.ErrNotFound) || !strings.Contains(err.Error(), "retention period") {
		t.Fatalf("cancel of a pruned reservation: %v", err)
	}
	again, err := reserve(e, "v", "alice", key)
	if err != nil || !again.Replayed || again.Code != http.StatusCreated || again.Reservation.ID != first.Reservation.ID {
		t.Fatalf("retry of a key whose reservation was pruned: %+v, %v", again, err)
	}
	if n, _ := log.finished(); n != 1 {
		t.Fatalf("the retry made a reservation: %d held in state", n)
	}
	if out, err := cancelFirst(); err != nil || !out.Replayed || out.Reservation.Status != domain.StatusCancelled {
		t.Fatalf("retry of a cancel whose reservation was pruned: %+v, %v", out, err)
	}
	// A new key on a pruned id is 404, and its claim is released with it:
	// the retry is 404 again, not request_in_progress.
	for range 2 {
		_, err := e.Transition(context.Background(), domain.TransitionCommand{ReservationID: first.Reservation.ID,
			To: domain.StatusCancelled, Caller: domain.Principal{User: "alice"}, Idem: &domain.IdemKey{Key: "k3"}})
		if !errors.Is(err, domain.ErrNotFound) {
			t.Fatalf("cancel of a pruned id with a new key: %v", err)
		}
	}
}

// TestRetentionWaitsForLogFormat: no prune is proposed before the committed
// log format allows EvPrune (an older node would stop on it), nor with
// Retention 0; once the format is raised the leader prunes.
func TestRetentionWaitsForLogFormat(t *testing.T) {
	for _, c := range []struct {
		name      string
		retention time.Duration
	}{{"format 2", 20 * time.Millisecond}, {"keep forever", 0}} {
		t.Run(c.name, func(t *testing.T) {
			e, log := newTestEngine(t, Config{Retention: c.retention, PruneInterval: 5 * time.Millisecond})
			if c.retention == 0 {
				log.raiseLogFormat(domain.BatchV3)
			} else {
				log.raiseLogFormat(domain.BatchV2)
			}
			putVoucher(t, e, "v", 10, 60)
			out, err := reserve(e, "v", "alice", nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := cancelAs(e, "alice", out.Reservation.ID); err != nil {
				t.Fatal(err)
			}
			batches := log.batches.Load()
			time.Sleep(100 * time.Millisecond)
			if n, f := log.finished(); n != 1 || f != 1 || log.batches.Load() != batches {
				t.Fatalf("%d reservations, %d finished, %d batches proposed meanwhile", n, f, log.batches.Load()-batches)
			}
			if c.retention == 0 {
				return
			}
			log.raiseLogFormat(domain.BatchV3)
			waitUntil(t, "the cancelled reservation pruned", func() bool { n, _ := log.finished(); return n == 0 })
			log.check(t)
		})
	}
}
