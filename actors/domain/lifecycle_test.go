package domain_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"allot/actors/domain"
)

const (
	held       = domain.StatusHeld
	confirmed  = domain.StatusConfirmed
	cancelled  = domain.StatusCancelled
	expired    = domain.StatusExpired
	checkedIn  = domain.StatusCheckedIn
	completed  = domain.StatusCompleted
	holdPeriod = 900 * time.Second
)

// allowed is the lifecycle table of API.md: the transitions that happen
// from a status. Repeating the one that already happened is a noop; all
// others are refused with ErrInvalidState.
func allowed(from domain.Status) []domain.Status {
	switch from {
	case held:
		return []domain.Status{confirmed, cancelled, expired}
	case confirmed:
		return []domain.Status{cancelled, checkedIn, completed}
	case checkedIn:
		return []domain.Status{completed}
	}
	return nil
}

// lifecycleState returns a state with one resource of kind "x" and
// reservation "r1" of two units (rooms: two rooms for Dec 1 and 2) by alice,
// brought into status from along the lifecycle.
func lifecycleState(t *testing.T, kind domain.Kind, from domain.Status) *domain.State {
	t.Helper()
	spec := domain.Spec{Kind: kind, Capacity: 5, HoldSeconds: int64(holdPeriod / time.Second)}
	q := domain.ReserveRequest{User: "alice", Quantity: 2}
	if kind == domain.KindRoom {
		spec.Capacity = 0
		spec.Inventory = []domain.InventoryRow{{From: dec1, To: dec1 + 3, Rooms: 5}}
		q.CheckIn, q.CheckOut = dec1, dec1+2
	}
	st := newState(t, "x", spec)
	mustReserve(t, st, "x", q, "r1", t0)
	switch from {
	case confirmed:
		mustTransition(t, st, "r1", confirmed, at(time.Second))
	case checkedIn, completed:
		mustTransition(t, st, "r1", confirmed, at(time.Second))
		mustTransition(t, st, "r1", from, at(time.Second))
	case cancelled:
		mustTransition(t, st, "r1", cancelled, at(time.Second))
	case expired:
		mustTransition(t, st, "r1", expired, at(holdPeriod))
	}
	wantTaken(t, st, kind, from)
	return st
}

// wantTaken checks every count of lifecycleState's resource for r1 in
// status s.
func wantTaken(t *testing.T, st *domain.State, kind domain.Kind, s domain.Status) {
	t.Helper()
	var h, c int64
	switch {
	case s == held:
		h = 2
	case s.Taken():
		c = 2
	}
	if kind == domain.KindRoom {
		n := night(5, int32(h), int32(c))
		wantNights(t, st, "x", dec1-1, night(0, 0, 0), n, n, night(5, 0, 0), night(0, 0, 0))
	} else {
		wantCounts(t, st, "x", 5-h-c, h, c)
	}
	wantUser(t, st, "x", "alice", h+c)
	if _, _, _, indexed := st.Counts(); (indexed == 1) != (s == held) {
		t.Fatalf("status %s but %d in the expiry index", s, indexed)
	}
	if res, _ := st.Reservation("r1"); res.Status != s || (res.ExpiresAt != 0) != (s == held) {
		t.Fatalf("reservation %+v, want status %s", res, s)
	}
}

func TestLifecycleTable(t *testing.T) {
	statuses := []domain.Status{held, confirmed, cancelled, expired, checkedIn, completed}
	for _, kind := range []domain.Kind{domain.KindVoucher, domain.KindSlot, domain.KindRoom} {
		for _, from := range statuses {
			if from == checkedIn && kind == domain.KindVoucher {
				continue // unreachable: vouchers are never checked in
			}
			for _, to := range append(statuses, domain.Status(0), domain.Status(99)) {
				t.Run(fmt.Sprintf("%s/%s->%s", kind, from, to), func(t *testing.T) {
					st := lifecycleState(t, kind, from)
					// Time is not what decides here: expire at expires_at,
					// everything else well before it.
					when := at(2 * time.Second)
					if to == expired {
						when = at(holdPeriod)
					}
					ok := slices.Contains(allowed(from), to) && !(kind == domain.KindVoucher && to == checkedIn)
					noop, err := transition(t, st, "r1", to, when)
					switch {
					case from == to:
						if !noop || err != nil {
							t.Fatalf("repeat: noop %v err %v, want a noop", noop, err)
						}
						wantTaken(t, st, kind, from)
					case ok:
						if noop || err != nil {
							t.Fatalf("noop %v err %v, want a transition", noop, err)
						}
						wantTaken(t, st, kind, to)
					default:
						wantErr(t, err, domain.ErrInvalidState)
						wantTaken(t, st, kind, from)
					}
				})
			}
		}
	}
}

// TestConfirmAtExpiry: a hold can be confirmed until just before expires_at;
// at expires_at confirming is ErrExpired and expiring is allowed.
func TestConfirmAtExpiry(t *testing.T) {
	for _, kind := range []domain.Kind{domain.KindVoucher, domain.KindSlot, domain.KindRoom} {
		t.Run(kind.String(), func(t *testing.T) {
			st := lifecycleState(t, kind, held)
			res, _ := st.Reservation("r1")
			if res.ExpiresAt != at(holdPeriod) {
				t.Fatalf("expires_at %d, want %d", res.ExpiresAt, at(holdPeriod))
			}
			_, err := transition(t, st, "r1", confirmed, res.ExpiresAt)
			wantErr(t, err, domain.ErrExpired)
			_, err = transition(t, st, "r1", confirmed, res.ExpiresAt+int64(time.Hour))
			wantErr(t, err, domain.ErrExpired)
			wantTaken(t, st, kind, held)
			mustTransition(t, st, "r1", confirmed, res.ExpiresAt-1)
			wantTaken(t, st, kind, confirmed)
			if got, _ := st.Reservation("r1"); got.ExpiresAt != 0 || got.UpdatedAt != res.ExpiresAt-1 || got.CreatedAt != t0 {
				t.Fatalf("confirmed reservation %+v", got)
			}

			st = lifecycleState(t, kind, held)
			mustTransition(t, st, "r1", expired, res.ExpiresAt)
			wantTaken(t, st, kind, expired)
			_, err = transition(t, st, "r1", confirmed, res.ExpiresAt)
			wantErr(t, err, domain.ErrInvalidState)
		})
	}
}

// TestExpireNeverEarly: the FSM refuses an expiry before expires_at, even
// by a nanosecond.
func TestExpireNeverEarly(t *testing.T) {
	st := lifecycleState(t, domain.KindSlot, held)
	for _, when := range []int64{t0, at(holdPeriod) - 1} {
		_, err := transition(t, st, "r1", expired, when)
		wantErr(t, err, domain.ErrInvalidState)
		wantTaken(t, st, domain.KindSlot, held)
	}
	mustTransition(t, st, "r1", expired, at(holdPeriod)+int64(3*time.Second))
	wantTaken(t, st, domain.KindSlot, expired)
}

func TestCancelDeadline(t *testing.T) {
	deadline := at(time.Hour)
	st := newState(t, "s", domain.Spec{Kind: domain.KindSlot, Capacity: 3, HoldSeconds: 7200, CancelDeadline: deadline})
	for _, rid := range []string{"c1", "c2", "h1"} {
		mustReserve(t, st, "s", domain.ReserveRequest{User: rid, Quantity: 1}, rid, t0)
	}
	mustTransition(t, st, "c1", confirmed, t0)
	mustTransition(t, st, "c2", confirmed, t0)
	wantCounts(t, st, "s", 0, 1, 2)

	mustTransition(t, st, "c1", cancelled, deadline-1)
	wantCounts(t, st, "s", 1, 1, 1)
	_, err := transition(t, st, "c2", cancelled, deadline)
	wantErr(t, err, domain.ErrInvalidState)
	wantCounts(t, st, "s", 1, 1, 1)
	// The deadline is for confirmed reservations; a hold may always be let go.
	mustTransition(t, st, "h1", cancelled, deadline+int64(time.Minute))
	wantCounts(t, st, "s", 2, 0, 1)
	wantUser(t, st, "s", "c1", 0)
	wantUser(t, st, "s", "c2", 1)
	wantUser(t, st, "s", "h1", 0)
	// After the deadline the visit can still happen.
	mustTransition(t, st, "c2", checkedIn, deadline)
	mustTransition(t, st, "c2", completed, deadline)
	wantCounts(t, st, "s", 2, 0, 1)
}

func TestTransitionEventsApplyChecks(t *testing.T) {
	st := lifecycleState(t, domain.KindVoucher, held)
	ev := func(rid, resource string, to domain.Status) domain.Event {
		return domain.Event{Type: domain.EvTransition, At: at(time.Second), ResourceID: resource, ReservationID: rid, To: to}
	}
	mustRefuse(t, st, ev("nope", "x", confirmed), domain.ErrNotFound)
	mustRefuse(t, st, ev("r1", "y", confirmed), domain.ErrNotFound)
	mustRefuse(t, st, ev("r1", "x", held), domain.ErrInvalidState)
	mustRefuse(t, st, ev("r1", "x", checkedIn), domain.ErrInvalidState)
	mustApply(t, st, ev("r1", "x", confirmed))
	// A replayed entry (applied twice) is refused, not applied twice.
	mustRefuse(t, st, ev("r1", "x", confirmed), domain.ErrInvalidState)
	wantTaken(t, st, domain.KindVoucher, confirmed)
}
