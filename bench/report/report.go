// Package report turns load runs into a human summary and a
// machine-readable JSON document whose keys carry their units
// ("p99_ms", "throughput_rps", "duration_s").
package report

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"allot/bench/disk"
	"allot/bench/loadgen"
	"allot/bench/redislua"
	"allot/bench/verify"
)

// Latency summarises a histogram of microseconds in milliseconds.
type Latency struct {
	MinMs  float64 `json:"min_ms"`
	P50Ms  float64 `json:"p50_ms"`
	P90Ms  float64 `json:"p90_ms"`
	P99Ms  float64 `json:"p99_ms"`
	P999Ms float64 `json:"p999_ms"`
	MaxMs  float64 `json:"max_ms"`
	MeanMs float64 `json:"mean_ms"`
}

// Op is one operation's share of a run.
type Op struct {
	Name          string  `json:"name"`
	Requests      int64   `json:"requests"`
	ThroughputRPS float64 `json:"throughput_rps"`
	Latency       Latency `json:"latency"`
}

// Run is one measured load run.
type Run struct {
	Target        string           `json:"target"`
	Mode          string           `json:"mode"` // "closed" or "open"
	Concurrency   int              `json:"concurrency"`
	RateRPS       float64          `json:"rate_rps,omitempty"`
	WarmupS       float64          `json:"warmup_s"`
	DurationS     float64          `json:"duration_s"`
	Requests      int64            `json:"requests"`
	ThroughputRPS float64          `json:"throughput_rps"`
	Latency       Latency          `json:"latency"`
	Ops           []Op             `json:"operations"`
	Responses     map[string]int64 `json:"responses"` // "201", "409 sold_out", "timeout" ...
	LateSends     int64            `json:"late_sends"`
	// Timeline is the measured phase second by second.
	Timeline []Interval `json:"timeline,omitempty"`
}

// Interval is one second of a run: answers by class and their latency
// (from histograms of 2 significant digits).
type Interval struct {
	StartS    float64 `json:"start_s"`   // from the start of the measured phase
	OK        int64   `json:"ok"`        // 2xx
	Rejected  int64   `json:"rejected"`  // 409, 422: sold out, limited, not open...
	Throttled int64   `json:"throttled"` // 429, 503
	Failed    int64   `json:"failed"`    // anything else, timeouts and transport errors included
	Latency   Latency `json:"latency"`
}

// Verification is the correctness verdict of a run.
type Verification struct {
	Pass              bool           `json:"pass"`
	LinearizableReads bool           `json:"linearizable_reads"`
	Resources         int            `json:"resources"`
	Reservations      int            `json:"reservations"`
	Acknowledged      int            `json:"acknowledged"`
	UnknownOutcomes   int64          `json:"unknown_outcomes"`
	DurationS         float64        `json:"duration_s"`
	Checks            []verify.Check `json:"checks"`
	// Stream counts what the change-stream checks read, or says why they
	// were skipped.
	Stream *verify.StreamSummary `json:"stream,omitempty"`
}

// Measured is what one load shape measured: allot, and what it is
// compared with in the same run.
type Measured struct {
	Allot           *Run    `json:"allot,omitempty"`
	Baseline        *Run    `json:"baseline,omitempty"`
	ThroughputRatio float64 `json:"throughput_ratio,omitempty"` // allot / baseline
	// RedisLua is the same load against gin + go-redis + the seckill Lua
	// script; RedisRatio is allot / it.
	RedisLua   *Run            `json:"redis_lua,omitempty"`
	RedisRatio float64         `json:"redis_ratio,omitempty"`
	RedisCheck *redislua.Audit `json:"redis_check,omitempty"`
	Verify     *Verification   `json:"verify,omitempty"`
}

// Step is one concurrency of a sweep.
type Step struct {
	Concurrency int `json:"concurrency"`
	Measured
	Error string `json:"error,omitempty"`
}

// Report is everything one invocation of the load generator measured.
type Report struct {
	StartedAt time.Time `json:"started_at"`
	Command   string    `json:"command"`
	CPUs      int       `json:"cpus"`
	Scenario  string    `json:"scenario"`
	// VerifyOnly names the targets of a --verify-only run (no load: the
	// verification of the state they hold); empty otherwise.
	VerifyOnly string  `json:"verify_only,omitempty"`
	Resources  int     `json:"resources"`
	Limits     int     `json:"limit_groups"`
	SetupS     float64 `json:"setup_s"`
	// Disk is how fast the embedded nodes' disk makes a page durable
	// (bench/disk), absent against --target.
	Disk *disk.Probe `json:"disk,omitempty"`
	Measured
	// Sweep holds one step per concurrency of --sweep; the fields of
	// Measured are then empty.
	Sweep []Step `json:"sweep,omitempty"`
	Error string `json:"error,omitempty"` // why the run stopped short; also printed on stderr
}

// Shape says how a run was driven.
type Shape struct {
	Target      string
	Concurrency int
	Rate        float64
	Warmup      time.Duration
}

// NewRun summarises a loadgen result.
func NewRun(res *loadgen.Result, s Shape) *Run {
	r := &Run{
		Target: s.Target, Mode: "closed", Concurrency: s.Concurrency, RateRPS: s.Rate,
		WarmupS: s.Warmup.Seconds(), DurationS: res.Elapsed.Seconds(), Requests: res.Requests,
		ThroughputRPS: res.Throughput(), Latency: latency(res.Latency),
		Responses: make(map[string]int64, len(res.Codes)), LateSends: res.LateSends,
	}
	if res.Open {
		r.Mode = "open"
	}
	for _, op := range res.Ops {
		o := Op{Name: op.Name, Requests: op.Latency.TotalCount(), Latency: latency(op.Latency)}
		if res.Elapsed > 0 {
			o.ThroughputRPS = float64(o.Requests) / res.Elapsed.Seconds()
		}
		r.Ops = append(r.Ops, o)
	}
	for k, n := range res.Codes {
		r.Responses[k.String()] += n
	}
	for _, sec := range res.Timeline {
		r.Timeline = append(r.Timeline, Interval{
			StartS: sec.Offset.Seconds(), OK: sec.OK, Rejected: sec.Rejected, Throttled: sec.Throttled,
			Failed: sec.Failed, Latency: latency(sec.Latency),
		})
	}
	return r
}

func latency(h *hdrhistogram.Histogram) Latency {
	if h == nil || h.TotalCount() == 0 {
		return Latency{}
	}
	ms := func(us int64) float64 { return float64(us) / 1000 }
	return Latency{
		MinMs: ms(h.Min()), P50Ms: ms(h.ValueAtQuantile(50)), P90Ms: ms(h.ValueAtQuantile(90)),
		P99Ms: ms(h.ValueAtQuantile(99)), P999Ms: ms(h.ValueAtQuantile(99.9)), MaxMs: ms(h.Max()),
		MeanMs: h.Mean() / 1000,
	}
}

// SetRatios states allot's throughput as a ratio of the baseline's and
// of redis-lua's, where they ran.
func (m *Measured) SetRatios() {
	ratio := func(o *Run) float64 {
		if m.Allot == nil || o == nil || o.ThroughputRPS <= 0 {
			return 0
		}
		return m.Allot.ThroughputRPS / o.ThroughputRPS
	}
	m.ThroughputRatio, m.RedisRatio = ratio(m.Baseline), ratio(m.RedisLua)
}

// Failed reports whether a verification or the Redis audit failed, in
// the run or in any step of the sweep.
func (r *Report) Failed() bool {
	failed := func(m *Measured) bool {
		return m.Verify != nil && !m.Verify.Pass || m.RedisCheck != nil && !m.RedisCheck.Pass
	}
	for i := range r.Sweep {
		if failed(&r.Sweep[i].Measured) {
			return true
		}
	}
	return failed(&r.Measured)
}

// WriteJSON writes the report to path (indented, 0644).
func (r *Report) WriteJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// WriteText writes the human summary.
func (r *Report) WriteText(w io.Writer) {
	groups := ""
	if r.Limits > 0 {
		groups = fmt.Sprintf(" in %d limit groups", r.Limits)
	}
	if r.VerifyOnly != "" {
		fmt.Fprintf(w, "verify-only: the state of %s, %d resources%s\n", r.VerifyOnly, r.Resources, groups)
		writeVerify(w, r.Measured.Verify, false)
		return
	}
	fmt.Fprintf(w, "scenario %s, %d resources%s (setup %.1fs), %d CPUs\n", r.Scenario, r.Resources, groups, r.SetupS, r.CPUs)
	if d := r.Disk; d != nil {
		fmt.Fprintf(w, "disk: fdatasync of a page p50 %.2f ms, p99 %.2f ms (%d samples)", d.SyncP50MS, d.SyncP99MS, d.Samples)
		if m := r.Measured.Allot; m != nil && m.Mode == "closed" {
			fmt.Fprintf(w, "; %d clients each waiting for a durable commit get at most ~%.0f answers/s from one node", m.Concurrency, d.BoundRPS(m.Concurrency))
		}
		fmt.Fprintln(w)
	}
	if len(r.Sweep) > 0 {
		writeSweep(w, r.Sweep)
		return
	}
	m := &r.Measured
	if m.Allot != nil {
		writeRun(w, "allot", m.Allot)
	}
	if m.Baseline != nil {
		writeRun(w, "baseline (bare gin JSON handler)", m.Baseline)
	}
	if m.RedisLua != nil {
		writeRun(w, "redis-lua (gin + go-redis + seckill Lua script, Redis persistence off)", m.RedisLua)
	}
	if m.Baseline != nil {
		fmt.Fprintf(w, "\nallot throughput = %.3f x baseline\n", m.ThroughputRatio)
	}
	if m.RedisLua != nil {
		fmt.Fprintf(w, "allot throughput = %.3f x redis-lua\n", m.RedisRatio)
	}
	writeAudit(w, m.RedisCheck)
	writeVerify(w, m.Verify, false)
}

// writeSweep writes the sweep's table, then each step's verdicts.
func writeSweep(w io.Writer, steps []Step) {
	fmt.Fprintf(w, "\nsweep, closed loop (req/s; latency p50 / p99 of all operations):\n")
	fmt.Fprintf(w, "  %11s %10s %10s %10s %9s %9s %19s %19s %19s\n",
		"concurrency", "allot", "baseline", "redis-lua", "x base", "x redis", "allot p50/p99", "baseline p50/p99", "redis p50/p99")
	rps := func(r *Run) string {
		if r == nil {
			return "-"
		}
		return fmt.Sprintf("%.0f", r.ThroughputRPS)
	}
	lat := func(r *Run) string {
		if r == nil {
			return "-"
		}
		return ms(r.Latency.P50Ms) + " / " + ms(r.Latency.P99Ms)
	}
	ratio := func(x float64) string {
		if x == 0 {
			return "-"
		}
		return fmt.Sprintf("%.3f", x)
	}
	for _, s := range steps {
		fmt.Fprintf(w, "  %11d %10s %10s %10s %9s %9s %19s %19s %19s\n", s.Concurrency, rps(s.Allot), rps(s.Baseline), rps(s.RedisLua),
			ratio(s.ThroughputRatio), ratio(s.RedisRatio), lat(s.Allot), lat(s.Baseline), lat(s.RedisLua))
	}
	for _, s := range steps {
		fmt.Fprintf(w, "\nconcurrency %d:", s.Concurrency)
		if s.Allot != nil {
			fmt.Fprintf(w, " allot responses %s", responses(s.Allot))
		}
		if s.Error != "" {
			fmt.Fprintf(w, "\n  error: %s", s.Error)
		}
		fmt.Fprintln(w)
		writeAudit(w, s.RedisCheck)
		writeVerify(w, s.Verify, true)
	}
}

// writeAudit writes the Redis audit's verdict.
func writeAudit(w io.Writer, a *redislua.Audit) {
	if a == nil {
		return
	}
	verdict := "PASS"
	if !a.Pass {
		verdict = "FAIL"
	}
	fmt.Fprintf(w, "\nredis-lua check: %s (%d vouchers, %d sold in Redis, %d answered 201)\n", verdict, a.Vouchers, a.Sold, a.Acknowledged)
	for _, f := range a.Failures {
		fmt.Fprintf(w, "         %s\n", f)
	}
}

// writeVerify writes the verification's verdict and checks; brief leaves
// out the checks that passed (a sweep's steps).
func writeVerify(w io.Writer, v *Verification, brief bool) {
	if v == nil {
		return
	}
	verdict := "PASS"
	if !v.Pass {
		verdict = "FAIL"
	}
	reads := "default"
	if v.LinearizableReads {
		reads = "linearizable"
	}
	fmt.Fprintf(w, "\nverify: %s (%d resources, %d reservations, %d acknowledged, %d unknown outcomes; %s reads, %.1fs)\n",
		verdict, v.Resources, v.Reservations, v.Acknowledged, v.UnknownOutcomes, reads, v.DurationS)
	switch s := v.Stream; {
	case s == nil:
	case s.Skipped != "":
		fmt.Fprintf(w, "  stream: SKIPPED, not checked: %s\n", s.Skipped)
	default:
		fmt.Fprintf(w, "  stream: %d events (%d..%d), %d reservations on the resources checked: %d created, %d later transitions\n",
			s.Events, s.After+1, s.Head, s.Reservations, s.Created, s.Transitions)
	}
	for _, c := range v.Checks {
		if c.Skipped != "" {
			fmt.Fprintf(w, "  skip %-34s SKIPPED, not checked: %s\n", c.Name, c.Skipped)
			continue
		}
		mark := "ok  "
		if c.Failures > 0 {
			mark = "FAIL"
		} else if brief {
			continue
		}
		fmt.Fprintf(w, "  %s %-34s %10d checked %6d failed\n", mark, c.Name, c.Checked, c.Failures)
		for _, e := range c.Examples {
			fmt.Fprintf(w, "         %s\n", e)
		}
	}
}

func writeRun(w io.Writer, title string, r *Run) {
	loop := fmt.Sprintf("closed loop, %d workers", r.Concurrency)
	if r.Mode == "open" {
		loop = fmt.Sprintf("open loop at %.0f req/s, at most %d in flight", r.RateRPS, r.Concurrency)
	}
	fmt.Fprintf(w, "\n%s: %s, %s\n", title, r.Target, loop)
	fmt.Fprintf(w, "  %d requests in %.2fs (after %.1fs warmup): %.1f req/s\n", r.Requests, r.DurationS, r.WarmupS, r.ThroughputRPS)
	if r.Mode == "open" {
		fmt.Fprintf(w, "  latency from intended send time; %d sends started >= %v late\n", r.LateSends, loadgen.LateThreshold)
	}
	fmt.Fprintf(w, "  %-10s %10s %10s %9s %9s %9s %9s %9s %9s\n", "op", "requests", "req/s", "min", "p50", "p90", "p99", "p99.9", "max")
	row := func(name string, n int64, rps float64, l Latency) {
		fmt.Fprintf(w, "  %-10s %10d %10.1f %9s %9s %9s %9s %9s %9s\n", name, n, rps,
			ms(l.MinMs), ms(l.P50Ms), ms(l.P90Ms), ms(l.P99Ms), ms(l.P999Ms), ms(l.MaxMs))
	}
	for _, o := range r.Ops {
		row(o.Name, o.Requests, o.ThroughputRPS, o.Latency)
	}
	row("all", r.Requests, r.ThroughputRPS, r.Latency)
	fmt.Fprintf(w, "  responses: %s\n", responses(r))
}

// responses lists a run's answer counts by kind.
func responses(r *Run) string {
	keys := make([]string, 0, len(r.Responses))
	for k := range r.Responses {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s: %d", k, r.Responses[k])
	}
	return strings.Join(parts, ", ")
}

func ms(v float64) string {
	if v >= 100 {
		return fmt.Sprintf("%.0fms", v)
	}
	return fmt.Sprintf("%.2fms", v)
}
