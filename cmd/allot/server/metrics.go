package server

import (
	"errors"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"allot/actors"
	"allot/actors/domain"
)

// newRegistry returns the node's own registry with the Go runtime, process
// and build-info collectors. The HTTP layer, the cluster and the engine add
// theirs; /metrics serves it.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		newBuildInfo(),
	)
	return reg
}

// newBuildInfo is allot_build_info, constant 1, labelled with what the binary
// was built from.
func newBuildInfo() prometheus.Collector {
	version, revision := "(devel)", "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" {
			version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && s.Value != "" {
				revision = s.Value
			}
		}
	}
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "allot_build_info",
		Help:        "Always 1; the labels say which build of allot is running.",
		ConstLabels: prometheus.Labels{"version": version, "revision": revision, "goversion": runtime.Version()},
	})
	g.Set(1)
	return g
}

// Outcomes of allot_reservations_total: accepted decisions are named after
// the status they lead to, rejections after their API error code, except
// that a confirm refused because the hold ran out is late_confirm, so that
// expired counts only expiries. The set is closed: anything else is other.
const (
	outHeld = iota
	outConfirmed
	outCancelled
	outExpired
	outCheckedIn
	outCompleted
	outUnchanged // a transition repeated after it happened: answered, nothing written
	outSoldOut
	outLimitExceeded
	outNotOpen
	outClosed
	outInvalidState
	outLateConfirm
	outInvalidArgument
	outOther
	numOutcomes
)

var outcomeNames = [numOutcomes]string{
	outHeld: "held", outConfirmed: "confirmed", outCancelled: "cancelled", outExpired: "expired",
	outCheckedIn: "checked_in", outCompleted: "completed", outUnchanged: "unchanged",
	outSoldOut: "sold_out", outLimitExceeded: "limit_exceeded", outNotOpen: "not_open", outClosed: "closed",
	outInvalidState: "invalid_state", outLateConfirm: "late_confirm", outInvalidArgument: "invalid_argument",
	outOther: "other",
}

// outcome names a decision (see Hooks.Decided). Rejections are tested in
// the order a flash crowd produces them, most frequent first.
func outcome(to domain.Status, err error) int {
	if err == nil {
		switch to {
		case 0:
			return outUnchanged
		case domain.StatusHeld:
			return outHeld
		case domain.StatusConfirmed:
			return outConfirmed
		case domain.StatusCancelled:
			return outCancelled
		case domain.StatusExpired:
			return outExpired
		case domain.StatusCheckedIn:
			return outCheckedIn
		case domain.StatusCompleted:
			return outCompleted
		}
		return outOther
	}
	switch {
	case errors.Is(err, domain.ErrSoldOut):
		return outSoldOut
	case errors.Is(err, domain.ErrLimitExceeded):
		return outLimitExceeded
	case errors.Is(err, domain.ErrNotOpen):
		return outNotOpen
	case errors.Is(err, domain.ErrClosed):
		return outClosed
	case errors.Is(err, domain.ErrExpired):
		return outLateConfirm
	case errors.Is(err, domain.ErrInvalidState), errors.Is(err, domain.ErrAlreadyExists):
		return outInvalidState
	case errors.Is(err, domain.ErrInvalidArgument):
		return outInvalidArgument
	}
	return outOther
}

// kinds are the values of the kind label, indexed by domain.Kind-1.
var kinds = [...]domain.Kind{domain.KindVoucher, domain.KindSlot, domain.KindRoom}

// Reasons of allot_proposer_failed_batches_total.
const (
	failUnavailable = iota // never proposed: leadership was changing
	failUnknown            // proposed, fate unknown
	failOther
	numFailReasons
)

var failReasonNames = [numFailReasons]string{
	failUnavailable: "unavailable", failUnknown: "outcome_unknown", failOther: "other",
}

// engineMetrics are the series the engine's hooks feed, every one resolved
// at start-up so that the write path does no label look-up.
type engineMetrics struct {
	decisions    [len(kinds)][numOutcomes]prometheus.Counter
	replays      prometheus.Counter
	expiryLag    prometheus.Observer
	activations  prometheus.Counter
	passivations prometheus.Counter
	mailbox      prometheus.Observer
	batchEvents  prometheus.Observer
	batchCommit  prometheus.Observer
	batchWait    prometheus.Observer
	batchFailed  [numFailReasons]prometheus.Counter
}

// latencyBuckets span a commit on a fast disk (100µs) to a request deadline.
var latencyBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

func newEngineMetrics(reg prometheus.Registerer) *engineMetrics {
	m := &engineMetrics{}
	decisions := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "allot_reservations_total",
		Help: "Decisions on reservations by resource kind and outcome: the status an accepted decision leads to, or why it was refused.",
	}, []string{"kind", "outcome"})
	for k, kind := range kinds {
		for o, name := range outcomeNames {
			m.decisions[k][o] = decisions.WithLabelValues(kind.String(), name)
		}
	}
	replays := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "allot_idempotent_replays_total",
		Help: "Requests answered from the stored response of their Idempotency-Key.",
	})
	expiryLag := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "allot_expiry_lag_seconds",
		Help: "How late holds were expired after their expires_at (larger right after a failover or restart).",
		// Timer precision to minutes: a node that was down while holds fell due.
		Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300},
	})
	activations := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "allot_actor_activations_total",
		Help: "Resource actors started on this node while it led.",
	})
	passivations := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "allot_actor_passivations_total",
		Help: "Resource actors stopped after idling (not those stopped because leadership ended).",
	})
	mailbox := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "allot_actor_mailbox_depth",
		Help:    "Requests already waiting in a resource actor's mailbox when another is sent to it, sampled one send in 16.",
		Buckets: []float64{0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096, 16384},
	})
	batchEvents := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "allot_proposer_batch_events",
		Help:    "Events per committed batch (one Raft entry): the group-commit factor.",
		Buckets: prometheus.ExponentialBuckets(1, 2, 11), // 1 to 1024, the default MaxBatch
	})
	batchCommit := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "allot_proposer_commit_duration_seconds",
		Help:    "Time from handing a batch to Raft to its being committed and applied on the leader.",
		Buckets: latencyBuckets,
	})
	batchWait := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "allot_proposer_decision_to_commit_seconds",
		Help:    "Time from the decision of a batch's oldest event to the batch's commit: queueing plus commit.",
		Buckets: latencyBuckets,
	})
	batchFailed := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "allot_proposer_failed_batches_total",
		Help: "Batches whose events were not committed (unavailable: never proposed) or whose outcome is unknown.",
	}, []string{"reason"})
	for i, r := range failReasonNames {
		m.batchFailed[i] = batchFailed.WithLabelValues(r)
	}
	reg.MustRegister(decisions, replays, expiryLag, activations, passivations, mailbox,
		batchEvents, batchCommit, batchWait, batchFailed)
	m.replays, m.expiryLag, m.activations, m.passivations = replays, expiryLag, activations, passivations
	m.mailbox, m.batchEvents, m.batchCommit, m.batchWait = mailbox, batchEvents, batchCommit, batchWait
	return m
}

// hooks connects the engine to the metrics.
func (m *engineMetrics) hooks() actors.Hooks {
	return actors.Hooks{
		Decided: func(kind domain.Kind, to domain.Status, err error) {
			if k := int(kind) - 1; k >= 0 && k < len(kinds) {
				m.decisions[k][outcome(to, err)].Inc()
			}
		},
		Committed: func(b actors.BatchStats) {
			switch {
			case b.Err == nil:
				m.batchEvents.Observe(float64(b.Events))
				m.batchCommit.Observe(b.Commit.Seconds())
				m.batchWait.Observe(b.Wait.Seconds())
			case errors.Is(b.Err, domain.ErrOutcomeUnknown):
				m.batchFailed[failUnknown].Inc()
			case errors.Is(b.Err, domain.ErrUnavailable), errors.Is(b.Err, domain.ErrNotLeader):
				m.batchFailed[failUnavailable].Inc()
			default:
				m.batchFailed[failOther].Inc()
			}
		},
		ExpiryLag:    func(lag time.Duration) { m.expiryLag.Observe(lag.Seconds()) },
		Replayed:     m.replays.Inc,
		Activated:    m.activations.Inc,
		Passivated:   m.passivations.Inc,
		MailboxDepth: func(depth int64) { m.mailbox.Observe(float64(depth)) },
	}
}

// engineCollector reports the engine's gauges at scrape time (Engine.Stats
// visits every live actor: fine per scrape, not per request).
type engineCollector struct{ engine *actors.Engine }

var (
	descActorsActive = prometheus.NewDesc("allot_actors_active",
		"Resource actors alive on this node (0 unless it leads).", nil, nil)
	descMailboxMax = prometheus.NewDesc("allot_actor_mailbox_depth_max",
		"Longest resource actor mailbox right now: requests sent and not yet received.", nil, nil)
	descQueued = prometheus.NewDesc("allot_proposer_queue_length",
		"Decided events waiting for the proposer to batch them.", nil, nil)
	descInflight = prometheus.NewDesc("allot_proposer_inflight_batches",
		"Batches handed to Raft and not yet applied.", nil, nil)
	descExpiryTimers = prometheus.NewDesc("allot_expiry_timers",
		"Expiry checks scheduled in the leader's timer heap (0 unless it leads).", nil, nil)
	descClockSteps = prometheus.NewDesc("allot_leader_clock_steps_ignored",
		"Times this term's leader time stopped following the wall clock, it being more than a second off its monotonic course (0 unless it leads).", nil, nil)
	descClockAhead = prometheus.NewDesc("allot_leader_clock_ahead_seconds",
		"Leader time minus this node's wall clock (0 unless it leads).", nil, nil)
)

func (c engineCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descActorsActive, descMailboxMax, descQueued, descInflight, descExpiryTimers, descClockSteps, descClockAhead} {
		ch <- d
	}
}

func (c engineCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.engine.Stats()
	ch <- prometheus.MustNewConstMetric(descActorsActive, prometheus.GaugeValue, float64(st.ActiveActors))
	ch <- prometheus.MustNewConstMetric(descMailboxMax, prometheus.GaugeValue, float64(st.MaxMailbox))
	ch <- prometheus.MustNewConstMetric(descQueued, prometheus.GaugeValue, float64(st.QueuedEvents))
	ch <- prometheus.MustNewConstMetric(descInflight, prometheus.GaugeValue, float64(st.InflightBatches))
	ch <- prometheus.MustNewConstMetric(descExpiryTimers, prometheus.GaugeValue, float64(st.ExpiryTimers))
	ch <- prometheus.MustNewConstMetric(descClockSteps, prometheus.GaugeValue, float64(st.ClockStepsIgnored))
	ch <- prometheus.MustNewConstMetric(descClockAhead, prometheus.GaugeValue, st.ClockAhead.Seconds())
}
