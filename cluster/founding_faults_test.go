package cluster

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// TestFoundingRefusesMoreNodesThanExpected: a node that has ever heard more
// than expect distinct nodes answer commits to no set, even once only
// expect of them still answer (a partition, slow DNS): two disjoint sets of
// a longer peer list could otherwise each found a cluster.
func TestFoundingRefusesMoreNodesThanExpected(t *testing.T) {
	nd, err := Start(foundingConfig(t, "n1", t.TempDir(), freePort(t)))
	if err != nil {
		t.Fatal(err)
	}
	defer nd.Shutdown()
	asked := 0
	ask := func(context.Context) []Hello {
		asked++
		if asked == 1 { // everyone of six answers once
			return []Hello{blank("n2"), blank("n3"), blank("n4"), blank("n5"), blank("n6")}
		}
		return []Hello{blank("n2"), blank("n3")} // then a partition leaves three
	}
	ctx, cancel := context.WithTimeout(context.Background(), nd.cfg.bootstrapGrace()+2*time.Second)
	defer cancel()
	if err := nd.AwaitFounding(ctx, 3, ask); err == nil {
		t.Fatal("AwaitFounding returned without a cluster")
	}
	if set := nd.founding.get(); set != nil || nd.VoteStatus().CanVote {
		t.Fatalf("committed to %v (can vote %v) after six nodes answered for --bootstrap-expect 3", set, nd.VoteStatus().CanVote)
	}
}

// TestFoundingFounderBesideRunningCluster: a node without state that sees
// a founder that has committed nothing and, beside it, a member whose log
// holds entries (or a member of another cluster id) never commits to the
// founder, whatever order the answers come in: committing disarms its vote
// guard with an empty log, and it may be a wiped voter of the running
// cluster. A founder hello can be forged or stale; a log cannot be unseen.
func TestFoundingFounderBesideRunningCluster(t *testing.T) {
	founder := committedTo(blank("n1"), "n1", "n2", "n3")
	founder.HasState, founder.LastIndex, founder.ClusterID = true, 1, "f00d"
	running := blank("n2")
	running.HasState, running.LastIndex, running.ClusterID = true, 42, "c0ffee"
	otherID := blank("n2")
	otherID.ClusterID = "c0ffee"
	for _, beside := range []Hello{running, otherID} {
		for _, peers := range [][]Hello{{beside, founder}, {founder, beside}} {
			for range 50 { // the hellos once went through a map
				step, _, why := decideFounding(foundingView{self: blank("n3"), peers: peers, expect: 3, contacted: true})
				if step != stepDone {
					t.Fatalf("beside %+v: step %d (%s), want to join the running cluster", beside, step, why)
				}
			}
		}
	}
	self := blank("n3")
	self.ClusterID = "c0ffee" // adopted from the running cluster's handshake
	if step, _, why := decideFounding(foundingView{self: self, peers: []Hello{founder}, expect: 3, contacted: true}); step != stepDone {
		t.Fatalf("a node of cluster c0ffee commits to founder of f00d: step %d (%s)", step, why)
	}
}

// TestFoundingRestartedBeforeElectionElects: the founder founded, and the
// two other nodes of its set restarted before the first election (their
// commitment lost, their vote guard armed again). Hearing the founder's vote
// requests gives them its cluster id through the handshake; they still
// commit to the founder, which has committed nothing, and the cluster elects.
func TestFoundingRestartedBeforeElectionElects(t *testing.T) {
	nodes := map[string]*Node{}
	peers := &foundingNet{nodes: map[string]*Node{}}
	for _, id := range []string{"n1", "n2", "n3"} {
		nd, err := Start(foundingConfig(t, id, t.TempDir(), freePort(t)))
		if err != nil {
			t.Fatal(err)
		}
		defer nd.Shutdown()
		nodes[id] = nd
		peers.add(nd)
	}
	set := []Hello{nodes["n1"].Hello(), nodes["n2"].Hello(), nodes["n3"].Hello()}
	if err := nodes["n1"].commitFounding(idsOf(set), "test"); err != nil {
		t.Fatal(err)
	}
	if founded, err := nodes["n1"].foundWith(set, "test"); err != nil || !founded {
		t.Fatalf("founded %v: %v", founded, err)
	}
	waitFor(t, "n2 and n3 hear n1's vote requests", func() error {
		for _, id := range []string{"n2", "n3"} {
			if nodes[id].clusterID.String() == "" {
				return fmt.Errorf("%s has no cluster id yet", id)
			}
		}
		return nil
	})
	for _, id := range []string{"n2", "n3"} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := nodes[id].AwaitFounding(ctx, 3, peers.ask)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "a leader", func() error {
		for _, nd := range nodes {
			if nd.IsLeader() {
				return nil
			}
		}
		return fmt.Errorf("no leader: n2 can vote %v, n3 can vote %v, n1 hello %+v",
			nodes["n2"].VoteStatus().CanVote, nodes["n3"].VoteStatus().CanVote, nodes["n1"].Hello())
	})
}

// TestFoundingCommittedThenFindsCluster: a node that committed to a set
// that never founded (a partition hid the running cluster) and then finds
// the running cluster arms its vote guard again, persisted, and withdraws
// its commitment before it joins: its empty log is no vote in that cluster.
func TestFoundingCommittedThenFindsCluster(t *testing.T) {
	nd, err := Start(foundingConfig(t, "n3", t.TempDir(), freePort(t)))
	if err != nil {
		t.Fatal(err)
	}
	defer nd.Shutdown()
	running := blank("n1")
	running.HasState, running.LastIndex, running.ClusterID = true, 42, "c0ffee"
	committed := false
	ask := func(context.Context) []Hello {
		if !committed && nd.founding.get() == nil { // partitioned from n1, n2: two blank spares answer
			return []Hello{blank("n4"), blank("n5")}
		}
		committed = true
		return []Hello{running} // the partition heals
	}
	if err := nd.AwaitFounding(context.Background(), 3, ask); err != nil {
		t.Fatal(err)
	}
	if !committed {
		t.Fatal("never committed: the test did not get where it means to")
	}
	if vs := nd.VoteStatus(); vs.CanVote {
		t.Fatalf("joins a running cluster (last index 42) with its vote guard disarmed (floor %d)", vs.Floor)
	}
	if floor, err := nd.trans.guard.stable.GetUint64(voteFloorKey); err != nil || floor != floorArmed {
		t.Fatalf("persisted floor %d (%v), want armed", floor, err)
	}
	if set := nd.Hello().Founding; set != nil {
		t.Fatalf("hello still claims founding set %v", set)
	}
}

// TestFoundingCommittedKeepsVoteForItsFounder: a node committed to a set
// whose founder founded keeps its vote disarmed for the first election.
func TestFoundingCommittedKeepsVoteForItsFounder(t *testing.T) {
	self := committedTo(blank("n2"), "n1", "n2", "n3")
	founder := committedTo(blank("n1"), "n1", "n2", "n3")
	founder.HasState, founder.LastIndex, founder.ClusterID = true, 2, "f00d"
	self.ClusterID = "f00d"
	if step, _, why := decideFounding(foundingView{self: self, peers: []Hello{founder, blank("n3")}, expect: 3}); step != stepDone {
		t.Fatalf("step %d (%s), want done", step, why)
	}
	other := founder
	other.Founding = nil // the founder joined another cluster instead
	if step, _, why := decideFounding(foundingView{self: self, peers: []Hello{other}, expect: 3}); step != stepLeave {
		t.Fatalf("step %d (%s), want leave", step, why)
	}
	if step, _, why := decideFounding(foundingView{self: self, peers: nil, expect: 3}); step != stepWait {
		t.Fatalf("with only a cluster id and no answer: step %d (%s), want wait", step, why)
	}
}

// TestFoundingCommittedVotesOnlyForFounder: a node committed to found a
// cluster, its log still empty, grants a vote only to its set's founder:
// until it knows which cluster it ends up in, its disarmed guard is safe
// for the new cluster only, not for a running one it may be a wiped voter
// of. Once it withdraws (another cluster exists) it refuses every vote.
func TestFoundingCommittedVotesOnlyForFounder(t *testing.T) {
	nd, err := Start(foundingConfig(t, "n2", t.TempDir(), freePort(t)))
	if err != nil {
		t.Fatal(err)
	}
	defer nd.Shutdown()
	if err := nd.commitFounding([]string{"n1", "n2", "n3"}, "test"); err != nil {
		t.Fatal(err)
	}
	g := nd.trans.guard
	if !g.mayVoteFor(5, []byte("n1")) {
		t.Fatal("refuses its founder's vote request")
	}
	for _, other := range []string{"n3", "n9", ""} {
		if g.mayVoteFor(5, []byte(other)) {
			t.Fatalf("grants %q a vote with an empty log while committed to n1's set", other)
		}
	}
	if err := nd.withdrawFounding("test"); err != nil {
		t.Fatal(err)
	}
	if g.mayVoteFor(5, []byte("n1")) {
		t.Fatal("votes after withdrawing its commitment")
	}
}
