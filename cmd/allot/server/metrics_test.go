package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"allot/actors/domain"
)

// TestMetrics runs a scripted workload on a real node, scrapes /metrics over
// HTTP and checks every family, the lint, the alert rules and the dashboard
// against it; it ends by showing that 10,000 more resources add no series.
func TestMetrics(t *testing.T) {
	cfg := DefaultConfig()
	cfg.DataDir, cfg.HTTPAddr, cfg.RaftAddr = t.TempDir(), "127.0.0.1:0", "127.0.0.1:0"
	cfg.AuthSecret = testSecret
	cfg.HTTP.RateLimit.PerSecond = 0 // one admin creates 10,000 resources below
	cfg.HTTP.IPRateLimit.PerSecond = 0
	s, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	c := newClient(t, s.HTTPAddr())
	waitFor(t, 10*time.Second, func() bool { return c.status("GET", "/readyz", "", nil) == http.StatusOK })

	metricsWorkload(t, c)
	if err := s.Node().Raft().Snapshot().Error(); err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	fams := scrape(t, c)

	t.Run("Families", func(t *testing.T) { checkFamilies(t, fams) })
	t.Run("Lint", func(t *testing.T) {
		// What testutil.GatherAndLint does, on the node's registry; that
		// helper's package would pull in a diff library for nothing else.
		got, err := s.registry.Gather()
		if err != nil {
			t.Fatal(err)
		}
		// hashicorp/raft's names are the library's (raft_commitTime,
		// counters without _total): bridged as they are, not linted.
		got = slices.DeleteFunc(got, func(f *dto.MetricFamily) bool { return strings.HasPrefix(f.GetName(), "raft_") })
		problems, err := promlint.NewWithMetricFamilies(got).Lint()
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range problems {
			t.Errorf("lint: %s: %s", p.Metric, p.Text)
		}
		t.Logf("%d families linted", len(got))
	})
	t.Run("ClusterInfo", func(t *testing.T) {
		var info struct {
			State               string   `json:"state"`
			Ready               bool     `json:"ready"`
			Reason              *string  `json:"reason"`
			CommitIndex         uint64   `json:"commit_index"`
			LastLogIndex        uint64   `json:"last_log_index"`
			ApplyLag            *uint64  `json:"apply_lag"`
			LastContactSeconds  *float64 `json:"last_contact_seconds"`
			InvariantViolations *uint64  `json:"invariant_violations"`
		}
		c.mustJSON("GET", "/v1/cluster", "admin", nil, http.StatusOK, &info)
		if info.State != "leader" || !info.Ready || info.Reason != nil || info.LastLogIndex < info.CommitIndex ||
			info.ApplyLag == nil || *info.ApplyLag > 1 || info.LastContactSeconds == nil || *info.LastContactSeconds != 0 ||
			info.InvariantViolations == nil || *info.InvariantViolations != 0 {
			t.Errorf("/v1/cluster does not explain the node: %+v", info)
		}
	})
	t.Run("Alerts", func(t *testing.T) { checkAlerts(t, fams) })
	t.Run("Dashboard", func(t *testing.T) { checkDashboard(t, fams) })
	t.Run("Cardinality", func(t *testing.T) { checkCardinality(t, c) })
}

// metricsWorkload makes every kind of decision a known number of times; see
// checkFamilies for the counts.
func metricsWorkload(t *testing.T, c *client) {
	t.Helper()
	future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	past := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	c.mustJSON("PUT", "/v1/resources/v", "admin", map[string]any{"kind": "voucher", "capacity": 3, "hold_seconds": 1}, http.StatusCreated, nil)
	c.mustJSON("PUT", "/v1/resources/s-future", "admin", map[string]any{"kind": "slot", "capacity": 5, "opens_at": future}, http.StatusCreated, nil)
	c.mustJSON("PUT", "/v1/resources/s-closed", "admin", map[string]any{"kind": "slot", "capacity": 5, "closes_at": past}, http.StatusCreated, nil)
	c.mustJSON("PUT", "/v1/resources/r", "admin", map[string]any{"kind": "room",
		"inventory": []map[string]any{{"from": "2030-01-01", "to": "2030-01-04", "rooms": 2}}}, http.StatusCreated, nil)

	// Three holds, then the voucher is sold out for two more users.
	ids := map[string]string{}
	for i := 1; i <= 5; i++ {
		user := fmt.Sprintf("u%d", i)
		r, err := c.do("POST", "/v1/resources/v/reservations", user, nil, "Idempotency-Key", "k-"+user)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case i <= 3 && r.Code == http.StatusCreated:
			var res reservationJSON
			if err := json.Unmarshal(r.Body, &res); err != nil {
				t.Fatal(err)
			}
			ids[user] = res.ID
		case i > 3 && r.Code == http.StatusConflict:
		default:
			t.Fatalf("reserve %s: %d %s", user, r.Code, r.Body)
		}
	}
	if r, err := c.do("POST", "/v1/resources/v/reservations", "u1", nil, "Idempotency-Key", "k-u1"); err != nil || !r.Replayed {
		t.Fatalf("retry: %+v %v, want a replay", r, err)
	}
	c.mustJSON("POST", "/v1/resources/v/reservations", "u1", nil, http.StatusConflict, nil) // limit_exceeded
	c.mustJSON("POST", "/v1/reservations/"+ids["u1"]+"/confirm", "u1", nil, http.StatusOK, nil)
	c.mustJSON("POST", "/v1/reservations/"+ids["u1"]+"/confirm", "u1", nil, http.StatusOK, nil) // unchanged
	c.mustJSON("POST", "/v1/reservations/"+ids["u2"]+"/cancel", "u2", nil, http.StatusOK, nil)
	c.mustJSON("POST", "/v1/reservations/"+ids["u2"]+"/confirm", "u2", nil, http.StatusConflict, nil) // invalid_state
	c.mustJSON("POST", "/v1/resources/s-future/reservations", "u1", nil, http.StatusConflict, nil)    // not_open
	c.mustJSON("POST", "/v1/resources/s-closed/reservations", "u1", nil, http.StatusConflict, nil)    // closed
	c.mustJSON("POST", "/v1/resources/r/reservations", "u1",
		map[string]any{"check_in": "2030-01-01", "check_out": "2030-01-03"}, http.StatusCreated, nil)

	// u3's hold expires after a second.
	waitFor(t, 10*time.Second, func() bool {
		var r reservationJSON
		c.mustJSON("GET", "/v1/reservations/"+ids["u3"], "u3", nil, http.StatusOK, &r)
		return r.Status == "expired"
	})
}

// scrape reads /metrics over HTTP and parses the text format.
func scrape(t *testing.T, c *client) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := c.hc.Get(c.base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("/metrics: %d %s", resp.StatusCode, b)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

// family describes what a family must look like.
type family struct {
	typ    dto.MetricType
	labels []string // label names, sorted
}

var (
	counter   = dto.MetricType_COUNTER
	gauge     = dto.MetricType_GAUGE
	histogram = dto.MetricType_HISTOGRAM
	summary   = dto.MetricType_SUMMARY
)

// wantFamilies is every family allot exports, with its type and labels.
var wantFamilies = map[string]family{
	"allot_build_info":                               {gauge, []string{"goversion", "revision", "version"}},
	"allot_http_requests_total":                      {counter, []string{"code", "method", "route"}},
	"allot_http_request_duration_seconds":            {histogram, []string{"method", "route"}},
	"allot_http_requests_in_flight":                  {gauge, nil},
	"allot_reservations_total":                       {counter, []string{"kind", "outcome"}},
	"allot_idempotent_replays_total":                 {counter, nil},
	"allot_expiry_lag_seconds":                       {histogram, nil},
	"allot_units":                                    {gauge, []string{"kind", "state"}},
	"allot_resources":                                {gauge, []string{"kind"}},
	"allot_holds_expiring":                           {gauge, nil},
	"allot_reservations_stored":                      {gauge, nil},
	"allot_idempotency_records":                      {gauge, nil},
	"allot_reservations_finished":                    {gauge, nil},
	"allot_reservations_oldest_finished_age_seconds": {gauge, nil},
	"allot_events_head":                              {gauge, nil},
	"allot_events_earliest":                          {gauge, nil},
	"allot_invariant_violations_total":               {counter, nil},
	"allot_actors_active":                            {gauge, nil},
	"allot_actor_activations_total":                  {counter, nil},
	"allot_actor_passivations_total":                 {counter, nil},
	"allot_actor_mailbox_depth":                      {histogram, nil},
	"allot_actor_mailbox_depth_max":                  {gauge, nil},
	"allot_expiry_timers":                            {gauge, nil},
	"allot_proposer_batch_events":                    {histogram, nil},
	"allot_proposer_commit_duration_seconds":         {histogram, nil},
	"allot_proposer_decision_to_commit_seconds":      {histogram, nil},
	"allot_proposer_failed_batches_total":            {counter, []string{"reason"}},
	"allot_proposer_queue_length":                    {gauge, nil},
	"allot_proposer_inflight_batches":                {gauge, nil},
	"allot_leader_clock_steps_ignored":               {gauge, nil},
	"allot_leader_clock_ahead_seconds":               {gauge, nil},
	"allot_raft_state":                               {gauge, []string{"state"}},
	"allot_raft_term":                                {gauge, nil},
	"allot_raft_last_log_index":                      {gauge, nil},
	"allot_raft_commit_index":                        {gauge, nil},
	"allot_raft_applied_index":                       {gauge, nil},
	"allot_raft_last_contact_seconds":                {gauge, nil},
	"allot_raft_voters":                              {gauge, nil},
	"allot_ready":                                    {gauge, nil},
	"allot_raft_leader_changes_total":                {counter, nil},
	"allot_raft_snapshots_total":                     {counter, []string{"result"}},
	"allot_raft_snapshot_duration_seconds":           {histogram, nil},
	"allot_raft_snapshot_restores_total":             {counter, nil},
	"allot_raft_fsm_apply_duration_seconds":          {histogram, nil},
	"allot_audit_index":                              {gauge, nil},
	"allot_audit_peers_checked":                      {gauge, nil},
	"allot_cluster_handshake_failures_total":         {counter, []string{"reason"}},
	// Bridged from hashicorp/raft and raft-boltdb through go-metrics.
	"raft_apply":                    {counter, nil},
	"raft_commitTime":               {summary, nil},
	"raft_fsm_applyBatch":           {summary, nil},
	"raft_boltdb_storeLogs":         {summary, nil},
	"raft_snapshot_persist":         {summary, nil},
	"go_goroutines":                 {gauge, nil},
	"process_resident_memory_bytes": {gauge, nil},
}

// clusterFamilies are exported only by a node that has peers (series per
// peer), so TestMetrics's lone node has none of them;
// TestClockOffsetsBetweenNodes checks them on three nodes.
var clusterFamilies = map[string]family{
	"allot_clock_offset_seconds":             {gauge, []string{"peer"}},
	"allot_clock_offset_uncertainty_seconds": {gauge, []string{"peer"}},
	"allot_clock_probe_failures_total":       {counter, []string{"peer"}},
	"allot_audit_mismatches_total":           {counter, []string{"peer"}},
}

// webhookFamilies exist only on a leader with webhooks;
// TestWebhookDeliveryAcrossLeaderKill (servertest) reads them.
var webhookFamilies = map[string]bool{
	"allot_webhook_lag_events": true, "allot_webhook_lag_seconds": true, "allot_webhook_cursor": true,
	"allot_webhook_failures_total": true, "allot_webhook_deliveries_total": true, "allot_webhook_skipped_events_total": true,
}

func checkFamilies(t *testing.T, fams map[string]*dto.MetricFamily) {
	checkFamilyShapes(t, fams, wantFamilies)
	for name := range clusterFamilies {
		if _, ok := fams[name]; ok {
			t.Errorf("%s: exported by a node without peers", name)
		}
	}
	if v := value(sample(fams, "allot_leader_clock_ahead_seconds")); math.Abs(v) > 0.5 {
		t.Errorf("allot_leader_clock_ahead_seconds %v on a leader with a steady clock, want about 0", v)
	}
	expect(t, fams, "allot_leader_clock_steps_ignored", 0)
	checkWorkload(t, fams)
}

// checkFamilyShapes checks that every family of want is exported with its
// type and label names.
func checkFamilyShapes(t *testing.T, fams map[string]*dto.MetricFamily, want map[string]family) {
	t.Helper()
	for name, want := range want {
		f, ok := fams[name]
		if !ok {
			t.Errorf("%s: missing", name)
			continue
		}
		if f.GetType() != want.typ {
			t.Errorf("%s: type %v, want %v", name, f.GetType(), want.typ)
		}
		for _, m := range f.GetMetric() {
			var got []string
			for _, l := range m.GetLabel() {
				got = append(got, l.GetName())
			}
			slices.Sort(got)
			if !slices.Equal(got, want.labels) {
				t.Errorf("%s: labels %v, want %v", name, got, want.labels)
				break
			}
		}
	}
}

// checkWorkload checks the counts of what metricsWorkload did.
func checkWorkload(t *testing.T, fams map[string]*dto.MetricFamily) {
	for _, w := range []struct {
		kind, outcome string
		n             float64
	}{
		{"voucher", "held", 3}, {"voucher", "sold_out", 2}, {"voucher", "limit_exceeded", 1},
		{"voucher", "confirmed", 1}, {"voucher", "unchanged", 1}, {"voucher", "cancelled", 1},
		{"voucher", "invalid_state", 1}, {"voucher", "expired", 1}, {"voucher", "late_confirm", 0},
		{"slot", "not_open", 1}, {"slot", "closed", 1}, {"slot", "held", 0},
		{"room", "held", 1}, {"room", "sold_out", 0},
	} {
		expect(t, fams, "allot_reservations_total", w.n, "kind", w.kind, "outcome", w.outcome)
	}
	if n := len(fams["allot_reservations_total"].GetMetric()); n != 3*15 {
		t.Errorf("allot_reservations_total: %d series, want every kind x outcome (45)", n)
	}
	expect(t, fams, "allot_idempotent_replays_total", 1)
	expect(t, fams, "allot_expiry_lag_seconds", 1) // observations
	if lag := sample(fams, "allot_expiry_lag_seconds").GetHistogram().GetSampleSum(); lag < 0 || lag > 5 {
		t.Errorf("expiry lag %.3fs, want 0-5s", lag)
	}
	for _, w := range []struct {
		kind, state string
		n           float64
	}{
		{"voucher", "held", 0}, {"voucher", "confirmed", 1}, {"voucher", "available", 2},
		{"slot", "held", 0}, {"slot", "available", 10},
		{"room", "held", 2}, {"room", "confirmed", 0}, {"room", "available", 4}, // room-nights
	} {
		expect(t, fams, "allot_units", w.n, "kind", w.kind, "state", w.state)
	}
	expect(t, fams, "allot_resources", 1, "kind", "voucher")
	expect(t, fams, "allot_resources", 2, "kind", "slot")
	expect(t, fams, "allot_resources", 1, "kind", "room")
	expect(t, fams, "allot_holds_expiring", 1)
	expect(t, fams, "allot_reservations_stored", 4)
	expect(t, fams, "allot_idempotency_records", 3)
	expect(t, fams, "allot_reservations_finished", 2) // the cancelled and the expired one
	if age := sample(fams, "allot_reservations_oldest_finished_age_seconds").GetGauge().GetValue(); age <= 0 || age > 60 {
		t.Errorf("allot_reservations_oldest_finished_age_seconds = %v, want a few seconds", age)
	}
	expect(t, fams, "allot_events_earliest", 1)
	if h := sample(fams, "allot_events_head").GetGauge().GetValue(); h < 8 { // 4 resources, 4 reservations, their transitions
		t.Errorf("allot_events_head = %v after the changes above", h)
	}
	expect(t, fams, "allot_invariant_violations_total", 0)
	expect(t, fams, "allot_actors_active", 4)
	expect(t, fams, "allot_actor_activations_total", 4)
	expect(t, fams, "allot_actor_passivations_total", 0)
	expect(t, fams, "allot_proposer_failed_batches_total", 0, "reason", "outcome_unknown")
	// 4 puts, 4 reservations, a confirm, a cancel and an expiry.
	if got := sample(fams, "allot_proposer_batch_events").GetHistogram().GetSampleSum(); got != 11 {
		t.Errorf("allot_proposer_batch_events: %v events committed, want 11", got)
	}
	if n := sample(fams, "allot_proposer_commit_duration_seconds").GetHistogram().GetSampleCount(); n == 0 {
		t.Error("allot_proposer_commit_duration_seconds: no batches")
	}
	expect(t, fams, "allot_raft_state", 1, "state", "leader")
	expect(t, fams, "allot_raft_state", 0, "state", "follower")
	expect(t, fams, "allot_ready", 1)
	expect(t, fams, "allot_raft_voters", 1)
	expect(t, fams, "allot_raft_last_contact_seconds", 0)
	expect(t, fams, "allot_raft_snapshots_total", 1, "result", "success")
	expect(t, fams, "allot_raft_snapshot_duration_seconds", 1)
	if v := value(sample(fams, "allot_raft_leader_changes_total")); v < 1 {
		t.Errorf("allot_raft_leader_changes_total %v, want >= 1", v)
	}
	term, commit, applied := value(sample(fams, "allot_raft_term")), value(sample(fams, "allot_raft_commit_index")), value(sample(fams, "allot_raft_applied_index"))
	if term < 1 || commit < 11 || applied > commit || value(sample(fams, "allot_raft_last_log_index")) < commit {
		t.Errorf("raft progress: term %v commit %v applied %v", term, commit, applied)
	}
	if sample(fams, "allot_raft_fsm_apply_duration_seconds").GetHistogram().GetSampleCount() == 0 {
		t.Error("allot_raft_fsm_apply_duration_seconds: nothing applied")
	}
	expect(t, fams, "allot_build_info", 1, "goversion", runtime.Version())
	expect(t, fams, "allot_http_requests_total", 5, "route", "/v1/resources/:id/reservations", "method", "POST", "code", "201")
	expect(t, fams, "allot_http_requests_total", 5, "route", "/v1/resources/:id/reservations", "method", "POST", "code", "409")
	if v := value(sample(fams, "raft_apply")); v < 11 {
		t.Errorf("raft_apply %v: hashicorp/raft's metrics are not bridged", v)
	}
}

// sample returns the series of family name with the given label pairs.
func sample(fams map[string]*dto.MetricFamily, name string, labels ...string) *dto.Metric {
	f := fams[name]
next:
	for _, m := range f.GetMetric() {
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for _, l := range m.GetLabel() {
				if l.GetName() == labels[i] && l.GetValue() == labels[i+1] {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		return m
	}
	return nil
}

// value is a counter's or gauge's value, a histogram's count; NaN if absent.
func value(m *dto.Metric) float64 {
	switch {
	case m == nil:
		return math.NaN()
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	case m.Histogram != nil:
		return float64(m.GetHistogram().GetSampleCount())
	case m.Summary != nil:
		return float64(m.GetSummary().GetSampleCount())
	}
	return math.NaN()
}

func expect(t *testing.T, fams map[string]*dto.MetricFamily, name string, want float64, labels ...string) {
	t.Helper()
	if got := value(sample(fams, name, labels...)); got != want {
		t.Errorf("%s%v = %v, want %v", name, labels, got, want)
	}
}

// metricNameRE finds the metric names in a PromQL expression: ours and the
// libraries' carry a known prefix; label names and functions do not.
var metricNameRE = regexp.MustCompile(`\b(?:allot|raft|go|process)_[A-Za-z0-9_]+|\bup\b`)

// checkExprMetrics checks that every metric expr names is exported (up is
// Prometheus's own).
func checkExprMetrics(t *testing.T, where, expr string, fams map[string]*dto.MetricFamily) {
	t.Helper()
	for _, name := range metricNameRE.FindAllString(expr, -1) {
		if name == "up" {
			continue
		}
		base := name
		for _, suffix := range []string{"_bucket", "_count", "_sum"} {
			if b, ok := strings.CutSuffix(name, suffix); ok {
				if f, ok := fams[b]; ok && (f.GetType() == histogram || f.GetType() == summary) {
					base = b
				}
			}
		}
		f, ok := fams[base]
		_, withPeers := clusterFamilies[base]
		switch {
		case !ok && withPeers: // checked by TestClockOffsetsBetweenNodes
		case !ok && webhookFamilies[base]:
		case !ok:
			t.Errorf("%s: %s is not exported", where, name)
		case strings.HasSuffix(name, "_bucket") && f.GetType() != histogram:
			t.Errorf("%s: %s is not a histogram", where, name)
		}
	}
}

type alertRules struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Expr        string            `yaml:"expr"`
			For         string            `yaml:"for"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

// checkAlerts parses deploy/prometheus/alerts.yml strictly and checks every
// rule: its fields, its metrics, and that its runbook exists.
func checkAlerts(t *testing.T, fams map[string]*dto.MetricFamily) {
	b, err := os.ReadFile("../../../deploy/prometheus/alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	var rules alertRules
	if err := yaml.UnmarshalWithOptions(b, &rules, yaml.Strict()); err != nil {
		t.Fatalf("alerts.yml: %v", err)
	}
	anchors := runbookAnchors(t)
	seen := map[string]bool{}
	var alerts []string
	for _, g := range rules.Groups {
		if g.Name == "" || len(g.Rules) == 0 {
			t.Errorf("group %q: needs a name and rules", g.Name)
		}
		for _, r := range g.Rules {
			where := "alert " + r.Alert
			switch {
			case r.Alert == "" || seen[r.Alert]:
				t.Errorf("%s: empty or duplicate name", where)
			case strings.TrimSpace(r.Expr) == "":
				t.Errorf("%s: no expr", where)
			case r.Labels["severity"] != "critical" && r.Labels["severity"] != "warning":
				t.Errorf("%s: severity %q", where, r.Labels["severity"])
			case r.Annotations["summary"] == "" || r.Annotations["description"] == "":
				t.Errorf("%s: needs summary and description", where)
			}
			if r.For != "" {
				if _, err := model.ParseDuration(r.For); err != nil {
					t.Errorf("%s: for %q: %v", where, r.For, err)
				}
			}
			anchor, ok := strings.CutPrefix(r.Annotations["runbook_url"], "docs/OPERATIONS.md#")
			if !ok || !anchors[anchor] {
				t.Errorf("%s: runbook_url %q does not name a section of docs/OPERATIONS.md", where, r.Annotations["runbook_url"])
			}
			seen[r.Alert] = true
			alerts = append(alerts, r.Alert)
			checkExprMetrics(t, where, r.Expr, fams)
		}
	}
	for _, want := range []string{"AllotNoLeader", "AllotLeaderFlapping", "AllotExpiryLagHigh",
		"AllotInvariantViolation", "AllotApplyLag", "AllotHTTP5xxRate", "AllotClockSkew", "AllotLeaderClockStepped"} {
		if !seen[want] {
			t.Errorf("alert %s missing (have %v)", want, alerts)
		}
	}
}

// runbookAnchors returns the GitHub anchors of docs/OPERATIONS.md's headings.
func runbookAnchors(t *testing.T) map[string]bool {
	b, err := os.ReadFile("../../../docs/OPERATIONS.md")
	if err != nil {
		t.Fatal(err)
	}
	anchors := map[string]bool{}
	drop := regexp.MustCompile(`[^a-z0-9 _-]`)
	for _, line := range strings.Split(string(b), "\n") {
		if h, ok := strings.CutPrefix(line, "#"); ok {
			h = strings.TrimSpace(strings.TrimLeft(h, "#"))
			anchors[strings.ReplaceAll(drop.ReplaceAllString(strings.ToLower(h), ""), " ", "-")] = true
		}
	}
	return anchors
}

// checkDashboard checks deploy/grafana/allot.json: valid JSON, unique panel
// ids, a datasource variable, and every metric in a query exported.
func checkDashboard(t *testing.T, fams map[string]*dto.MetricFamily) {
	b, err := os.ReadFile("../../../deploy/grafana/allot.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Title      string           `json:"title"`
		UID        string           `json:"uid"`
		Panels     []map[string]any `json:"panels"`
		Templating struct {
			List []struct {
				Name string `json:"name"`
				Type string `json:"type"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("allot.json: %v", err)
	}
	if dash.Title == "" || dash.UID == "" || len(dash.Panels) == 0 {
		t.Fatalf("dashboard without title, uid or panels")
	}
	hasDatasource := false
	for _, v := range dash.Templating.List {
		hasDatasource = hasDatasource || v.Type == "datasource"
	}
	if !hasDatasource {
		t.Error("no datasource variable: the dashboard would be tied to one Grafana")
	}
	ids := map[float64]bool{}
	queries := 0
	for _, p := range dash.Panels {
		id, _ := p["id"].(float64)
		title, _ := p["title"].(string)
		if ids[id] {
			t.Errorf("panel %q: duplicate id %v", title, id)
		}
		ids[id] = true
		targets, _ := p["targets"].([]any)
		if p["type"] != "row" && len(targets) == 0 {
			t.Errorf("panel %q: no queries", title)
		}
		for _, tg := range targets {
			expr, _ := tg.(map[string]any)["expr"].(string)
			if expr == "" {
				t.Errorf("panel %q: empty query", title)
			}
			queries++
			checkExprMetrics(t, "panel "+title, expr, fams)
		}
	}
	if queries < 20 {
		t.Errorf("only %d queries", queries)
	}
}

// checkCardinality creates 10,000 resources (and reserves on 1,000 of them)
// and shows that the number of series stays what it was.
func checkCardinality(t *testing.T, c *client) {
	before := scrape(t, c) // not the first scrape: GET /metrics 200 is counted already
	start := time.Now()
	const resources, reserved, workers = 10000, 1000, 32
	var wg sync.WaitGroup
	work := make(chan int)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				id := fmt.Sprintf("/v1/resources/card-%05d", i)
				if r, err := c.do("PUT", id, "admin", map[string]any{"kind": "slot", "capacity": 2, "hold_seconds": 0}); err != nil || r.Code != http.StatusCreated {
					t.Errorf("put %s: %d %s %v", id, r.Code, r.Body, err)
					continue
				}
				if i < reserved {
					if r, err := c.do("POST", id+"/reservations", fmt.Sprintf("user-%d", i), nil); err != nil || r.Code != http.StatusCreated {
						t.Errorf("reserve %s: %d %s %v", id, r.Code, r.Body, err)
					}
				}
			}
		}()
	}
	for i := range resources {
		work <- i
	}
	close(work)
	wg.Wait()
	t.Logf("%d resources and %d reservations in %v", resources, reserved, time.Since(start).Round(time.Millisecond))

	after := scrape(t, c)
	expect(t, after, "allot_reservations_stored", 4+reserved) // allot_resources may be cached (unitsMaxAge)
	expect(t, after, "allot_actors_active", 4+resources)
	for name, f := range after {
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if strings.Contains(l.GetValue(), "card-") || strings.Contains(l.GetValue(), "user-") {
					t.Fatalf("%s has a label %s=%q: ids must never be label values", name, l.GetName(), l.GetValue())
				}
			}
		}
	}
	ours := func(fams map[string]*dto.MetricFamily) (n int) {
		for name, f := range fams {
			if strings.HasPrefix(name, "allot_") {
				n += seriesCount(f)
			}
		}
		return n
	}
	all := func(fams map[string]*dto.MetricFamily) (n int) {
		for _, f := range fams {
			n += seriesCount(f)
		}
		return n
	}
	t.Logf("series before: %d (allot_ %d); after: %d (allot_ %d); new: %v",
		all(before), ours(before), all(after), ours(after), newSeries(before, after))
	if ours(after) != ours(before) {
		t.Errorf("allot_ series grew from %d to %d: new %v", ours(before), ours(after), newSeries(before, after))
	}
	// hashicorp/raft creates some of its series on first use; a handful may
	// appear, never one per resource.
	if all(after) > all(before)+10 {
		t.Errorf("series grew from %d to %d: new %v", all(before), all(after), newSeries(before, after))
	}
}

// newSeries lists the series (name and labels) in after but not in before.
func newSeries(before, after map[string]*dto.MetricFamily) []string {
	key := func(name string, m *dto.Metric) string {
		var b strings.Builder
		b.WriteString(name)
		for _, l := range m.GetLabel() {
			fmt.Fprintf(&b, " %s=%q", l.GetName(), l.GetValue())
		}
		return b.String()
	}
	had := map[string]bool{}
	for name, f := range before {
		for _, m := range f.GetMetric() {
			had[key(name, m)] = true
		}
	}
	var added []string
	for name, f := range after {
		for _, m := range f.GetMetric() {
			if k := key(name, m); !had[k] {
				added = append(added, k)
			}
		}
	}
	slices.Sort(added)
	return added
}

// seriesCount is the number of time series a family exposes.
func seriesCount(f *dto.MetricFamily) (n int) {
	for _, m := range f.GetMetric() {
		switch {
		case m.Histogram != nil:
			n += len(m.GetHistogram().GetBucket()) + 2 // buckets (with +Inf implied) are bucket, _sum, _count
		case m.Summary != nil:
			n += len(m.GetSummary().GetQuantile()) + 2
		default:
			n++
		}
	}
	return n
}

func TestMetricsOutcomeNames(t *testing.T) {
	wrap := func(err error) error { return fmt.Errorf("resource r1: %w", err) }
	for _, c := range []struct {
		to   domain.Status
		err  error
		want string
	}{
		{domain.StatusHeld, nil, "held"},
		{domain.StatusConfirmed, nil, "confirmed"},
		{domain.StatusExpired, nil, "expired"},
		{domain.StatusCompleted, nil, "completed"},
		{0, nil, "unchanged"},
		{0, wrap(domain.ErrSoldOut), "sold_out"},
		{0, wrap(domain.ErrLimitExceeded), "limit_exceeded"},
		{0, wrap(domain.ErrNotOpen), "not_open"},
		{0, wrap(domain.ErrClosed), "closed"},
		{0, wrap(domain.ErrExpired), "late_confirm"}, // not "expired": that one counts expiries
		{0, wrap(domain.ErrInvalidState), "invalid_state"},
		{0, wrap(domain.ErrInvalidArgument), "invalid_argument"},
		{0, errors.New("something new"), "other"},
		{domain.Status(99), nil, "other"},
	} {
		if got := outcomeNames[outcome(c.to, c.err)]; got != c.want {
			t.Errorf("outcome(%v, %v) = %s, want %s", c.to, c.err, got, c.want)
		}
	}
	seen := map[string]bool{}
	for _, name := range outcomeNames {
		if name == "" || seen[name] {
			t.Errorf("outcome name %q empty or repeated", name)
		}
		seen[name] = true
	}
}
