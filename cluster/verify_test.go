package cluster

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"allot/cluster/faultkit"
)

// TestVerifyLeaderCountsVotersOnly: a leader cut off from the other voters
// but not from a non-voter fails its leadership check. hashicorp/raft's
// VerifyLeader counts the non-voter's heartbeat answer towards the voters'
// quorum, so on it alone a deposed leader would serve linearizable reads
// (and renew its lease) while the other two voters elect a new leader.
func TestVerifyLeaderCountsVotersOnly(t *testing.T) {
	net := faultkit.NewNetwork(1)
	var keep atomic.Bool
	slow := func(c *Config) {
		c.WrapStream = net.Wrap(c.NodeID)
		c.keepNonVoters = &keep
		// Slow to notice it lost the voters: the check below runs well
		// before hashicorp/raft's own leader lease would step it down.
		c.HeartbeatTimeout, c.ElectionTimeout, c.LeaderLeaseTimeout = 2*time.Second, 2*time.Second, 2*time.Second
	}
	nodes := startCluster(t, 3, func(_ int, c *Config) { slow(c) })
	l := leaderOf(t, nodes)
	keep.Store(true)
	if err := l.VerifyLeader(context.Background()); err != nil {
		t.Fatalf("leadership check with three voters: %v", err)
	}
	if b := l.verifier.barriers.Load(); b != 0 {
		t.Fatalf("%d barriers for checks of a configuration of voters only", b)
	}

	cfg := testConfig(t, t.TempDir(), nil)
	cfg.NodeID, cfg.Bootstrap = "n4", false
	slow(&cfg)
	n4 := startNode(t, cfg)
	if err := l.Raft().AddNonvoter(raft.ServerID("n4"), raft.ServerAddress(n4.RaftAddr()), 0, 5*time.Second).Error(); err != nil {
		t.Fatalf("add non-voter: %v", err)
	}
	waitFor(t, "the non-voter catches up", func() error {
		if a, c := n4.Raft().AppliedIndex(), l.Raft().CommitIndex(); a < c {
			return fmt.Errorf("applied %d of %d", a, c)
		}
		return nil
	})
	if err := l.VerifyLeader(context.Background()); err != nil {
		t.Fatalf("leadership check with a non-voter, all reachable: %v", err)
	}
	if l.verifier.barriers.Load() == 0 {
		t.Fatal("a check with a non-voter in the configuration used no barrier")
	}

	for _, o := range nodes {
		if o != l {
			net.Block(l.ID(), o.ID())
			net.Block(o.ID(), l.ID())
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	start := time.Now()
	if err := l.VerifyLeader(ctx); err == nil {
		t.Fatalf("leadership check passed %v after the leader lost both other voters (only the non-voter answers)", time.Since(start))
	}
}

// The check takes VerifyLeader's word only for one and the same
// configuration: hashicorp/raft hands out the copy it stored at the last
// change, so two readings without a change between are the same copy.
func TestSameConfigurationIsOneCopy(t *testing.T) {
	nodes := startCluster(t, 1, nil)
	v := nodes[0].verifier
	a, b := v.configuration(), v.configuration()
	if !sameConfiguration(a, b) {
		t.Fatal("two readings of an unchanged configuration are not the same copy: every check would commit a barrier")
	}
	if sameConfiguration(a, append([]raft.Server(nil), a...)) {
		t.Fatal("an equal copy counted as the same configuration")
	}
	if err := nodes[0].VerifyLeader(context.Background()); err != nil || v.barriers.Load() != 0 {
		t.Fatalf("check of a lone voter: %v, %d barriers", err, v.barriers.Load())
	}
}
