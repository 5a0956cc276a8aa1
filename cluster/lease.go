package cluster

import (
	"context"
	"time"
)

// The leader lease. A leader may be deposed without knowing it yet (it was
// paused, or cut off): answering "sold out", "not found" or a leader read
// from its own state is then a wrong answer. Asking a quorum first
// (VerifyLeader) is always right but costs a round trip; the lease lets a
// leader skip it for a while after a quorum acknowledged it.
//
// Why it is safe. Renewals start at a moment `start` on this node's monotonic
// clock, before a request goes to Raft, and count only once a quorum
// acknowledged a message Raft sent after that moment: a committed proposal of
// the ready term (from the time it was handed to Raft), a passed VerifyLeader
// (from the time the check started), the ready barrier. Every follower of that
// quorum received the message after `start`. A hashicorp/raft follower that
// has heard from its leader refuses to vote for anyone else and starts no
// election of its own until HeartbeatTimeout has passed without contact, and
// any quorum that could elect another leader includes one of them. So no
// other node is elected before start + HeartbeatTimeout as the followers'
// clocks measure it. The lease runs until start + LeaseDuration on this
// node's clock, with LeaseDuration at most 9/10 of HeartbeatTimeout: the
// margin covers followers' clocks running up to 10% faster than ours.
// Timers firing late, messages in flight and elections taking time only make
// the real bound later.
//
// What the argument needs, and what this file makes true:
//   - the lease belongs to one ready term; leaving it clears the lease;
//   - a leadership transfer makes followers vote at once (TimeoutNow), so
//     the lease is given up before a transfer starts and not renewed by
//     anything that started before the transfer ended;
//   - a restarted node forgets whom it heard from and would vote at once,
//     so Start waits one LeaseDuration before it starts Raft;
//   - the monotonic clock runs while the process is paused (SIGSTOP, GC): a
//     paused leader finds its lease expired when it resumes. A whole-VM
//     pause that stops the guest's monotonic clock is not covered.

// now is the monotonic time since this node started, in nanoseconds.
func (n *Node) now() int64 { return int64(time.Since(n.epoch)) }

// LeaseValid reports whether this node may give a definite answer from its
// state right now without asking a quorum: it is the ready leader, no
// leadership transfer is under way, and its lease has not run out. It costs
// a few atomic loads and one clock reading.
func (n *Node) LeaseValid() bool {
	term := n.readyTerm.Load()
	if !n.readyIn(term) || n.transfers.Load() != 0 {
		return false
	}
	if n.now() >= n.leaseUntil.Load() {
		return false
	}
	// The lease read belongs to term only if the node is still ready in it:
	// leaving a term clears readyTerm before the lease.
	return n.readyTerm.Load() == term
}

// renewLease extends the lease of term to start + LeaseDuration, start being
// when the request a quorum acknowledged was handed to Raft (n.now()).
func (n *Node) renewLease(term uint64, start int64) {
	until := start + int64(n.cfg.leaseDuration())
	if until <= n.leaseUntil.Load() {
		return // the common case under load: a later renewal came first
	}
	n.leaseMu.Lock()
	defer n.leaseMu.Unlock()
	if n.readyTerm.Load() != term || n.transfers.Load() != 0 || start < n.leaseFloor {
		return
	}
	if until > n.leaseUntil.Load() {
		n.leaseUntil.Store(until)
	}
}

// setReady makes this node the ready leader of term, its lease running from
// leaseStart, when its barrier started. The barrier applied every earlier
// entry, so the node has caught up too.
func (n *Node) setReady(term uint64, leaseStart int64) {
	n.leaseMu.Lock()
	defer n.leaseMu.Unlock()
	n.caughtUpOnce.Store(true)
	if leaseStart >= n.leaseFloor {
		n.leaseUntil.Store(leaseStart + int64(n.cfg.leaseDuration()))
	}
	n.readyTerm.Store(term) // after the lease: a reader that sees the term sees its lease
}

// clearReady ends this node's service as the ready leader, and its lease.
func (n *Node) clearReady() {
	n.leaseMu.Lock()
	defer n.leaseMu.Unlock()
	n.readyTerm.Store(0) // before the lease: see LeaseValid
	n.leaseUntil.Store(0)
}

// transferLeadership hands leadership to another voter and waits for it
// (or ctx). The lease is given up first; renewals that started before the
// transfer ended do not count, and if ctx ends first Raft may go on trying
// for up to ElectionTimeout, so those do not count either.
func (n *Node) transferLeadership(ctx context.Context) error {
	n.leaseMu.Lock()
	n.transfers.Add(1)
	n.leaseUntil.Store(0)
	n.leaseMu.Unlock()
	if n.cfg.duringTransfer != nil {
		n.cfg.duringTransfer()
	}
	err := awaitFuture(ctx, n.raft.LeadershipTransfer())
	n.leaseMu.Lock()
	n.leaseFloor = n.now()
	if ctx.Err() != nil {
		n.leaseFloor += int64(n.cfg.ElectionTimeout)
	}
	n.transfers.Add(-1)
	n.leaseMu.Unlock()
	return err
}
