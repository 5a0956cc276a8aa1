package domain

import "time"

// EventType says what an Event does.
type EventType uint8

// The replicated commands. Every accepted decision is exactly one event.
const (
	EvPutResource    EventType = iota + 1 // create or update a resource
	EvDeleteResource                      // remove a resource without taken units
	EvReserve                             // add a reservation
	EvTransition                          // move a reservation to another status
	EvSetMember                           // record a cluster node's addresses
	EvRemoveMember                        // forget a cluster node
)

// Event is one decision of the leader. All times and ids in it were stamped
// by the leader, so applying it reads no clock and draws no random numbers.
type Event struct {
	Type       EventType
	At         int64 // leader time of the decision, Unix nanoseconds
	ResourceID string

	Spec          Spec        // EvPutResource
	Reservation   Reservation // EvReserve: the new reservation
	ReservationID string      // EvTransition
	To            Status      // EvTransition
	Member        Member      // EvSetMember; EvRemoveMember uses Member.ID only

	// Idem, when set, stores the answer under the client's Idempotency-Key
	// in the same step as the change it answers for.
	Idem *IdemRecord
}

// Batch is one Raft entry: the events of many actors committed together.
type Batch struct {
	Events []Event
}

// FormatTime renders Unix nanoseconds as RFC 3339 in UTC.
func FormatTime(ns int64) string {
	return time.Unix(0, ns).UTC().Format(time.RFC3339Nano)
}
