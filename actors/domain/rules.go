package domain

import (
	"errors"
	"fmt"
)

// ReserveRequest is what a user asks for; the leader adds id and time.
type ReserveRequest struct {
	User     string
	Quantity int64
	CheckIn  Day // rooms only
	CheckOut Day // rooms only, exclusive
}

// Validate checks the request on its own, for a resource of kind k.
func (q *ReserveRequest) Validate(k Kind) error {
	if q.User == "" || len(q.User) > MaxUserLen {
		return invalidf("user must be 1-%d bytes", MaxUserLen)
	}
	if q.Quantity < 1 || q.Quantity > MaxQuantity {
		return invalidf("quantity must be between 1 and %d", MaxQuantity)
	}
	if k == KindRoom {
		if q.CheckIn == 0 && q.CheckOut == 0 {
			return invalidf("check_in and check_out are missing: a room stay needs both")
		}
		if q.CheckOut <= q.CheckIn {
			return invalidf("check_out must be after check_in")
		}
		if int64(q.CheckOut)-int64(q.CheckIn) > MaxStayNights { // int64: Day arithmetic could wrap
			return invalidf("a stay is at most %d nights", MaxStayNights)
		}
	} else if q.CheckIn != 0 || q.CheckOut != 0 {
		return invalidf("check_in and check_out are for rooms only")
	}
	return nil
}

// DecideReserve decides a reservation at leader time at. On success it
// returns the new reservation (status held, or confirmed when the resource has
// no hold time); the caller applies it with ApplyReserve. It changes nothing.
func (r *Resource) DecideReserve(q ReserveRequest, id string, at int64) (Reservation, error) {
	if err := q.Validate(r.Spec.Kind); err != nil {
		return Reservation{}, err
	}
	res := Reservation{
		ID: id, ResourceID: r.ID, Kind: r.Spec.Kind, User: q.User, Quantity: q.Quantity,
		Status: StatusConfirmed, CheckIn: q.CheckIn, CheckOut: q.CheckOut,
		CreatedAt: at, UpdatedAt: at,
	}
	if r.Spec.HoldSeconds > 0 {
		res.Status = StatusHeld
		res.ExpiresAt = at + r.Spec.HoldSeconds*1e9
	}
	return res, r.CheckReserve(&res)
}

// CheckReserve says whether res may be added to the resource now
// (res.CreatedAt is the decision time). Checks, in order: shape, window,
// per-user limit, stock.
func (r *Resource) CheckReserve(res *Reservation) error {
	if res.ResourceID != r.ID || res.Kind != r.Spec.Kind {
		return invalidf("reservation does not match resource %s", r.ID)
	}
	q := ReserveRequest{User: res.User, Quantity: res.Quantity, CheckIn: res.CheckIn, CheckOut: res.CheckOut}
	if err := q.Validate(r.Spec.Kind); err != nil {
		return err
	}
	switch {
	case res.Status == StatusHeld && res.ExpiresAt > res.CreatedAt:
	case res.Status == StatusConfirmed && res.ExpiresAt == 0:
	default:
		return invalidf("a new reservation is held with an expiry or confirmed without one")
	}
	at := res.CreatedAt
	if r.Spec.OpensAt != 0 && at < r.Spec.OpensAt {
		return &refusal{err: ErrNotOpen, id: r.ID, n: r.Spec.OpensAt}
	}
	if r.Spec.ClosesAt != 0 && at >= r.Spec.ClosesAt {
		return &refusal{err: ErrClosed, id: r.ID, n: r.Spec.ClosesAt}
	}
	if lim := r.Spec.PerUserLimit; lim > 0 && r.UserUnits[res.User]+res.Quantity > lim {
		return &refusal{err: ErrLimitExceeded, n: lim, m: r.UserUnits[res.User]}
	}
	if r.Spec.Kind == KindRoom {
		for d := res.CheckIn; d < res.CheckOut; d++ {
			if int64(r.Night(d).Available()) < res.Quantity {
				return &refusal{err: ErrSoldOut, night: true, n: int64(d), m: int64(r.Night(d).Available())}
			}
		}
		return nil
	}
	if avail := r.Available(); avail < res.Quantity {
		if avail <= 0 {
			return errSoldOutNone // the flash crowd's answer: no allocation
		}
		return &refusal{err: ErrSoldOut, m: avail}
	}
	return nil
}

// errSoldOutNone is the refusal of a resource with nothing left, shared by
// every such answer: refusals are never changed once made.
var errSoldOutNone error = &refusal{err: ErrSoldOut}

// refusal is how CheckReserve says not open, closed, limit exceeded or sold
// out. In a flash crowd nearly every request ends here, and most refusals are
// only matched with errors.Is and mapped to a status, so the message is
// formatted when read rather than on this path.
type refusal struct {
	err   error // the sentinel
	id    string
	night bool // sold out on night n (a Day), not in total
	limit bool // limit exceeded of limit group id, not the resource's own
	total bool // limit: its capacity, not its per-user bound
	n, m  int64
}

// asRefusal is errors.As for *refusal.
func asRefusal(err error, out **refusal) bool { return errors.As(err, out) }

func (e *refusal) Unwrap() error { return e.err }

func (e *refusal) Error() string {
	var detail string
	switch {
	case e.err == ErrNotOpen:
		detail = fmt.Sprintf("%s opens at %s", e.id, FormatTime(e.n))
	case e.err == ErrClosed:
		detail = fmt.Sprintf("%s closed at %s", e.id, FormatTime(e.n))
	case e.err == ErrLimitExceeded && e.limit && e.total:
		detail = fmt.Sprintf("limit %s: at most %d in total, %d already taken", e.id, e.n, e.m)
	case e.err == ErrLimitExceeded && e.limit:
		detail = fmt.Sprintf("limit %s: at most %d per user, %d already taken", e.id, e.n, e.m)
	case e.err == ErrLimitExceeded:
		detail = fmt.Sprintf("at most %d per user, %d already taken", e.n, e.m)
	case e.night:
		detail = fmt.Sprintf("night %s has %d rooms left", Day(e.n), e.m)
	default:
		detail = fmt.Sprintf("%d left", e.m)
	}
	return detail + ": " + e.err.Error()
}

// ApplyReserve takes the units of a reservation that CheckReserve accepted.
func (r *Resource) ApplyReserve(res *Reservation) {
	r.addUnits(res, res.Status, 1)
	if r.UserUnits == nil {
		r.UserUnits = make(map[string]int64)
	}
	r.UserUnits[res.User] += res.Quantity
}

// addUnits adds sign*Quantity units of res to the counter that status uses.
func (r *Resource) addUnits(res *Reservation, status Status, sign int64) {
	held := status == StatusHeld
	if r.Spec.Kind != KindRoom {
		if held {
			r.Held += sign * res.Quantity
		} else {
			r.Confirmed += sign * res.Quantity
		}
		return
	}
	for d := res.CheckIn; d < res.CheckOut; d++ {
		n := &r.Nights[d-r.NightBase]
		if held {
			n.Held += int32(sign * res.Quantity)
		} else {
			n.Confirmed += int32(sign * res.Quantity)
		}
	}
}

// CheckTransition says whether res may move to status to at leader time at.
// noop is true when res already is in that status: the call succeeds and
// changes nothing (no event).
func (r *Resource) CheckTransition(res *Reservation, to Status, at int64) (noop bool, err error) {
	if res.Status == to {
		return true, nil
	}
	bad := func() (bool, error) {
		return false, wrapf(ErrInvalidState, "cannot go from %s to %s", res.Status, to)
	}
	switch to {
	case StatusConfirmed:
		if res.Status != StatusHeld {
			return bad()
		}
		if at >= res.ExpiresAt {
			return false, wrapf(ErrExpired, "the hold expired at %s", FormatTime(res.ExpiresAt))
		}
	case StatusCancelled:
		switch res.Status {
		case StatusHeld:
		case StatusConfirmed:
			if d := r.Spec.CancelDeadline; d != 0 && at >= d {
				return false, wrapf(ErrInvalidState, "the cancel deadline passed at %s", FormatTime(d))
			}
		default:
			return bad()
		}
	case StatusExpired:
		if res.Status != StatusHeld || at < res.ExpiresAt {
			return bad()
		}
	case StatusCheckedIn:
		if r.Spec.Kind == KindVoucher || res.Status != StatusConfirmed {
			return bad()
		}
	case StatusCompleted:
		if res.Status != StatusConfirmed && res.Status != StatusCheckedIn {
			return bad()
		}
	default:
		return bad()
	}
	return false, nil
}

// ApplyTransition moves res to status to (accepted by CheckTransition) and
// moves its units accordingly.
func (r *Resource) ApplyTransition(res *Reservation, to Status, at int64) {
	from := res.Status
	switch {
	case !to.Taken():
		r.addUnits(res, from, -1)
		r.UserUnits[res.User] -= res.Quantity
		if r.UserUnits[res.User] == 0 {
			delete(r.UserUnits, res.User)
		}
	case from == StatusHeld: // to confirmed
		r.addUnits(res, StatusHeld, -1)
		r.addUnits(res, StatusConfirmed, 1)
	}
	res.Status = to
	res.UpdatedAt = at
	if to != StatusHeld {
		res.ExpiresAt = 0
	}
}

// CheckUpdate says whether the resource may take spec (create or update):
// kind cannot change, and capacity or a night's rooms cannot go below what is
// taken.
func (r *Resource) CheckUpdate(spec *Spec) error {
	if err := spec.Validate(); err != nil {
		return err
	}
	if r.Spec.Kind != 0 && spec.Kind != r.Spec.Kind {
		return invalidf("kind cannot change from %s to %s", r.Spec.Kind, spec.Kind)
	}
	if spec.Kind != KindRoom {
		if taken := r.Held + r.Confirmed; spec.Capacity < taken {
			return wrapf(ErrInvalidState, "capacity %d is below the %d units taken", spec.Capacity, taken)
		}
		return nil
	}
	base, rooms := nightRooms(spec.Inventory)
	for i, n := range r.Nights {
		d := r.NightBase + Day(i)
		taken := n.Held + n.Confirmed
		if taken == 0 {
			continue
		}
		var have int32
		if j := int(d - base); j >= 0 && j < len(rooms) {
			have = rooms[j]
		}
		if have < taken {
			return wrapf(ErrInvalidState, "night %s would have %d rooms but %d are taken", d, have, taken)
		}
	}
	return nil
}

// ApplyUpdate sets a spec accepted by CheckUpdate, keeping the taken counts.
func (r *Resource) ApplyUpdate(spec Spec, at int64) {
	if r.CreatedAt == 0 {
		r.CreatedAt = at
	}
	r.UpdatedAt = at
	r.Spec = spec
	if spec.Kind != KindRoom {
		return
	}
	base, rooms := nightRooms(spec.Inventory)
	nights := make([]Night, len(rooms))
	for j := range rooms {
		nights[j] = r.Night(base + Day(j))
		nights[j].Rooms = rooms[j]
	}
	r.NightBase, r.Nights = base, nights
}

// nightRooms turns inventory rows into rooms per night from base.
func nightRooms(rows []InventoryRow) (base Day, rooms []int32) {
	if len(rows) == 0 {
		return 0, nil
	}
	lo, hi := inventorySpan(rows)
	rooms = make([]int32, hi-lo)
	for _, row := range rows {
		for d := row.From; d < row.To; d++ {
			rooms[d-lo] = int32(row.Rooms)
		}
	}
	return lo, rooms
}

// CheckInvariant verifies the counts of one resource: nothing negative,
// nothing over capacity. (State.CheckInvariants also recounts reservations.)
func (r *Resource) CheckInvariant() error {
	if r.Spec.Kind == KindRoom {
		for i, n := range r.Nights {
			if n.Held < 0 || n.Confirmed < 0 || n.Available() < 0 {
				return fmt.Errorf("%s night %s: rooms %d held %d confirmed %d", r.ID, r.NightBase+Day(i), n.Rooms, n.Held, n.Confirmed)
			}
		}
	} else if r.Held < 0 || r.Confirmed < 0 || r.Available() < 0 {
		return fmt.Errorf("%s: capacity %d held %d confirmed %d", r.ID, r.Spec.Capacity, r.Held, r.Confirmed)
	}
	// A user may be above a limit an admin lowered later, never at or below 0.
	for u, n := range r.UserUnits {
		if n <= 0 {
			return fmt.Errorf("%s: user %q has %d units", r.ID, u, n)
		}
	}
	return nil
}
