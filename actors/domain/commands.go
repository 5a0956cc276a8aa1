package domain

// The vocabulary between the HTTP layer and the engine: what a caller asks
// for and what it gets back. Declared here so that httpapi (which declares
// the Engine interface) and actors (which implements it) share it without
// importing each other.

// Principal is the authenticated caller.
type Principal struct {
	User  string
	Admin bool
	// ReadOnly marks a consumer: it sees every booking as an admin does
	// but is no operator of the cluster (no Raft addresses, no state hash).
	ReadOnly bool
}

// CanAccess reports whether p may see or change a reservation of owner.
func (p Principal) CanAccess(owner string) bool { return p.Admin || p.User == owner }

// IdemKey is a client's Idempotency-Key with the fingerprint of the request
// it came with (endpoint and body), scoped to the caller.
type IdemKey struct {
	Key         string
	Fingerprint [16]byte
}

// ReserveCommand asks for a new reservation of ResourceID.
type ReserveCommand struct {
	ResourceID string
	Caller     Principal
	Request    ReserveRequest // Request.User is the caller's user
	Idem       *IdemKey       // nil without an Idempotency-Key header
}

// TransitionCommand asks to move a reservation to status To (confirmed,
// cancelled, checked_in or completed).
type TransitionCommand struct {
	ReservationID string
	To            Status
	Caller        Principal
	Idem          *IdemKey
}

// Outcome is the answer to a reservation command: the HTTP status code (201
// created, 200 transition), the reservation, and whether it was replayed from
// an idempotency record.
type Outcome struct {
	Code        int
	Reservation Reservation
	Replayed    bool
}

// Consistency is the read level of API.md's "Reads".
type Consistency uint8

const (
	ReadLeader       Consistency = iota // default: the leader's committed state, after checking it leads
	ReadStale                           // this node's committed state
	ReadLinearizable                    // read-index: reflects every write acknowledged before the read
)

// ParseConsistency parses the ?consistency= value ("" is leader).
func ParseConsistency(s string) (Consistency, error) {
	switch s {
	case "", "leader":
		return ReadLeader, nil
	case "stale":
		return ReadStale, nil
	case "linearizable":
		return ReadLinearizable, nil
	}
	return 0, invalidf("consistency must be leader, stale or linearizable")
}
