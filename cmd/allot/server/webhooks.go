package server

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"

	"allot/actors"
	"allot/storage"
)

// eventSource adapts the node's event log to what webhook delivery reads.
type eventSource struct{ log *storage.EventLog }

func (s eventSource) Head() uint64 { return s.log.Head() }

func (s eventSource) Changed() <-chan struct{} { return s.log.Changed() }

func (s eventSource) ReadEvents(after uint64, fn func(actors.StreamEvent) bool) (uint64, error) {
	earliest, err := s.log.Read(after, func(r storage.EventRecord) bool {
		return fn(actors.StreamEvent{Offset: r.Offset, At: r.At(), Type: r.Type(), ResourceID: r.ResourceID(), JSON: r.JSON()})
	})
	var compacted *storage.CompactedError
	if errors.As(err, &compacted) {
		return compacted.Earliest, nil
	}
	return earliest, err
}

// webhookCollector reports webhook delivery on the leader, one series per
// webhook and metric: webhook ids are made by admins and bounded
// (domain.MaxWebhooks), so they may label series, unlike resource or user
// ids. A follower delivers nothing and reports nothing.
type webhookCollector struct{ engine *actors.Engine }

var (
	descWebhookLagEvents = prometheus.NewDesc("allot_webhook_lag_events",
		"Events after the webhook's committed cursor up to the newest committed event (filtered ones included: the cursor moves past them).",
		[]string{"webhook"}, nil)
	descWebhookLagSeconds = prometheus.NewDesc("allot_webhook_lag_seconds",
		"Age of the oldest event after the webhook's committed cursor; 0 when it has every event.", []string{"webhook"}, nil)
	descWebhookCursor = prometheus.NewDesc("allot_webhook_cursor",
		"The webhook's committed cursor: the offset of the last event acknowledged or skipped.", []string{"webhook"}, nil)
	descWebhookFailures = prometheus.NewDesc("allot_webhook_failures_total",
		"Webhook POSTs answered with anything but 2xx, or not answered in time, on this node.", []string{"webhook"}, nil)
	descWebhookDeliveries = prometheus.NewDesc("allot_webhook_deliveries_total",
		"Webhook batches acknowledged with a 2xx on this node.", []string{"webhook"}, nil)
	descWebhookSkipped = prometheus.NewDesc("allot_webhook_skipped_events_total",
		"Events --event-retention pruned before the webhook got them, skipped by this node's delivery.", []string{"webhook"}, nil)
)

func (c webhookCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descWebhookLagEvents, descWebhookLagSeconds, descWebhookCursor, descWebhookFailures, descWebhookDeliveries, descWebhookSkipped} {
		ch <- d
	}
}

func (c webhookCollector) Collect(ch chan<- prometheus.Metric) {
	for _, m := range c.engine.WebhookMetrics() {
		ch <- prometheus.MustNewConstMetric(descWebhookLagEvents, prometheus.GaugeValue, float64(m.LagEvents), m.ID)
		ch <- prometheus.MustNewConstMetric(descWebhookLagSeconds, prometheus.GaugeValue, m.LagSeconds, m.ID)
		ch <- prometheus.MustNewConstMetric(descWebhookCursor, prometheus.GaugeValue, float64(m.Cursor), m.ID)
		ch <- prometheus.MustNewConstMetric(descWebhookFailures, prometheus.CounterValue, float64(m.Failures), m.ID)
		ch <- prometheus.MustNewConstMetric(descWebhookDeliveries, prometheus.CounterValue, float64(m.Deliveries), m.ID)
		ch <- prometheus.MustNewConstMetric(descWebhookSkipped, prometheus.CounterValue, float64(m.Skipped), m.ID)
	}
}
