package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"
)

// bootstrap founds a new cluster with this node, which has no Raft state,
// as its only voter: unless a Raft RPC reaches its address within
// Config.BootstrapGrace. A leader that still lists this address sends it
// heartbeats every tenth of a heartbeat timeout (backing off to at most
// half of one while the node was down), and a candidate asks it for its
// vote, so a node whose data dir was wiped hears its old cluster within
// the grace period. It then does not found a cluster of its own, which
// would acknowledge writes beside the real one and put its own first entry
// into the log it later receives; it stays a blank node, and its vote
// guard keeps it from voting until the cluster has brought it back.
//
// What this cannot see: a cluster none of whose nodes reaches this one
// during the grace period (all down, or partitioned away). The cluster id
// proven in every connection's handshake (clusterid.go) then keeps the two
// clusters apart: the new one draws an id of its own, and the old one's
// nodes and this one refuse each other.
func (n *Node) bootstrap() error {
	grace := n.cfg.bootstrapGrace()
	wait := time.NewTimer(grace)
	defer wait.Stop()
	select {
	case <-n.trans.contacted():
		n.logger.Error("this address is a member of a running cluster: rejoin it with --join; not founding a new cluster",
			"raft_addr", n.raftAddr, "heard", n.trans.firstContact())
		return nil
	case <-wait.C:
	}
	boot := raft.Configuration{Servers: []raft.Server{{
		Suffrage: raft.Voter, ID: raft.ServerID(n.cfg.NodeID), Address: n.trans.LocalAddr(),
	}}}
	n.logger.Info("founding a new cluster", "raft_addr", n.raftAddr, "waited", grace)
	_, err := n.found(boot)
	return err
}

// found draws the new cluster's id and bootstraps Raft with boot, which
// lists this node, and reports whether it did. The id is persisted before
// anything of the cluster is: a member dialled from then on is told it in
// the handshake.
func (n *Node) found(boot raft.Configuration) (bool, error) {
	if err := n.clusterID.found(); err != nil {
		return false, fmt.Errorf("cluster: bootstrap: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), n.cfg.ShutdownTimeout)
	err := awaitFuture(ctx, n.raft.BootstrapCluster(boot))
	cancel()
	switch {
	case err == nil:
		// A new cluster: nothing was voted or committed in it before.
		n.trans.guard.disarm(0, "founded a new cluster")
		n.logger.Info("bootstrapped a new cluster", "raft_addr", n.raftAddr, "voters", len(boot.Servers))
		return true, nil
	case errors.Is(err, raft.ErrCantBootstrap):
		// State arrived after the grace period: a leader got through.
		n.logger.Error("raft state arrived while bootstrapping: this address is a member of a running cluster; not founding a new cluster")
		return false, nil
	default:
		return false, fmt.Errorf("cluster: bootstrap: %w", err)
	}
}
