package servertest

import (
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"
)

// ForceSnapshot makes node i take a snapshot now (and compact its log down
// to TrailingLogs entries). A node with nothing new since its last
// snapshot keeps that one.
func (c *Cluster) ForceSnapshot(i int) {
	c.t.Helper()
	nd := c.Node(i)
	err := awaitFuture(nd.RaftNode().Raft().Snapshot(), c.opts.Timeout)
	if err != nil && !errors.Is(err, raft.ErrNothingNewToSnapshot) {
		c.t.Fatalf("servertest: snapshot %s: %v", nd.id, err)
	}
}

// InstallSnapshot makes follower i catch up by installing the leader's
// snapshot instead of replaying the log: it cuts the follower off, commits
// more than TrailingLogs entries (Raft barriers) without it, snapshots the
// leader (which drops the entries the follower lacks), heals the network
// and waits until the follower's FSM has restored a snapshot. The rest of
// the cluster must keep a quorum without the follower. Heal lifts every
// fault, not just this one.
func (c *Cluster) InstallSnapshot(i int) {
	c.t.Helper()
	nd := c.Node(i)
	l := c.Leader()
	if l == nd {
		c.t.Fatalf("servertest: install a snapshot on %s: it leads", nd.id)
	}
	before := nd.RaftNode().FSM().Restores()
	c.net.Isolate(nd.id)
	lr := l.RaftNode().Raft()
	pad := int(l.Config().Cluster.TrailingLogs) + 16
	futures := make([]raft.Future, 0, pad)
	for range pad {
		futures = append(futures, lr.Barrier(c.opts.Timeout))
	}
	deadline := time.Now().Add(c.opts.Timeout)
	for _, f := range futures {
		if err := awaitFuture(f, time.Until(deadline)); err != nil {
			c.t.Fatalf("servertest: write %d entries without %s: %v", pad, nd.id, err)
		}
	}
	c.ForceSnapshot(l.index)
	c.net.Heal()
	c.WaitFor(nd.id+" installs a snapshot", func() error {
		if got := nd.RaftNode().FSM().Restores(); got <= before {
			return fmt.Errorf("restores %d, %d before", got, before)
		}
		return nil
	})
}
