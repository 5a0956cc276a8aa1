package client

import "time"

// Kind is the kind of a bookable resource.
type Kind string

// Kinds of resource.
const (
	KindVoucher Kind = "voucher"
	KindSlot    Kind = "slot"
	KindRoom    Kind = "room"
)

// Status is where a reservation is in its lifecycle.
type Status string

// Reservation statuses.
const (
	StatusHeld      Status = "held"
	StatusConfirmed Status = "confirmed"
	StatusCancelled Status = "cancelled"
	StatusExpired   Status = "expired"
	StatusCheckedIn Status = "checked_in"
	StatusCompleted Status = "completed"
)

// InventoryRow is the rooms a room type has on the nights [From, To)
// (dates YYYY-MM-DD); later rows win.
type InventoryRow struct {
	From  string `json:"from"`
	To    string `json:"to"`
	Rooms int64  `json:"rooms"`
}

// ResourceSpec is the body of PUT /v1/resources/{id}. A PUT replaces the
// whole spec: what is left out takes its default.
type ResourceSpec struct {
	Kind Kind `json:"kind"`
	// Capacity is the units of a voucher or slot in total.
	Capacity int64 `json:"capacity,omitempty"`
	// Inventory is a room type's rooms per night.
	Inventory []InventoryRow `json:"inventory,omitempty"`
	// PerUserLimit is the units one user may hold at once; nil is the
	// default (1 for voucher and slot, 0 = none for room).
	PerUserLimit *int64 `json:"per_user_limit,omitempty"`
	// OpensAt and ClosesAt bound when reservations are taken; zero: no bound.
	OpensAt  time.Time `json:"opens_at,omitzero"`
	ClosesAt time.Time `json:"closes_at,omitzero"`
	// HoldSeconds is how long a hold lasts before it expires; nil is the
	// default (900), 0 confirms reservations at once.
	HoldSeconds *int64 `json:"hold_seconds,omitempty"`
	// CancelDeadline: a confirmed reservation can no longer be cancelled
	// after it; zero: always.
	CancelDeadline time.Time         `json:"cancel_deadline,omitzero"`
	Attributes     map[string]string `json:"attributes,omitempty"`
	// Limits are the limit groups the resource belongs to.
	Limits []string `json:"limits,omitempty"`
}

// Int64 returns a pointer to v, for ResourceSpec's optional numbers.
func Int64(v int64) *int64 { return &v }

// Resource is a resource as stored, with its live counts.
type Resource struct {
	ID             string            `json:"id"`
	Kind           Kind              `json:"kind"`
	Capacity       int64             `json:"capacity"`
	Inventory      []InventoryRow    `json:"inventory"`
	PerUserLimit   int64             `json:"per_user_limit"`
	OpensAt        time.Time         `json:"opens_at,omitzero"`
	ClosesAt       time.Time         `json:"closes_at,omitzero"`
	HoldSeconds    int64             `json:"hold_seconds"`
	CancelDeadline time.Time         `json:"cancel_deadline,omitzero"`
	Attributes     map[string]string `json:"attributes"`
	Limits         []string          `json:"limits"`
	CreatedAt      time.Time         `json:"created_at"`
	UpdatedAt      time.Time         `json:"updated_at"`
	// Available, Held and Confirmed are the live counts of a voucher or
	// slot (Confirmed counts every unit that stays taken: confirmed,
	// checked in, completed). Zero for rooms, which report Nights.
	Available int64 `json:"available"`
	Held      int64 `json:"held"`
	Confirmed int64 `json:"confirmed"`
	// Nights are a room type's counts per night (YYYY-MM-DD) of the range
	// asked (see Nights); nil for vouchers and slots.
	Nights map[string]Night `json:"nights,omitempty"`
}

// Night is one night of a room type.
type Night struct {
	Rooms     int64 `json:"rooms"`
	Available int64 `json:"available"`
	Held      int64 `json:"held"`
	Confirmed int64 `json:"confirmed"`
}

// ReserveRequest is the body of POST /v1/resources/{id}/reservations.
type ReserveRequest struct {
	// Quantity is the units asked for; 0 means 1.
	Quantity int64 `json:"quantity,omitempty"`
	// CheckIn and CheckOut (YYYY-MM-DD) are a room stay's first night and
	// day of departure; rooms only.
	CheckIn  string `json:"check_in,omitempty"`
	CheckOut string `json:"check_out,omitempty"`
}

// Reservation is a reservation as the API shows it.
type Reservation struct {
	ID         string `json:"id"`
	ResourceID string `json:"resource_id"`
	Kind       Kind   `json:"kind"`
	User       string `json:"user"`
	Quantity   int64  `json:"quantity"`
	Status     Status `json:"status"`
	// CheckIn and CheckOut are set for rooms.
	CheckIn   string    `json:"check_in,omitempty"`
	CheckOut  string    `json:"check_out,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	// ExpiresAt is when a hold expires; zero unless held.
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	UpdatedAt time.Time `json:"updated_at"`
}

// LimitSpec is the body of PUT /v1/limits/{id}: bounds across the
// resources that name the limit; 0 means none.
type LimitSpec struct {
	// PerUser is the units one user may have taken across the members.
	PerUser int64 `json:"per_user"`
	// Capacity is the units all users together may have taken.
	Capacity   int64             `json:"capacity"`
	Attributes map[string]string `json:"attributes,omitempty"`
}

// Limit is a limit group as GET /v1/limits/{id} shows it.
type Limit struct {
	ID         string            `json:"id"`
	PerUser    int64             `json:"per_user"`
	Capacity   int64             `json:"capacity"`
	Attributes map[string]string `json:"attributes"`
	// Taken counts the units taken across the members.
	Taken int64 `json:"taken"`
	// Resources are the ids of the resources naming the limit.
	Resources []string `json:"resources"`
	// User and UserTaken are set when asked with ForUser.
	User      string    `json:"user,omitempty"`
	UserTaken *int64    `json:"user_taken,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Event is one committed change of the change stream.
type Event struct {
	Offset int64 `json:"offset"`
	Shard  int   `json:"shard"`
	// Type is "reservation.held", "resource.created", "limit.updated", ...
	Type string    `json:"type"`
	At   time.Time `json:"at"`
	// ResourceID and Kind are set on resource and reservation events.
	ResourceID string `json:"resource_id,omitempty"`
	Kind       Kind   `json:"kind,omitempty"`
	// From is the status a reservation left ("" when new).
	From        Status       `json:"from,omitempty"`
	Reservation *Reservation `json:"reservation,omitempty"`
	// Resource is the spec as stored, on resource events (no live counts).
	Resource *Resource `json:"resource,omitempty"`
	// LimitID and Limit are set on limit events.
	LimitID string `json:"limit_id,omitempty"`
	Limit   *Limit `json:"limit,omitempty"`
	// IdempotencyKey is the key of the request that made the change.
	IdempotencyKey string `json:"idempotency_key,omitempty"`
}

// EventPage is one answer of GET /v1/events.
type EventPage struct {
	Events []Event `json:"events"`
	// Next is the offset of the last event examined: pass it as after.
	Next int64 `json:"next"`
	// Earliest is the oldest offset kept, Head the newest committed on the
	// node that answered.
	Earliest int64 `json:"earliest"`
	Head     int64 `json:"head"`
}

// ClusterInfo is GET /v1/cluster: the answering node's view.
type ClusterInfo struct {
	// ID is the node that answered.
	ID           string      `json:"id"`
	Leader       *LeaderInfo `json:"leader"`
	Term         uint64      `json:"term"`
	CommitIndex  uint64      `json:"commit_index"`
	AppliedIndex uint64      `json:"applied_index"`
	State        string      `json:"state"`
	Ready        bool        `json:"ready"`
	Reason       string      `json:"reason,omitempty"`
	ApplyLag     uint64      `json:"apply_lag"`
	LastLogIndex uint64      `json:"last_log_index"`
	// LastContactSeconds is how long ago the node heard from a leader (0
	// on the leader, nil if never).
	LastContactSeconds  *float64 `json:"last_contact_seconds"`
	InvariantViolations uint64   `json:"invariant_violations"`
	// StateHash is set when asked with WithStateHash (admin only).
	StateHash string     `json:"state_hash,omitempty"`
	Nodes     []NodeInfo `json:"nodes"`
}

// LeaderInfo names the leader.
type LeaderInfo struct {
	ID       string `json:"id"`
	HTTPAddr string `json:"http_addr"`
}

// NodeInfo is one member of the cluster.
type NodeInfo struct {
	ID string `json:"id"`
	// RaftAddr is shown to admins only.
	RaftAddr string `json:"raft_addr,omitempty"`
	HTTPAddr string `json:"http_addr"`
	Voter    bool   `json:"voter"`
	State    string `json:"state"`
}

// page is a page of a list: items by id, and the after value of the next.
type page[T any] struct {
	Items []T    `json:"items"`
	Next  string `json:"next"`
}
