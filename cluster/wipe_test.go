package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"reflect"
	"sort"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"allot/actors/domain"
)

// The tests of defect 9 (issue 8): a node that lost its data dir must not
// vote, lead or acknowledge writes as if it had kept it. They use real
// nodes over TCP and only the node's public surface, so that they also run
// against the code before the fix.

// kill stops n the way a crash does: Raft stops at once, with no
// leadership transfer, then the node releases its stores.
func kill(t *testing.T, n *Node) {
	t.Helper()
	if err := n.Raft().Shutdown().Error(); err != nil {
		t.Fatalf("kill %s: %v", n.ID(), err)
	}
	if err := n.Shutdown(); err != nil {
		t.Fatalf("kill %s: %v", n.ID(), err)
	}
}

// wipe empties a stopped node's data dir, as a lost disk does.
func wipe(t *testing.T, n *Node) {
	t.Helper()
	if err := os.RemoveAll(n.cfg.DataDir); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(n.cfg.DataDir, 0o755); err != nil {
		t.Fatal(err)
	}
}

// restart starts a stopped node again on its data dir and Raft address
// (the address the other nodes have in their configuration).
func restart(t *testing.T, old *Node, tune func(*Config)) *Node {
	t.Helper()
	cfg := old.cfg
	cfg.RaftAddr = old.RaftAddr()
	if tune != nil {
		tune(&cfg)
	}
	return startNode(t, cfg)
}

// hasReservation reports whether n's committed state holds reservation id.
func hasReservation(n *Node, id string) bool {
	var ok bool
	n.View(func(st *domain.State) { _, ok = st.Reservation(id) })
	return ok
}

// converged waits until every node has applied what the leader has and all
// hold the same state: the point where an entry is either on all of them
// or lost for good.
func converged(t *testing.T, nodes []*Node) *Node {
	t.Helper()
	l := leaderOf(t, nodes)
	wantApplied(t, propose(t, l, putVoucher("sync", 1)), 1) // a commit in the leader's term
	waitFor(t, "nodes converge on the leader's state", func() error {
		want := l.Raft().AppliedIndex()
		for _, nd := range nodes {
			if got := nd.Raft().AppliedIndex(); got < want {
				return fmt.Errorf("%s applied %d of %d", nd.ID(), got, want)
			}
			if nd.StateHash() != l.StateHash() {
				return fmt.Errorf("%s's state differs from the leader's", nd.ID())
			}
		}
		return nil
	})
	return l
}

func serverIDs(t *testing.T, n *Node) []string {
	t.Helper()
	f := n.Raft().GetConfiguration()
	if err := f.Error(); err != nil {
		t.Fatalf("%s: configuration: %v", n.ID(), err)
	}
	var ids []string
	for _, s := range f.Configuration().Servers {
		ids = append(ids, fmt.Sprintf("%s/%s", s.ID, s.Suffrage))
	}
	sort.Strings(ids)
	return ids
}

// fastElections shortens Raft's timeouts so that the tests that wait out
// elections stay short.
func fastElections(_ int, c *Config) {
	c.HeartbeatTimeout = 100 * time.Millisecond
	c.ElectionTimeout = 100 * time.Millisecond
	c.LeaderLeaseTimeout = 50 * time.Millisecond
}

// TestDefect9WipedVoterKeepsCommittedEntry: A leads B and C. C stops; E is
// committed on A and B and acknowledged. A and B stop, B's data dir is
// wiped, and B (empty) and C (a log without E) start. Before the fix B
// voted for C, C led, and when A came back C's log overwrote E. Now B does
// not vote before it has caught up with a leader, so no leader is elected
// without A, and once A is back E is on every node.
func TestDefect9WipedVoterKeepsCommittedEntry(t *testing.T) {
	nodes := startCluster(t, 3, fastElections)
	a, b, c := nodes[0], nodes[1], nodes[2]
	wantApplied(t, propose(t, a, putVoucher("v1", 10)), 1)
	waitFor(t, "v1 on every node", func() error {
		for _, nd := range nodes {
			if _, err := held(nd, domain.ReadStale, "v1"); err != nil {
				return fmt.Errorf("%s: %w", nd.ID(), err)
			}
		}
		return nil
	})

	kill(t, c)
	wantApplied(t, propose(t, a, reserve("v1", "E", "alice")), 1) // committed on A and B
	waitFor(t, "E applied on B", func() error {
		if !hasReservation(b, "E") {
			return errors.New("not yet")
		}
		return nil
	})
	kill(t, a)
	kill(t, b)
	wipe(t, b)

	b = restart(t, b, func(c *Config) { c.Bootstrap = false })
	c = restart(t, c, nil)
	// Give B and C many election rounds: before the fix, C wins one of
	// the first.
	deadline := time.Now().Add(15 * c.cfg.ElectionTimeout)
	for time.Now().Before(deadline) {
		if b.Raft().State() == raft.Leader || c.Raft().State() == raft.Leader {
			t.Logf("a leader was elected without A")
			break
		}
		time.Sleep(5 * time.Millisecond)
	}

	a = restart(t, a, nil)
	l := converged(t, []*Node{a, b, c})
	for _, nd := range []*Node{a, b, c} {
		if !hasReservation(nd, "E") {
			t.Errorf("the committed and acknowledged reservation E is lost on %s", nd.ID())
		}
	}
	if t.Failed() {
		return
	}
	// B asks to join again, as `allot serve --join` does after a wipe: it is
	// a voter already.
	m := domain.Member{ID: b.ID(), RaftAddr: b.RaftAddr(), HTTPAddr: b.HTTPAddr()}
	if err := l.AddVoter(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	// Caught up, B votes again: without A, B and C elect a leader.
	kill(t, a)
	l = leaderOf(t, []*Node{b, c})
	wantApplied(t, propose(t, l, reserve("v1", "G", "gina")), 1)
	if !hasReservation(l, "E") {
		t.Fatal("E lost")
	}
}

// TestDefect9WipedNodeWithBootstrapRejoins: C's data dir is wiped and C is
// started with Bootstrap, as `allot serve` without --join does, while A and
// B run. Before the fix C founded a new cluster of its own at once. Now it
// hears the running cluster's leader, does not bootstrap, never leads or
// acknowledges a write, and ends up a member again with the cluster's
// state, which stays intact.
func TestDefect9WipedNodeWithBootstrapRejoins(t *testing.T) {
	var calls leadershipLog
	nodes := startCluster(t, 3, func(i int, c *Config) {
		if i == 2 {
			c.OnLeadership = calls.record
		}
	})
	a, c := nodes[0], nodes[2]
	wantApplied(t, propose(t, a, putVoucher("v1", 10)), 1)
	wantApplied(t, propose(t, a, reserve("v1", "E", "alice")), 1)
	want := serverIDs(t, a)

	kill(t, c)
	wipe(t, c)
	c = restart(t, c, func(c *Config) { c.Bootstrap = true })
	if got := serverIDs(t, c); reflect.DeepEqual(got, []string{"n3/Voter"}) {
		t.Fatalf("the wiped node founded a cluster of its own: %v", got)
	}
	// Writes through C are never acknowledged by C as a leader.
	waitFor(t, "C follows the running cluster", func() error {
		o := propose(t, c, reserve("v1", "W", "walt"))
		if o.err == nil {
			t.Fatalf("the wiped node acknowledged a write: %+v", o)
		}
		if !errors.Is(o.err, domain.ErrNotLeader) {
			return o.err
		}
		return nil
	})
	waitFor(t, "C has the cluster's configuration and state", func() error {
		if got := serverIDs(t, c); !reflect.DeepEqual(got, want) {
			return fmt.Errorf("configuration %v, want %v", got, want)
		}
		if c.StateHash() != a.StateHash() {
			return errors.New("state differs from the leader's")
		}
		return nil
	})
	// The first entry of C's log is the cluster's, not a bootstrap of its own.
	var mine, theirs raft.Log
	if err := c.stores.LogStore().GetLog(1, &mine); err != nil {
		t.Fatal(err)
	}
	if err := a.stores.LogStore().GetLog(1, &theirs); err != nil {
		t.Fatal(err)
	}
	if mine.Term != theirs.Term || string(mine.Data) != string(theirs.Data) {
		t.Fatalf("C's log starts with its own bootstrap %+v, the cluster's with %+v",
			raft.DecodeConfiguration(mine.Data), raft.DecodeConfiguration(theirs.Data))
	}
	if got := calls.get(); len(got) != 0 {
		t.Fatalf("the wiped node led: OnLeadership %v", got)
	}
	for _, nd := range nodes[:2] {
		if !hasReservation(nd, "E") {
			t.Fatalf("%s lost E", nd.ID())
		}
	}
	wantApplied(t, propose(t, a, reserve("v1", "F", "frank")), 1)
	converged(t, []*Node{a, nodes[1], c})
	if !hasReservation(c, "E") || !hasReservation(c, "F") {
		t.Fatal("C misses the cluster's reservations")
	}
	// C is a full member again: without A, B and C elect a leader.
	kill(t, a)
	l := leaderOf(t, []*Node{nodes[1], c})
	wantApplied(t, propose(t, l, reserve("v1", "G", "gina")), 1)
}

// TestDefect9FreshClusterElects: the guard does not get in the way of
// normal elections. A cluster founded by one node with two joiners elects
// a new leader when the leader dies, and all three restarted with their
// data elect one again.
func TestDefect9FreshClusterElects(t *testing.T) {
	nodes := startCluster(t, 3, fastElections)
	wantApplied(t, propose(t, nodes[0], putVoucher("v1", 10)), 1)
	kill(t, nodes[0])
	l := leaderOf(t, nodes[1:])
	wantApplied(t, propose(t, l, reserve("v1", "r1", "alice")), 1)

	nodes[0] = restart(t, nodes[0], nil)
	converged(t, nodes)
	for i, nd := range nodes {
		if err := nd.Shutdown(); err != nil {
			t.Fatal(err)
		}
		nodes[i] = nd
	}
	for i, nd := range nodes {
		nodes[i] = restart(t, nd, nil)
	}
	l = converged(t, nodes)
	wantApplied(t, propose(t, l, reserve("v1", "r2", "bob")), 1)
	for _, nd := range nodes {
		if !nd.HadState() {
			t.Fatalf("%s restarted without state", nd.ID())
		}
	}
}
