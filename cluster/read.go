package cluster

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/hashicorp/raft"

	"allot/actors/domain"
)

// Read runs fn on the committed state at consistency c:
//   - domain.ReadStale: this node's state as it is, on any node once it has
//     caught up with the log since it started (catchup.go);
//   - domain.ReadLeader: on the ready leader, under its lease or after
//     confirming with a quorum that it still leads (which renews the lease);
//   - domain.ReadLinearizable: read-index: the commit index is taken while
//     leading, leadership is confirmed, and fn runs once the state reflects
//     that index, so every write acknowledged before the call is seen.
//
// Not leading gives domain.ErrNotLeader (another node leads: forward) or
// domain.ErrUnavailable; a leadership check or wait that outlasts ctx (or
// ReadTimeout) gives domain.ErrUnavailable wrapping the context's error. fn's
// own error is returned as is. fn runs under a read lock.
func (n *Node) Read(ctx context.Context, c domain.Consistency, fn func(*domain.State) error) error {
	if n.closing.Load() || n.fsm.Halted() != nil {
		return n.notReady()
	}
	switch c {
	case domain.ReadStale:
		if !n.caughtUp() {
			return n.notCaughtUp()
		}
		return n.view(fn)
	case domain.ReadLeader, domain.ReadLinearizable:
	default:
		return fmt.Errorf("consistency %d: %w", c, domain.ErrInvalidArgument)
	}
	term := n.readyTerm.Load()
	if !n.readyIn(term) {
		return n.notReady()
	}
	if c == domain.ReadLeader && n.LeaseValid() {
		return n.view(fn)
	}
	ctx, cancel := context.WithTimeout(ctx, n.cfg.ReadTimeout)
	defer cancel()
	// The ready leader has applied its barrier, so every entry after the
	// commit index of its term reaches the FSM and the wait below ends.
	index := n.raft.CommitIndex()
	if err := n.verifyLeader(ctx, term); err != nil {
		return err
	}
	if c == domain.ReadLinearizable {
		if err := n.fsm.WaitApplied(ctx, index); err != nil {
			return fmt.Errorf("read index: %w: %w", domain.ErrUnavailable, err)
		}
	}
	return n.view(fn)
}

func (n *Node) view(fn func(*domain.State) error) error {
	var err error
	n.fsm.View(func(st *domain.State) { err = fn(st) })
	return err
}

// leaderCheckError maps the failure of a Raft operation that changes no
// state (a leadership check, a barrier) named op.
func leaderCheckError(op string, err error) error {
	switch {
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipLost):
		return fmt.Errorf("%s: %w", op, domain.ErrNotLeader)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return fmt.Errorf("%s: %w: %w", op, domain.ErrUnavailable, err)
	}
	return fmt.Errorf("%s: %v: %w", op, err, domain.ErrUnavailable)
}

// Ready returns nil when this node can serve: a leader once its barrier has
// passed; a follower once it knows a leader, has caught up with the log since
// it started (catchup.go), and has applied the commit index it knows of.
// Otherwise an error wrapping domain.ErrUnavailable says why.
func (n *Node) Ready() error {
	if n.closing.Load() || n.fsm.Halted() != nil {
		return n.notReady()
	}
	if n.raft.State() == raft.Leader {
		if n.serving() {
			return nil
		}
		return n.notReady()
	}
	if _, id := n.raft.LeaderWithID(); id == "" {
		return fmt.Errorf("no leader known: %w", domain.ErrUnavailable)
	}
	// Raft's applied index counts no-op and barrier entries, which the FSM
	// never sees; it runs at most a few batches ahead of the FSM.
	if commit, applied := n.raft.CommitIndex(), n.raft.AppliedIndex(); applied < commit {
		return fmt.Errorf("applied %d of %d committed entries: %w", applied, commit, domain.ErrUnavailable)
	}
	if !n.caughtUp() {
		return n.notCaughtUp()
	}
	return nil
}

// Status is a node's view of the cluster.
type Status struct {
	ID       string
	RaftAddr string
	HTTPAddr string
	// State is this node's Raft state: leader, follower, candidate or
	// shutdown.
	State string
	// LeaderID is the leader this node knows of, "" if none.
	LeaderID string
	// LeaderHTTPAddr is the leader's HTTP address when committed state
	// records it.
	LeaderHTTPAddr string
	Term           uint64
	CommitIndex    uint64
	// AppliedIndex is the last entry Raft has handed to the FSM.
	AppliedIndex uint64
	// Violations counts committed events the rules refused (see FSM).
	Violations uint64
	Nodes      []NodeStatus
}

// NodeStatus is one member of the Raft configuration.
type NodeStatus struct {
	ID       string
	RaftAddr string
	// HTTPAddr is the node's recorded HTTP address ("" until recorded).
	HTTPAddr string
	Voter    bool
	// State is leader, follower, candidate or shutdown for this node,
	// leader for the known leader, unknown for other members (only they
	// know their state).
	State string
}

// Status reports this node's view of the cluster.
func (n *Node) Status() Status {
	_, leader := n.raft.LeaderWithID()
	st := Status{
		ID:           n.cfg.NodeID,
		RaftAddr:     n.raftAddr,
		HTTPAddr:     n.cfg.HTTPAddr,
		State:        strings.ToLower(n.raftState().String()),
		LeaderID:     string(leader),
		Term:         n.raft.CurrentTerm(),
		CommitIndex:  n.raft.CommitIndex(),
		AppliedIndex: n.raft.AppliedIndex(),
		Violations:   n.fsm.Violations(),
	}
	switch m, ok := n.fsm.Member(st.LeaderID); {
	case st.LeaderID == n.cfg.NodeID:
		st.LeaderHTTPAddr = n.cfg.HTTPAddr
	case ok:
		st.LeaderHTTPAddr = m.HTTPAddr
	}
	servers, err := n.servers()
	if err != nil && n.raft.State() != raft.Shutdown {
		n.logger.Warn("status: raft configuration unavailable", "error", err)
	}
	for _, s := range servers {
		ns := NodeStatus{ID: string(s.ID), RaftAddr: string(s.Address), Voter: s.Suffrage == raft.Voter, State: "unknown"}
		if m, ok := n.fsm.Member(ns.ID); ok {
			ns.HTTPAddr = m.HTTPAddr
		}
		switch ns.ID {
		case st.ID:
			ns.HTTPAddr, ns.State = st.HTTPAddr, st.State
		case st.LeaderID:
			ns.State = "leader"
		}
		st.Nodes = append(st.Nodes, ns)
	}
	return st
}

// Barrier returns once every entry proposed before it is applied here. Only
// the ready leader runs one: elsewhere it fails at once with
// domain.ErrNotLeader or domain.ErrUnavailable. Leadership lost during the
// barrier is domain.ErrNotLeader; a barrier that outlasts ctx (or
// BarrierTimeout) is domain.ErrUnavailable. A barrier changes no state, so
// a failed one is safe to retry.
func (n *Node) Barrier(ctx context.Context) error {
	term := n.readyTerm.Load()
	if n.closing.Load() || !n.readyIn(term) {
		return n.notReady()
	}
	start := n.now()
	if _, err := n.barrier(ctx); err != nil {
		return leaderCheckError("barrier", err)
	}
	n.renewLease(term, start)
	return nil
}

// VerifyLeader confirms with a quorum that this node is still the ready
// leader of the term it became ready in, and renews its lease (lease.go).
func (n *Node) VerifyLeader(ctx context.Context) error {
	term := n.readyTerm.Load()
	if !n.readyIn(term) {
		return n.notReady()
	}
	ctx, cancel := context.WithTimeout(ctx, n.cfg.ReadTimeout)
	defer cancel()
	return n.verifyLeader(ctx, term)
}

// verifyLeader runs a leadership check that starts after the call, and
// renews the lease of term from the call's start once it passes.
func (n *Node) verifyLeader(ctx context.Context, term uint64) error {
	start := n.now()
	if err := n.verifier.verify(ctx); err != nil {
		return leaderCheckError("verify leader", err)
	}
	if n.raft.CurrentTerm() != term {
		return fmt.Errorf("leadership changed during the check: %w", domain.ErrNotLeader)
	}
	n.renewLease(term, start)
	return nil
}
