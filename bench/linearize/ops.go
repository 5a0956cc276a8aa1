package linearize

import (
	"fmt"
	"net/http"
	"time"
)

// Op names a client operation on one resource.
type Op uint8

// The client operations the model knows. Expiry is not among them: it is an
// internal step of the model (see the package doc).
const (
	OpReserve          Op = iota + 1 // POST /v1/resources/{id}/reservations
	OpConfirm                        // POST /v1/reservations/{rid}/confirm
	OpCancel                         // POST /v1/reservations/{rid}/cancel
	OpCheckIn                        // POST /v1/reservations/{rid}/check-in (admin)
	OpComplete                       // POST /v1/reservations/{rid}/complete (admin)
	OpReadResource                   // GET /v1/resources/{id}: live counts
	OpReadReservation                // GET /v1/reservations/{rid}
	OpListReservations               // GET /v1/reservations?resource={id}: one complete page
)

var opNames = [...]string{"?", "reserve", "confirm", "cancel", "check_in", "complete", "read", "get", "list"}

func (o Op) String() string {
	if int(o) < len(opNames) {
		return opNames[o]
	}
	return fmt.Sprintf("op(%d)", uint8(o))
}

// write reports whether the operation may change the state.
func (o Op) write() bool { return o >= OpReserve && o <= OpComplete }

// transition reports whether the operation moves a reservation.
func (o Op) transition() bool { return o >= OpConfirm && o <= OpComplete }

// Input is what a client asked. Resource is required on every operation,
// also on those that name a reservation: histories are checked per resource.
type Input struct {
	Op       Op
	Client   int    // the client (goroutine) that asked: a lane in the visualization
	Resource string // the resource id
	// User is the caller (the token's sub). For a reserve it is the user the
	// reservation is for.
	User  string
	Admin bool   // the caller has the admin role
	Key   string // Idempotency-Key; "" = none
	// Quantity of a reserve; 0 means 1.
	Quantity int64
	// CheckIn and CheckOut of a reserve on a room (YYYY-MM-DD, CheckOut
	// exclusive).
	CheckIn, CheckOut string
	// ID is the reservation of a transition or a read of one reservation.
	ID string
}

func (in Input) quantity() int64 {
	if in.Quantity == 0 {
		return 1
	}
	return in.Quantity
}

// Output is what the client saw. An operation whose outcome the client does
// not know (a timeout, a transport error, 503 outcome_unknown, any other
// 5xx) is Unknown: the model lets it have happened or not.
type Output struct {
	Status   int    // HTTP status; 0 = no answer
	Code     string // problem code of an error answer
	Replayed bool   // Idempotent-Replayed: true
	Unknown  bool   // set by Pending.Unknown
	// Reservation of a 201 or 200 answer to a reserve, a transition or a
	// read of one reservation.
	Reservation *Reservation
	Counts      *Counts       // a read of the resource
	List        []Reservation // a list: every reservation of the resource (of the user, unless admin)
}

// Reservation is a reservation as the client saw it.
type Reservation struct {
	ID        string
	User      string
	Quantity  int64
	Status    string    // held, confirmed, cancelled, expired, checked_in, completed
	ExpiresAt time.Time // zero unless shown (the API shows it while held)
	CheckIn   string    // rooms
	CheckOut  string    // rooms
}

// Counts are the live counts of a read of a resource.
type Counts struct {
	Available int64 // voucher, slot
	Held      int64 // voucher, slot
	Confirmed int64 // voucher, slot: confirmed, checked in or completed
	// Nights of a room resource, by YYYY-MM-DD; only the nights shown are
	// checked.
	Nights map[string]NightCount
}

// NightCount is one night of a room resource as read.
type NightCount struct {
	Rooms     int64
	Available int64
}

// IsUnknown reports whether the outcome may or may not have taken effect:
// no answer, 503 other than "unavailable", or another 5xx.
func (o Output) IsUnknown() bool {
	switch {
	case o.Unknown, o.Status == 0:
		return true
	case o.Status == http.StatusServiceUnavailable:
		return o.Code != "unavailable"
	case o.Status >= 500:
		return true
	}
	return false
}

// effectless reports whether the answer says for sure that nothing was
// written and tells nothing the model checks: 503 unavailable, rate limits,
// malformed requests, a key still in progress, the booking window. Such
// operations are left out of the check.
func (o Output) effectless() bool {
	if o.IsUnknown() {
		return false
	}
	switch o.Status {
	case http.StatusServiceUnavailable, http.StatusTooManyRequests, http.StatusBadRequest,
		http.StatusUnauthorized, http.StatusRequestEntityTooLarge:
		return true
	case http.StatusConflict:
		switch o.Code {
		case "request_in_progress", "not_open", "closed":
			return true
		}
	}
	return false
}

func (o Output) String() string {
	switch {
	case o.IsUnknown():
		return "unknown"
	case o.Status >= 400:
		return fmt.Sprintf("%d %s", o.Status, o.Code)
	}
	s := fmt.Sprint(o.Status)
	if o.Replayed {
		s += " replayed"
	}
	if r := o.Reservation; r != nil {
		s += " " + r.String()
	}
	if c := o.Counts; c != nil {
		if c.Nights != nil {
			s += fmt.Sprintf(" nights=%v", c.Nights)
		} else {
			s += fmt.Sprintf(" avail=%d held=%d conf=%d", c.Available, c.Held, c.Confirmed)
		}
	}
	if o.List != nil {
		s += fmt.Sprintf(" %d items", len(o.List))
	}
	return s
}

func (r Reservation) String() string {
	s := fmt.Sprintf("%s{%s x%d %s", shortID(r.ID), r.User, r.Quantity, r.Status)
	if !r.ExpiresAt.IsZero() {
		s += " exp " + r.ExpiresAt.UTC().Format("15:04:05.000")
	}
	return s + "}"
}

func (in Input) String() string {
	s := fmt.Sprintf("%s %s", in.Op, in.User)
	if in.Admin {
		s += "(admin)"
	}
	switch {
	case in.Op == OpReserve:
		s += fmt.Sprintf(" x%d", in.quantity())
		if in.CheckIn != "" {
			s += " " + in.CheckIn + ".." + in.CheckOut
		}
	case in.ID != "":
		s += " " + shortID(in.ID)
	}
	if in.Key != "" {
		s += " key=" + in.Key
	}
	return s
}

func shortID(id string) string {
	if len(id) > 10 {
		return id[:10]
	}
	return id
}
