package servertest

import (
	"allot/cluster"
	"allot/cluster/faultkit"
	"allot/cmd/allot/server"
)

// Node is one member of a test cluster. Its id, data dir, addresses and
// clock outlive a stop; its server and the injectors wired into its Raft
// log and engine are those of its current run.
type Node struct {
	c     *Cluster
	index int
	id    string
	dir   string
	clock *faultkit.Clock

	// guarded by c.mu
	httpAddr, raftAddr string // port 0 until the first start
	srv                *server.Server
	cfg                server.Config // of the current or last run
	store              *faultkit.SlowLogStore
	outcomes           *faultkit.UnknownOutcomes
	runs               int
	removed            bool
}

// ID is the node's id ("n1", ...).
func (n *Node) ID() string { return n.id }

// Index is the node's index in the cluster.
func (n *Node) Index() int { return n.index }

// DataDir is the node's data dir.
func (n *Node) DataDir() string { return n.dir }

// URL is the base URL of the node's HTTP API ("http://127.0.0.1:port").
func (n *Node) URL() string {
	n.c.mu.Lock()
	defer n.c.mu.Unlock()
	return "http://" + n.httpAddr
}

// RaftAddr is the address the node's Raft listens on.
func (n *Node) RaftAddr() string {
	n.c.mu.Lock()
	defer n.c.mu.Unlock()
	return n.raftAddr
}

// Running reports whether the node runs now.
func (n *Node) Running() bool { return n.Server() != nil }

// Removed reports whether RemoveNode took the node out of the cluster.
func (n *Node) Removed() bool {
	n.c.mu.Lock()
	defer n.c.mu.Unlock()
	return n.removed
}

// Server is the running node's server, nil while it is stopped.
func (n *Node) Server() *server.Server {
	n.c.mu.Lock()
	defer n.c.mu.Unlock()
	return n.srv
}

// RaftNode is the running node's Raft node (leadership, status, FSM,
// hashicorp/raft itself). It fails the test if the node is stopped.
func (n *Node) RaftNode() *cluster.Node {
	srv := n.Server()
	if srv == nil {
		n.c.t.Fatalf("servertest: %s is not running", n.id)
	}
	return srv.Node()
}

// Config is the configuration of the node's current (or last) run.
func (n *Node) Config() server.Config {
	n.c.mu.Lock()
	defer n.c.mu.Unlock()
	return n.cfg
}

// Clock is the node's wall clock, the one its engine stamps leader time
// from.
func (n *Node) Clock() *faultkit.Clock { return n.clock }

// LogStore is the slow log store wrapped around the node's Raft log in its
// current run (nil if Options.Tune replaced it).
func (n *Node) LogStore() *faultkit.SlowLogStore {
	n.c.mu.Lock()
	defer n.c.mu.Unlock()
	return n.store
}

// Outcomes is the wrapper between the node's engine and its Raft log in its
// current run (nil if Options.Tune replaced it).
func (n *Node) Outcomes() *faultkit.UnknownOutcomes {
	n.c.mu.Lock()
	defer n.c.mu.Unlock()
	return n.outcomes
}
