// Package feed reads allot's change stream: the event types of the API's
// "Events" section and a client that long-polls GET /v1/events. It is
// written against the public contract only, so that it can be copied into
// a downstream service as it is.
package feed

import (
	"encoding/json"
	"strings"
	"time"
)

// Event types a reservation can enter ("reservation." + its new status).
const (
	TypeHeld      = "reservation.held"
	TypeConfirmed = "reservation.confirmed"
	TypeCancelled = "reservation.cancelled"
	TypeExpired   = "reservation.expired"
	TypeCheckedIn = "reservation.checked_in"
	TypeCompleted = "reservation.completed"
)

// Event is one committed change. Offsets count per shard from 1 with no
// gaps and are the same on every node, so (Shard, Offset) identifies an
// event for good: it is the key to deduplicate on.
type Event struct {
	Offset     int64     `json:"offset"`
	Shard      int       `json:"shard"`
	Type       string    `json:"type"`
	At         time.Time `json:"at"`
	ResourceID string    `json:"resource_id"`
	Kind       string    `json:"kind"`
	// From is the status a reservation left ("" when it is new).
	From string `json:"from"`
	// Reservation is set on reservation.* events, as
	// GET /v1/reservations/{id} renders it after the change.
	Reservation *Reservation `json:"reservation,omitempty"`
	// Resource and Limit are set on resource.* and limit.* events: the
	// spec as stored. They are kept raw: this package does not need them.
	Resource       json.RawMessage `json:"resource,omitempty"`
	Limit          json.RawMessage `json:"limit,omitempty"`
	IdempotencyKey string          `json:"idempotency_key,omitempty"`
}

// IsReservation reports whether e is a reservation.* event.
func (e *Event) IsReservation() bool {
	return strings.HasPrefix(e.Type, "reservation.") && e.Reservation != nil
}

// Reservation is a reservation as the API renders it. Times are kept as
// the server wrote them (RFC 3339, UTC).
type Reservation struct {
	ID         string `json:"id"`
	ResourceID string `json:"resource_id"`
	Kind       string `json:"kind"`
	User       string `json:"user"`
	Quantity   int64  `json:"quantity"`
	Status     string `json:"status"`
	CheckIn    string `json:"check_in,omitempty"`
	CheckOut   string `json:"check_out,omitempty"`
	CreatedAt  string `json:"created_at"`
	ExpiresAt  string `json:"expires_at,omitempty"`
	UpdatedAt  string `json:"updated_at"`
}

// Page is one answer of GET /v1/events.
type Page struct {
	Events []Event `json:"events"`
	// Next is the value to pass as after next time. Filters skip events
	// but Next still moves past them.
	Next int64 `json:"next"`
	// Earliest is the oldest offset the serving node still keeps.
	Earliest int64 `json:"earliest"`
	// Head is the newest offset committed on the serving node.
	Head int64 `json:"head"`
}

// Batch is the body of a webhook delivery.
type Batch struct {
	Events []Event `json:"events"`
}
