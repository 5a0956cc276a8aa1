package storage

import (
	"bytes"
	"errors"
	"testing"

	"allot/actors/domain"
)

// Limits travel in snapshots as their specs; restoring rebuilds their
// counts and members from the resources and reservations, to the same state.
func TestSnapshotCarriesLimits(t *testing.T) {
	st := domain.NewState()
	apply := func(ev domain.Event) {
		t.Helper()
		if err := st.Apply(&ev); err != nil {
			t.Fatal(err)
		}
	}
	apply(domain.Event{Type: domain.EvPutLimit, At: 1, Limit: &domain.LimitOp{ID: "day", Spec: domain.LimitSpec{PerUser: 1, Capacity: 10}}})
	apply(domain.Event{Type: domain.EvPutResource, At: 1, ResourceID: "s", Spec: domain.Spec{Kind: domain.KindSlot, Capacity: 5, Limits: []string{"day"}}})
	apply(domain.Event{Type: domain.EvReserve, At: 2, ResourceID: "s", Reservation: domain.Reservation{
		ID: "r1", ResourceID: "s", Kind: domain.KindSlot, User: "ann", Quantity: 1, Status: domain.StatusConfirmed, CreatedAt: 2, UpdatedAt: 2}})
	var buf bytes.Buffer
	if err := WriteSnapshot(&buf, st); err != nil {
		t.Fatal(err)
	}
	if v := buf.Bytes()[len(snapshotMagic)]; v != SnapshotVersion {
		t.Fatalf("a state with limits written as version %d", v)
	}
	got, err := ReadSnapshot(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if got.Hash() != st.Hash() {
		t.Fatal("restored state differs")
	}
	if err := got.CheckInvariants(); err != nil {
		t.Fatal(err)
	}
	if l, _ := got.Limit("day"); l.Taken != 1 || l.UserTaken["ann"] != 1 || len(l.Members()) != 1 {
		t.Fatalf("restored limit %+v", l)
	}
	// A version without limit records refuses one.
	bad := bytes.Clone(buf.Bytes())
	bad[len(snapshotMagic)] = snapshotVersionNoEvents
	if _, err := ReadSnapshot(bytes.NewReader(bad)); !errors.Is(err, domain.ErrCorrupt) {
		t.Fatalf("a limit record in a version 4 snapshot: %v", err)
	}
}
