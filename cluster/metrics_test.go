package cluster

import (
	"errors"
	"fmt"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// gather returns reg's families by name.
func gather(t *testing.T, reg *prometheus.Registry) map[string]*dto.MetricFamily {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string]*dto.MetricFamily, len(fams))
	for _, f := range fams {
		out[f.GetName()] = f
	}
	return out
}

func counterOf(fams map[string]*dto.MetricFamily, name string) float64 {
	if f := fams[name]; f != nil && len(f.GetMetric()) > 0 {
		return f.GetMetric()[0].GetCounter().GetValue()
	}
	return -1
}

// sampleOf returns the series of family name whose labels include the
// given name/value pairs, nil if there is none.
func sampleOf(fams map[string]*dto.MetricFamily, name string, labels ...string) *dto.Metric {
next:
	for _, m := range fams[name].GetMetric() {
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for _, l := range m.GetLabel() {
				found = found || (l.GetName() == labels[i] && l.GetValue() == labels[i+1])
			}
			if !found {
				continue next
			}
		}
		return m
	}
	return nil
}

// value is a counter's or gauge's value, -1 if m is nil.
func value(m *dto.Metric) float64 {
	switch {
	case m == nil:
		return -1
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	}
	return m.GetGauge().GetValue()
}

func ready(n *Node) func() error {
	return func() error {
		if !n.IsLeader() {
			return errors.New("not the ready leader")
		}
		return nil
	}
}

// TestMetricsPerRegistry runs two nodes in one process, each with its own
// registry: both get their own collectors and hashicorp/raft's metrics
// through the process-wide bridge, and shutting a node down leaves nothing
// of it in its registry or the bridge. A restart from a snapshot counts a
// restore.
func TestMetricsPerRegistry(t *testing.T) {
	sinksBefore := len(raftMetricsFanout().load())
	var nodes [2]*Node
	var regs [2]*prometheus.Registry
	dirs := [2]string{t.TempDir(), t.TempDir()}
	for i := range nodes {
		regs[i] = prometheus.NewRegistry()
		cfg := testConfig(t, dirs[i], nil)
		cfg.NodeID, cfg.HTTPAddr = fmt.Sprintf("n%d", i+1), fmt.Sprintf("http://127.0.0.1:%d", 18081+i)
		cfg.Metrics = regs[i]
		nodes[i] = startNode(t, cfg)
		waitFor(t, "leader", ready(nodes[i]))
		wantApplied(t, propose(t, nodes[i], putVoucher("v", 1)), 1)
	}
	if got := len(raftMetricsFanout().load()); got != sinksBefore+2 {
		t.Fatalf("%d bridge sinks, want %d", got, sinksBefore+2)
	}
	for i, reg := range regs {
		fams := gather(t, reg)
		if v := counterOf(fams, "raft_apply"); v < 2 { // both nodes' applies: raft's calls name no node
			t.Errorf("node %d: raft_apply %v, want both nodes' applies", i+1, v)
		}
		if v := counterOf(fams, "allot_raft_leader_changes_total"); v != 1 {
			t.Errorf("node %d: leader changes %v, want 1", i+1, v)
		}
		if f := fams["allot_raft_fsm_apply_duration_seconds"]; f == nil || f.GetMetric()[0].GetHistogram().GetSampleCount() == 0 {
			t.Errorf("node %d: no FSM apply timed", i+1)
		}
	}

	// A snapshot, then a restart that restores it.
	if err := nodes[0].Raft().Snapshot().Error(); err != nil {
		t.Fatal(err)
	}
	fams := gather(t, regs[0])
	if f := fams["allot_raft_snapshots_total"]; f == nil {
		t.Fatal("no allot_raft_snapshots_total")
	}
	if err := nodes[0].Shutdown(); err != nil {
		t.Fatal(err)
	}
	if left := gather(t, regs[0]); len(left) != 0 {
		t.Errorf("after shutdown the registry still has %d families", len(left))
	}
	if got := len(raftMetricsFanout().load()); got != sinksBefore+1 {
		t.Fatalf("%d bridge sinks after one shutdown, want %d", got, sinksBefore+1)
	}

	cfg := testConfig(t, dirs[0], nil)
	cfg.Bootstrap = false
	cfg.HTTPAddr = "http://127.0.0.1:18081"
	cfg.Metrics = regs[0] // the same registry serves the restarted node
	nodes[0] = startNode(t, cfg)
	waitFor(t, "leader after restart", ready(nodes[0]))
	if v := counterOf(gather(t, regs[0]), "allot_raft_snapshot_restores_total"); v != 1 {
		t.Errorf("restores %v, want 1", v)
	}
	for _, n := range nodes {
		if err := n.Shutdown(); err != nil {
			t.Fatal(err)
		}
	}
	if got := len(raftMetricsFanout().load()); got != sinksBefore {
		t.Fatalf("%d bridge sinks after shutdown, want %d", got, sinksBefore)
	}
}
