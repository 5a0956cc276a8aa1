package server

import (
	"github.com/prometheus/client_golang/prometheus"

	"allot/storage"
)

// streamCollector reports where this node's copy of the change stream
// stands: the newest offset it serves and the oldest it keeps. Head behind
// the leader's is a follower catching up; earliest moving is retention.
type streamCollector struct{ log *storage.EventLog }

var (
	descEventsHead = prometheus.NewDesc("allot_events_head",
		"Offset of the newest event of the change stream this node serves (0 before the first).", nil, nil)
	descEventsEarliest = prometheus.NewDesc("allot_events_earliest",
		"Offset of the oldest event this node keeps (head+1 when it keeps none); older ones were pruned by --event-retention.", nil, nil)
)

func (c streamCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descEventsHead
	ch <- descEventsEarliest
}

func (c streamCollector) Collect(ch chan<- prometheus.Metric) {
	// Earliest first: read the other way round, a prune between the two
	// reads could show earliest > head+1.
	earliest := c.log.Earliest()
	ch <- prometheus.MustNewConstMetric(descEventsHead, prometheus.GaugeValue, float64(max(c.log.Head(), earliest-1)))
	ch <- prometheus.MustNewConstMetric(descEventsEarliest, prometheus.GaugeValue, float64(earliest))
}
