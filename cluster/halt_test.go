package cluster

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"

	"allot/actors/domain"
)

// unknownEventEntry is a version-1 batch of one event of a type no binary
// knows: what a node meets when a newer leader proposes an event it cannot
// decode.
var unknownEventEntry = []byte{1, 1, 200, 0, 1, 'a', 0}

// wantHalted checks that n is halted for reason and refuses everything.
func wantHalted(t *testing.T, n *Node, reason string) {
	t.Helper()
	waitFor(t, n.ID()+" halted", func() error {
		if h := n.FSM().Halted(); h == nil || string(h.Reason) != reason {
			return fmt.Errorf("halt %+v, want reason %s", h, reason)
		}
		return nil
	})
	if err := n.Ready(); !errors.Is(err, domain.ErrUnavailable) {
		t.Fatalf("%s ready while halted: %v", n.ID(), err)
	}
	for _, c := range []domain.Consistency{domain.ReadStale, domain.ReadLeader, domain.ReadLinearizable} {
		if err := n.Read(context.Background(), c, func(*domain.State) error { return nil }); !errors.Is(err, domain.ErrUnavailable) {
			t.Fatalf("%s: read at consistency %d while halted: %v", n.ID(), c, err)
		}
	}
	if o := propose(t, n, putVoucher("v9", 1)); !errors.Is(o.err, domain.ErrUnavailable) {
		t.Fatalf("%s: propose while halted: %+v", n.ID(), o)
	}
	if err := n.Barrier(context.Background()); !errors.Is(err, domain.ErrUnavailable) {
		t.Fatalf("%s: barrier while halted: %v", n.ID(), err)
	}
	if err := n.VerifyLeader(context.Background()); !errors.Is(err, domain.ErrUnavailable) {
		t.Fatalf("%s: verify leader while halted: %v", n.ID(), err)
	}
	if n.IsLeader() || n.LeaseValid() {
		t.Fatalf("%s leads while halted", n.ID())
	}
	// It never leads again: Raft is stopped.
	waitFor(t, n.ID()+" raft stopped", func() error {
		if s := n.Status().State; s != "shutdown" {
			return fmt.Errorf("raft state %s", s)
		}
		return nil
	})
}

// TestDefect8UndecodableEntryHalts: an entry the FSM cannot decode (here an
// unknown event type) stops the FSM instead of being skipped: nothing from
// it on is applied, the state stays at the last good entry, the node
// refuses every request, stops Raft, and says so in a metric. A restart
// meets the same entry and halts again.
func TestDefect8UndecodableEntryHalts(t *testing.T) {
	dir := t.TempDir()
	var calls leadershipLog
	cfg := testConfig(t, dir, &calls)
	reg := prometheus.NewRegistry()
	cfg.Metrics = reg
	n := startNode(t, cfg)
	waitFor(t, "leader ready", n.Ready)
	wantApplied(t, propose(t, n, putVoucher("v1", 10), reserve("v1", "r1", "alice")), 2)
	before := n.StateHash()
	applied := n.FSM().AppliedIndex()

	f := n.Raft().Apply(unknownEventEntry, 0)
	if err := f.Error(); err != nil {
		t.Fatal(err)
	}
	if err, ok := f.Response().(error); !ok || !errors.Is(err, domain.ErrUnavailable) {
		t.Fatalf("response to the undecodable entry: %#v", f.Response())
	}
	wantHalted(t, n, "undecodable")
	waitFor(t, "the engine told leadership is over", func() error {
		if got := calls.get(); len(got) != 2 || got[1] {
			return fmt.Errorf("OnLeadership calls %v, want [true false]", got)
		}
		return nil
	})
	if h := n.FSM().Halted(); h.Index != f.Index() {
		t.Fatalf("halted at %d, want %d", h.Index, f.Index())
	}
	if n.StateHash() != before || n.FSM().AppliedIndex() != applied || n.FSM().Violations() != 0 {
		t.Fatalf("state changed %v, applied %d (want %d), violations %d",
			n.StateHash() != before, n.FSM().AppliedIndex(), applied, n.FSM().Violations())
	}
	fams := gather(t, reg)
	if v := value(sampleOf(fams, "allot_fsm_halted", "reason", "undecodable")); v != 1 {
		t.Fatalf("allot_fsm_halted{reason=undecodable} = %v", v)
	}
	if v := value(sampleOf(fams, "allot_fsm_halted", "reason", "term_mismatch")); v != 0 {
		t.Fatalf("allot_fsm_halted{reason=term_mismatch} = %v", v)
	}
	if err := n.Shutdown(); err != nil {
		t.Fatal(err)
	}

	cfg = testConfig(t, dir, nil)
	cfg.Bootstrap = false
	cfg.RaftAddr = n.RaftAddr()
	n = startNode(t, cfg)
	wantHalted(t, n, "undecodable")
	if n.StateHash() != before {
		t.Fatal("the restarted node's state differs from the last good entry")
	}
}

// command is a command entry of one batch.
func command(index, term uint64, b *domain.Batch) *raft.Log {
	return &raft.Log{Index: index, Term: term, Type: raft.LogCommand, Data: domain.EncodeBatch(nil, b)}
}

// TestDefect13TermMismatchHalts: an entry whose stamped term is not the
// term Raft stored it under (what hashicorp/raft #695 produces on a deposed
// leader) halts the FSM with its state as of the entry before; stamped
// entries that match, and unstamped (version 1) entries, apply.
func TestDefect13TermMismatchHalts(t *testing.T) {
	f := NewFSM(quietLogger())
	ev := func(evs ...domain.Event) []domain.Event { return evs }
	f.Apply(command(1, 3, &domain.Batch{Events: ev(putVoucher("v1", 10))})) // unstamped: any term
	f.Apply(command(2, 3, &domain.Batch{Term: 3, Events: ev(reserve("v1", "r1", "alice"))}))
	if f.Halted() != nil || f.AppliedIndex() != 2 || f.LogFormat() != domain.BatchV2 {
		t.Fatalf("halt %v, applied %d, log format %d", f.Halted(), f.AppliedIndex(), f.LogFormat())
	}
	before := hashOf(f)
	resp := f.Apply(command(3, 4, &domain.Batch{Term: 3, Events: ev(reserve("v1", "r2", "bob"))}))
	if err, ok := resp.(error); !ok || !errors.Is(err, domain.ErrUnavailable) {
		t.Fatalf("response %#v", resp)
	}
	if h := f.Halted(); h == nil || h.Reason != HaltTermMismatch || h.Index != 3 || h.Term != 4 {
		t.Fatalf("halt %+v, want term_mismatch at 3", h)
	}
	if hashOf(f) != before || f.AppliedIndex() != 2 {
		t.Fatal("the mismatched entry changed the state")
	}
	f.Apply(command(4, 4, &domain.Batch{Term: 4, Events: ev(reserve("v1", "r3", "carol"))}))
	if hashOf(f) != before || f.AppliedIndex() != 2 {
		t.Fatal("an entry after the halt was applied")
	}
}

// TestDefect13ProposeStampsTerm: a real node's proposals carry the term it
// leads in once the log format allows it, and an entry stamped with another
// term halts the node.
func TestDefect13ProposeStampsTerm(t *testing.T) {
	reg := prometheus.NewRegistry()
	cfg := testConfig(t, t.TempDir(), nil)
	cfg.Metrics = reg
	n := startNode(t, cfg)
	waitFor(t, "leader ready", n.Ready)
	waitFor(t, "newest log format", func() error {
		if f := n.FSM().LogFormat(); f != domain.BatchVersion {
			return fmt.Errorf("log format %d", f)
		}
		return nil
	})
	wantApplied(t, propose(t, n, putVoucher("v1", 10)), 1)
	wantApplied(t, propose(t, n, reserve("v1", "r1", "alice")), 1)
	stamped := 0
	for i := uint64(1); i <= n.Raft().LastIndex(); i++ {
		var l raft.Log
		if err := n.stores.LogStore().GetLog(i, &l); err != nil {
			t.Fatal(err)
		}
		if l.Type != raft.LogCommand {
			continue
		}
		b, err := domain.DecodeBatch(l.Data)
		if err != nil {
			t.Fatal(err)
		}
		if b.Term != 0 {
			stamped++
			if b.Term != l.Term {
				t.Fatalf("entry %d stamped %d, stored under term %d", i, b.Term, l.Term)
			}
		}
	}
	if stamped < 2 {
		t.Fatalf("%d stamped entries, want the 2 proposals at least", stamped)
	}
	before := n.StateHash()
	term := n.Raft().CurrentTerm()
	bad := domain.EncodeBatch(nil, &domain.Batch{Term: term + 1, Events: []domain.Event{reserve("v1", "r2", "bob")}})
	if err := n.Raft().Apply(bad, 0).Error(); err != nil {
		t.Fatal(err)
	}
	wantHalted(t, n, "term_mismatch")
	if n.StateHash() != before {
		t.Fatal("state changed")
	}
	if v := value(sampleOf(gather(t, reg), "allot_fsm_halted", "reason", "term_mismatch")); v != 1 {
		t.Fatalf("allot_fsm_halted{reason=term_mismatch} = %v", v)
	}
}

// commandVersions returns the batch version of every command entry of n's
// log after index from.
func commandVersions(t *testing.T, n *Node, from uint64) []byte {
	t.Helper()
	var vs []byte
	for i := from + 1; i <= n.Raft().LastIndex(); i++ {
		var l raft.Log
		if err := n.stores.LogStore().GetLog(i, &l); err != nil {
			t.Fatal(err)
		}
		if l.Type == raft.LogCommand {
			vs = append(vs, l.Data[0])
		}
	}
	return vs
}

// TestDefect13LogFormatGate: a cluster whose binaries all know only format
// 1 stays at 1; after a rolling upgrade the leader sees every server
// understand 2, commits the log-format event, and stamps from then on. A
// node that still runs an old binary and joins afterwards halts at that
// event (log_format); a follower that meets a newer batch than it knows,
// written past the gate, halts too (undecodable); the others go on.
func TestDefect13LogFormatGate(t *testing.T) {
	dirs := make([]string, 3)
	nodes := startCluster(t, 3, func(i int, c *Config) {
		dirs[i] = c.DataDir
		c.maxLogFormat = domain.BatchV1
		c.logFormatRetry = 50 * time.Millisecond
	})
	wantApplied(t, propose(t, nodes[0], putVoucher("v1", 10)), 1)
	for _, v := range commandVersions(t, nodes[0], 0) {
		if v != domain.BatchV1 {
			t.Fatalf("version %d written while every binary knows version 1 only", v)
		}
	}

	// Rolling upgrade: the followers first.
	upgrade := func(i int) {
		addr := nodes[i].RaftAddr()
		if err := nodes[i].Shutdown(); err != nil {
			t.Fatal(err)
		}
		cfg := testConfig(t, dirs[i], nil)
		cfg.NodeID, cfg.RaftAddr, cfg.Bootstrap = nodes[i].ID(), addr, false
		cfg.HTTPAddr = nodes[i].HTTPAddr()
		cfg.HeartbeatTimeout, cfg.ElectionTimeout, cfg.LeaderLeaseTimeout = 200*time.Millisecond, 200*time.Millisecond, 100*time.Millisecond
		cfg.logFormatRetry = 50 * time.Millisecond
		nodes[i] = startNode(t, cfg)
		waitFor(t, nodes[i].ID()+" ready after its upgrade", nodes[i].Ready)
	}
	upgrade(1)
	upgrade(2)
	// An upgraded node leads while n1 still runs the old binary: it asks,
	// n1 answers format 1, and the format stays.
	if l := leaderOf(t, nodes); l != nodes[1] {
		if err := l.Raft().LeadershipTransferToServer(raft.ServerID(nodes[1].ID()), raft.ServerAddress(nodes[1].RaftAddr())).Error(); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "n2 leads", ready(nodes[1]))
	waitFor(t, "n2 found n1 old, twice", func() error {
		if r := nodes[1].logFormatRefusals.Load(); r < 2 {
			return fmt.Errorf("%d refusals", r)
		}
		return nil
	})
	last := nodes[1].Raft().LastIndex()
	wantApplied(t, propose(t, nodes[1], reserve("v1", "r0", "zoe")), 1)
	for _, nd := range nodes {
		if f := nd.FSM().LogFormat(); f != domain.BatchV1 {
			t.Fatalf("%s: log format %d while n1 runs the old binary", nd.ID(), f)
		}
	}
	if vs := commandVersions(t, nodes[1], last); len(vs) != 1 || vs[0] != domain.BatchV1 {
		t.Fatalf("versions written before the gate opened: %v", vs)
	}

	upgrade(0)
	l := leaderOf(t, nodes)
	waitFor(t, "newest log format everywhere", func() error {
		for _, nd := range nodes {
			if f := nd.FSM().LogFormat(); f != domain.BatchVersion {
				return fmt.Errorf("%s: log format %d", nd.ID(), f)
			}
		}
		return nil
	})
	last = l.Raft().LastIndex()
	wantApplied(t, propose(t, l, reserve("v1", "r1", "alice")), 1)
	if vs := commandVersions(t, l, last); len(vs) != 1 || vs[0] != domain.BatchV2 {
		t.Fatalf("versions written after the gate opened: %v", vs)
	}

	// An old binary joins: it halts at the log-format event.
	cfg := testConfig(t, t.TempDir(), nil)
	cfg.NodeID, cfg.HTTPAddr, cfg.Bootstrap = "n4", "http://127.0.0.1:18090", false
	cfg.maxLogFormat = domain.BatchV1
	old := startNode(t, cfg)
	// It joins as a non-voter and is never promoted: it halts before it
	// catches up, so the join keeps answering "still catching up".
	if err := l.AddVoter(context.Background(), domain.Member{ID: "n4", RaftAddr: old.RaftAddr(), HTTPAddr: cfg.HTTPAddr}); err != nil && !errors.Is(err, domain.ErrUnavailable) {
		t.Fatal(err)
	}
	wantHalted(t, old, "log_format")
	wantApplied(t, propose(t, l, reserve("v1", "r2", "bob")), 1)
	for _, nd := range nodes {
		waitFor(t, nd.ID()+" has r2", func() error {
			return nd.Read(context.Background(), domain.ReadStale, func(st *domain.State) error {
				if _, ok := st.Reservation("r2"); !ok {
					return errors.New("no r2")
				}
				return nil
			})
		})
	}
}

// TestPruneEntryStopsAnOlderBinary: an entry carrying EvPrune is written as
// version 3; a binary that decodes only up to version 2 halts on it (it
// would otherwise keep reservations the others dropped) while this one
// applies it.
func TestPruneEntryStopsAnOlderBinary(t *testing.T) {
	b := &domain.Batch{Term: 3, Events: []domain.Event{putVoucher("v1", 10),
		{Type: domain.EvPrune, At: t0 + 1, PruneBefore: t0, PruneMax: domain.MaxPrunePerEvent}}}
	old := NewFSM(quietLogger())
	old.maxFormat = domain.BatchV2
	old.Apply(command(1, 3, b))
	if h := old.Halted(); h == nil || h.Reason != HaltUndecodable || old.AppliedIndex() != 0 {
		t.Fatalf("version-2 binary: halt %v, applied %d", h, old.AppliedIndex())
	}
	f := NewFSM(quietLogger())
	f.Apply(command(1, 3, b))
	if f.Halted() != nil || f.AppliedIndex() != 1 || f.Violations() != 0 {
		t.Fatalf("halt %v, applied %d, violations %d", f.Halted(), f.AppliedIndex(), f.Violations())
	}
}
