package domain

// The change stream (API.md "Events"): every applied event that changes
// what a client can see becomes one Change, numbered by an offset that the
// state counts. Offsets are assigned while applying, from committed entries
// only, so every node numbers the same changes the same way: 1, 2, 3, …
// without gaps.
//
// Counting starts once the committed log format is at least BatchV4: a
// cluster upgraded from binaries without the stream begins its stream at the
// entry that raised the format, on every node alike (a node that started
// from an older snapshot and one that replayed the whole log would count
// differently otherwise). Cluster membership, log-format and prune events
// change nothing a client reads about bookings and have no Change; pruned
// reservations already had their last Change when they finished.

// ChangeType says what a Change is; its name is the event type of API.md.
type ChangeType uint8

// The change types. Reservation changes are one type per status entered.
const (
	ChangeResourceCreated ChangeType = iota + 1
	ChangeResourceUpdated
	ChangeResourceDeleted
	ChangeLimitUpdated
	ChangeLimitDeleted
	ChangeReservationHeld
	ChangeReservationConfirmed
	ChangeReservationCancelled
	ChangeReservationExpired
	ChangeReservationCheckedIn
	ChangeReservationCompleted
)

var changeNames = [...]string{
	ChangeResourceCreated:      "resource.created",
	ChangeResourceUpdated:      "resource.updated",
	ChangeResourceDeleted:      "resource.deleted",
	ChangeLimitUpdated:         "limit.updated",
	ChangeLimitDeleted:         "limit.deleted",
	ChangeReservationHeld:      "reservation.held",
	ChangeReservationConfirmed: "reservation.confirmed",
	ChangeReservationCancelled: "reservation.cancelled",
	ChangeReservationExpired:   "reservation.expired",
	ChangeReservationCheckedIn: "reservation.checked_in",
	ChangeReservationCompleted: "reservation.completed",
}

func (t ChangeType) String() string {
	if int(t) < len(changeNames) && changeNames[t] != "" {
		return changeNames[t]
	}
	return "unknown"
}

// ChangeTypes lists every change type, in code order.
func ChangeTypes() []ChangeType {
	out := make([]ChangeType, 0, len(changeNames)-1)
	for t := range changeNames[1:] {
		out = append(out, ChangeType(t+1))
	}
	return out
}

// ReservationChange is the change type of a reservation entering status s.
func ReservationChange(s Status) ChangeType {
	return ChangeReservationHeld + ChangeType(s-StatusHeld)
}

// Change is one entry of the change stream: what one applied event did.
type Change struct {
	Offset     uint64
	Type       ChangeType
	At         int64 // leader time of the event, Unix ns
	ResourceID string
	Kind       Kind

	// Reservation changes: the reservation as it is after the change, and
	// the status it left (0 for a new one).
	Reservation Reservation
	From        Status

	// Resource created and updated: the resource as stored (spec and
	// times; its live counts are not part of the change).
	Resource *Resource

	// Limit updated: the limit as stored (spec and times).
	Limit *Limit

	// IdemKey is the client's Idempotency-Key, when the request had one.
	IdemKey string
}

// streaming reports whether the committed log format numbers changes.
func (s *State) streaming() bool { return s.logFormat >= BatchV4 }

// EventHead is the offset of the last change applied, 0 before the first.
func (s *State) EventHead() uint64 { return s.eventHead }

// LoadEventHead sets EventHead while restoring a snapshot.
func (s *State) LoadEventHead(h uint64) { s.eventHead = max(s.eventHead, h) }

// ApplyChange applies ev as Apply does and, when the event changed
// something a client sees and the log format numbers changes, describes it
// in *out (overwriting it) with the next offset and returns true. out must
// not be shared with the state: the reservation and resource in it are
// copies (the resource's spec shares its attribute map and inventory with
// the state, which never changes them in place).
func (s *State) ApplyChange(ev *Event, out *Change) (bool, error) {
	if !s.streaming() {
		return false, s.Apply(ev)
	}
	var from Status
	var kind Kind
	existed := false
	switch ev.Type {
	case EvTransition:
		if res, ok := s.reservations.get(ev.ReservationID); ok {
			from = res.Status
		}
	case EvPutResource, EvDeleteResource:
		if r := s.resource(ev.ResourceID); r != nil {
			existed, kind = true, r.Spec.Kind
		}
	}
	if err := s.Apply(ev); err != nil {
		return false, err
	}
	*out = Change{At: ev.At, ResourceID: ev.ResourceID}
	if ev.Idem != nil {
		out.IdemKey = ev.Idem.Key
	}
	switch ev.Type {
	case EvPutResource:
		r := s.resource(ev.ResourceID)
		out.Type, out.Kind = ChangeResourceUpdated, r.Spec.Kind
		if !existed {
			out.Type = ChangeResourceCreated
		}
		out.Resource = &Resource{ID: r.ID, Spec: r.Spec, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt}
	case EvDeleteResource:
		out.Type, out.Kind = ChangeResourceDeleted, kind
	case EvPutLimit:
		l := s.limit(ev.Limit.ID)
		out.Type, out.ResourceID = ChangeLimitUpdated, ""
		out.Limit = &Limit{ID: l.ID, Spec: l.Spec, CreatedAt: l.CreatedAt, UpdatedAt: l.UpdatedAt}
	case EvDeleteLimit:
		out.Type, out.ResourceID = ChangeLimitDeleted, ""
		out.Limit = &Limit{ID: ev.Limit.ID}
	case EvReserve:
		out.Reservation, _ = s.reservations.get(ev.Reservation.ID)
	case EvTransition:
		out.Reservation, _ = s.reservations.get(ev.ReservationID)
		out.From = from
	default:
		return false, nil
	}
	if ev.Type == EvReserve || ev.Type == EvTransition {
		out.Type, out.Kind = ReservationChange(out.Reservation.Status), out.Reservation.Kind
	}
	s.eventHead++
	out.Offset = s.eventHead
	return true, nil
}
