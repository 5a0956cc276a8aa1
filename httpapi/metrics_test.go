package httpapi

import (
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// family returns the metric family name from reg, failing if it is absent.
func family(t *testing.T, reg *prometheus.Registry, name string) *dto.MetricFamily {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf
		}
	}
	t.Fatalf("no metric %s", name)
	return nil
}

func labels(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, lp := range m.GetLabel() {
		out[lp.GetName()] = lp.GetValue()
	}
	return out
}

// counterValue is allot_http_requests_total{route,method,code}, 0 if unset.
func counterValue(t *testing.T, reg *prometheus.Registry, route, method, code string) float64 {
	t.Helper()
	for _, m := range family(t, reg, "allot_http_requests_total").GetMetric() {
		l := labels(m)
		if l["route"] == route && l["method"] == method && l["code"] == code {
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

func TestMetricsUseRouteTemplates(t *testing.T) {
	e := newEnv(t, nil)
	e.putVoucher("alpha", 1, "")
	e.do("GET", "/v1/resources/alpha", e.alice, "").want(t, http.StatusOK, nil)
	e.do("GET", "/v1/resources/beta", e.alice, "").want(t, http.StatusNotFound, nil)
	e.do("GET", "/secret/path/123", "", "").want(t, http.StatusNotFound, nil)
	e.do("BREW", "/coffee", "", "").want(t, http.StatusNotFound, nil)

	for _, c := range []struct {
		route, method, code string
		want                float64
	}{
		{"/v1/resources/:id", "PUT", "201", 1},
		{"/v1/resources/:id", "GET", "200", 1},
		{"/v1/resources/:id", "GET", "404", 1},
		{"unmatched", "GET", "404", 1},
		{"unmatched", "other", "404", 1},
	} {
		if got := counterValue(t, e.reg, c.route, c.method, c.code); got != c.want {
			t.Errorf("requests{%s %s %s} = %v, want %v", c.route, c.method, c.code, got, c.want)
		}
	}
	for _, name := range []string{"allot_http_requests_total", "allot_http_request_duration_seconds"} {
		for _, m := range family(t, e.reg, name).GetMetric() {
			l := labels(m)
			if strings.Contains(l["route"], "alpha") || strings.Contains(l["route"], "secret") || l["method"] == "BREW" {
				t.Errorf("%s has an unbounded label: %v", name, l)
			}
		}
	}
	var observed uint64
	for _, m := range family(t, e.reg, "allot_http_request_duration_seconds").GetMetric() {
		if l := labels(m); l["route"] == "/v1/resources/:id" && l["method"] == "GET" {
			observed = m.GetHistogram().GetSampleCount()
		}
	}
	if observed != 2 {
		t.Errorf("duration samples for GET /v1/resources/:id: %d, want 2", observed)
	}
	if v := family(t, e.reg, "allot_http_requests_in_flight").GetMetric()[0].GetGauge().GetValue(); v != 0 {
		t.Errorf("in flight after all requests answered: %v", v)
	}
	// /metrics serves the server's registry.
	r := e.do("GET", "/metrics", "", "")
	if !strings.Contains(string(r.body), `allot_http_requests_total{code="201",method="PUT",route="/v1/resources/:id"} 1`) {
		t.Errorf("/metrics output lacks the request counter:\n%s", r.body)
	}
}
