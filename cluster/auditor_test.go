package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"

	"allot/actors/domain"
)

// TestAuditJudge: who halts, who counts, who does nothing.
func TestAuditJudge(t *testing.T) {
	// rep is a report with points at 8 and 16 whose digests are d8, d16.
	rep := func(id string, base, d8, d16 uint64) auditReport {
		return auditReport{Node: id, Base: base, Points: []AuditPoint{{8, 1, d8}, {16, 2, d16}}}
	}
	voters := func(ids ...string) map[string]bool {
		m := map[string]bool{}
		for _, id := range ids {
			m[id] = true
		}
		return m
	}
	for _, tc := range []struct {
		name    string
		mine    auditReport
		peers   []auditReport
		voters  map[string]bool
		odd     uint64 // index of the halt, 0 for none
		split   uint64 // index of a no-majority split, 0 for none
		differs map[string]int
	}{
		{name: "all agree", mine: rep("n1", 0, 1, 2), peers: []auditReport{rep("n2", 0, 1, 2), rep("n3", 0, 1, 2)},
			voters: voters("n1", "n2", "n3")},
		{name: "this node is the odd one", mine: rep("n3", 0, 1, 9), peers: []auditReport{rep("n1", 0, 1, 2), rep("n2", 0, 1, 2)},
			voters: voters("n1", "n2", "n3"), odd: 16, differs: map[string]int{"n1": 1, "n2": 1}},
		{name: "a peer is the odd one", mine: rep("n1", 0, 1, 2), peers: []auditReport{rep("n2", 0, 1, 2), rep("n3", 0, 7, 9)},
			voters: voters("n1", "n2", "n3"), differs: map[string]int{"n3": 2}},
		{name: "two voters disagree", mine: rep("n1", 0, 1, 2), peers: []auditReport{rep("n2", 0, 1, 9)},
			voters: voters("n1", "n2"), split: 16, differs: map[string]int{"n2": 1}},
		{name: "even split", mine: rep("n1", 0, 1, 2), peers: []auditReport{rep("n2", 0, 1, 2), rep("n3", 0, 1, 9), rep("n4", 0, 1, 9)},
			voters: voters("n1", "n2", "n3", "n4"), split: 16, differs: map[string]int{"n3": 1, "n4": 1}},
		{name: "an unreachable voter counts against a majority", mine: rep("n1", 0, 1, 2), peers: []auditReport{rep("n2", 0, 1, 9)},
			voters: voters("n1", "n2", "n3"), split: 16, differs: map[string]int{"n2": 1}},
		{name: "five voters, two against three", mine: rep("n1", 0, 5, 6), peers: []auditReport{rep("n2", 0, 5, 6), rep("n3", 0, 1, 2), rep("n4", 0, 1, 2), rep("n5", 0, 1, 2)},
			voters: voters("n1", "n2", "n3", "n4", "n5"), odd: 8, differs: map[string]int{"n3": 2, "n4": 2, "n5": 2}},
		{name: "a non-voter the voters disagree with", mine: rep("n4", 0, 1, 9), peers: []auditReport{rep("n1", 0, 1, 2), rep("n2", 0, 1, 2), rep("n3", 0, 1, 2)},
			voters: voters("n1", "n2", "n3"), odd: 16, differs: map[string]int{"n1": 1, "n2": 1, "n3": 1}},
		{name: "non-voters do not make a majority", mine: rep("n1", 0, 1, 2), peers: []auditReport{rep("n2", 0, 1, 9), rep("n3", 0, 1, 9), rep("n4", 0, 1, 9)},
			voters: voters("n1", "n2"), split: 16, differs: map[string]int{"n2": 1, "n3": 1, "n4": 1}},
		{name: "other chains are not compared", mine: rep("n1", 0, 1, 2), peers: []auditReport{rep("n2", 5, 7, 9), rep("n3", 5, 7, 9)},
			voters: voters("n1", "n2", "n3")},
		{name: "a chain of unknown start is never judged", mine: auditReport{Node: "n1", Base: noChain, Points: []AuditPoint{{8, 1, 1}}},
			peers: []auditReport{rep("n2", noChain, 7, 9), rep("n3", noChain, 7, 9)}, voters: voters("n1", "n2", "n3")},
		{name: "only shared indexes count", mine: auditReport{Node: "n1", Points: []AuditPoint{{16, 2, 2}, {24, 2, 3}}},
			peers: []auditReport{rep("n2", 0, 7, 2), rep("n3", 0, 7, 2)}, voters: voters("n1", "n2", "n3")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			peers := map[string]auditReport{}
			for _, p := range tc.peers {
				peers[p.Node] = p
			}
			v := judge(tc.mine.Node, tc.mine, peers, tc.voters)
			switch {
			case tc.odd == 0 && v.odd != nil:
				t.Fatalf("halts at %+v", v.odd.mine)
			case tc.odd != 0 && (v.odd == nil || v.odd.mine.Index != tc.odd):
				t.Fatalf("odd %+v, want a halt at %d", v.odd, tc.odd)
			case tc.split == 0 && v.split != nil:
				t.Fatalf("split at %+v", v.split.mine)
			case tc.split != 0 && (v.split == nil || v.split.mine.Index != tc.split):
				t.Fatalf("split %+v, want one at %d", v.split, tc.split)
			}
			if len(v.differs) != len(tc.differs) {
				t.Fatalf("differs %v, want %v", v.differs, tc.differs)
			}
			for id, n := range tc.differs {
				if len(v.differs[id]) != n {
					t.Fatalf("differs %v, want %v", v.differs, tc.differs)
				}
			}
			if v.odd != nil && (len(v.odd.agree)*2 <= len(tc.voters) || v.odd.majority == v.odd.mine.Digest) {
				t.Fatalf("odd %+v without a majority against it", v.odd)
			}
		})
	}
}

// auditTune makes audit points every 4 entries and rounds every 50ms.
func auditTune(c *Config) {
	c.AuditInterval = 4
	c.AuditPeriod = 50 * time.Millisecond
}

// alterCapacity makes a node apply the put of resource id with another
// capacity than the leader proposed: a different entry at the same index,
// still decodable. It reports how many entries it altered.
func alterCapacity(id string, n *atomic.Int32) func(*raft.Log) *raft.Log {
	return func(l *raft.Log) *raft.Log {
		b, err := domain.DecodeBatch(l.Data)
		if err != nil || len(b.Events) != 1 || b.Events[0].Type != domain.EvPutResource || b.Events[0].ResourceID != id {
			return nil
		}
		b.Events[0].Spec.Capacity++
		n.Add(1)
		return &raft.Log{Index: l.Index, Term: l.Term, Type: l.Type, Data: domain.EncodeBatch(nil, &b)}
	}
}

// capacityOf reads a resource's capacity from n's committed state.
func capacityOf(n *Node, id string) int64 {
	var c int64 = -1
	n.View(func(st *domain.State) {
		if r, ok := st.Resource(id); ok {
			c = r.Spec.Capacity
		}
	})
	return c
}

// writeEntries proposes n single-event entries on the leader.
func writeEntries(t *testing.T, l *Node, prefix string, n int) {
	t.Helper()
	for i := range n {
		wantApplied(t, propose(t, l, putVoucher(fmt.Sprintf("%s%d", prefix, i), 1)), 1)
	}
}

// peerOf is what n's audit knows of peer id.
func peerOf(n *Node, id string) AuditPeer {
	for _, p := range n.Audit().Peers {
		if p.ID == id {
			return p
		}
	}
	return AuditPeer{}
}

// TestDefect13AuditHaltsOddNode: a follower that applied a different entry
// at one index than the other two (here a put with another capacity, as a
// log that diverged without the term check noticing would leave) is found
// by the audit and halts, loudly, while the other two keep serving and
// count the mismatch; a restart halts it again at once. Without the auditor
// the follower serves its wrong state for good.
func TestDefect13AuditHaltsOddNode(t *testing.T) {
	var altered atomic.Int32
	regs := make([]*prometheus.Registry, 3)
	nodes := startCluster(t, 3, func(i int, c *Config) {
		auditTune(c)
		regs[i] = prometheus.NewRegistry()
		c.Metrics = regs[i]
		if i == 2 {
			c.alterEntry = alterCapacity("odd", &altered)
		}
	})
	l, odd := nodes[0], nodes[2]
	wantApplied(t, propose(t, l, putVoucher("odd", 10)), 1)
	writeEntries(t, l, "after", 8) // past two audit points
	waitFor(t, "the odd node applied the altered entry", func() error {
		if altered.Load() != 1 || capacityOf(odd, "odd") != 11 {
			return fmt.Errorf("altered %d, capacity there %d", altered.Load(), capacityOf(odd, "odd"))
		}
		return nil
	})
	if capacityOf(l, "odd") != 10 || capacityOf(nodes[1], "odd") != 10 {
		t.Fatal("the alteration reached the other nodes")
	}

	wantHalted(t, odd, string(HaltDiverged))
	h := odd.FSM().Halted()
	if h.Index == 0 || h.Err == nil {
		t.Fatalf("halt %+v", h)
	}
	if v := value(sampleOf(gather(t, regs[2]), "allot_fsm_halted", "reason", "diverged")); v != 1 {
		t.Fatalf("allot_fsm_halted{reason=diverged} = %v on the odd node", v)
	}
	for _, n := range nodes[:2] {
		if n.FSM().Halted() != nil {
			t.Fatalf("%s halted: %v", n.ID(), n.FSM().Halted())
		}
		// Whether it counted a mismatch first or found the odd node
		// already stopped depends on whose round came first.
		waitFor(t, n.ID()+" sees the odd node", func() error {
			if p := peerOf(n, "n3"); p.Mismatches == 0 && p.Error == "" {
				return fmt.Errorf("%s's audit of n3: %+v", n.ID(), p)
			}
			return nil
		})
		other := map[string]string{"n1": "n2", "n2": "n1"}[n.ID()]
		waitFor(t, n.ID()+" compares with "+other, func() error {
			if p := peerOf(n, other); p.Compared == 0 {
				return fmt.Errorf("%s's audit of %s: %+v", n.ID(), other, p)
			}
			return nil
		})
		if p := peerOf(n, other); p.Mismatches != 0 {
			t.Fatalf("%s's audit of the healthy peer: %+v", n.ID(), p)
		}
	}
	// The two keep serving: a quorum without the odd node.
	l = leaderOf(t, nodes[:2])
	wantApplied(t, propose(t, l, putVoucher("still", 1)), 1)
	if hi := value(sampleOf(gather(t, regs[0]), "allot_audit_index")); hi < float64(h.Index) {
		t.Fatalf("allot_audit_index = %v on n1, below the audit point %d", hi, h.Index)
	}

	// A restart does not bring it back: the halt is in its data dir.
	if err := odd.Shutdown(); err != nil {
		t.Fatal(err)
	}
	again := restart(t, odd, func(c *Config) { c.alterEntry, c.Metrics = nil, nil })
	wantHalted(t, again, string(HaltDiverged))
	if got := again.FSM().Halted(); got.Index != h.Index || got.Term != h.Term {
		t.Fatalf("after the restart: halt %+v, want the one at %d", got, h.Index)
	}

	// The repair of the runbook: remove it, wipe it, rejoin it. It takes
	// the majority's state and digest and is audited like the others.
	if err := l.RemoveServer(context.Background(), "n3"); err != nil {
		t.Fatal(err)
	}
	if err := again.Shutdown(); err != nil {
		t.Fatal(err)
	}
	wipe(t, again)
	fresh := restart(t, again, nil)
	m := domain.Member{ID: "n3", RaftAddr: fresh.RaftAddr(), HTTPAddr: fresh.HTTPAddr()}
	if err := l.AddVoter(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the rejoined node ready", fresh.Ready)
	if capacityOf(fresh, "odd") != 10 {
		t.Fatalf("the rejoined node's capacity %d", capacityOf(fresh, "odd"))
	}
	writeEntries(t, l, "repaired", 8)
	waitFor(t, "the others compare with the rejoined node", func() error {
		for _, n := range nodes[:2] {
			if p := peerOf(n, "n3"); p.Compared <= h.Index+4 || p.Error != "" {
				return fmt.Errorf("%s's audit of n3: %+v", n.ID(), p)
			}
		}
		return nil
	})
	if fresh.FSM().Halted() != nil {
		t.Fatalf("the rejoined node halted: %v", fresh.FSM().Halted())
	}
}

// TestDefect13AuditHealthyClusterNeverHalts: under concurrent writes, with
// snapshots, a follower restarted on a log truncated by its own snapshot,
// and a new node that catches up by installing the leader's snapshot, every
// node keeps comparing with every other and no one disagrees.
func TestDefect13AuditHealthyClusterNeverHalts(t *testing.T) {
	nodes := startCluster(t, 3, func(_ int, c *Config) { auditTune(c) })
	l := nodes[0]
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var writes atomic.Int64
	for w := range 2 {
		wg.Go(func() {
			for i := 0; ; i++ {
				done := make(chan error, 1)
				l.Propose(&domain.Batch{Events: []domain.Event{putVoucher(fmt.Sprintf("w%d-%d", w, i), 1)}},
					func(_ []error, err error) { done <- err })
				select {
				case err := <-done:
					if err == nil {
						writes.Add(1)
					}
				case <-stop:
					return
				}
			}
		})
	}
	var stopOnce sync.Once
	stopWriters := func() { stopOnce.Do(func() { close(stop); wg.Wait() }) }
	defer stopWriters()
	waitWrites := func(n int64) {
		t.Helper()
		target := writes.Load() + n
		waitFor(t, "writes go on", func() error {
			if writes.Load() < target {
				return fmt.Errorf("%d writes", writes.Load())
			}
			return nil
		})
	}
	waitWrites(30)

	// A follower snapshots (its log is cut to TrailingLogs=1), stops and
	// starts again from the snapshot.
	f := nodes[2]
	if err := f.Raft().Snapshot().Error(); err != nil {
		t.Fatal(err)
	}
	if err := f.Shutdown(); err != nil {
		t.Fatal(err)
	}
	waitWrites(20)
	nodes[2] = restart(t, f, nil)
	waitFor(t, "the restarted follower ready", nodes[2].Ready)
	if nodes[2].FSM().Restores() == 0 {
		t.Fatal("the restarted follower did not restore its snapshot")
	}

	// The leader snapshots and truncates its log: a new node must install
	// the snapshot.
	waitWrites(20)
	if err := l.Raft().Snapshot().Error(); err != nil {
		t.Fatal(err)
	}
	waitWrites(10)
	cfg := testConfig(t, t.TempDir(), nil)
	cfg.NodeID, cfg.HTTPAddr, cfg.Bootstrap = "n4", "http://127.0.0.1:18084", false
	cfg.HeartbeatTimeout, cfg.ElectionTimeout, cfg.LeaderLeaseTimeout = 200*time.Millisecond, 200*time.Millisecond, 100*time.Millisecond
	auditTune(&cfg)
	n4 := startNode(t, cfg)
	if err := l.AddVoter(context.Background(), domain.Member{ID: "n4", RaftAddr: n4.RaftAddr(), HTTPAddr: cfg.HTTPAddr}); err != nil {
		t.Fatal(err)
	}
	nodes = append(nodes, n4)
	waitFor(t, "n4 ready", n4.Ready)
	if n4.FSM().Restores() == 0 {
		t.Fatal("n4 caught up without installing a snapshot")
	}

	// Every node compares with every other past all of that.
	waitWrites(20)
	mark := l.FSM().AppliedIndex()
	waitFor(t, "every node compared with every other", func() error {
		for _, n := range nodes {
			for _, p := range nodes {
				if p == n {
					continue
				}
				if got := peerOf(n, p.ID()); got.Compared < mark {
					return fmt.Errorf("%s compared with %s up to %d of %d (%+v)", n.ID(), p.ID(), got.Compared, mark, got)
				}
			}
		}
		return nil
	})
	stopWriters()
	l = converged(t, nodes)
	for _, n := range nodes {
		if h := n.FSM().Halted(); h != nil {
			t.Fatalf("%s halted: %v", n.ID(), h)
		}
		for _, p := range n.Audit().Peers {
			if p.Mismatches != 0 {
				t.Fatalf("%s counts %d mismatches with %s", n.ID(), p.Mismatches, p.ID)
			}
		}
		if n.FSM().LogDigest() != l.FSM().LogDigest() {
			t.Fatalf("%s's digest %+v, the leader's %+v", n.ID(), n.FSM().LogDigest(), l.FSM().LogDigest())
		}
	}
}

// TestDefect13AuditTwoNodesHaltNobody: of two voters that disagree,
// neither is a majority: both count the mismatch, nobody halts.
func TestDefect13AuditTwoNodesHaltNobody(t *testing.T) {
	var altered atomic.Int32
	regs := make([]*prometheus.Registry, 2)
	nodes := startCluster(t, 2, func(i int, c *Config) {
		auditTune(c)
		regs[i] = prometheus.NewRegistry()
		c.Metrics = regs[i]
		if i == 1 {
			c.alterEntry = alterCapacity("odd", &altered)
		}
	})
	l := nodes[0]
	wantApplied(t, propose(t, l, putVoucher("odd", 10)), 1)
	writeEntries(t, l, "after", 8)
	waitFor(t, "both nodes count the mismatch", func() error {
		for i, n := range nodes {
			if p := peerOf(n, nodes[1-i].ID()); p.Mismatches == 0 {
				return fmt.Errorf("%s: %+v", n.ID(), p)
			}
		}
		return nil
	})
	// A few more rounds on each node change nothing.
	rounds := func(n *Node) time.Time { return n.Audit().LastRound }
	for range 3 {
		before := []time.Time{rounds(nodes[0]), rounds(nodes[1])}
		waitFor(t, "another audit round", func() error {
			for i, n := range nodes {
				if !rounds(n).After(before[i]) {
					return errors.New("not yet")
				}
			}
			return nil
		})
	}
	for i, n := range nodes {
		if h := n.FSM().Halted(); h != nil {
			t.Fatalf("%s halted without a majority against it: %v", n.ID(), h)
		}
		fams := gather(t, regs[i])
		peer := nodes[1-i].ID()
		if v := value(sampleOf(fams, "allot_audit_mismatches_total", "peer", peer)); v == 0 {
			t.Fatalf("%s: allot_audit_mismatches_total{peer=%s} = %v", n.ID(), peer, v)
		}
		if v := value(sampleOf(fams, "allot_audit_peers_checked")); v != 1 {
			t.Fatalf("%s: allot_audit_peers_checked = %v", n.ID(), v)
		}
		if v := value(sampleOf(fams, "allot_fsm_halted", "reason", "diverged")); v != 0 {
			t.Fatalf("%s: allot_fsm_halted{reason=diverged} = %v", n.ID(), v)
		}
	}
	wantApplied(t, propose(t, l, putVoucher("still", 1)), 1)
	if altered.Load() != 1 {
		t.Fatalf("altered %d entries", altered.Load())
	}
}

// TestAuditHello: a node's Raft port answers the audit hello with what its
// audit holds, next to Raft's traffic and the log-format hello; a binary
// without the audit drops the question, and the asker learns nothing.
func TestAuditHello(t *testing.T) {
	cfg := testConfig(t, t.TempDir(), nil)
	auditTune(&cfg)
	n := startNode(t, cfg)
	waitFor(t, "leader ready", n.Ready)
	writeEntries(t, n, "v", 10)
	r, err := askAudit(n.stream, raft.ServerAddress(n.RaftAddr()), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	base, points := n.FSM().AuditPoints()
	if r.Node != "n1" || r.Base != base || r.Applied == 0 || len(r.Points) == 0 || len(r.Points) != len(points) || r.Points[0] != points[0] {
		t.Fatalf("report %+v, the FSM holds base %d, %+v", r, base, points)
	}
	if got, err := askLogFormat(n.stream, raft.ServerAddress(n.RaftAddr()), domain.BatchVersion, time.Second); err != nil || got != domain.BatchVersion {
		t.Fatalf("log-format hello: %d, %v", got, err)
	}

	// An older binary: the log-format hello only.
	tcp, err := listenTCP("127.0.0.1:0", "")
	if err != nil {
		t.Fatal(err)
	}
	// It holds the same cluster key: the handshake is older than neither.
	oldStream := &helloStream{StreamLayer: newAuthStream(tcp, n.handshake, nil, nil), maxFormat: domain.BatchV1, timeout: time.Second}
	old := raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{Stream: oldStream, MaxPool: 1, Timeout: time.Second, Logger: newSlogHCLog(quietLogger(), "raft", 0)})
	defer old.Close()
	if _, err := askAudit(n.stream, old.LocalAddr(), time.Second); err == nil {
		t.Fatal("a binary without the audit answered it")
	}
	if got, err := askLogFormat(n.stream, old.LocalAddr(), domain.BatchVersion, time.Second); err != nil || got != domain.BatchV1 {
		t.Fatalf("the older binary's log-format hello: %d, %v", got, err)
	}
}
