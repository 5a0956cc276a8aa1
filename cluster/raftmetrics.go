package cluster

import (
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	gometrics "github.com/hashicorp/go-metrics/compat"
	promsink "github.com/hashicorp/go-metrics/compat/prometheus"
	"github.com/prometheus/client_golang/prometheus"
)

// hashicorp/raft and raft-boltdb report their own metrics (commit time, log
// store latency, replication, snapshots) through the process-wide global of
// github.com/hashicorp/go-metrics/compat. Which library holds that global is
// chosen at build time: without the hashicorpmetrics build tag, compat
// forwards to github.com/armon/go-metrics. The bridge goes through compat as
// they do, so it always installs into the global they report to.
//
// That global is the one piece of process-wide state allot cannot avoid. It
// is installed once per process, on first use, with a fan-out sink; each
// node with a registry adds a Prometheus sink registered there and removes it
// at shutdown. Raft's calls carry no node identity, so when several nodes
// share a process (tests), each registry sees the Raft metrics of all of
// them; a deployed process runs one node. Installing the global replaces
// whatever sink an embedding program had given go-metrics.
var raftMetricsFanout = sync.OnceValue(func() *fanoutSink {
	f := &fanoutSink{}
	cfg := gometrics.DefaultConfig("")
	cfg.EnableHostname = false       // no host name in metric names ...
	cfg.EnableHostnameLabel = false  // ... nor as a label: Prometheus adds instance
	cfg.EnableRuntimeMetrics = false // the Go collector reports the runtime
	cfg.TimerGranularity = time.Second
	// New never fails; it would only leave raft's metrics unbridged.
	_, _ = gometrics.NewGlobal(cfg, f)
	return f
})

// raftBridge is one registry's connection to Raft's metrics.
type raftBridge struct {
	reg  prometheus.Registerer
	sink *promsink.PrometheusSink
}

// connectRaftMetrics registers a sink for Raft's metrics on reg. Their names
// are the libraries' own (raft_commitTime, raft_boltdb_storeLogs, ...), timers
// in seconds.
func connectRaftMetrics(reg prometheus.Registerer) (raftBridge, error) {
	sink, err := promsink.NewPrometheusSinkFrom(promsink.PrometheusOpts{
		Registerer: reg,
		Name:       "allot_raft_metrics_bridge", // identifies the collector; never exported
		// No expiration: a counter that vanished after a quiet minute would
		// come back from zero.
		Expiration: 0,
	})
	if err != nil {
		return raftBridge{}, fmt.Errorf("cluster: bridge raft metrics: %w", err)
	}
	raftMetricsFanout().add(sink)
	return raftBridge{reg: reg, sink: sink}, nil
}

// disconnect stops feeding the sink and unregisters it.
func (b raftBridge) disconnect() {
	if b.sink == nil {
		return
	}
	raftMetricsFanout().remove(b.sink)
	b.reg.Unregister(b.sink)
}

// fanoutSink passes every go-metrics call to the sinks currently connected.
// Raft calls it on its hot paths, so reading the list takes no lock: add and
// remove publish a new slice.
type fanoutSink struct {
	mu    sync.Mutex // serialises add and remove
	sinks atomic.Pointer[[]gometrics.MetricSink]
}

var _ gometrics.MetricSink = (*fanoutSink)(nil)

func (f *fanoutSink) load() []gometrics.MetricSink {
	if p := f.sinks.Load(); p != nil {
		return *p
	}
	return nil
}

func (f *fanoutSink) add(s gometrics.MetricSink) {
	f.mu.Lock()
	defer f.mu.Unlock()
	next := append(slices.Clone(f.load()), s)
	f.sinks.Store(&next)
}

func (f *fanoutSink) remove(s gometrics.MetricSink) {
	f.mu.Lock()
	defer f.mu.Unlock()
	next := slices.DeleteFunc(slices.Clone(f.load()), func(x gometrics.MetricSink) bool { return x == s })
	f.sinks.Store(&next)
}

func (f *fanoutSink) SetGauge(key []string, val float32) {
	for _, s := range f.load() {
		s.SetGauge(key, val)
	}
}

func (f *fanoutSink) SetGaugeWithLabels(key []string, val float32, labels []gometrics.Label) {
	for _, s := range f.load() {
		s.SetGaugeWithLabels(key, val, labels)
	}
}

func (f *fanoutSink) EmitKey(key []string, val float32) {
	for _, s := range f.load() {
		s.EmitKey(key, val)
	}
}

func (f *fanoutSink) IncrCounter(key []string, val float32) {
	for _, s := range f.load() {
		s.IncrCounter(key, val)
	}
}

func (f *fanoutSink) IncrCounterWithLabels(key []string, val float32, labels []gometrics.Label) {
	for _, s := range f.load() {
		s.IncrCounterWithLabels(key, val, labels)
	}
}

func (f *fanoutSink) AddSample(key []string, val float32) {
	for _, s := range f.load() {
		s.AddSample(key, val)
	}
}

func (f *fanoutSink) AddSampleWithLabels(key []string, val float32, labels []gometrics.Label) {
	for _, s := range f.load() {
		s.AddSampleWithLabels(key, val, labels)
	}
}
