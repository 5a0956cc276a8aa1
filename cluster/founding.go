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
//     A node that committed keeps its vote only if the cluster is its
//     founder's (the founder answers as a member with the same set, and
//     every cluster id seen is the founder's); for any other cluster it
//     withdraws its commitment and arms its vote guard again (persisted)
//     first: it was disarmed for a new cluster, where an empty log loses
//     nothing, not for one whose entries it may have lost.
//
// A node that has ever heard more than N distinct nodes answer commits to
// nothing: two disjoint sets of N among them could each found a cluster.
// (allot serve refuses a --join list of more than N addresses up front.)
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
// configuration, commits to that set, provided no other member's log holds
// an entry and every cluster id seen is the founder's (this node's own
// too: it may have taken the founder's id from its vote requests). Nothing
// can have been committed in the cluster yet, so its vote cannot cost an
// entry; without this, a founding whose other nodes both restarted before
// the first election would have no quorum that may vote. Until its log
// holds an entry, a committed node votes for its founder only.

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

// founding is a node's commitment to a founding set (step 1). Once
// withdrawn it is reported no more, and the node still commits to no other.
type founding struct {
	mu        sync.Mutex
	set       []string
	withdrawn bool
}

func (f *founding) get() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.withdrawn {
		return nil
	}
	return f.set
}

func (f *founding) withdraw() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.withdrawn = true
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
	stepLeave                      // another cluster exists: arm the vote guard again, then join it
)

// foundingView is what decideFounding decides on: this node's hello, the
// peers' (in any order; this node's own and duplicates may be among them),
// the expected number of nodes, and whether this node has listened for
// BootstrapGrace without any Raft RPC (quiet) or heard one (contacted),
// and how many distinct node ids ever answered, this node's included.
type foundingView struct {
	self      Hello
	peers     []Hello
	expect    int
	quiet     bool
	contacted bool
	answered  int
}

// decideFounding is the next step and, for stepCommit and stepFound, the
// set it is about, with the reason for the log.
func decideFounding(v foundingView) (foundingStep, []Hello, string) {
	self := v.self
	if self.HasState {
		// Only Raft state makes a node a member here: a node that holds
		// nothing but a cluster id (adopted from a vote request of its
		// founder, after a restart lost its commitment) may still commit.
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
	// More nodes than expected ever answered: two disjoint sets of them
	// could each see expect blank nodes (a partition, slow DNS) and found
	// two clusters. Nothing is committed to; a cluster found is joined.
	tooMany := v.answered > v.expect || len(byID) > v.expect
	committed := self.Founding
	founder, members, blocked := founderOf(byID, self.ID, v.expect)
	if committed == nil && founder != nil && blocked == "" && !tooMany {
		return stepCommit, hellosOf(byID, founder.Founding), fmt.Sprintf("%s founded a cluster that lists this node and has committed nothing yet", founder.ID)
	}
	if (members > 0 || self.ClusterID != "") && committed != nil {
		return afterCommit(byID, self)
	}
	if members > 0 || self.ClusterID != "" {
		why := "a cluster exists"
		if blocked != "" {
			why += " (" + blocked + ")"
		}
		return stepDone, nil, why
	}
	if committed == nil && v.contacted {
		return stepDone, nil, "a cluster sent this node a raft rpc: it lists this node"
	}
	if tooMany {
		return stepWait, nil, fmt.Sprintf("%d nodes answered, more than the %d expected: list only the founding nodes", max(v.answered, len(byID)), v.expect)
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

// afterCommit is the step of a node that committed to its founding set
// and now sees a cluster: done if it is the one the set's founder founded
// (the founder says it is a member, with this set, and every cluster id
// seen is the founder's), leave if it is another (this node's vote guard,
// disarmed for a cluster that never formed, must arm again before it
// joins), and wait while only the founder's Raft RPCs tell of a cluster
// but the founder itself does not answer.
func afterCommit(byID map[string]Hello, self Hello) (foundingStep, []Hello, string) {
	committed := self.Founding
	founder, ok := byID[committed[0]]
	switch {
	case !ok && !slices.ContainsFunc(sortedHellos(byID), func(p Hello) bool { return p.ID != self.ID && p.member() }):
		return stepWait, nil, fmt.Sprintf("committed; a cluster contacted this node, waiting for %s's answer", committed[0])
	case !ok || !founder.member() || founder.ClusterID == "" || !slices.Equal(founder.Founding, committed):
		return stepLeave, nil, fmt.Sprintf("a cluster exists that %s did not found with this node's set", committed[0])
	}
	for _, p := range sortedHellos(byID) {
		if p.ClusterID != "" && p.ClusterID != founder.ClusterID {
			return stepLeave, nil, fmt.Sprintf("%s is of cluster %s, not of %s's %s", p.ID, p.ClusterID, founder.ID, founder.ClusterID)
		}
	}
	return stepDone, nil, fmt.Sprintf("%s founded the cluster of this node's set", founder.ID)
}

// founderOf looks at every member among the hellos, in id order, for a
// founder that lists self and has committed nothing (foundedFor), and
// counts the members other than self. The founder may be committed to only
// if blocked is "": no other member's log holds an entry (a leader existed,
// entries may be committed) and every cluster id seen, self's included, is
// the founder's. Answers cannot then outvote each other by the order they
// arrive in.
func founderOf(byID map[string]Hello, self string, expect int) (founder *Hello, members int, blocked string) {
	hellos := sortedHellos(byID)
	for i, p := range hellos {
		if p.ID == self || !p.member() {
			continue
		}
		members++
		if founder == nil && foundedFor(p, self, expect) {
			founder = &hellos[i]
			continue
		}
		if p.LastIndex > 0 && blocked == "" {
			blocked = fmt.Sprintf("%s holds raft entries up to %d", p.ID, p.LastIndex)
		}
	}
	if founder == nil {
		return nil, members, blocked
	}
	for _, p := range hellos {
		if p.ClusterID != "" && p.ClusterID != founder.ClusterID && blocked == "" {
			blocked = fmt.Sprintf("%s is of cluster %s, %s of %s", p.ID, p.ClusterID, founder.ID, founder.ClusterID)
		}
	}
	return founder, members, blocked
}

// foundedFor reports whether p founded (and nothing more) a cluster of
// expect nodes whose founding set holds id: p is the lowest id of its set,
// and its log holds only the founding configuration.
func foundedFor(p Hello, id string, expect int) bool {
	return p.HasState && p.ClusterID != "" && p.LastIndex <= 1 && len(p.Founding) == expect &&
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
// ctx ends first. A node that committed to a set whose cluster it does not
// end up in (it finds another cluster, or a Raft RPC stops it founding)
// arms its vote guard again before it returns: its disarmed vote was for
// a new cluster only.
func (n *Node) AwaitFounding(ctx context.Context, expect int, ask func(context.Context) []Hello) error {
	if n.hadState {
		return nil
	}
	if expect < 1 {
		return fmt.Errorf("cluster: bootstrap-expect %d: want at least 1", expect)
	}
	grace := n.cfg.bootstrapGrace()
	answered := map[string]bool{n.cfg.NodeID: true}
	lastWhy, lastLog := "", time.Time{}
	for {
		peers := ask(ctx)
		for _, p := range peers {
			answered[p.ID] = true
		}
		contacted := false
		select {
		case <-n.trans.contacted():
			contacted = true
		default:
		}
		v := foundingView{self: n.Hello(), peers: peers, expect: expect,
			quiet: !contacted && time.Since(n.epoch) >= grace, contacted: contacted, answered: len(answered)}
		step, set, why := decideFounding(v)
		switch step {
		case stepDone:
			n.logger.Info("founding by expectation: done", "why", why)
			return nil
		case stepLeave:
			n.logger.Warn("founding by expectation: another cluster exists; arming the vote guard again", "why", why)
			return n.withdrawFounding(why)
		case stepCommit:
			if err := n.commitFounding(idsOf(set), why); err != nil {
				return err
			}
			continue // say so at once
		case stepFound:
			founded, err := n.foundWith(set, why)
			if err != nil || founded {
				return err
			}
			return n.withdrawFounding("did not found: a cluster lists this node")
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

// commitFounding disarms the vote guard, for votes for the founder of set
// only while the log is empty, and records the commitment to set. A guard
// that cannot persist its floor stays armed, and the node does not commit.
func (n *Node) commitFounding(set []string, why string) error {
	founder := set[0]
	n.trans.guard.founder.Store(&founder)
	n.trans.guard.disarm(0, "committed to found a new cluster")
	if !n.trans.guard.standing() {
		return fmt.Errorf("cluster: founding: the vote guard could not be disarmed")
	}
	n.founding.commit(set)
	n.logger.Info("founding by expectation: committed to found a cluster", "nodes", set, "why", why)
	return nil
}

// withdrawFounding takes back this node's commitment: its hello no longer
// claims a founding set, and its vote guard, disarmed for the new cluster
// only, arms again (persisted) unless it has caught up with a leader since.
func (n *Node) withdrawFounding(why string) error {
	n.founding.withdraw()
	if err := n.trans.guard.rearm(why); err != nil {
		return fmt.Errorf("cluster: founding: %w", err)
	}
	return nil
}

// foundWith founds the cluster of set, this node its lowest id, unless a
// Raft RPC arrived meanwhile, and reports whether it did.
func (n *Node) foundWith(set []Hello, why string) (bool, error) {
	select {
	case <-n.trans.contacted():
		n.logger.Error("a raft rpc arrived before founding: a cluster lists this node; not founding", "heard", n.trans.firstContact())
		return false, nil
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
