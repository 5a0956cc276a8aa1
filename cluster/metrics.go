package cluster

import (
	"io"
	"strings"
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
)

// Health is a node's Raft progress and readiness, cheap to take (no Raft
// round trip): what metrics and GET /v1/cluster report.
type Health struct {
	// State is leader, follower, candidate or shutdown.
	State string
	Term  uint64
	// LastLogIndex is the last entry in this node's log (or snapshot),
	// committed or not.
	LastLogIndex uint64
	// CommitIndex is the latest entry this node knows to be committed.
	CommitIndex uint64
	// AppliedIndex is the last entry Raft handed to the FSM; it runs at
	// most a few batches behind CommitIndex on a healthy node.
	AppliedIndex uint64
	// LastContact is how long ago this node last heard from a leader: 0 on
	// the leader, -1 if it never has.
	LastContact time.Duration
	// Voters is the number of voters in the latest configuration.
	Voters int
	// NotReady is nil when the node is ready (see Ready), else why not.
	NotReady error
	// Violations counts committed events the rules refused (see FSM).
	Violations uint64
	// Halt is why the FSM stopped applying entries, nil while it applies
	// them (see halt.go).
	Halt *Halt
	// LogFormat is the log format the committed log lets a leader write.
	LogFormat uint8
}

// Health reports this node's Raft progress and readiness.
func (n *Node) Health() Health {
	state := n.raftState()
	h := Health{
		State:        strings.ToLower(state.String()),
		Term:         n.raft.CurrentTerm(),
		LastLogIndex: n.raft.LastIndex(),
		CommitIndex:  n.raft.CommitIndex(),
		AppliedIndex: n.raft.AppliedIndex(),
		LastContact:  -1,
		NotReady:     n.Ready(),
		Violations:   n.fsm.Violations(),
		Halt:         n.fsm.Halted(),
		LogFormat:    n.fsm.LogFormat(),
	}
	if state == raft.Leader {
		h.LastContact = 0
	} else if last := n.raft.LastContact(); !last.IsZero() {
		h.LastContact = time.Since(last)
	}
	// hashicorp/raft answers GetConfiguration from memory, without its
	// main loop.
	if f := n.raft.GetConfiguration(); f.Error() == nil {
		for _, s := range f.Configuration().Servers {
			if s.Suffrage == raft.Voter {
				h.Voters++
			}
		}
	}
	return h
}

// raftStates are the values of allot_raft_state's state label.
var raftStates = [...]string{"leader", "follower", "candidate", "shutdown"}

// nodeMetrics are a node's Prometheus collectors: gauges read from Raft at
// scrape time, and counters and histograms fed by the FSM wrapper and a Raft
// observer. A nil *nodeMetrics (no registry configured) does nothing.
type nodeMetrics struct {
	reg prometheus.Registerer

	applyDuration    prometheus.Histogram
	snapshotDuration prometheus.Histogram
	snapshotsOK      prometheus.Counter
	snapshotsFailed  prometheus.Counter
	restores         prometheus.Counter
	leaderChanges    prometheus.Counter
	snapshots        *prometheus.CounterVec

	registered []prometheus.Collector // to unregister at shutdown
	observer   *raft.Observer
	bridge     raftBridge
}

// newNodeMetrics creates (but does not register) the collectors the FSM
// wrapper needs before Raft starts; nil when reg is nil.
func newNodeMetrics(reg prometheus.Registerer) *nodeMetrics {
	if reg == nil {
		return nil
	}
	m := &nodeMetrics{
		reg: reg,
		applyDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "allot_raft_fsm_apply_duration_seconds",
			Help: "Time the FSM took to apply one group of committed entries handed over by Raft.",
			// From a single small entry to a large batch on a slow machine.
			Buckets: []float64{.00001, .000025, .00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25},
		}),
		snapshotDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "allot_raft_snapshot_duration_seconds",
			Help: "Time to take one snapshot: freezing a view of the committed state and persisting it.",
			// From an empty state to a few GB.
			Buckets: prometheus.ExponentialBuckets(.001, 4, 10),
		}),
		restores: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "allot_raft_snapshot_restores_total",
			Help: "Snapshots restored into the FSM (at start and when a leader sends one).",
		}),
		leaderChanges: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "allot_raft_leader_changes_total",
			Help: "Times this node learned of a new leader (itself included).",
		}),
		snapshots: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "allot_raft_snapshots_total",
			Help: "Snapshots taken by this node, by result (success, failure).",
		}, []string{"result"}),
	}
	m.snapshotsOK = m.snapshots.WithLabelValues("success")
	m.snapshotsFailed = m.snapshots.WithLabelValues("failure")
	return m
}

// fsm returns what Raft should drive: f itself, or f timed by m.
func (m *nodeMetrics) fsm(f *FSM) raft.FSM {
	if m == nil {
		return f
	}
	return &instrumentedFSM{FSM: f, m: m}
}

// register publishes n's metrics on the registry, watches leader changes and
// connects hashicorp/raft's own metrics (see raftmetrics.go). On error
// nothing stays registered.
func (m *nodeMetrics) register(n *Node) error {
	if m == nil {
		return nil
	}
	for _, c := range []prometheus.Collector{
		&nodeCollector{n: n}, &auditCollector{n: n}, n.handshake.failures, m.applyDuration, m.snapshotDuration, m.snapshots, m.restores, m.leaderChanges,
	} {
		if err := m.reg.Register(c); err != nil {
			m.unregisterCollectors()
			return err
		}
		m.registered = append(m.registered, c)
	}
	bridge, err := connectRaftMetrics(m.reg)
	if err != nil {
		m.unregisterCollectors()
		return err
	}
	m.bridge = bridge
	// The filter runs on Raft's goroutine and delivers nothing (nil
	// channel): it only counts, so no goroutine has to drain observations.
	m.observer = raft.NewObserver(nil, false, func(o *raft.Observation) bool {
		if lo, ok := o.Data.(raft.LeaderObservation); ok && lo.LeaderID != "" {
			m.leaderChanges.Inc()
		}
		return false
	})
	n.raft.RegisterObserver(m.observer)
	return nil
}

// unregister undoes register once Raft has stopped, so that the registry
// could host a restarted node and the raft bridge stops feeding it.
func (m *nodeMetrics) unregister(n *Node) {
	if m == nil || m.observer == nil {
		return
	}
	n.raft.DeregisterObserver(m.observer)
	m.bridge.disconnect()
	m.unregisterCollectors()
}

func (m *nodeMetrics) unregisterCollectors() {
	for _, c := range m.registered {
		m.reg.Unregister(c)
	}
	m.registered = nil
}

// instrumentedFSM times what Raft asks of the FSM. It is a BatchingFSM and
// a ConfigurationStore like the FSM it wraps (Raft finds both by type
// assertion; StoreConfiguration is the embedded FSM's, untimed).
type instrumentedFSM struct {
	*FSM
	m *nodeMetrics
}

var (
	_ raft.BatchingFSM        = (*instrumentedFSM)(nil)
	_ raft.ConfigurationStore = (*instrumentedFSM)(nil)
)

func (f *instrumentedFSM) Apply(l *raft.Log) any {
	return f.ApplyBatch([]*raft.Log{l})[0]
}

func (f *instrumentedFSM) ApplyBatch(logs []*raft.Log) []any {
	start := time.Now()
	resp := f.FSM.ApplyBatch(logs)
	f.m.applyDuration.Observe(time.Since(start).Seconds())
	return resp
}

func (f *instrumentedFSM) Snapshot() (raft.FSMSnapshot, error) {
	start := time.Now()
	s, err := f.FSM.Snapshot()
	if err != nil {
		f.m.snapshotsFailed.Inc()
		return nil, err
	}
	return &timedSnapshot{FSMSnapshot: s, start: start, m: f.m}, nil
}

func (f *instrumentedFSM) Restore(rc io.ReadCloser) error {
	err := f.FSM.Restore(rc)
	if err == nil {
		f.m.restores.Inc()
	}
	return err
}

// timedSnapshot records a snapshot's outcome and duration once persisted.
type timedSnapshot struct {
	raft.FSMSnapshot
	start time.Time
	m     *nodeMetrics
}

func (s *timedSnapshot) Persist(sink raft.SnapshotSink) error {
	err := s.FSMSnapshot.Persist(sink)
	if err != nil {
		s.m.snapshotsFailed.Inc()
		return err
	}
	s.m.snapshotsOK.Inc()
	s.m.snapshotDuration.Observe(time.Since(s.start).Seconds())
	return nil
}

// nodeCollector reports a node's Health at scrape time.
type nodeCollector struct{ n *Node }

var (
	descRaftState = prometheus.NewDesc("allot_raft_state",
		"1 for this node's Raft state (leader, follower, candidate, shutdown), 0 for the others.", []string{"state"}, nil)
	descRaftTerm = prometheus.NewDesc("allot_raft_term",
		"This node's current Raft term.", nil, nil)
	descRaftLastLogIndex = prometheus.NewDesc("allot_raft_last_log_index",
		"Index of the last entry in this node's log, committed or not.", nil, nil)
	descRaftCommitIndex = prometheus.NewDesc("allot_raft_commit_index",
		"Index of the latest entry this node knows to be committed.", nil, nil)
	descRaftAppliedIndex = prometheus.NewDesc("allot_raft_applied_index",
		"Index of the last entry Raft handed to the FSM on this node.", nil, nil)
	descRaftLastContact = prometheus.NewDesc("allot_raft_last_contact_seconds",
		"Time since this node last heard from a leader (0 on the leader; absent if it never has).", nil, nil)
	descRaftVoters = prometheus.NewDesc("allot_raft_voters",
		"Voters in the latest Raft configuration this node knows.", nil, nil)
	descReady = prometheus.NewDesc("allot_ready",
		"1 when this node is ready to serve (what /readyz answers 200 for), else 0.", nil, nil)
	descViolations = prometheus.NewDesc("allot_invariant_violations_total",
		"Committed events the rules refused when applying them: a bug, must stay 0.", nil, nil)
	descFSMHalted = prometheus.NewDesc("allot_fsm_halted",
		"1 for the reason (undecodable, log_format, term_mismatch, diverged) this node's FSM halted for, 0 for the others: "+
			"it applies nothing more, Raft is stopped and every request is refused.", []string{"reason"}, nil)
	descLogFormat = prometheus.NewDesc("allot_log_format",
		"The log format (batch version) the committed log lets a leader write.", nil, nil)
)

func (c *nodeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descRaftState, descRaftTerm, descRaftLastLogIndex, descRaftCommitIndex,
		descRaftAppliedIndex, descRaftLastContact, descRaftVoters, descReady, descViolations, descFSMHalted, descLogFormat} {
		ch <- d
	}
}

func (c *nodeCollector) Collect(ch chan<- prometheus.Metric) {
	h := c.n.Health()
	for _, s := range raftStates {
		ch <- prometheus.MustNewConstMetric(descRaftState, prometheus.GaugeValue, boolFloat(h.State == s), s)
	}
	ch <- prometheus.MustNewConstMetric(descRaftTerm, prometheus.GaugeValue, float64(h.Term))
	ch <- prometheus.MustNewConstMetric(descRaftLastLogIndex, prometheus.GaugeValue, float64(h.LastLogIndex))
	ch <- prometheus.MustNewConstMetric(descRaftCommitIndex, prometheus.GaugeValue, float64(h.CommitIndex))
	ch <- prometheus.MustNewConstMetric(descRaftAppliedIndex, prometheus.GaugeValue, float64(h.AppliedIndex))
	if h.LastContact >= 0 {
		ch <- prometheus.MustNewConstMetric(descRaftLastContact, prometheus.GaugeValue, h.LastContact.Seconds())
	}
	ch <- prometheus.MustNewConstMetric(descRaftVoters, prometheus.GaugeValue, float64(h.Voters))
	ch <- prometheus.MustNewConstMetric(descReady, prometheus.GaugeValue, boolFloat(h.NotReady == nil))
	ch <- prometheus.MustNewConstMetric(descViolations, prometheus.CounterValue, float64(h.Violations))
	ch <- prometheus.MustNewConstMetric(descLogFormat, prometheus.GaugeValue, float64(h.LogFormat))
	for _, r := range haltReasons {
		ch <- prometheus.MustNewConstMetric(descFSMHalted, prometheus.GaugeValue, boolFloat(h.Halt != nil && h.Halt.Reason == r), string(r))
	}
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
