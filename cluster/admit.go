package cluster

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"allot/actors/domain"
)

// A node joins as a non-voter and becomes a voter only once its log has
// caught up with the leader's (the Raft thesis, §4.2.1). Adding an empty
// voter at once would raise the quorum with a member that cannot
// acknowledge anything yet: in a cluster of one, every write would wait
// for the newcomer to copy the whole log. A non-voter receives entries
// without counting for commits or elections.
//
// A node that comes back under an id that is already a voter at the same
// address, as a node whose data dir was wiped does, is not demoted: the
// demotion would be a configuration change that needs a quorum of the
// remaining voters (in a cluster of three with one node down, it stalls
// the cluster), whereas as a voter the node acknowledges entries (which
// are then on its disk) and helps commit. What a non-voter would keep it
// from doing, voting before it holds what it once acknowledged, the vote
// guard (voteguard.go) already keeps it from.

// admit makes m a voter at its Raft address. current is m's entry in the
// configuration, nil when it has none. A new node, a non-voter or a node
// at a new address first (or again) joins as a non-voter, then is
// promoted once its log reaches the leader's last index as of its
// addition. The wait is bounded by ctx and Config.ApplyTimeout: a node
// that needs longer (a large snapshot) is left a non-voter and the call
// fails with domain.ErrUnavailable, so that the joiner asks again and the
// next call picks up the wait.
func (n *Node) admit(ctx context.Context, m domain.Member, current *raft.Server) error {
	id, addr := raft.ServerID(m.ID), raft.ServerAddress(m.RaftAddr)
	if current != nil && current.Suffrage == raft.Voter {
		if current.Address == addr {
			return nil
		}
		// A voter that moved keeps its vote: its log moved with it.
		return n.changeConfig(ctx, n.raft.AddVoter(id, addr, 0, n.cfg.ApplyTimeout))
	}
	if current == nil || current.Address != addr || current.Suffrage != raft.Nonvoter {
		if err := n.changeConfig(ctx, n.raft.AddNonvoter(id, addr, 0, n.cfg.ApplyTimeout)); err != nil {
			return fmt.Errorf("add as non-voter: %w", err)
		}
		n.logger.Info("non-voter added; promoted once caught up", "id", m.ID, "raft_addr", m.RaftAddr)
	}
	if err := n.awaitCaughtUp(ctx, id); err != nil {
		return err
	}
	if err := n.changeConfig(ctx, n.raft.AddVoter(id, addr, 0, n.cfg.ApplyTimeout)); err != nil {
		return fmt.Errorf("promote to voter: %w", err)
	}
	n.logger.Info("voter added", "id", m.ID, "raft_addr", m.RaftAddr, "http_addr", m.HTTPAddr)
	return nil
}

// awaitCaughtUp waits until follower id reports a log that reaches this
// leader's last index as of now.
func (n *Node) awaitCaughtUp(ctx context.Context, id raft.ServerID) error {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.ApplyTimeout)
	defer cancel()
	target := n.raft.LastIndex()
	n.trans.progress.forget(id) // only answers from now on count
	tick := time.NewTicker(max(n.cfg.HeartbeatTimeout/10, time.Millisecond))
	defer tick.Stop()
	for {
		reached := n.trans.progress.get(id)
		if reached >= target {
			return nil
		}
		if !n.leaderReady() {
			return n.notReady()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s is a non-voter catching up (log at %d of %d); ask again: %w",
				id, reached, target, domain.ErrUnavailable)
		case <-tick.C:
		}
	}
}

// peerProgress is how far each follower's log reached in its last
// successful AppendEntries answer (heartbeats included, which the leader
// sends every tenth of a heartbeat timeout) to this node as leader.
type peerProgress struct {
	mu   sync.Mutex
	last map[raft.ServerID]uint64
}

func (p *peerProgress) init() { p.last = make(map[raft.ServerID]uint64) }

func (p *peerProgress) observe(id raft.ServerID, lastLog uint64) {
	p.mu.Lock()
	p.last[id] = lastLog
	p.mu.Unlock()
}

func (p *peerProgress) get(id raft.ServerID) uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.last[id]
}

func (p *peerProgress) forget(id raft.ServerID) {
	p.mu.Lock()
	delete(p.last, id)
	p.mu.Unlock()
}
