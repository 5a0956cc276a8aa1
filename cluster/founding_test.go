package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"allot/actors/domain"
)

func blank(id string) Hello { return Hello{ID: id, RaftAddr: "10.0.0." + id[1:] + ":7000"} }

func committedTo(h Hello, ids ...string) Hello { h.Founding = ids; return h }

func TestDecideFounding(t *testing.T) {
	n1, n2, n3, n4 := blank("n1"), blank("n2"), blank("n3"), blank("n4")
	founded := committedTo(n1, "n1", "n2", "n3")
	founded.HasState, founded.LastIndex, founded.ClusterID = true, 1, "c0ffee"
	running := n2
	running.HasState, running.LastIndex, running.ClusterID = true, 42, "c0ffee"
	for _, tc := range []struct {
		name string
		v    foundingView
		want foundingStep
		set  []string
	}{
		{"too few answer", foundingView{self: n1, peers: []Hello{n2}, expect: 3, quiet: true}, stepWait, nil},
		{"all answer, own url among them", foundingView{self: n2, peers: []Hello{n3, n1, n2}, expect: 3, quiet: true}, stepCommit, []string{"n1", "n2", "n3"}},
		{"all answer, still in the grace period", foundingView{self: n2, peers: []Hello{n3, n1}, expect: 3}, stepWait, nil},
		{"more nodes than expected", foundingView{self: n1, peers: []Hello{n2, n3, n4}, expect: 3, quiet: true}, stepWait, nil},
		{"a peer belongs to a running cluster", foundingView{self: n1, peers: []Hello{running, n3}, expect: 3, quiet: true}, stepDone, nil},
		{"a peer knows a cluster id only", foundingView{self: n1, peers: []Hello{{ID: "n2", RaftAddr: n2.RaftAddr, ClusterID: "c0ffee"}, n3}, expect: 3, quiet: true}, stepDone, nil},
		{"contacted by a cluster", foundingView{self: n1, peers: []Hello{n2, n3}, expect: 3, contacted: true}, stepDone, nil},
		{"this node has state", foundingView{self: Hello{ID: "n1", HasState: true}, peers: []Hello{n2, n3}, expect: 3, quiet: true}, stepDone, nil},
		{"duplicate id at another address", foundingView{self: n1, peers: []Hello{n2, {ID: "n2", RaftAddr: "10.9.9.9:7000"}, n3}, expect: 3, quiet: true}, stepWait, nil},
		{"founder waits for the others to commit", foundingView{self: committedTo(n1, "n1", "n2", "n3"), peers: []Hello{committedTo(n2, "n1", "n2", "n3"), n3}, expect: 3, quiet: true}, stepWait, nil},
		{"founder founds once all committed", foundingView{self: committedTo(n1, "n1", "n2", "n3"), peers: []Hello{committedTo(n2, "n1", "n2", "n3"), committedTo(n3, "n1", "n2", "n3")}, expect: 3, quiet: true}, stepFound, []string{"n1", "n2", "n3"}},
		{"founder refuses another set", foundingView{self: committedTo(n1, "n1", "n2", "n3"), peers: []Hello{committedTo(n2, "n1", "n2", "n3"), committedTo(n3, "n2", "n3", "n4")}, expect: 3, quiet: true}, stepWait, nil},
		{"non-founder never founds", foundingView{self: committedTo(n2, "n1", "n2", "n3"), peers: []Hello{committedTo(n1, "n1", "n2", "n3"), committedTo(n3, "n1", "n2", "n3")}, expect: 3, quiet: true}, stepWait, nil},
		{"committed node waits out a contact", foundingView{self: committedTo(n2, "n1", "n2", "n3"), peers: []Hello{committedTo(n1, "n1", "n2", "n3"), n3}, expect: 3, contacted: true}, stepWait, nil},
		{"committed node is done once the founder founded", foundingView{self: committedTo(n2, "n1", "n2", "n3"), peers: []Hello{founded, n3}, expect: 3, quiet: true}, stepDone, nil},
		{"late node commits to a founding that committed nothing", foundingView{self: n3, peers: []Hello{founded, n2}, expect: 3, contacted: true}, stepCommit, []string{"n1", "n2", "n3"}},
		{"late node holding the founder's cluster id commits", foundingView{self: func() Hello { h := n3; h.ClusterID = "c0ffee"; return h }(), peers: []Hello{founded, n2}, expect: 3, contacted: true}, stepCommit, []string{"n1", "n2", "n3"}},
		{"late node holding another cluster id joins", foundingView{self: func() Hello { h := n3; h.ClusterID = "beef"; return h }(), peers: []Hello{founded, n2}, expect: 3, contacted: true}, stepDone, nil},
		{"more nodes answered before", foundingView{self: n1, peers: []Hello{n2, n3}, expect: 3, quiet: true, answered: 4}, stepWait, nil},
		{"committed node leaves for another cluster", foundingView{self: committedTo(n3, "n1", "n2", "n3"), peers: []Hello{n1, running}, expect: 3, quiet: true}, stepLeave, nil},
		{"late node joins a founding that went on", foundingView{self: n3, peers: []Hello{func() Hello { f := founded; f.LastIndex = 3; return f }(), n2}, expect: 3}, stepDone, nil},
		{"a founding without this node is joined, not committed to", foundingView{self: n4, peers: []Hello{founded}, expect: 3, quiet: true}, stepDone, nil},
		{"one node founds alone", foundingView{self: committedTo(n1, "n1"), peers: []Hello{committedTo(n1, "n1")}, expect: 1, quiet: true}, stepFound, []string{"n1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			step, set, why := decideFounding(tc.v)
			if step != tc.want || !slices.Equal(idsOf(set), tc.set) {
				t.Fatalf("got step %d set %v (%s), want step %d set %v", step, idsOf(set), why, tc.want, tc.set)
			}
		})
	}
}

// TestDecideFoundingOneFounder: whatever each node sees of the others, at
// most one node of a peer list founds, and every node it founds with
// committed to its set; replayed over every order in which three nodes
// commit (each sees a snapshot of the others' hellos).
func TestDecideFoundingOneFounder(t *testing.T) {
	ids := []string{"n1", "n2", "n3"}
	for _, order := range [][]int{{0, 1, 2}, {0, 2, 1}, {1, 0, 2}, {1, 2, 0}, {2, 0, 1}, {2, 1, 0}} {
		hellos := []Hello{blank(ids[0]), blank(ids[1]), blank(ids[2])}
		founders := 0
		for round := 0; round < 4; round++ {
			for _, i := range order {
				step, set, _ := decideFounding(foundingView{self: hellos[i], peers: slices.Clone(hellos), expect: 3, quiet: true})
				switch step {
				case stepCommit:
					hellos[i].Founding = idsOf(set)
				case stepFound:
					founders++
					for _, h := range hellos {
						if !slices.Equal(h.Founding, idsOf(set)) {
							t.Fatalf("order %v: %s founds while %s has not committed", order, hellos[i].ID, h.ID)
						}
					}
					hellos[i].HasState, hellos[i].LastIndex = true, 1
				}
			}
		}
		if founders != 1 {
			t.Fatalf("order %v: %d founders", order, founders)
		}
	}
}

// foundingNet lets in-process nodes ask each other for hellos, as the HTTP
// route does between processes.
type foundingNet struct {
	mu    sync.Mutex
	nodes map[string]*Node
}

func (f *foundingNet) add(n *Node) {
	f.mu.Lock()
	f.nodes[n.ID()] = n
	f.mu.Unlock()
}

func (f *foundingNet) ask(context.Context) []Hello {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []Hello
	for _, n := range f.nodes {
		out = append(out, n.Hello())
	}
	return out
}

// joinUntilDone adds m through whichever node leads, as Server.Join does.
func joinUntilDone(t *testing.T, nodes []*Node, m domain.Member) {
	t.Helper()
	waitFor(t, m.ID+" joined", func() error {
		for _, nd := range nodes {
			if nd.IsLeader() {
				return nd.AddVoter(context.Background(), m)
			}
		}
		return errors.New("no leader yet")
	})
}

// foundingConfig binds Raft on every interface at port and advertises it
// under a name, as nodes in containers do.
func foundingConfig(t *testing.T, id, dir string, port int) Config {
	cfg := testConfig(t, dir, nil)
	cfg.NodeID = id
	cfg.RaftAddr = fmt.Sprintf("0.0.0.0:%d", port)
	cfg.RaftAdvertise = fmt.Sprintf("localhost:%d", port)
	cfg.HTTPAddr = "http://127.0.0.1:1808" + id[1:]
	cfg.Bootstrap = false
	cfg.HeartbeatTimeout = 200 * time.Millisecond
	cfg.ElectionTimeout = 200 * time.Millisecond
	cfg.LeaderLeaseTimeout = 100 * time.Millisecond
	return cfg
}

// TestFoundingByExpectation: three nodes started the same way and at
// different times, the founder last, form one cluster of three voters with
// one cluster id; a write is applied on all; after all three restart they
// are still that one cluster. Raft addresses are names (localhost:port).
func TestFoundingByExpectation(t *testing.T) {
	ports := map[string]int{}
	ids := []string{"n2", "n3", "n1"} // the founder, n1, starts last
	dirs := map[string]string{}
	peers := &foundingNet{nodes: map[string]*Node{}}
	var nodes []*Node
	errs := make(chan error, len(ids))
	for i, id := range ids {
		dirs[id], ports[id] = t.TempDir(), freePort(t)
		nd, err := Start(foundingConfig(t, id, dirs[id], ports[id]))
		if err != nil {
			t.Fatal(err)
		}
		nodes = append(nodes, nd)
		peers.add(nd)
		go func() { errs <- nd.AwaitFounding(context.Background(), 3, peers.ask) }()
		if i < len(ids)-1 {
			time.Sleep(time.Duration(i+1) * 400 * time.Millisecond)
		}
	}
	defer func() {
		for _, nd := range nodes {
			nd.Shutdown()
		}
	}()
	for range ids {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	for _, nd := range nodes {
		joinUntilDone(t, nodes, domain.Member{ID: nd.ID(), RaftAddr: nd.RaftAddr(), HTTPAddr: nd.HTTPAddr()})
	}
	checkOneCluster(t, nodes, "v1")

	clusterID := nodes[0].clusterID.String()
	for _, nd := range nodes {
		if want := fmt.Sprintf("localhost:%d", ports[nd.ID()]); nd.RaftAddr() != want {
			t.Fatalf("%s advertises %s, want %s", nd.ID(), nd.RaftAddr(), want)
		}
		if err := nd.Shutdown(); err != nil {
			t.Fatal(err)
		}
	}
	nodes = nodes[:0]
	peers = &foundingNet{nodes: map[string]*Node{}}
	for _, id := range ids {
		nd, err := Start(foundingConfig(t, id, dirs[id], ports[id]))
		if err != nil {
			t.Fatal(err)
		}
		nodes = append(nodes, nd)
		peers.add(nd)
	}
	for _, nd := range nodes {
		if !nd.HadState() {
			t.Fatalf("%s restarted without state", nd.ID())
		}
		if err := nd.AwaitFounding(context.Background(), 3, peers.ask); err != nil {
			t.Fatal(err)
		}
		if got := nd.clusterID.String(); got != clusterID {
			t.Fatalf("%s: cluster id %s after restart, was %s", nd.ID(), got, clusterID)
		}
	}
	checkOneCluster(t, nodes, "v2")
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// checkOneCluster checks that nodes are one cluster: one id, one leader,
// every node a voter, and a write through the leader applied on all.
func checkOneCluster(t *testing.T, nodes []*Node, voucher string) {
	t.Helper()
	leader := leaderOf(t, nodes)
	id := leader.clusterID.String()
	if id == "" {
		t.Fatal("the leader has no cluster id")
	}
	waitFor(t, "three voters known to every node", func() error {
		for _, nd := range nodes {
			if got := nd.clusterID.String(); got != id {
				return fmt.Errorf("%s: cluster id %q, leader's %q", nd.ID(), got, id)
			}
			servers, err := nd.servers()
			if err != nil {
				return err
			}
			voters := 0
			for _, s := range servers {
				if s.Suffrage == raft.Voter {
					voters++
				}
			}
			if voters != len(nodes) || len(servers) != len(nodes) {
				return fmt.Errorf("%s: %d voters of %d servers", nd.ID(), voters, len(servers))
			}
			if _, lid := nd.raft.LeaderWithID(); string(lid) != leader.ID() {
				return fmt.Errorf("%s: leader %q, want %s", nd.ID(), lid, leader.ID())
			}
		}
		return nil
	})
	wantApplied(t, propose(t, leader, putVoucher(voucher, 5)), 1)
	waitFor(t, "the write on every node", func() error {
		for _, nd := range nodes {
			if _, err := held(nd, domain.ReadStale, voucher); err != nil {
				return fmt.Errorf("%s: %w", nd.ID(), err)
			}
		}
		return nil
	})
}

// TestFounderRestartedBeforeElection: a founder that stops before its
// cluster's first election still tells its founding set after a restart,
// so that nodes that lost their commitment meanwhile can commit to it.
func TestFounderRestartedBeforeElection(t *testing.T) {
	dir, port := t.TempDir(), freePort(t)
	n1, err := Start(foundingConfig(t, "n1", dir, port))
	if err != nil {
		t.Fatal(err)
	}
	set := []Hello{{ID: "n1", RaftAddr: n1.RaftAddr()}, {ID: "n2", RaftAddr: "localhost:1"}, {ID: "n3", RaftAddr: "localhost:2"}}
	if err := n1.commitFounding(idsOf(set), "test"); err != nil {
		t.Fatal(err)
	}
	if _, err := n1.foundWith(set, "test"); err != nil {
		t.Fatal(err)
	}
	if err := n1.Shutdown(); err != nil { // n2 and n3 never ran: no election was won
		t.Fatal(err)
	}
	n1, err = Start(foundingConfig(t, "n1", dir, port))
	if err != nil {
		t.Fatal(err)
	}
	defer n1.Shutdown()
	h := n1.Hello()
	if !h.HasState || h.LastIndex != 1 || !slices.Equal(h.Founding, []string{"n1", "n2", "n3"}) || h.ClusterID == "" {
		t.Fatalf("restarted founder's hello %+v", h)
	}
	step, got, why := decideFounding(foundingView{self: blank("n2"), peers: []Hello{h}, expect: 3})
	if step != stepCommit || !slices.Equal(idsOf(got), h.Founding) {
		t.Fatalf("a blank n2 does %d with %v (%s), want to commit to %v", step, idsOf(got), why, h.Founding)
	}
}
