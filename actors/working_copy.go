package actors

import "allot/actors/domain"

// workingReservation is a reservation in an actor's working copy with the
// ordinal of the actor's last event that changed it; 0 when it was read
// from committed state and has not changed since.
type workingReservation struct {
	domain.Reservation
	ord uint64
}

// reservation returns the working copy of a reservation of this resource,
// reading it from committed state the first time.
func (a *resourceActor) reservation(rid string) *workingReservation {
	if res, ok := a.reservations[rid]; ok {
		return res
	}
	w := &workingReservation{}
	var ok bool
	a.term.engine.log.View(func(st *domain.State) { w.Reservation, ok = st.Reservation(rid) })
	if !ok || w.ResourceID != a.id {
		return nil
	}
	a.reservations[rid] = w
	return w
}

// dropCommitted removes from the working copy the reservations whose last
// event has committed: committed state now says what the copy says, and
// reading it again when needed is cheap. Under a steady crowd some event of
// the actor is always in flight, so waiting for none would let the copy
// grow with every reservation ever made; the ordinal lets it shrink while
// events keep coming. The next run waits until the copy has doubled, so the
// scans cost O(1) per reservation.
//
// Called only while the actor is not dirty: its resolved events then all
// committed as decided (an event that fails marks the actor dirty before
// its ordinal resolves, and a dirty actor reloads everything anyway).
func (a *resourceActor) dropCommitted() {
	resolved := a.resolvedOrdinal()
	for id, w := range a.reservations {
		if w.ord <= resolved {
			delete(a.reservations, id)
		}
	}
	a.cacheLimit = max(maxCachedReservations, 2*len(a.reservations))
}
