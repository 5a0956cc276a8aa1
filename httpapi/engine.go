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
	// PutLimit creates (created=true) or updates a limit group and returns
	// it as committed: a copy the caller owns.
	PutLimit(ctx context.Context, id string, spec domain.LimitSpec) (l *domain.Limit, created bool, err error)
	// DeleteLimit removes a limit group that no resource names.
	DeleteLimit(ctx context.Context, id string) error
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
	RaftAddr string `json:"raft_addr,omitempty"` // admins only
	HTTPAddr string `json:"http_addr"`
	Voter    bool   `json:"voter"`
	State    string `json:"state"`
}

// ClusterInfo is the body of GET /v1/cluster: the answering node's view.
type ClusterInfo struct {
	// ID is the node that answered.
	ID           string      `json:"id"`
	Leader       *LeaderInfo `json:"leader"`
	Term         uint64      `json:"term"`
	CommitIndex  uint64      `json:"commit_index"`
	AppliedIndex uint64      `json:"applied_index"`
	// The answering node's health, so that the answer explains itself:
	// its Raft state, whether it is ready and if not why (what /readyz
	// says), how far applying trails the commit index, and when it last
	// heard from a leader (seconds; 0 on the leader, null if never).
	State               string   `json:"state"`
	Ready               bool     `json:"ready"`
	Reason              string   `json:"reason,omitempty"`
	LastLogIndex        uint64   `json:"last_log_index"`
	ApplyLag            uint64   `json:"apply_lag"`
	LastContactSeconds  *float64 `json:"last_contact_seconds"`
	InvariantViolations uint64   `json:"invariant_violations"`
	// StateHash is the hex digest of the answering node's committed state,
	// only with ?hash=true: equal on nodes that applied the same log.
	StateHash string     `json:"state_hash,omitempty"`
	Nodes     []NodeInfo `json:"nodes"`
}

// LeaderInfo names the current leader.
type LeaderInfo struct {
	ID       string `json:"id"`
	HTTPAddr string `json:"http_addr"`
}

// Cluster reports membership and readiness, locates the leader and
// changes membership.
type Cluster interface {
	// Info is this node's view of the cluster. The state of a node other
	// than this one and the leader may be "unknown"; the handler asks it.
	Info() ClusterInfo
	// Ready returns nil when this node can serve (it knows a leader and
	// has applied the log it knows of; a leader has passed its barrier),
	// else an error saying why not.
	Ready() error
	// LeaderHTTPAddr returns the base URL of the leader's HTTP API when
	// another node leads and its address is known; false on the leader
	// itself and when no leader is known. It is called on every request
	// that needs the leader, so it must be cheap.
	LeaderHTTPAddr() (string, bool)
	// StateHash is the hex digest of this node's committed state. It may
	// take a while on a large state.
	StateHash() string
	// AddVoter adds node m as a voter (or updates its addresses) and
	// records its HTTP address. Idempotent; domain.ErrNotLeader or
	// domain.ErrUnavailable when this node cannot, before changing
	// anything.
	AddVoter(ctx context.Context, m domain.Member) error
	// RemoveServer removes node id from the cluster; domain.ErrNotFound
	// when it is no member.
	RemoveServer(ctx context.Context, id string) error
	// Audit is this node's side of the audit of log digests across
	// nodes. It must be cheap: it reads what the audit already holds.
	Audit() AuditInfo
	// Hello is who this node is and whether it belongs to a cluster (for
	// founding by expectation). It must be cheap.
	Hello() NodeHello
}
