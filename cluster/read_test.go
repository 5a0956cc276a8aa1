package cluster

import (
	"context"
	"errors"
	"testing"

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
