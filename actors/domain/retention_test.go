package domain_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"allot/actors/domain"
	"allot/actors/domain/domaintest"
)

func prune(before, at int64, maxN int) domain.Event {
	return domain.Event{Type: domain.EvPrune, At: at, PruneBefore: before, PruneMax: maxN}
}

func reservationIDs(st *domain.State, user, resource string) []string {
	var ids []string
	st.ListReservations(user, resource, "", func(r domain.Reservation) bool {
		ids = append(ids, r.ID)
		return true
	})
	return ids
}

// TestPruneRemovesOnlyOldFinished: a prune drops the cancelled, expired and
// completed reservations that finished before its cutoff, oldest first and
// at most PruneMax of them; held and confirmed ones, and finished ones after
// the cutoff, stay, and no count moves: a pruned completed reservation's
// units stay taken and still count against its user's limit.
func TestPruneRemovesOnlyOldFinished(t *testing.T) {
	st := newState(t, "v", domain.Spec{Kind: domain.KindVoucher, Capacity: 10, PerUserLimit: 3, HoldSeconds: 60})
	req := domain.ReserveRequest{User: "alice", Quantity: 1}
	mustReserve(t, st, "v", req, "r1", at(0))
	mustTransition(t, st, "r1", domain.StatusCancelled, at(time.Second))
	mustReserve(t, st, "v", req, "r2", at(0))
	mustTransition(t, st, "r2", domain.StatusExpired, at(time.Minute))
	mustReserve(t, st, "v", req, "r3", at(0))
	mustTransition(t, st, "r3", domain.StatusConfirmed, at(2*time.Second))
	mustReserve(t, st, "v", req, "r4", at(0))
	mustTransition(t, st, "r4", domain.StatusConfirmed, at(2*time.Second))
	mustTransition(t, st, "r4", domain.StatusCompleted, at(3*time.Second))
	mustReserve(t, st, "v", domain.ReserveRequest{User: "bob", Quantity: 1}, "r5", at(3*time.Second))
	mustTransition(t, st, "r5", domain.StatusCancelled, at(time.Hour))
	mustReserve(t, st, "v", req, "r6", at(time.Hour)) // held
	if n := st.Finished(); n != 4 {
		t.Fatalf("%d finished reservations, want 4", n)
	}
	if oldest, ok := st.OldestFinished(); !ok || oldest != at(time.Second) {
		t.Fatalf("oldest finished %d (%v), want %d", oldest, ok, at(time.Second))
	}
	wantCounts(t, st, "v", 7, 1, 2)
	wantUser(t, st, "v", "alice", 3)

	// At most PruneMax, oldest first.
	mustApply(t, st, prune(at(2*time.Hour), at(2*time.Hour), 1))
	if _, ok := st.Reservation("r1"); ok {
		t.Fatal("r1 finished first but was not pruned")
	}
	if _, ok := st.Reservation("r2"); !ok {
		t.Fatal("a prune of one removed two")
	}
	// The cutoff: r5 finished an hour in, after it.
	mustApply(t, st, prune(at(time.Hour), at(2*time.Hour), domain.MaxPrunePerEvent))
	for id, want := range map[string]bool{"r1": false, "r2": false, "r3": true, "r4": false, "r5": true, "r6": true} {
		if _, ok := st.Reservation(id); ok != want {
			t.Errorf("%s present %v, want %v", id, ok, want)
		}
	}
	wantCounts(t, st, "v", 7, 1, 2)
	wantUser(t, st, "v", "alice", 3)
	if got := reservationIDs(st, "alice", ""); !slices.Equal(got, []string{"r3", "r6"}) {
		t.Fatalf("alice's list %v", got)
	}
	if got := reservationIDs(st, "", "v"); !slices.Equal(got, []string{"r3", "r5", "r6"}) {
		t.Fatalf("v's list %v", got)
	}
	// r4's unit is still alice's: she is at her limit, and v cannot go.
	if _, err := reserve(t, st, "v", req, "r8", at(2*time.Hour)); !errors.Is(err, domain.ErrLimitExceeded) {
		t.Fatalf("alice over her limit after r4 was pruned: %v", err)
	}
	mustRefuse(t, st, domain.Event{Type: domain.EvDeleteResource, At: at(2 * time.Hour), ResourceID: "v"}, domain.ErrInvalidState)
	// Pruning again changes nothing; the last of a user's goes with its list.
	before := st.Hash()
	mustApply(t, st, prune(at(time.Hour), at(2*time.Hour), domain.MaxPrunePerEvent))
	if st.Hash() != before {
		t.Fatal("a second prune with the same cutoff changed the state")
	}
	mustApply(t, st, prune(at(time.Hour+1), at(2*time.Hour), domain.MaxPrunePerEvent))
	if got := reservationIDs(st, "bob", ""); len(got) != 0 || st.Finished() != 0 {
		t.Fatalf("bob's list %v, %d finished left", got, st.Finished())
	}
	// A user whose finished reservations are gone may reserve up to the limit.
	mustReserve(t, st, "v", domain.ReserveRequest{User: "bob", Quantity: 3}, "r7", at(2*time.Hour))
}

// TestPruneRefusesBadEvents: no correct leader proposes these.
func TestPruneRefusesBadEvents(t *testing.T) {
	st := newState(t, "v", domain.Spec{Kind: domain.KindVoucher, Capacity: 10})
	mustReserve(t, st, "v", domain.ReserveRequest{User: "a", Quantity: 1}, "r1", at(0))
	mustTransition(t, st, "r1", domain.StatusCancelled, at(time.Second))
	mustRefuse(t, st, prune(at(time.Hour), at(time.Hour), 0), domain.ErrInvalidArgument)
	mustRefuse(t, st, prune(at(time.Hour), at(time.Hour), domain.MaxPrunePerEvent+1), domain.ErrInvalidArgument)
	mustRefuse(t, st, prune(at(2*time.Hour), at(time.Hour), 1), domain.ErrInvalidArgument)
}

// TestPruneOfDeletedResource: reservations of a resource deleted since they
// finished are pruned too.
func TestPruneOfDeletedResource(t *testing.T) {
	st := newState(t, "v", domain.Spec{Kind: domain.KindVoucher, Capacity: 10})
	mustReserve(t, st, "v", domain.ReserveRequest{User: "a", Quantity: 1}, "r1", at(0))
	mustTransition(t, st, "r1", domain.StatusCancelled, at(time.Second))
	mustApply(t, st, domain.Event{Type: domain.EvDeleteResource, At: at(time.Minute), ResourceID: "v"})
	mustApply(t, st, prune(at(time.Hour), at(time.Hour), 10))
	if _, reservations, _, _ := st.Counts(); reservations != 0 {
		t.Fatalf("%d reservations left", reservations)
	}
}

// TestFinishedIndexRebuilt: a state restored the way snapshots are (Load
// methods, no index in the records) and a clone prune exactly as the
// original does.
func TestFinishedIndexRebuilt(t *testing.T) {
	res := checkStream(t, domaintest.NewSeeded(11), 1500)
	st := res.st
	restored := domain.NewState()
	_ = st.EachResource(func(r *domain.Resource) error { restored.LoadResource(r.Clone()); return nil })
	_ = st.EachReservation(func(r domain.Reservation) error { restored.LoadReservation(r); return nil })
	_ = st.EachIdem(func(r domain.IdemRecord) error { restored.LoadIdem(r); return nil })
	_ = st.EachRetired(func(r *domain.Retired) error {
		c, err := domain.DecodeRetired(domain.AppendRetired(nil, r))
		restored.LoadRetired(c)
		return err
	})
	restored.LoadLastTime(st.LastTime())
	clone := st.Clone()
	if st.Finished() == 0 {
		t.Fatal("the stream left nothing finished to prune")
	}
	now := st.LastTime() + int64(time.Hour)
	for _, s := range []*domain.State{st, restored, clone} {
		if err := s.CheckInvariants(); err != nil {
			t.Fatal(err)
		}
		if err := s.Apply(ptr(prune(now, now, domain.MaxPrunePerEvent))); err != nil {
			t.Fatal(err)
		}
		if n := s.Finished(); n != 0 {
			t.Fatalf("%d finished left after pruning all", n)
		}
	}
	if restored.Hash() != st.Hash() || clone.Hash() != st.Hash() {
		t.Fatal("a restored state or a clone pruned differently")
	}
}
