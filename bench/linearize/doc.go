// Package linearize records the client operations of a run against allot
// and checks them for linearizability with porcupine, against a model of a
// resource as API.md specifies it; beside the model, CheckFinal checks the
// invariants of the state read back after the run. It is pure: no network,
// no server.
//
// # Recording
//
// A Recorder takes Call(input) before a request and Return(output) or
// Unknown() after it, from any number of goroutines, with timestamps from
// the monotonic clock. Record only leader or linearizable reads (a
// consistency=stale read may lag by design), every write on the resources
// checked (a write the recorder missed makes stock move for no reason), and
// give every operation its resource id. History returns porcupine
// operations; Check checks them.
//
// # The model
//
// One resource (voucher, slot or room): its stock (per night for rooms),
// per-user limit, reservations with their statuses and expires_at, and the
// stored Idempotency-Key answers. Porcupine checks each resource as its own
// partition (an Idempotency-Key must therefore stay on one resource; Check
// refuses a history where it does not). The model is nondeterministic and
// porcupine is given its powerset: a step maps the set of states the
// resource may be in to the set of states that could have produced the
// output. States are kept in a canonical order and forget what no later
// operation can observe (a key all of whose operations were linearized,
// expiry bounds of reservations no longer held, finished reservations no
// later operation names), so that equal futures merge.
//
// Answers follow API.md and the engine: a reserve is refused limit_exceeded
// or sold_out only if it did not fit; 201 gives a new id, held with
// expires_at = decision time + hold (or confirmed when the hold is 0); a
// retry with a key that has a record gets the stored answer (a 201 naming
// the same reservation, whatever its status now; 422 for another endpoint or
// body); a refusal stores nothing; transitions follow the lifecycle table,
// a repeated one is 200 unchanged (stored under its key or not: the API
// does not say), a wrong one 409 invalid_state; a non-owner gets 403.
// Answers that say for sure that nothing was written and that the model does
// not check (503 unavailable, 429, 400, request_in_progress, not_open,
// closed) are left out, as are reads without an answer.
//
// # Unknown outcomes
//
// A write whose answer the client did not get (timeout, transport error,
// 503 outcome_unknown, another 5xx) may or may not have happened, the way
// etcd's robustness tests treat failed requests: it returns at the end of
// the history, so porcupine may place its effect anywhere after its call,
// and its step yields both the unchanged state and the state after it.
// Options.UnknownHorizon optionally bounds how late such a write may take
// effect; legal histories check fast without it, but proving a history
// illegal has to try every placement of every unknown outcome.
//
// # Ids the model cannot know
//
// Reservation ids are made by the server, so a reserve with an unknown
// outcome that happened makes an anonymous reservation: user, quantity,
// key, and the bounds of when it was made, no id. An output that names an
// id the model has not bound binds it:
//   - a replay of the key (a 201 answer to a retry) names the reservation
//     that key made;
//   - a list names every reservation; the unbound ids of a list are matched
//     one to one with the anonymous reservations (one state per matching);
//   - a read or a transition of an unbound id binds it to any anonymous
//     reservation it fits (one state per choice), or finds none (404).
//
// Only ids no keyless fresh 201 in the history made can be bound this way.
// Anonymous reservations that are never named still hold stock, count
// against their user's limit and expire; a final list of the resource
// (record it like any read) must show each of them.
//
// # Expiry
//
// Expiry is not a client operation but an internal step: a hold expires
// never before its expires_at and at most Options.Lateness after it, in
// leader time, and leader time is within Options.Skew of the recorder's
// clock. The model keeps the interval left for the point of the operation
// being stepped (after its call and after every operation before it, before
// its return). A hold whose expiry window has passed is expired; one whose
// window overlaps the operation stays "held, or expired already" until an
// output depends on it: a read showing it, a count that needs it expired (one
// state per subset of such holds that gives the count), a reserve that fits
// only if some expired (one state per smallest such subset). A confirm is
// decided against leader time: 200 only if it may have begun before
// expires_at + skew, `expired` only if it may have ended after expires_at -
// skew, and after an `expired` answer leader time has passed that
// expires_at for good (so no later confirm of it, or of a hold expiring
// earlier, succeeds). A 201's expires_at must be the hold after a decision
// made after the call and before the commit, within the skew. Until an
// anonymous reservation's expires_at is shown, its window is derived from
// the bounds of when it was made.
//
// Subsets are enumerated only while few holds are ambiguous at once; past
// that the model does not commit (lenient: it may miss a violation, never
// invent one).
//
// Not modelled: limit groups (set Spec.ExternalLimits to accept any
// limit_exceeded), opens_at/closes_at, changes of a resource's spec during
// the history, and retention (finished reservations leaving the state).
package linearize
