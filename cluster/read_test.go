package cluster

import (
	"context"
	"errors"
	"fmt"
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

// shutdownAll stops nodes at once (one by one, each leader would wait for a
// quorum it is losing).
func shutdownAll(t *testing.T, nodes []*Node) {
	t.Helper()
	errs := make(chan error, len(nodes))
	for _, nd := range nodes {
		go func() { errs <- nd.Shutdown() }()
	}
	for range nodes {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// TestDefect10StaleReadAfterLonelyRestart: a node restarted while no leader
// is reachable has not applied the tail of its log (Raft applies it only
// once a leader announces the commit index), so a stale read must not
// answer from that state: "not found" for a resource that is in the log is
// a wrong answer. It is unavailable until the node has caught up once.
func TestDefect10StaleReadAfterLonelyRestart(t *testing.T) {
	nodes := startCluster(t, 3, nil)
	wantApplied(t, propose(t, nodes[0], putVoucher("v1", 10), reserve("v1", "r1", "alice")), 2)
	for _, nd := range nodes {
		waitFor(t, nd.ID()+" has v1", func() error {
			_, err := held(nd, domain.ReadStale, "v1")
			return err
		})
	}
	shutdownAll(t, nodes)

	alone := restart(t, nodes[1], nil)
	for range 3 {
		h, err := held(alone, domain.ReadStale, "v1")
		if !errors.Is(err, domain.ErrUnavailable) {
			t.Fatalf("stale read on a node alone after a restart: held %d, %v; want unavailable", h, err)
		}
		if err := alone.Ready(); !errors.Is(err, domain.ErrUnavailable) {
			t.Fatalf("ready alone after a restart: %v", err)
		}
	}

	// A second node makes a quorum: a leader is elected, the log tail is
	// applied, and the stale read answers.
	restart(t, nodes[2], nil)
	waitFor(t, "stale read after catching up", func() error {
		h, err := held(alone, domain.ReadStale, "v1")
		if err == nil && h != 1 {
			err = fmt.Errorf("held %d, want 1", h)
		}
		return err
	})
}

// TestEventHeadBehindUntilCaughtUp: a node restarted while no leader is
// reachable shows an event head behind the one it had (its log tail is
// not applied yet), and the stale-read gate the events routes use says so:
// it is unavailable until the node has caught up, and then the head is
// back.
func TestEventHeadBehindUntilCaughtUp(t *testing.T) {
	nodes := startCluster(t, 3, nil)
	propose(t, nodes[0], putVoucher("v1", 10), reserve("v1", "r1", "alice"))
	var head uint64
	waitFor(t, "every node has the events", func() error {
		head = nodes[0].FSM().EventLog().Head()
		for _, nd := range nodes {
			if h := nd.FSM().EventLog().Head(); h == 0 || h != head {
				return fmt.Errorf("%s: event head %d, %s has %d", nd.ID(), h, nodes[0].ID(), head)
			}
		}
		return nil
	})
	shutdownAll(t, nodes)

	alone := restart(t, nodes[1], nil)
	if h := alone.FSM().EventLog().Head(); h >= head {
		t.Fatalf("event head %d right after a lonely restart; it was %d", h, head)
	}
	if err := alone.Read(context.Background(), domain.ReadStale, func(*domain.State) error { return nil }); !errors.Is(err, domain.ErrUnavailable) {
		t.Fatalf("stale-read gate before catching up: %v", err)
	}
	restart(t, nodes[2], nil)
	waitFor(t, "the event head after catching up", func() error {
		if err := alone.Read(context.Background(), domain.ReadStale, func(*domain.State) error { return nil }); err != nil {
			return err
		}
		if h := alone.FSM().EventLog().Head(); h < head {
			return fmt.Errorf("caught up, event head %d of %d", h, head)
		}
		return nil
	})
}
