package cluster

import (
	"context"
	"time"

	"github.com/hashicorp/raft"
)

// watchLeadership follows Raft's leadership notifications (Config.NotifyCh:
// unlike LeaderCh it drops none) and turns them into the node's "ready
// leader" state and the OnLeadership calls, all from this one goroutine.
//
// Gaining leadership: run a barrier so that every entry of earlier terms is
// applied, and only then mark the node ready and call OnLeadership(true).
// The node counts as ready to the outside (Ready, IsLeader) only once that
// call has returned, so a client told "ready" finds the engine serving.
// Losing it: clear ready first, then call OnLeadership(false). The ready
// check also compares Raft's state and term (leaderReady), so a node that
// lost leadership refuses writes even before this goroutine catches up.
func (n *Node) watchLeadership(notify <-chan bool) {
	defer n.wg.Done()
	announced := false
	announce := func(leader bool) {
		announced = leader
		if !leader {
			n.servingTerm.Store(0)
		}
		n.logger.Info("leadership", "leader", leader, "term", n.raft.CurrentTerm())
		if n.cfg.OnLeadership != nil {
			n.cfg.OnLeadership(leader)
		}
		if leader {
			n.servingTerm.Store(n.readyTerm.Load())
		}
	}
	defer func() {
		if announced {
			announce(false)
		}
	}()
	for {
		var leader bool
		select {
		case leader = <-notify:
		case <-n.stop:
			return
		}
		// A second true without a false in between cannot come from
		// NotifyCh, but if it did the engine must restart from committed
		// state all the same.
		if !leader || announced {
			n.clearReady()
			if announced {
				announce(false)
			}
		}
		if leader && n.becomeReady(notify) {
			announce(true)
			n.wg.Add(2)
			go n.raiseLogFormat(n.readyTerm.Load())
			go n.upgradeClusterID(n.readyTerm.Load())
		}
	}
}

// becomeReady runs the new leader's barrier (and records the leader's own
// addresses if committed state lacks them) until it passes, leadership
// changes (a newer notification is waiting) or the node stops. After
// BarrierRetries failures in a row it tries to hand leadership to another
// voter; a lone node keeps retrying.
func (n *Node) becomeReady(notify <-chan bool) bool {
	term := n.raft.CurrentTerm()
	// superseded reports that this leadership is over, a newer
	// notification waits (the watcher moves on to it) or the FSM halted.
	superseded := func() bool {
		return len(notify) > 0 || n.raft.State() != raft.Leader || n.raft.CurrentTerm() != term || n.fsm.Halted() != nil
	}
	for attempt := 1; ; attempt++ {
		if superseded() {
			return false
		}
		start := time.Now()
		if n.cfg.beforeBarrier != nil {
			n.cfg.beforeBarrier()
		}
		leaseStart := n.now()
		index, err := n.barrier(context.Background())
		if err == nil {
			var own uint64
			own, err = n.recordSelf(term)
			index = max(index, own)
		}
		if err == nil {
			var raised uint64
			raised, err = n.foundLogFormat(term)
			index = max(index, raised)
		}
		if err == nil {
			if superseded() {
				return false
			}
			n.fsm.NoteApplied(index)
			n.setReady(term, leaseStart)
			n.logger.Info("leader ready", "term", term, "index", index, "barrier", time.Since(start))
			return true
		}
		if superseded() {
			return false
		}
		n.logger.Warn("leader barrier failed", "term", term, "attempt", attempt, "error", err)
		if attempt%n.cfg.BarrierRetries == 0 {
			n.stepDown()
		}
		t := time.NewTimer(min(n.cfg.BarrierTimeout, time.Second))
		select {
		case <-t.C:
		case <-n.stop:
			t.Stop()
			return false
		}
	}
}

// barrier runs a Raft barrier: it returns once every entry before it is
// applied, with the barrier's own index. Raft shows barriers to no FSM, so
// once the barrier passes the FSM is told that it reflects every entry up to
// that index, even when ctx ended first: a linearizable read whose read index
// is a barrier would otherwise wait for the next command (or its timeout).
func (n *Node) barrier(ctx context.Context) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.BarrierTimeout)
	defer cancel()
	f := n.raft.Barrier(n.cfg.BarrierTimeout)
	done := make(chan error, 1)
	var index uint64
	go func() {
		err := f.Error()
		if i, ok := f.(raft.IndexFuture); ok && err == nil {
			index = i.Index()
			n.fsm.NoteApplied(index)
		}
		done <- err
	}()
	select {
	case err := <-done:
		return index, err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// stepDown hands leadership to another voter, if there is one.
func (n *Node) stepDown() {
	if !n.hasOtherVoters() {
		n.logger.Error("leader cannot pass its barrier and has no other voter to hand over to; retrying")
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), n.cfg.ShutdownTimeout)
	defer cancel()
	if err := n.transferLeadership(ctx); err != nil {
		n.logger.Error("leader cannot pass its barrier and could not step down", "error", err)
		return
	}
	n.logger.Warn("leader stepped down after failing its barrier")
}
