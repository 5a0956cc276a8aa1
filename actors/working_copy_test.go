package actors

import (
	"errors"
	"strconv"
	"testing"
	"time"

	"allot/actors/domain"
)

// Under a steady crowd an actor always has an event in flight. Its working
// copy must still shrink to about what is uncommitted, or it grows by every
// reservation ever made on the resource (10M reservations of one voucher
// would be 10M entries on the leader, beside committed state).
func TestWorkingCopyStaysBoundedWhileEventsAreAlwaysInFlight(t *testing.T) {
	e, log := newCtlEngine(t, Config{})
	putVoucher(t, e, "v1", 1<<30, 900)
	log.hold.Store(true)

	const n = 3 * maxCachedReservations
	prev := async(func() (domain.Outcome, error) { return reserve(e, "v1", "u0", nil) })
	prevP := log.next(t)
	for i := 1; i <= n; i++ {
		// The next reservation is decided while the previous one is still
		// in flight; only then does the previous one commit.
		user := "u" + strconv.Itoa(i)
		cur := async(func() (domain.Outcome, error) { return reserve(e, "v1", user, nil) })
		curP := log.next(t)
		log.commit(prevP)
		if r := await(t, prev, 5*time.Second); r.err != nil {
			t.Fatalf("reservation %d: %v", i-1, r.err)
		}
		prev, prevP = cur, curP
	}
	log.commit(prevP)
	if r := await(t, prev, 5*time.Second); r.err != nil {
		t.Fatal(r.err)
	}

	// The actor's last write to its copy came before its last proposal
	// reached the test (through the log's channel), so this read is ordered
	// after it.
	s := e.current().registry.shard("v1")
	s.Lock()
	a := s.actors["v1"].act
	s.Unlock()
	if got := len(a.reservations); got > 2*maxCachedReservations+1 {
		t.Fatalf("working copy holds %d reservations after %d committed with one always in flight; want at most %d", got, n+1, 2*maxCachedReservations+1)
	}
	var committed int
	log.View(func(st *domain.State) { r, _ := st.Resource("v1"); committed = int(r.Held) })
	if committed != n+1 {
		t.Fatalf("committed %d holds, want %d", committed, n+1)
	}
}

// An actor whose events have all committed keeps nothing in its working
// copy once it handles its next request: a million resources booked a few
// times each would otherwise hold those reservations twice (committed
// state and copy) until they go idle.
func TestWorkingCopyEmptiesWhenNothingIsInFlight(t *testing.T) {
	e, _ := newCtlEngine(t, Config{})
	putVoucher(t, e, "v1", 10, 900)
	var first string
	for i := range 10 {
		out, err := reserve(e, "v1", "u"+strconv.Itoa(i), nil)
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = out.Reservation.ID
		}
	}
	if _, err := reserve(e, "v1", "late", nil); !errors.Is(err, domain.ErrSoldOut) {
		t.Fatalf("11th reservation of 10: %v, want sold out", err)
	}
	s := e.current().registry.shard("v1")
	s.Lock()
	a := s.actors["v1"].act
	s.Unlock()
	if got := len(a.reservations); got != 0 { // ordered by the answer, as above
		t.Fatalf("working copy holds %d reservations with nothing in flight, want 0", got)
	}
	// What was dropped is read again from committed state when needed.
	out, err := transition(e, first, domain.StatusConfirmed, domain.Principal{User: "u0"})
	if err != nil || out.Reservation.Status != domain.StatusConfirmed {
		t.Fatalf("confirm after the drop: %+v %v", out, err)
	}
}
