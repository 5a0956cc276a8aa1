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
// at a new address first (or again) joins as a non-voter; the leader's
// promoter (promoteCaughtUp) makes it a voter once it has caught up, and
// admit waits for that, bounded by ctx and Config.ApplyTimeout. A node
// that needs longer (a large snapshot) fails the call with
// domain.ErrUnavailable, so that the joiner asks again; it is promoted
// all the same once caught up, even if it never asks again.
func (n *Node) admit(ctx context.Context, m domain.Member, current *raft.Server) error {
	id, addr := raft.ServerID(m.ID), raft.ServerAddress(m.RaftAddr)
	if current != nil && current.Suffrage == raft.Voter {
		if current.Address == addr {
			return nil
		}
		// A voter that moved keeps its vote: its log moved with it.
		return n.changeConfig(ctx, n.raft.AddVoter(id, addr, 0, n.cfg.ApplyTimeout))
	}
	if current == nil || current.Address != addr {
		if err := n.changeConfig(ctx, n.raft.AddNonvoter(id, addr, 0, n.cfg.ApplyTimeout)); err != nil {
			return fmt.Errorf("add as non-voter: %w", err)
		}
		n.logger.Info("non-voter added; promoted once caught up", "id", m.ID, "raft_addr", m.RaftAddr)
	}
	return n.awaitPromotion(ctx, id)
}

// awaitPromotion waits until id is a voter in the configuration.
func (n *Node) awaitPromotion(ctx context.Context, id raft.ServerID) error {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.ApplyTimeout)
	defer cancel()
	tick := time.NewTicker(n.promoteInterval())
	defer tick.Stop()
	for {
		if !n.leaderReady() {
			return n.notReady()
		}
		servers, err := n.servers()
		if err != nil {
			return fmt.Errorf("read configuration: %w: %w", domain.ErrUnavailable, err)
		}
		for _, s := range servers {
			if s.ID == id && s.Suffrage == raft.Voter {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s is a non-voter still catching up (log at %d); ask again: %w",
				id, n.trans.progress.get(id), domain.ErrUnavailable)
		case <-tick.C:
		}
	}
}

func (n *Node) promoteInterval() time.Duration {
	return max(n.cfg.HeartbeatTimeout/5, time.Millisecond)
}

// promoteCaughtUp runs for the node's lifetime. While this node is the
// ready leader, it promotes each non-voter whose log has reached the
// leader's last index as of when this leader first saw it as a non-voter
// (the followers' AppendEntries answers tell how far their logs reach).
// The promotion names the configuration it was decided on, so that a
// removal in between wins.
func (n *Node) promoteCaughtUp() {
	defer n.wg.Done()
	tick := time.NewTicker(n.promoteInterval())
	defer tick.Stop()
	var term uint64
	targets := make(map[raft.ServerID]uint64)
	for {
		select {
		case <-n.stop:
			return
		case <-tick.C:
		}
		t := n.readyTerm.Load()
		if !n.readyIn(t) || n.cfg.keepNonVoters != nil && n.cfg.keepNonVoters.Load() {
			continue
		}
		if t != term { // a new term: this leader has not seen anyone yet
			term = t
			clear(targets)
		}
		n.promoteStep(targets)
	}
}

// promoteStep promotes at most one caught-up non-voter: a promotion
// changes the configuration the others were checked against.
func (n *Node) promoteStep(targets map[raft.ServerID]uint64) {
	ctx, cancel := context.WithTimeout(context.Background(), n.cfg.ReadTimeout)
	f := n.raft.GetConfiguration()
	err := awaitFuture(ctx, f)
	cancel()
	if err != nil {
		return
	}
	for _, s := range f.Configuration().Servers {
		if s.Suffrage == raft.Voter {
			delete(targets, s.ID)
			continue
		}
		target, seen := targets[s.ID]
		if !seen {
			n.trans.progress.forget(s.ID) // only answers from now on count
			targets[s.ID] = n.raft.LastIndex()
			continue
		}
		if n.trans.progress.get(s.ID) < target {
			continue
		}
		if err := n.changeConfig(context.Background(), n.raft.AddVoter(s.ID, s.Address, f.Index(), n.cfg.ApplyTimeout)); err != nil {
			n.logger.Warn("promoting a caught-up non-voter failed; retrying", "id", s.ID, "error", err)
			return
		}
		delete(targets, s.ID)
		n.logger.Info("voter added: non-voter caught up", "id", s.ID, "raft_addr", s.Address, "log_at", target)
		return
	}
}

// peerProgress is how far each follower's log reached in its last
// accepted AppendEntries, and when each follower last answered this node at
// all (heard: heartbeats included), as seen by the leader's transport.
type peerProgress struct {
	mu    sync.Mutex
	last  map[raft.ServerID]uint64
	heard map[raft.ServerID]time.Time
}

func (p *peerProgress) init() {
	p.last = make(map[raft.ServerID]uint64)
	p.heard = make(map[raft.ServerID]time.Time)
}

func (p *peerProgress) observe(id raft.ServerID, lastLog uint64) {
	p.mu.Lock()
	p.last[id] = lastLog
	p.mu.Unlock()
}

// answered notes that id answered an RPC of this node just now.
func (p *peerProgress) answered(id raft.ServerID) {
	now := time.Now()
	p.mu.Lock()
	p.heard[id] = now
	p.mu.Unlock()
}

// heardWithin reports whether id answered this node during the last d.
func (p *peerProgress) heardWithin(id raft.ServerID, d time.Duration) bool {
	p.mu.Lock()
	at, ok := p.heard[id]
	p.mu.Unlock()
	return ok && time.Since(at) <= d
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
