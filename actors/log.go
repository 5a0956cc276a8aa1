package actors

import (
	"context"

	"allot/actors/domain"
)

// Log is the replicated log as the engine sees it; cluster.Node implements it.
type Log interface {
	// Propose hands one batch to Raft as one entry and returns without
	// waiting; it keeps no reference to b or its events (the proposer
	// reuses them for the next entry). done is called exactly once, from another goroutine: with one
	// result per event (nil = applied; an error = the FSM refused it, a bug)
	// once the entry is committed and applied on this node, or with err set
	// when the outcome is unknown (leadership lost, shutdown) or, for
	// domain.ErrNotLeader, when nothing was enqueued.
	Propose(b *domain.Batch, done func(results []error, err error))
	// View runs fn with read access to the committed state. fn must not
	// block or keep references into the state after it returns.
	View(fn func(*domain.State))
	// Barrier returns once every entry proposed before it is applied on
	// this node (or fails, e.g. when leadership is lost). An actor whose
	// event had an unknown outcome uses it before trusting committed state.
	Barrier(ctx context.Context) error
	// LeaseValid reports whether this node may give a definite answer from
	// its state right now without asking a quorum: it is the ready leader
	// and a quorum acknowledged it so recently (measured on the monotonic
	// clock) that no other node can have been elected since. A rejection,
	// a no-op or a read is only sent under the lease (or after
	// VerifyLeader): a leader that was paused past its lease may have been
	// replaced without knowing it.
	LeaseValid() bool
	// VerifyLeader confirms with a quorum that this node still leads,
	// renewing the lease; it fails once leadership is lost or ctx ends.
	VerifyLeader(ctx context.Context) error
}
