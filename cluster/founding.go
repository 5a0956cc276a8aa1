package cluster

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// Founding by expectation (`allot serve --bootstrap-expect N`): every node
// is started the same way, with the same list of peers, and exactly one
// cluster of N voters forms, whatever order and delays the nodes start
// with. Nodes without Raft state tell each other who they are (a Hello,
// exchanged over the API with the shared secret's admin token) and go
// through three steps:
//
//  1. Commit. A node that has listened for Raft RPCs for BootstrapGrace
//     without hearing from any cluster, and sees N distinct nodes (itself
//     included), none of them member of a cluster and no others, commits to
//     founding with exactly those N: it disarms its vote guard, so that it
//     can vote in the new cluster's first election, and says so in its
//     hello (Founding, the sorted ids). A node commits to one set for the
//     life of its process.
//  2. Found. The lowest id of the set founds the cluster once every node of
//     the set says it committed to that same set: it draws the cluster id
//     and bootstraps Raft with all N as voters. The others never bootstrap;
//     the founder's first vote request reaches them. As a node commits to
//     one set only, two founders can share no node: with a peer list of
//     the N founding nodes, there is one founder and one cluster.
//  3. Done. Once this node or any peer belongs to a cluster (has Raft state
//     or a cluster id), this node stops waiting, and its caller joins the
//     usual way (Server.Join), which adds a newcomer as a non-voter and is
//     a no-op for a founding voter apart from recording its HTTP address.
//
// A node that restarts with Raft state never gets here. A node whose data
// dir was wiped hears its running cluster within the grace period (as a
// --bootstrap node does, bootstrap.go), or sees a peer that belongs to one,
// and joins it instead of founding; its vote guard stays armed until it has
// caught up.
//
// One more way to commit: a node that did not commit in time (it restarted
// without state after the others committed) but sees the founder report
// a set that holds it, with nothing in its log but the founding
// configuration, commits to that set. Nothing can have been committed in
// the cluster yet, so its vote cannot cost an entry; without this, a
// founding whose other nodes both restarted before the first election
// would have no quorum that may vote.

// Hello is what a node tells its peers while a cluster is being founded
// (GET /v1/cluster/hello).
type Hello struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
	HTTPAddr string `json:"http_addr"`
	// ClusterID is the id of the cluster the node belongs to, "" if none.
	ClusterID string `json:"cluster_id,omitempty"`
	// HasState is whether the node holds Raft state (a log or snapshot).
	HasState bool `json:"has_state"`
	// LastIndex is the last index of the node's log.
	LastIndex uint64 `json:"last_index"`
	// Founding is the sorted ids of the nodes this one committed to found
	// a cluster with, empty when it has not committed.
	Founding []string `json:"founding,omitempty"`
}

// member reports whether the node belongs to a cluster.
func (h Hello) member() bool { return h.HasState || h.ClusterID != "" }

// founding is a node's commitment to a founding set (step 1).
type founding struct {
	mu  sync.Mutex
	set []string
}

func (f *founding) get() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.set
}

func (f *founding) commit(set []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.set == nil {
		f.set = slices.Clone(set)
	}
}

// Hello is this node's hello. A founder that restarted before the first
// election (its log holds only the founding configuration) reports that
// configuration's ids as its founding set: the other nodes may then still
// commit to it, and the cluster gets its first quorum.
func (n *Node) Hello() Hello {
	last := n.raft.LastIndex()
	h := Hello{
		ID: n.cfg.NodeID, RaftAddr: n.raftAddr, HTTPAddr: n.cfg.HTTPAddr,
		ClusterID: n.clusterID.String(), HasState: n.hadState || last > 0, LastIndex: last,
		Founding: n.founding.get(),
	}
	if h.Founding == nil && h.HasState && last == 1 {
		if servers, err := n.servers(); err == nil && len(servers) > 1 {
			for _, s := range servers {
				h.Founding = append(h.Founding, string(s.ID))
			}
			slices.Sort(h.Founding)
		}
	}
	return h
}

// foundingStep is what a node waiting for its founding set does next.
type foundingStep int

const (
	stepWait   foundingStep = iota // ask the peers again
	stepCommit                     // commit to the set (step 1)
	stepFound                      // found the cluster of the set (step 2)
	stepDone                       // a cluster exists: join it (step 3)
)

// foundingView is what decideFounding decides on: this node's hello, the
// peers' (in any order; this node's own and duplicates may be among them),
// the expected number of nodes, and whether this node has listened for
// BootstrapGrace without any Raft RPC (quiet) or heard one (contacted).
type foundingView struct {
	self      Hello
	peers     []Hello
	expect    int
	quiet     bool
	contacted bool
}

// decideFounding is the next step and, for stepCommit and stepFound, the
// set it is about, with the reason for the log.
func decideFounding(v foundingView) (foundingStep, []Hello, string) {
	self := v.self
	if self.member() {
		return stepDone, nil, "this node belongs to a cluster"
	}
	byID := map[string]Hello{self.ID: self}
	for _, p := range v.peers {
		old, seen := byID[p.ID]
		switch {
		case !seen:
			byID[p.ID] = p
		case old.RaftAddr != p.RaftAddr:
			return stepWait, nil, fmt.Sprintf("two nodes say they are %s (raft %s and %s): node ids must be unique", p.ID, old.RaftAddr, p.RaftAddr)
		case p.ID != self.ID:
			byID[p.ID] = p // the newer answer of the same node
		}
	}
	committed := self.Founding
	for _, p := range byID {
		if p.ID == self.ID || !p.member() {
			continue
		}
		if committed == nil && foundedFor(p, self.ID, v.expect) {
			return stepCommit, hellosOf(byID, p.Founding), fmt.Sprintf("%s founded a cluster that lists this node and has committed nothing yet", p.ID)
		}
		return stepDone, nil, fmt.Sprintf("%s belongs to a cluster", p.ID)
	}
	if committed == nil && v.contacted {
		return stepDone, nil, "a cluster sent this node a raft rpc: it lists this node"
	}
	if len(byID) > v.expect {
		return stepWait, nil, fmt.Sprintf("%d nodes answer, more than the %d expected: list only the founding nodes", len(byID), v.expect)
	}
	if committed == nil {
		if len(byID) < v.expect {
			return stepWait, nil, fmt.Sprintf("%d of %d nodes answer", len(byID), v.expect)
		}
		if !v.quiet {
			return stepWait, nil, "listening for a running cluster first (bootstrap grace)"
		}
		return stepCommit, sortedHellos(byID), fmt.Sprintf("all %d nodes answer and none belongs to a cluster", v.expect)
	}
	if committed[0] != self.ID {
		return stepWait, nil, fmt.Sprintf("committed; %s founds the cluster", committed[0])
	}
	for _, id := range committed {
		p, ok := byID[id]
		if !ok || !slices.Equal(p.Founding, committed) {
			return stepWait, nil, fmt.Sprintf("waiting for %s to commit to the same founding set", id)
		}
	}
	return stepFound, hellosOf(byID, committed), "every node of the set committed to it"
}

// foundedFor reports whether p founded (and nothing more) a cluster of
// expect nodes whose founding set holds id: p is the lowest id of its set,
// and its log holds only the founding configuration.
func foundedFor(p Hello, id string, expect int) bool {
	return p.HasState && p.LastIndex <= 1 && len(p.Founding) == expect &&
		p.Founding[0] == p.ID && slices.Contains(p.Founding, id)
}

func sortedHellos(byID map[string]Hello) []Hello {
	out := make([]Hello, 0, len(byID))
	for _, h := range byID {
		out = append(out, h)
	}
	slices.SortFunc(out, func(a, b Hello) int {
		switch {
		case a.ID < b.ID:
			return -1
		case a.ID > b.ID:
			return 1
		}
		return 0
	})
	return out
}

// hellosOf is the hellos of ids, as far as known, in the order of ids.
func hellosOf(byID map[string]Hello, ids []string) []Hello {
	out := make([]Hello, 0, len(ids))
	for _, id := range ids {
		if h, ok := byID[id]; ok {
			out = append(out, h)
		} else {
			out = append(out, Hello{ID: id})
		}
	}
	return out
}

func idsOf(hs []Hello) []string {
	ids := make([]string, len(hs))
	for i, h := range hs {
		ids[i] = h.ID
	}
	return ids
}

// foundingPoll is how often a node waiting for its founding set asks its
// peers again.
const foundingPoll = 500 * time.Millisecond

// AwaitFounding runs the founding by expectation for a node without Raft
// state: it asks its peers for their hellos (ask) until a cluster of expect
// nodes exists, founding it if this node's turn comes (see the top of this
// file), and returns nil then: the caller joins it the usual way. It
// returns at once for a node that had state at Start, and ctx's error if
// ctx ends first.
func (n *Node) AwaitFounding(ctx context.Context, expect int, ask func(context.Context) []Hello) error {
	if n.hadState {
		return nil
	}
	if expect < 1 {
		return fmt.Errorf("cluster: bootstrap-expect %d: want at least 1", expect)
	}
	grace := n.cfg.bootstrapGrace()
	lastWhy, lastLog := "", time.Time{}
	for {
		peers := ask(ctx)
		contacted := false
		select {
		case <-n.trans.contacted():
			contacted = true
		default:
		}
		v := foundingView{self: n.Hello(), peers: peers, expect: expect,
			quiet: !contacted && time.Since(n.epoch) >= grace, contacted: contacted}
		step, set, why := decideFounding(v)
		switch step {
		case stepDone:
			n.logger.Info("founding by expectation: done", "why", why)
			return nil
		case stepCommit:
			if err := n.commitFounding(idsOf(set), why); err != nil {
				return err
			}
			continue // say so at once
		case stepFound:
			return n.foundWith(set, why)
		}
		if why != lastWhy || time.Since(lastLog) > 10*time.Second {
			n.logger.Info("founding by expectation: waiting", "expect", expect, "why", why)
			lastWhy, lastLog = why, time.Now()
		}
		t := time.NewTimer(foundingPoll)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("cluster: waiting for %d nodes to found a cluster: %w (%s)", expect, ctx.Err(), why)
		case <-t.C:
		}
	}
}

// commitFounding disarms the vote guard and records the commitment to set.
// A guard that cannot persist its floor stays armed, and the node does not
// commit.
func (n *Node) commitFounding(set []string, why string) error {
	n.trans.guard.disarm(0, "committed to found a new cluster")
	if !n.trans.guard.standing() {
		return fmt.Errorf("cluster: founding: the vote guard could not be disarmed")
	}
	n.founding.commit(set)
	n.logger.Info("founding by expectation: committed to found a cluster", "nodes", set, "why", why)
	return nil
}

// foundWith founds the cluster of set, this node its lowest id, unless a
// Raft RPC arrived meanwhile.
func (n *Node) foundWith(set []Hello, why string) error {
	select {
	case <-n.trans.contacted():
		n.logger.Error("a raft rpc arrived before founding: a cluster lists this node; not founding", "heard", n.trans.firstContact())
		return nil
	default:
	}
	servers := make([]raft.Server, len(set))
	for i, h := range set {
		servers[i] = raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(h.ID), Address: raft.ServerAddress(h.RaftAddr)}
	}
	servers[slices.IndexFunc(set, func(h Hello) bool { return h.ID == n.cfg.NodeID })].Address = n.trans.LocalAddr()
	n.logger.Info("founding by expectation: founding the cluster", "nodes", idsOf(set), "why", why)
	return n.found(raft.Configuration{Servers: servers})
}
