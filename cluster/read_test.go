package cluster

import (
	"context"
	"errors"
	"testing"
	"time"

	"allot/actors/domain"
)

// TestDefect1BarrierOnReadyLeader: the ready leader's Barrier succeeds (it
// used to refuse always, so a resource whose event had an unknown outcome
// could never resync); a node that is not the ready leader refuses it.
func TestDefect1BarrierOnReadyLeader(t *testing.T) {
	n := startNode(t, testConfig(t, t.TempDir(), nil))
	waitFor(t, "leader ready", n.Ready)
	wantApplied(t, propose(t, n, putVoucher("v1", 10)), 1)
	for i := range 3 {
		if err := n.Barrier(context.Background()); err != nil {
			t.Fatalf("barrier %d on the ready leader: %v", i, err)
		}
	}

	cfg := testConfig(t, t.TempDir(), nil)
	cfg.Bootstrap = false
	lone := startNode(t, cfg)
	if err := lone.Barrier(context.Background()); !errors.Is(err, domain.ErrUnavailable) {
		t.Fatalf("barrier on a node without a leader: %v", err)
	}
}

// linearizableQuickly runs a linearizable read of v1 and fails unless it
// returns the held count want well before ReadTimeout.
func linearizableQuickly(t *testing.T, n *Node, what string, want int64) {
	t.Helper()
	start := time.Now()
	h, err := held(n, domain.ReadLinearizable, "v1")
	if took := time.Since(start); err != nil || h != want || took > n.cfg.ReadTimeout/2 {
		t.Fatalf("linearizable read %s: held %d, %v after %v; want %d well before the read timeout %v",
			what, h, err, took, want, n.cfg.ReadTimeout)
	}
}

// TestDefect6LinearizableReadAfterBarrier: a linearizable read waits for
// the FSM to reach the commit index. When the last committed entry is a
// barrier or a configuration change, neither of which is a command, the
// wait must still end at once instead of at ReadTimeout.
func TestDefect6LinearizableReadAfterBarrier(t *testing.T) {
	n := startNode(t, testConfig(t, t.TempDir(), nil))
	waitFor(t, "leader ready", n.Ready)
	wantApplied(t, propose(t, n, putVoucher("v1", 10), reserve("v1", "r1", "alice")), 2)

	for i := range 3 {
		if err := n.Barrier(context.Background()); err != nil {
			t.Fatalf("barrier %d: %v", i, err)
		}
		linearizableQuickly(t, n, "after a barrier", 1)
	}

	// A configuration change (a non-voter that never answers: a lone
	// voter commits it by itself) is the last entry of the log.
	if err := n.Raft().AddNonvoter("ghost", "127.0.0.1:1", 0, time.Second).Error(); err != nil {
		t.Fatal(err)
	}
	linearizableQuickly(t, n, "after a membership change", 1)
	if err := n.Raft().RemoveServer("ghost", 0, time.Second).Error(); err != nil {
		t.Fatal(err)
	}
	linearizableQuickly(t, n, "after a removal", 1)
}
