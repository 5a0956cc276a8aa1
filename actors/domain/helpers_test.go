package domain_test

import (
	"errors"
	"testing"
	"time"

	"allot/actors/domain"
)

// Fixture times: the leader clock starts at 2026-11-21T10:00:00Z and room
// stays are in December 2026.
const (
	t0   = int64(1795255200) * int64(time.Second)
	dec1 = domain.Day(20788) // 2026-12-01
)

func at(d time.Duration) int64 { return t0 + int64(d) }

// sentinel returns the sentinel err wraps (of those a decision or
// State.Apply may end in), or err itself when none.
func sentinel(err error) error {
	for _, s := range []error{
		domain.ErrInvalidArgument, domain.ErrNotFound, domain.ErrAlreadyExists, domain.ErrSoldOut,
		domain.ErrLimitExceeded, domain.ErrNotOpen, domain.ErrClosed, domain.ErrInvalidState, domain.ErrExpired,
	} {
		if errors.Is(err, s) {
			return s
		}
	}
	return err
}

// newState returns a state holding one resource, created at t0.
func newState(t *testing.T, id string, spec domain.Spec) *domain.State {
	t.Helper()
	st := domain.NewState()
	mustApply(t, st, domain.Event{Type: domain.EvPutResource, At: t0, ResourceID: id, Spec: spec})
	return st
}

// mustApply applies an event that must be accepted and checks the invariants.
func mustApply(t *testing.T, st *domain.State, ev domain.Event) {
	t.Helper()
	if err := st.Apply(&ev); err != nil {
		t.Fatalf("apply %+v: %v", ev, err)
	}
	if err := st.CheckInvariants(); err != nil {
		t.Fatalf("after %+v: %v", ev, err)
	}
}

// mustRefuse applies an event that must be refused with the sentinel of want
// and checks that the state did not change.
func mustRefuse(t *testing.T, st *domain.State, ev domain.Event, want error) {
	t.Helper()
	before := st.Hash()
	err := st.Apply(&ev)
	if !errors.Is(err, want) {
		t.Fatalf("apply %+v: got %v, want %v", ev, err, want)
	}
	if st.Hash() != before {
		t.Fatalf("refused %+v (%v) but the state changed", ev, err)
	}
}

// reserve decides req at leader time at like an actor (on a clone of the
// committed resource) and applies the reservation when accepted. A refused
// decision is also put to Apply, which must refuse it the same way.
func reserve(t *testing.T, st *domain.State, id string, req domain.ReserveRequest, rid string, at int64) (domain.Reservation, error) {
	t.Helper()
	r, ok := st.Resource(id)
	if !ok {
		t.Fatalf("no resource %s", id)
	}
	res, err := r.Clone().DecideReserve(req, rid, at)
	ev := domain.Event{Type: domain.EvReserve, At: at, ResourceID: id, Reservation: res}
	if err != nil {
		if res.ID != "" {
			mustRefuse(t, st, ev, sentinel(err))
		}
		return res, err
	}
	mustApply(t, st, ev)
	return res, nil
}

// mustReserve is reserve for a request that must be accepted.
func mustReserve(t *testing.T, st *domain.State, id string, req domain.ReserveRequest, rid string, at int64) domain.Reservation {
	t.Helper()
	res, err := reserve(t, st, id, req, rid, at)
	if err != nil {
		t.Fatalf("reserve %s %+v: %v", id, req, err)
	}
	return res
}

// transition decides and, when accepted, applies a move of reservation rid
// to status to at leader time at. A refusal (or a noop, which the leader
// answers without an event) is also put to Apply, which must refuse it and
// leave the state alone.
func transition(t *testing.T, st *domain.State, rid string, to domain.Status, at int64) (noop bool, err error) {
	t.Helper()
	res, ok := st.Reservation(rid)
	if !ok {
		t.Fatalf("no reservation %s", rid)
	}
	r, _ := st.Resource(res.ResourceID)
	noop, err = r.Clone().CheckTransition(&res, to, at)
	ev := domain.Event{Type: domain.EvTransition, At: at, ResourceID: res.ResourceID, ReservationID: rid, To: to}
	switch {
	case err != nil:
		mustRefuse(t, st, ev, sentinel(err))
	case noop:
		mustRefuse(t, st, ev, domain.ErrInvalidState)
	default:
		mustApply(t, st, ev)
		if got, _ := st.Reservation(rid); got.Status != to || got.UpdatedAt != at {
			t.Fatalf("after %s: %+v", to, got)
		}
	}
	return noop, err
}

func mustTransition(t *testing.T, st *domain.State, rid string, to domain.Status, at int64) {
	t.Helper()
	if noop, err := transition(t, st, rid, to, at); noop || err != nil {
		t.Fatalf("%s -> %s: noop %v, err %v", rid, to, noop, err)
	}
}

// wantCounts checks the live counts of a voucher or slot.
func wantCounts(t *testing.T, st *domain.State, id string, available, held, confirmed int64) {
	t.Helper()
	r, _ := st.Resource(id)
	if r.Available() != available || r.Held != held || r.Confirmed != confirmed {
		t.Fatalf("%s: available %d held %d confirmed %d, want %d %d %d",
			id, r.Available(), r.Held, r.Confirmed, available, held, confirmed)
	}
}

// wantNights checks rooms, held and confirmed of consecutive nights from d.
func wantNights(t *testing.T, st *domain.State, id string, d domain.Day, nights ...domain.Night) {
	t.Helper()
	r, _ := st.Resource(id)
	for i, want := range nights {
		if got := r.Night(d + domain.Day(i)); got != want {
			t.Fatalf("%s night %s: %+v, want %+v", id, d+domain.Day(i), got, want)
		}
	}
}

// wantUser checks the units a user has taken of a resource.
func wantUser(t *testing.T, st *domain.State, id, user string, units int64) {
	t.Helper()
	r, _ := st.Resource(id)
	if got := r.UserUnits[user]; got != units {
		t.Fatalf("%s: %s has %d units, want %d", id, user, got, units)
	}
}

func wantErr(t *testing.T, got, want error) {
	t.Helper()
	if want == nil && got != nil || want != nil && !errors.Is(got, want) {
		t.Fatalf("got error %v, want %v", got, want)
	}
}

func night(rooms, held, confirmed int32) domain.Night {
	return domain.Night{Rooms: rooms, Held: held, Confirmed: confirmed}
}
