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
	EvLogFormat                           // the cluster may use log format LogFormat from here on (logversion.go)
	EvPrune                               // drop finished reservations older than PruneBefore (retention.go); log format BatchV3
	EvPutWebhook                          // create or update a webhook (webhooks.go); log format BatchV4
	EvDeleteWebhook                       // remove a webhook; BatchV4
	EvAdvanceWebhook                      // move a webhook's cursor forward after its receiver acknowledged; BatchV4
	EvPauseWebhook                        // pause or resume a webhook; BatchV4
	EvReplayWebhook                       // set a webhook's cursor, backwards too; BatchV4
	EvPutLimit                            // create or update a limit group (limits.go); BatchV4
	EvDeleteLimit                         // remove a limit group no resource names; BatchV4
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
	LogFormat     uint8       // EvLogFormat
	PruneBefore   int64       // EvPrune: leader time before which finished reservations go
	PruneMax      int         // EvPrune: at most this many (1..MaxPrunePerEvent)
	Hook          *WebhookOp  // the webhook events
	Limit         *LimitOp    // EvPutLimit, EvDeleteLimit

	// Idem, when set, stores the answer under the client's Idempotency-Key
	// in the same step as the change it answers for.
	Idem *IdemRecord
}

// Batch is one Raft entry: the events of many actors committed together.
type Batch struct {
	// Term is the Raft term its proposer led in when it proposed the batch,
	// 0 for an unstamped batch (format BatchV1). Raft stores every entry
	// under the term of the leader that appended it, so the two must agree;
	// an entry whose stamp differs from its log term was written by a
	// deposed leader under a newer term (hashicorp/raft #695), and the FSM
	// stops rather than apply it.
	Term   uint64
	Events []Event
}

// FormatTime renders Unix nanoseconds as RFC 3339 in UTC.
func FormatTime(ns int64) string {
	return time.Unix(0, ns).UTC().Format(time.RFC3339Nano)
}
