package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"allot/actors/domain"
)

// startCluster starts n nodes; the first bootstraps and adds the others
// with AddVoter, as the HTTP join does. tune may change each node's config.
func startCluster(t *testing.T, n int, tune func(i int, c *Config)) []*Node {
	t.Helper()
	nodes := make([]*Node, n)
	for i := range nodes {
		cfg := testConfig(t, t.TempDir(), nil)
		cfg.NodeID = fmt.Sprintf("n%d", i+1)
		cfg.HTTPAddr = fmt.Sprintf("http://127.0.0.1:%d", 18081+i)
		cfg.Bootstrap = i == 0
		cfg.HeartbeatTimeout = 200 * time.Millisecond
		cfg.ElectionTimeout = 200 * time.Millisecond
		cfg.LeaderLeaseTimeout = 100 * time.Millisecond
		if tune != nil {
			tune(i, &cfg)
		}
		nodes[i] = startNode(t, cfg)
		if i == 0 {
			waitFor(t, "first node leads", nodes[0].Ready)
			continue
		}
		m := domain.Member{ID: cfg.NodeID, RaftAddr: nodes[i].RaftAddr(), HTTPAddr: cfg.HTTPAddr}
		if err := nodes[0].AddVoter(context.Background(), m); err != nil {
			t.Fatalf("add %s: %v", m.ID, err)
		}
	}
	for _, nd := range nodes {
		waitFor(t, nd.ID()+" ready", nd.Ready)
	}
	return nodes
}

func leaderOf(t *testing.T, nodes []*Node) *Node {
	t.Helper()
	var l *Node
	waitFor(t, "a leader", func() error {
		for _, nd := range nodes {
			if !nd.closing.Load() && nd.IsLeader() {
				l = nd
				return nil
			}
		}
		return errors.New("no ready leader")
	})
	return l
}

// TestMembershipRecords: adding voters records their HTTP addresses on
// every node, followers find the leader's address, re-adding is harmless,
// and removal takes a node out of both the configuration and the records.
func TestMembershipRecords(t *testing.T) {
	nodes := startCluster(t, 3, nil)
	l := nodes[0]
	waitFor(t, "records replicated", func() error {
		for _, nd := range nodes {
			for _, other := range nodes {
				m, ok := nd.FSM().Member(other.ID())
				if !ok || m.HTTPAddr != other.HTTPAddr() || m.RaftAddr != other.RaftAddr() {
					return fmt.Errorf("%s has %+v for %s", nd.ID(), m, other.ID())
				}
			}
		}
		return nil
	})
	for _, f := range nodes[1:] {
		if addr, ok := f.LeaderHTTPAddr(); !ok || addr != l.HTTPAddr() {
			t.Fatalf("%s routes to %q, %v", f.ID(), addr, ok)
		}
		// Followers cannot change membership.
		if err := f.RemoveServer(context.Background(), "n3"); !errors.Is(err, domain.ErrNotLeader) {
			t.Fatalf("remove on a follower: %v", err)
		}
	}
	if _, ok := l.LeaderHTTPAddr(); ok {
		t.Fatal("the leader routes requests away from itself")
	}

	// Adding the same node again changes nothing.
	before := l.StateHash()
	m := domain.Member{ID: "n2", RaftAddr: nodes[1].RaftAddr(), HTTPAddr: nodes[1].HTTPAddr()}
	if err := l.AddVoter(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	if l.StateHash() != before {
		t.Fatal("re-adding a member changed the state")
	}
	for _, bad := range []domain.Member{
		{ID: "n9", RaftAddr: l.RaftAddr(), HTTPAddr: "http://x:1"}, // the leader's own raft address
		{ID: "", RaftAddr: "127.0.0.1:1", HTTPAddr: "http://x:1"},
	} {
		if err := l.AddVoter(context.Background(), bad); !errors.Is(err, domain.ErrInvalidArgument) {
			t.Fatalf("add %+v: %v", bad, err)
		}
	}
	if err := l.RemoveServer(context.Background(), "n9"); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("remove unknown: %v", err)
	}

	if err := l.RemoveServer(context.Background(), "n3"); err != nil {
		t.Fatal(err)
	}
	st := l.Status()
	if len(st.Nodes) != 2 {
		t.Fatalf("after removal: %+v", st.Nodes)
	}
	if _, ok := l.FSM().Member("n3"); ok {
		t.Fatal("n3 is still recorded")
	}
	// Removing the leader hands leadership over and asks for a retry.
	if err := l.RemoveServer(context.Background(), l.ID()); !errors.Is(err, domain.ErrUnavailable) {
		t.Fatalf("removing the leader: %v", err)
	}
	nl := leaderOf(t, nodes[:2])
	if nl == l {
		t.Fatal("leadership did not move")
	}
	if err := nl.RemoveServer(context.Background(), l.ID()); err != nil {
		t.Fatal(err)
	}
	if err := nl.RemoveServer(context.Background(), nl.ID()); !errors.Is(err, domain.ErrInvalidState) {
		t.Fatalf("removing the only voter: %v", err)
	}
}

// TestBarrierGate holds a new leader before its barrier: until it passes,
// the leader refuses writes and leader reads, is not ready and has not told
// the engine; afterwards it serves.
func TestBarrierGate(t *testing.T) {
	gate := make(chan struct{})
	var gateOnce sync.Once
	open := func() { gateOnce.Do(func() { close(gate) }) }
	var armed sync.Map
	var calls [3]leadershipLog
	nodes := startCluster(t, 3, func(i int, c *Config) {
		c.OnLeadership = calls[i].record
		c.beforeBarrier = func() {
			if _, ok := armed.Load(c.NodeID); ok {
				<-gate
			}
		}
	})
	t.Cleanup(open) // runs before the nodes' cleanups shut them down
	old := nodes[0]
	wantApplied(t, propose(t, old, putVoucher("v1", 10)), 1)
	armed.Store("n2", true)
	armed.Store("n3", true)
	if err := old.Shutdown(); err != nil { // hands leadership to n2 or n3
		t.Fatal(err)
	}

	var gated *Node
	waitFor(t, "a new leader at its barrier", func() error {
		for _, nd := range nodes[1:] {
			if nd.Status().State == "leader" {
				gated = nd
				return nil
			}
		}
		return errors.New("no leader yet")
	})
	i := 1
	if gated == nodes[2] {
		i = 2
	}
	if err := gated.Ready(); !errors.Is(err, domain.ErrUnavailable) {
		t.Fatalf("ready before the barrier: %v", err)
	}
	if gated.IsLeader() {
		t.Fatal("IsLeader before the barrier")
	}
	if o := propose(t, gated, reserve("v1", "r1", "alice")); !errors.Is(o.err, domain.ErrUnavailable) {
		t.Fatalf("propose before the barrier: %+v", o)
	}
	if err := gated.Read(context.Background(), domain.ReadLeader, func(*domain.State) error { return nil }); !errors.Is(err, domain.ErrUnavailable) {
		t.Fatalf("leader read before the barrier: %v", err)
	}
	if got := calls[i].get(); len(got) != 0 {
		t.Fatalf("OnLeadership %v before the barrier", got)
	}
	// A stale read is served at any time, though it may not show v1 yet:
	// that the new leader has applied every committed entry is what the
	// barrier establishes.
	if _, err := held(gated, domain.ReadStale, "v1"); err != nil && !errors.Is(err, domain.ErrNotFound) {
		t.Fatal(err)
	}

	open()
	waitFor(t, "leader ready after the barrier", gated.Ready)
	if got := calls[i].get(); len(got) != 1 || !got[0] {
		t.Fatalf("OnLeadership %v after the barrier", got)
	}
	wantApplied(t, propose(t, gated, reserve("v1", "r1", "alice")), 1)
}
