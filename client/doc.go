// Package client is a Go client of allot's HTTP API (v1) for services and
// tools: typed requests and answers for resources, reservations, limit
// groups, the change stream and the cluster, with what a caller would
// otherwise get wrong by hand built in.
//
//   - It takes the URLs of several nodes and is leader-aware: a write is
//     sent to the node that led last (learnt from the X-Allot-Node header of
//     an answer and from GET /v1/cluster), any node otherwise, which
//     forwards it. A node that cannot be reached is skipped.
//   - Every write carries an Idempotency-Key (a random one unless the
//     caller gives its own with IdempotencyKey), the same on every retry of
//     one call, so a retried write never books twice.
//   - 429 rate_limited, 503 unavailable, 503 outcome_unknown and 409
//     request_in_progress are retried with that key, after Retry-After or a
//     bounded, jittered backoff, never past the context's deadline.
//   - A refusal is a *ProblemError (status, code, detail, the raw body)
//     that errors.Is matches against the sentinel errors of package
//     allot/actors/domain (errors.Is(err, domain.ErrSoldOut)).
//   - Lists are iterators over every page (Resources, Reservations,
//     Limits), and the change stream is an EventReader that long-polls in
//     offset order and can be resumed from its Next offset.
//
// A Client is safe for concurrent use.
package client
