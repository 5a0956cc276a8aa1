package cluster

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"allot/actors/domain"
)

// leaseConfig is a lone node whose lease is long enough (400 ms) to check
// that it holds right after a renewal even on a loaded machine.
func leaseConfig(t *testing.T) Config {
	cfg := testConfig(t, t.TempDir(), nil)
	cfg.HeartbeatTimeout, cfg.ElectionTimeout = 500*time.Millisecond, 500*time.Millisecond
	cfg.LeaderLeaseTimeout = 250 * time.Millisecond
	cfg.LeaseDuration = 400 * time.Millisecond
	return cfg
}

// leaseHoldsSince checks LeaseValid right after a renewal that started no
// earlier than since. False when the check came too late to tell (the
// machine stalled past the lease): the caller tries again.
func leaseHoldsSince(t *testing.T, n *Node, since time.Time, what string) bool {
	t.Helper()
	valid := n.LeaseValid()
	elapsed := time.Since(since)
	switch {
	case valid:
		return true
	case elapsed < n.cfg.leaseDuration():
		t.Fatalf("lease not valid %v after %s (lease %v)", elapsed, what, n.cfg.leaseDuration())
	}
	t.Logf("checked %v after %s, past the lease; trying again", elapsed, what)
	return false
}

// lapse waits for n's lease to run out without renewals.
func lapse(t *testing.T, n *Node) {
	t.Helper()
	waitFor(t, "lease lapses", func() error {
		if n.LeaseValid() {
			return errors.New("lease still valid")
		}
		return nil
	})
}

// TestDefect12LeaseRenewals: the ready leader's lease holds right after its
// barrier, after a commit and after a leadership check; it runs out when
// nothing renews it; while it holds, a leader read asks no quorum.
func TestDefect12LeaseRenewals(t *testing.T) {
	var barrierAt atomic.Int64
	cfg := leaseConfig(t)
	cfg.beforeBarrier = func() { barrierAt.Store(time.Now().UnixNano()) }
	n := startNode(t, cfg)
	waitFor(t, "leader ready", n.Ready)
	if !leaseHoldsSince(t, n, time.Unix(0, barrierAt.Load()), "the ready barrier") {
		t.Log("inconclusive for the ready barrier")
	}
	wantApplied(t, propose(t, n, putVoucher("v1", 10)), 1)

	for i := 0; ; i++ {
		lapse(t, n)
		start := time.Now()
		wantApplied(t, propose(t, n, reserve("v1", "r"+string(rune('a'+i)), "u"+string(rune('a'+i)))), 1)
		if leaseHoldsSince(t, n, start, "a commit") {
			break
		}
		if i == 5 {
			t.Fatal("never checked the lease in time after a commit")
		}
	}
	for i := 0; ; i++ {
		lapse(t, n)
		start := time.Now()
		if err := n.VerifyLeader(context.Background()); err != nil {
			t.Fatal(err)
		}
		if leaseHoldsSince(t, n, start, "VerifyLeader") {
			break
		}
		if i == 5 {
			t.Fatal("never checked the lease in time after VerifyLeader")
		}
	}
	for i := 0; ; i++ {
		lapse(t, n)
		start := time.Now()
		if err := n.Barrier(context.Background()); err != nil {
			t.Fatal(err)
		}
		if i == 20 {
			t.Fatal("never read under the lease a barrier renewed")
		}
		rounds := n.verifier.rounds.Load()
		if !n.LeaseValid() {
			continue // the machine stalled past the lease: a read would rightly check
		}
		if _, err := held(n, domain.ReadLeader, "v1"); err != nil {
			t.Fatal(err)
		}
		if !leaseHoldsSince(t, n, start, "a barrier") {
			continue
		}
		if !n.LeaseValid() {
			continue // it may have lapsed during the read, and the read renewed it
		}
		if got := n.verifier.rounds.Load(); got != rounds {
			t.Fatalf("a leader read under a valid lease ran %d leadership checks", got-rounds)
		}
		break
	}
}

// TestDefect12LeaseOnlyOnTheLeader: followers never hold a lease, and a
// leader gives its lease up before it hands leadership over.
func TestDefect12LeaseOnlyOnTheLeader(t *testing.T) {
	nodes := startCluster(t, 3, nil)
	l := nodes[0]
	var duringTransfer []bool
	l.cfg.duringTransfer = func() { duringTransfer = append(duringTransfer, l.LeaseValid()) }
	for i := 0; ; i++ {
		start := time.Now()
		wantApplied(t, propose(t, l, putVoucher("v1", int64(10+i))), 1)
		if leaseHoldsSince(t, l, start, "a commit") {
			break
		}
	}
	for _, f := range nodes[1:] {
		if f.LeaseValid() {
			t.Fatalf("follower %s holds a lease", f.ID())
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := l.transferLeadership(ctx); err != nil {
		t.Fatal(err)
	}
	if len(duringTransfer) != 1 || duringTransfer[0] {
		t.Fatalf("lease during the transfer: %v, want [false]", duringTransfer)
	}
	nl := leaderOf(t, nodes)
	if l.LeaseValid() || nl == l {
		t.Fatalf("after the transfer: old leader's lease %v, new leader %s", l.LeaseValid(), nl.ID())
	}
}
