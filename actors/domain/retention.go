package domain

import (
	"slices"

	"github.com/google/btree"
)

// Retention of finished reservations.
//
// A cancelled, expired or completed reservation never changes again, so
// after a while it is only history; without pruning, a user cycling
// reserve → cancel would grow every node's state and snapshots forever. The
// leader proposes EvPrune with a cutoff of its own leader time minus its
// retention setting; Apply removes the reservations that finished before the
// cutoff, oldest first, at most PruneMax of them. Apply reads no clock: every
// node removes exactly the same ones. No count moves: cancelled and expired
// ones take no units, and a completed one's units stay taken, recorded as
// the resource's Retired units (retired.go).

// MaxPrunePerEvent bounds the reservations one EvPrune removes, so that one
// entry's Apply stays short however large the backlog.
const MaxPrunePerEvent = 4096

// finishedKey orders the finished index by finish time, then id.
type finishedKey struct {
	at int64 // leader time the reservation finished (its UpdatedAt)
	id string
}

func finishedLess(a, b finishedKey) bool {
	if a.at != b.at {
		return a.at < b.at
	}
	return a.id < b.id
}

func newFinishedIndex() *btree.BTreeG[finishedKey] { return btree.NewG(32, finishedLess) }

// Prunable reports whether a reservation in this status is kept only for the
// retention period: it is finished and can change no more.
func (s Status) Prunable() bool {
	return s == StatusCancelled || s == StatusExpired || s == StatusCompleted
}

// indexFinished adds res to the finished index if it is prunable.
func (s *State) indexFinished(res *Reservation) {
	if res.Status.Prunable() {
		s.finished.ReplaceOrInsert(finishedKey{at: res.UpdatedAt, id: res.ID})
	}
}

// OldestFinished returns the finish time of the reservation that finished
// first, false if there is none.
func (s *State) OldestFinished() (int64, bool) {
	k, ok := s.finished.Min()
	return k.at, ok
}

// Finished is how many prunable reservations the state holds.
func (s *State) Finished() int { return s.finished.Len() }

func (s *State) applyPrune(ev *Event) error {
	if ev.PruneMax <= 0 || ev.PruneMax > MaxPrunePerEvent {
		return invalidf("prune of %d reservations, want 1 to %d", ev.PruneMax, MaxPrunePerEvent)
	}
	if ev.PruneBefore > ev.At {
		return invalidf("prune cutoff %s is after the event's time %s", FormatTime(ev.PruneBefore), FormatTime(ev.At))
	}
	var victims []finishedKey
	s.finished.Ascend(func(k finishedKey) bool {
		if k.at >= ev.PruneBefore || len(victims) == ev.PruneMax {
			return false
		}
		victims = append(victims, k)
		return true
	})
	if len(victims) == 0 {
		return nil
	}
	gone := make(map[string]struct{}, len(victims))
	users := make(map[string]struct{})
	resources := make(map[string]struct{})
	for _, k := range victims {
		res, _ := s.reservations.get(k.id)
		gone[k.id] = struct{}{}
		users[res.User] = struct{}{}
		resources[res.ResourceID] = struct{}{}
		if res.Status == StatusCompleted {
			s.retire(&res)
			if r := s.resource(res.ResourceID); r != nil {
				s.addShares(r, &res, -1) // the units stay the resource's; the limits count what the state holds
			}
		}
		s.reservations.del(s.epoch, k.id)
		s.finished.Delete(k)
	}
	drop := func(id string) bool { _, ok := gone[id]; return ok }
	// One pass per affected list, not one deletion per id: a resource may
	// have a long list and the batch many of its ids.
	for u := range users {
		s.dropIDs(&s.byUser, u, drop)
	}
	for r := range resources {
		s.dropIDs(&s.byResource, r, drop)
	}
	return nil
}

// dropIDs removes the ids drop selects from the list of k, and the list
// if it ends empty. A list a frozen view may share is filtered into a new
// array, not in place.
func (s *State) dropIDs(c *cowMap[idList], k string, drop func(string) bool) {
	e, _ := c.get(k)
	var ids []string
	if e.epoch == s.epoch {
		ids = slices.DeleteFunc(e.v, drop)
	} else {
		ids = make([]string, 0, len(e.v))
		for _, id := range e.v {
			if !drop(id) {
				ids = append(ids, id)
			}
		}
	}
	if len(ids) > 0 {
		c.set(s.epoch, k, idList{v: ids, epoch: s.epoch})
	} else {
		c.del(s.epoch, k)
	}
}

// ReservationNotFound is the error for a reservation id the state does not
// hold: never made, or finished and pruned after the retention period.
func ReservationNotFound(id string) error {
	return wrapf(ErrNotFound, "reservation %s not found (finished reservations are kept for the retention period)", id)
}
