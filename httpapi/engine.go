package httpapi

import (
	"context"

	"allot/actors/domain"
)

// Engine is what the handlers need to change state. actors.Engine
// implements it on the leader. Every method honours ctx's deadline: when it
// passes after the write was handed to the log, the error is
// domain.ErrOutcomeUnknown, never a plain failure.
type Engine interface {
	// PutResource creates (created=true) or updates a resource and returns
	// it as committed: a copy the caller owns and may read after the call.
	PutResource(ctx context.Context, id string, spec domain.Spec) (r *domain.Resource, created bool, err error)
	// DeleteResource removes a resource without held or confirmed units.
	DeleteResource(ctx context.Context, id string) error
	// Reserve decides a reservation: rejections return at once, acceptances
	// when committed. Replays of a stored Idempotency-Key answer come back
	// with Outcome.Replayed set.
	Reserve(ctx context.Context, cmd domain.ReserveCommand) (domain.Outcome, error)
	// Transition confirms, cancels, checks in or completes a reservation.
	Transition(ctx context.Context, cmd domain.TransitionCommand) (domain.Outcome, error)
}

// Reader gives read access to committed state at a consistency level.
// fn runs under a read lock: it must not block or keep references to the
// state (or to resources inside it) after it returns.
type Reader interface {
	Read(ctx context.Context, c domain.Consistency, fn func(*domain.State) error) error
}

// NodeInfo is one member of the cluster as /v1/cluster shows it.
type NodeInfo struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
	HTTPAddr string `json:"http_addr"`
	Voter    bool   `json:"voter"`
	State    string `json:"state"`
}

// ClusterInfo is the body of GET /v1/cluster.
type ClusterInfo struct {
	Leader       *LeaderInfo `json:"leader"`
	Term         uint64      `json:"term"`
	CommitIndex  uint64      `json:"commit_index"`
	AppliedIndex uint64      `json:"applied_index"`
	Nodes        []NodeInfo  `json:"nodes"`
}

// LeaderInfo names the current leader.
type LeaderInfo struct {
	ID       string `json:"id"`
	HTTPAddr string `json:"http_addr"`
}

// Cluster reports membership and readiness.
type Cluster interface {
	Info() ClusterInfo
	// Ready returns nil when this node can serve (it knows a leader and
	// has applied the log it knows of; a leader has passed its barrier),
	// else an error saying why not.
	Ready() error
}
