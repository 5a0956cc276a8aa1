package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"

	"allot/actors/domain"
)

// Membership has two halves that change together: Raft's configuration (who
// votes, at which Raft address) and the member records in committed state
// (domain.EvSetMember: the HTTP address of every node, which Raft does not
// carry). Membership events are proposed by this package straight to Raft,
// not through the engine's actors and proposer: they are rare, touch no
// resource, and must work while the engine is busy or stopped.
//
// Every step is idempotent, so a caller that sees an error (or an unknown
// outcome) simply asks again: a joining node retries until it is a voter
// with its addresses recorded.

// AddVoter makes node m a voter (adding it, or moving it to a new Raft
// address) and records its addresses in committed state. Only the ready
// leader can: elsewhere it fails with domain.ErrNotLeader or
// domain.ErrUnavailable before changing anything. A new node joins as a
// non-voter and is promoted once caught up (admit.go); the call fails with
// domain.ErrUnavailable if that takes longer than ApplyTimeout, and the
// next call goes on waiting. A node that comes back with the same id and
// address (say, with a wiped data dir) is still a voter and only catches
// up, its vote guard keeping it from voting until it has; another node
// still listed at m's Raft address under an older id is removed first, as
// it cannot be running.
func (n *Node) AddVoter(ctx context.Context, m domain.Member) error {
	if err := m.Validate(); err != nil {
		return err
	}
	if !n.leaderReady() {
		return n.notReady()
	}
	servers, err := n.servers()
	if err != nil {
		return fmt.Errorf("add voter %s: read configuration: %w: %w", m.ID, domain.ErrUnavailable, err)
	}
	var current *raft.Server
	for _, s := range servers {
		switch {
		case string(s.ID) == m.ID:
			current = &s
		case string(s.Address) == m.RaftAddr && string(s.ID) == n.cfg.NodeID:
			return fmt.Errorf("add voter %s: raft address %s is the leader's own: %w", m.ID, m.RaftAddr, domain.ErrInvalidArgument)
		case string(s.Address) == m.RaftAddr:
			n.logger.Warn("removing the old server at a joining node's raft address", "old", s.ID, "new", m.ID, "raft_addr", m.RaftAddr)
			if err := n.changeConfig(ctx, n.raft.RemoveServer(s.ID, 0, n.cfg.ApplyTimeout)); err != nil {
				return fmt.Errorf("add voter %s: remove %s: %w", m.ID, s.ID, err)
			}
		}
	}
	if err := n.admit(ctx, m, current); err != nil {
		return fmt.Errorf("add voter %s: %w", m.ID, err)
	}
	if old, ok := n.fsm.Member(m.ID); ok && old == m {
		return nil
	}
	return n.proposeEvent(ctx, domain.Event{Type: domain.EvSetMember, Member: m})
}

// RemoveServer takes node id out of the cluster: out of Raft's
// configuration and out of the member records. A leader does not remove
// itself: it hands leadership to another voter and answers
// domain.ErrUnavailable, so that the caller's retry reaches the new leader,
// which removes it. A removal after which the remaining voters could not
// form a quorum of nodes that answer is refused with domain.ErrInvalidState
// (quorum.go). An id that is neither a server nor a member is
// domain.ErrNotFound.
func (n *Node) RemoveServer(ctx context.Context, id string) error {
	if !n.leaderReady() {
		return n.notReady()
	}
	// One removal at a time: each is checked against the configuration
	// the one before it left (hashicorp/raft's GetConfiguration reports no
	// index, so a change cannot be pinned to the configuration it was
	// checked against). Two removals checked side by side could each keep
	// a quorum and together lose it.
	n.removeMu.Lock()
	defer n.removeMu.Unlock()
	servers, err := n.servers()
	if err != nil {
		return fmt.Errorf("remove %s: read configuration: %w: %w", id, domain.ErrUnavailable, err)
	}
	inConfig := false
	for _, s := range servers {
		inConfig = inConfig || string(s.ID) == id
	}
	_, recorded := n.fsm.Member(id)
	switch {
	case !inConfig && !recorded:
		return fmt.Errorf("node %s: %w", id, domain.ErrNotFound)
	case id == n.cfg.NodeID:
		if !n.hasOtherVoters() {
			return fmt.Errorf("node %s is the only voter: %w", id, domain.ErrInvalidState)
		}
		tctx, cancel := context.WithTimeout(ctx, n.cfg.ShutdownTimeout)
		defer cancel()
		if err := n.transferLeadership(tctx); err != nil {
			return fmt.Errorf("remove %s: hand leadership over first: %v: %w", id, err, domain.ErrUnavailable)
		}
		return fmt.Errorf("node %s handed leadership over before its removal; retry: %w", id, domain.ErrUnavailable)
	}
	if inConfig {
		if err := n.checkReachableQuorum(without(servers, raft.ServerID(id))); err != nil {
			return fmt.Errorf("remove %s: %w", id, err)
		}
		if err := n.changeConfig(ctx, n.raft.RemoveServer(raft.ServerID(id), 0, n.cfg.ApplyTimeout)); err != nil {
			return fmt.Errorf("remove %s: %w", id, err)
		}
		n.logger.Info("server removed", "id", id)
	}
	if !recorded {
		return nil
	}
	return n.proposeEvent(ctx, domain.Event{Type: domain.EvRemoveMember, Member: domain.Member{ID: id}})
}

// changeConfig waits for a configuration change. As for a proposal, only
// "not the leader" means nothing happened.
func (n *Node) changeConfig(ctx context.Context, f raft.IndexFuture) error {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.ApplyTimeout)
	defer cancel()
	if err := awaitFuture(ctx, f); err != nil {
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
			return fmt.Errorf("configuration change: %v: %w", err, domain.ErrOutcomeUnknown)
		}
		return applyError(err)
	}
	return nil
}

// proposeEvent proposes one event of this package's own (membership, log
// format) stamped with leader time and waits until it is applied here, the
// proposal fails, or ctx ends.
func (n *Node) proposeEvent(ctx context.Context, ev domain.Event) error {
	ev.At = time.Now().UnixNano()
	type outcome struct {
		results []error
		err     error
	}
	done := make(chan outcome, 1)
	n.Propose(&domain.Batch{Events: []domain.Event{ev}}, func(results []error, err error) {
		done <- outcome{results, err}
	})
	select {
	case o := <-done:
		if o.err != nil {
			return o.err
		}
		if len(o.results) == 1 && o.results[0] != nil {
			return fmt.Errorf("event refused: %w", o.results[0])
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("event: %v: %w", ctx.Err(), domain.ErrOutcomeUnknown)
	}
}

// recordSelf makes sure committed state holds this node's current
// addresses before it serves as leader, so that followers can forward to
// it at once: a node leading for the first time, or restarted on another
// HTTP address, applies a fresh record, stamped with term, the term it
// leads in. It returns the record's index (0 when none was needed).
func (n *Node) recordSelf(term uint64) (uint64, error) {
	self := domain.Member{ID: n.cfg.NodeID, RaftAddr: n.raftAddr, HTTPAddr: n.cfg.HTTPAddr}
	if self.HTTPAddr == "" {
		return 0, nil
	}
	if m, ok := n.fsm.Member(self.ID); ok && m == self {
		return 0, nil
	}
	ev := domain.Event{Type: domain.EvSetMember, At: time.Now().UnixNano(), Member: self}
	index, err := n.applyBeforeReady(term, ev, "record own addresses")
	if err == nil {
		n.logger.Info("recorded own addresses", "raft_addr", self.RaftAddr, "http_addr", self.HTTPAddr)
	}
	return index, err
}

// foundLogFormat raises the log format of a cluster this node leads alone
// to the newest this binary writes before it serves: with no other server
// to ask, nothing stands in the way, and a new cluster then numbers its
// change stream (domain/change.go) from its first write on, instead of from
// whenever raiseLogFormat gets to it.
func (n *Node) foundLogFormat(term uint64) (uint64, error) {
	if n.fsm.LogFormat() >= n.fsm.maxFormat {
		return 0, nil
	}
	servers, err := n.servers()
	if err != nil || len(servers) != 1 || string(servers[0].ID) != n.cfg.NodeID {
		return 0, nil // others to ask first: raiseLogFormat does, once ready
	}
	ev := domain.Event{Type: domain.EvLogFormat, At: time.Now().UnixNano(), LogFormat: n.fsm.maxFormat}
	index, err := n.applyBeforeReady(term, ev, "raise the log format")
	if err == nil {
		n.logger.Info("log format raised", "to", n.fsm.maxFormat, "term", term)
	}
	return index, err
}

// applyBeforeReady commits one event of the new leader's own before it is
// ready (the engine does not run yet, so it goes to Raft directly).
func (n *Node) applyBeforeReady(term uint64, ev domain.Event, what string) (uint64, error) {
	b := n.stamp(&domain.Batch{Events: []domain.Event{ev}}, term)
	f := n.raft.Apply(domain.EncodeBatch(nil, b), n.cfg.BarrierTimeout)
	ctx, cancel := context.WithTimeout(context.Background(), n.cfg.BarrierTimeout)
	defer cancel()
	if err := awaitFuture(ctx, f); err != nil {
		return 0, fmt.Errorf("%s: %w", what, err)
	}
	if errs, ok := f.Response().([]error); !ok || len(errs) != 1 || errs[0] != nil {
		return 0, fmt.Errorf("%s: refused: %v", what, f.Response())
	}
	return f.Index(), nil
}

// LeaderHTTPAddr returns the HTTP address of the leader when another node
// leads and its address is recorded: where a request that needs the leader
// goes. It is false on the leader itself and when no leader is known.
func (n *Node) LeaderHTTPAddr() (string, bool) {
	if n.closing.Load() || n.raft.State() == raft.Leader {
		return "", false
	}
	_, id := n.raft.LeaderWithID()
	if id == "" || string(id) == n.cfg.NodeID {
		return "", false
	}
	m, ok := n.fsm.Member(string(id))
	if !ok {
		return "", false
	}
	return m.HTTPAddr, true
}

// StateHash is a digest of this node's committed state (domain.State.Hash):
// nodes that applied the same entries report the same hash. The hash needs
// one consistent view, so it is taken from a frozen view (as FSM.Snapshot
// does) without the lock: Apply waits for the freeze, O(shards), not for
// SHA-256 over the encoded state. Writes after it copy what they touch,
// as after a snapshot, so it is for operators and tests, not a hot path.
func (n *Node) StateHash() [32]byte { return n.fsm.frozen().Hash() }
