package cluster

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"allot/actors/domain"
)

// unknownEventEntry is a version-1 batch of one event of a type no binary
// knows: what a node meets when a newer leader proposes an event it cannot
// decode.
var unknownEventEntry = []byte{1, 1, 200, 0, 1, 'a', 0}

// wantHalted checks that n is halted for reason and refuses everything.
func wantHalted(t *testing.T, n *Node, reason string) {
	t.Helper()
	waitFor(t, n.ID()+" halted", func() error {
		if h := n.FSM().Halted(); h == nil || string(h.Reason) != reason {
			return fmt.Errorf("halt %+v, want reason %s", h, reason)
		}
		return nil
	})
	if err := n.Ready(); !errors.Is(err, domain.ErrUnavailable) {
		t.Fatalf("%s ready while halted: %v", n.ID(), err)
	}
	for _, c := range []domain.Consistency{domain.ReadStale, domain.ReadLeader, domain.ReadLinearizable} {
		if err := n.Read(context.Background(), c, func(*domain.State) error { return nil }); !errors.Is(err, domain.ErrUnavailable) {
			t.Fatalf("%s: read at consistency %d while halted: %v", n.ID(), c, err)
		}
	}
	if o := propose(t, n, putVoucher("v9", 1)); !errors.Is(o.err, domain.ErrUnavailable) {
		t.Fatalf("%s: propose while halted: %+v", n.ID(), o)
	}
	if err := n.Barrier(context.Background()); !errors.Is(err, domain.ErrUnavailable) {
		t.Fatalf("%s: barrier while halted: %v", n.ID(), err)
	}
	if err := n.VerifyLeader(context.Background()); !errors.Is(err, domain.ErrUnavailable) {
		t.Fatalf("%s: verify leader while halted: %v", n.ID(), err)
	}
	if n.IsLeader() || n.LeaseValid() {
		t.Fatalf("%s leads while halted", n.ID())
	}
	// It never leads again: Raft is stopped.
	waitFor(t, n.ID()+" raft stopped", func() error {
		if s := n.Status().State; s != "shutdown" {
			return fmt.Errorf("raft state %s", s)
		}
		return nil
	})
}

// TestDefect8UndecodableEntryHalts: an entry the FSM cannot decode (here an
// unknown event type) stops the FSM instead of being skipped: nothing from
// it on is applied, the state stays at the last good entry, the node
// refuses every request, stops Raft, and says so in a metric. A restart
// meets the same entry and halts again.
func TestDefect8UndecodableEntryHalts(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, dir, nil)
	reg := prometheus.NewRegistry()
	cfg.Metrics = reg
	n := startNode(t, cfg)
	waitFor(t, "leader ready", n.Ready)
	wantApplied(t, propose(t, n, putVoucher("v1", 10), reserve("v1", "r1", "alice")), 2)
	before := n.StateHash()
	applied := n.FSM().AppliedIndex()

	f := n.Raft().Apply(unknownEventEntry, 0)
	if err := f.Error(); err != nil {
		t.Fatal(err)
	}
	if err, ok := f.Response().(error); !ok || !errors.Is(err, domain.ErrUnavailable) {
		t.Fatalf("response to the undecodable entry: %#v", f.Response())
	}
	wantHalted(t, n, "undecodable")
	if h := n.FSM().Halted(); h.Index != f.Index() {
		t.Fatalf("halted at %d, want %d", h.Index, f.Index())
	}
	if n.StateHash() != before || n.FSM().AppliedIndex() != applied || n.FSM().Violations() != 0 {
		t.Fatalf("state changed %v, applied %d (want %d), violations %d",
			n.StateHash() != before, n.FSM().AppliedIndex(), applied, n.FSM().Violations())
	}
	fams := gather(t, reg)
	if v := value(sampleOf(fams, "allot_fsm_halted", "reason", "undecodable")); v != 1 {
		t.Fatalf("allot_fsm_halted{reason=undecodable} = %v", v)
	}
	if v := value(sampleOf(fams, "allot_fsm_halted", "reason", "term_mismatch")); v != 0 {
		t.Fatalf("allot_fsm_halted{reason=term_mismatch} = %v", v)
	}
	if err := n.Shutdown(); err != nil {
		t.Fatal(err)
	}

	cfg = testConfig(t, dir, nil)
	cfg.Bootstrap = false
	cfg.RaftAddr = n.RaftAddr()
	n = startNode(t, cfg)
	wantHalted(t, n, "undecodable")
	if n.StateHash() != before {
		t.Fatal("the restarted node's state differs from the last good entry")
	}
}
