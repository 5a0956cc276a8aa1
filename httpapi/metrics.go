package httpapi

import (
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// unmatchedRoute is the route label of requests no route matched: the raw
// path never becomes a label.
const unmatchedRoute = "unmatched"

// httpMetrics are the HTTP layer's collectors on the server's registry.
type httpMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	inFlight prometheus.Gauge
}

func newHTTPMetrics(reg prometheus.Registerer) (*httpMetrics, error) {
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "allot_http_requests_total",
			Help: "HTTP requests answered, by route template, method and status code.",
		}, []string{"route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "allot_http_request_duration_seconds",
			Help: "Time from routing a request to its handler returning, by route template and method.",
			// From 100µs (a rejection decided in memory) to 10s (RequestTimeout).
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route", "method"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "allot_http_requests_in_flight",
			Help: "HTTP requests being handled now.",
		}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration, m.inFlight} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("httpapi: registering metrics: %w", err)
		}
	}
	return m, nil
}

// routeMetrics are one (route, method)'s series, resolved once at start-up
// (duration) or on a status code's first use (requests), so that serving a
// request does no label lookup.
type routeMetrics struct {
	route, method string
	requests      *prometheus.CounterVec
	duration      prometheus.Observer
	// byCode[class-1][code%100] caches the counter of status codes 1xx-5xx
	// with code%100 < 32, which covers every status this server sends.
	byCode [5][32]atomic.Pointer[counterRef]
}

type counterRef struct{ prometheus.Counter }

func (m *httpMetrics) route(route, method string) *routeMetrics {
	return &routeMetrics{
		route:    route,
		method:   method,
		requests: m.requests,
		duration: m.duration.WithLabelValues(route, method),
	}
}

// observe records one answered request.
func (rm *routeMetrics) observe(status int, d time.Duration) {
	rm.duration.Observe(d.Seconds())
	class, rest := status/100, status%100
	if class < 1 || class > 5 || rest >= 32 {
		rm.requests.WithLabelValues(rm.route, rm.method, strconv.Itoa(status)).Inc()
		return
	}
	slot := &rm.byCode[class-1][rest]
	ref := slot.Load()
	if ref == nil {
		// Racing first uses resolve the same child; either pointer is fine.
		ref = &counterRef{rm.requests.WithLabelValues(rm.route, rm.method, strconv.Itoa(status))}
		slot.Store(ref)
	}
	ref.Inc()
}
