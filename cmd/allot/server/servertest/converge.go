package servertest

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"

	"allot/actors/domain"
)

// WaitConverged waits until the running nodes agree: one ready leader,
// every node ready, every node in the leader's Raft configuration, and all
// at the same applied index with the same committed state (State.Hash).
// Then it checks each node's state invariants. Call it once writes have
// stopped: under a steady stream of writes the nodes never stand still at
// one index.
func (c *Cluster) WaitConverged() {
	c.t.Helper()
	c.WaitFor("running nodes converge", c.converged)
	for _, nd := range c.Running() {
		err := nd.RaftNode().Read(context.Background(), domain.ReadStale, func(st *domain.State) error { return st.CheckInvariants() })
		if err != nil {
			c.t.Fatalf("servertest: %s: invariants: %v", nd.id, err)
		}
	}
}

func (c *Cluster) converged() error {
	l := c.readyLeader()
	if l == nil {
		return errors.New("no single ready leader")
	}
	members := map[string]bool{}
	for _, s := range l.RaftNode().Status().Nodes {
		members[s.ID] = true
	}
	var first *Node
	var index uint64
	var hash [32]byte
	for _, nd := range c.Running() {
		srv := nd.Server()
		if srv == nil {
			return fmt.Errorf("%s stopped", nd.id)
		}
		rn := srv.Node()
		if err := rn.Ready(); err != nil {
			return fmt.Errorf("%s: %w", nd.id, err)
		}
		if !members[nd.id] {
			return fmt.Errorf("%s is not in the configuration of leader %s", nd.id, l.id)
		}
		// The index read twice around the hash: the hash is of that index.
		i := rn.Raft().AppliedIndex()
		h := rn.StateHash()
		if again := rn.Raft().AppliedIndex(); again != i {
			return fmt.Errorf("%s is still applying (%d, then %d)", nd.id, i, again)
		}
		switch {
		case first == nil:
			first, index, hash = nd, i, h
		case i != index:
			return fmt.Errorf("%s applied %d, %s %d", first.id, index, nd.id, i)
		case h != hash:
			return fmt.Errorf("at index %d %s has state %s, %s %s", i, first.id,
				hex.EncodeToString(hash[:8]), nd.id, hex.EncodeToString(h[:8]))
		}
	}
	return nil
}
