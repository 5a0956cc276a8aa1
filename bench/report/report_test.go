package report

import (
	"bytes"
	"encoding/json"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"allot/bench/disk"
	"allot/bench/loadgen"
	"allot/bench/redislua"
	"allot/bench/verify"
)

// result makes a loadgen result of n requests with latencies 1..n ms over
// 2 s, all "reserve", half 201 and half 409 sold_out.
func result(n int64) *loadgen.Result {
	h := hdrhistogram.New(1, int64(time.Minute/time.Microsecond), 3)
	for i := int64(1); i <= n; i++ {
		h.RecordValue(i * 1000)
	}
	return &loadgen.Result{
		Elapsed: 2 * time.Second, Requests: n, Latency: h,
		Ops: []loadgen.OpResult{{Name: "reserve", Latency: h}},
		Codes: map[loadgen.CodeKey]int64{
			{Status: http.StatusCreated}:                    n / 2,
			{Status: http.StatusConflict, Code: "sold_out"}: n - n/2,
		},
	}
}

func sample() *Report {
	r := &Report{StartedAt: time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC), Command: "go run ./bench", CPUs: 2,
		Scenario: "seckill", Resources: 10, SetupS: 0.5, Disk: &disk.Probe{Samples: 200, SyncP50MS: 2, SyncP99MS: 9}}
	r.Allot = NewRun(result(1000), Shape{Target: "embedded", Concurrency: 64})
	r.Baseline = NewRun(result(4000), Shape{Target: "baseline", Concurrency: 64})
	r.RedisLua = NewRun(result(2000), Shape{Target: "redis-lua", Concurrency: 64})
	r.RedisCheck = &redislua.Audit{Pass: true, Vouchers: 10, Sold: 1000, Acknowledged: 1000}
	r.SetRatios()
	r.Verify = &Verification{Pass: false, Checks: []verify.Check{
		{Name: "no_oversell", Checked: 10},
		{Name: "acknowledged_reservations_present", Checked: 500, Failures: 1, Examples: []string{"reservation r1 is missing"}},
	}}
	return r
}

func TestJSONKeysCarryUnits(t *testing.T) {
	path := filepath.Join(t.TempDir(), "report.json")
	if err := sample().WriteJSON(path); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("report is not JSON: %v", err)
	}
	get := func(path ...string) any {
		var v any = doc
		for _, p := range path {
			m, ok := v.(map[string]any)
			if !ok {
				t.Fatalf("%v: %s is not an object", path, p)
			}
			if v, ok = m[p]; !ok {
				t.Fatalf("key %s missing (path %v)", p, path)
			}
		}
		return v
	}
	num := func(path ...string) float64 {
		f, ok := get(path...).(float64)
		if !ok {
			t.Fatalf("%v is not a number", path)
		}
		return f
	}
	if v := num("allot", "throughput_rps"); v != 500 {
		t.Errorf("throughput_rps = %v, want 500", v)
	}
	if v := num("allot", "duration_s"); v != 2 {
		t.Errorf("duration_s = %v, want 2", v)
	}
	for key, want := range map[string]float64{"min_ms": 1, "p50_ms": 500, "p90_ms": 900, "p99_ms": 990, "p999_ms": 999, "max_ms": 1000} {
		if v := num("allot", "latency", key); math.Abs(v-want) > want/500 {
			t.Errorf("latency.%s = %v, want %v", key, v, want)
		}
	}
	if v := num("allot", "responses", "409 sold_out"); v != 500 {
		t.Errorf(`responses["409 sold_out"] = %v, want 500`, v)
	}
	if v := num("throughput_ratio"); v != 0.25 {
		t.Errorf("throughput_ratio = %v, want 0.25", v)
	}
	if v := num("redis_ratio"); v != 0.5 {
		t.Errorf("redis_ratio = %v, want 0.5", v)
	}
	if v := num("redis_lua", "throughput_rps"); v != 1000 {
		t.Errorf("redis_lua.throughput_rps = %v, want 1000", v)
	}
	if get("redis_check", "pass") != true {
		t.Error("redis_check.pass should be true")
	}
	if v := num("setup_s"); v != 0.5 {
		t.Errorf("setup_s = %v", v)
	}
	ops := get("allot", "operations").([]any)
	if len(ops) != 1 || ops[0].(map[string]any)["name"] != "reserve" {
		t.Errorf("operations = %v", ops)
	}
	if get("verify", "pass") != false {
		t.Error("verify.pass should be false")
	}
	var back Report
	if err := json.Unmarshal(b, &back); err != nil || back.Allot.Latency != sample().Allot.Latency || len(back.Verify.Checks) != 2 {
		t.Errorf("round trip: %v, %+v", err, back.Allot)
	}
}

func TestTextSummary(t *testing.T) {
	var buf bytes.Buffer
	sample().WriteText(&buf)
	out := buf.String()
	for _, want := range []string{"verify: FAIL", "FAIL acknowledged_reservations_present", "reservation r1 is missing",
		"allot throughput = 0.250 x baseline", "allot throughput = 0.500 x redis-lua", "redis-lua check: PASS",
		"409 sold_out: 500", "500.0 req/s",
		"fdatasync of a page p50 2.00 ms, p99 9.00 ms (200 samples); 64 clients each waiting for a durable commit get at most ~16000 answers/s"} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
}

func TestTextSummaryStream(t *testing.T) {
	r := sample()
	r.Verify.Stream = &verify.StreamSummary{Skipped: "the target answers 404 on GET /v1/events"}
	var buf bytes.Buffer
	r.WriteText(&buf)
	if want := "stream: SKIPPED, not checked: the target answers 404"; !strings.Contains(buf.String(), want) {
		t.Errorf("summary lacks %q:\n%s", want, buf.String())
	}
	r.Verify.Stream = &verify.StreamSummary{After: 0, Head: 120, Events: 120, Reservations: 80, Created: 80, Transitions: 30}
	buf.Reset()
	r.WriteText(&buf)
	if want := "stream: 120 events (1..120), 80 reservations on the resources checked: 80 created, 30 later transitions"; !strings.Contains(buf.String(), want) {
		t.Errorf("summary lacks %q:\n%s", want, buf.String())
	}
	b, err := json.Marshal(r)
	if err != nil || !strings.Contains(string(b), `"stream":{"after":0,"head":120,"events":120,"reservations":80,"created":80,"transitions":30}`) {
		t.Errorf("JSON %s, %v", b, err)
	}
}

// TestTextSummarySkippedCheck: a skipped check says so, and is neither
// "ok" nor "FAIL"; limit groups show in the header.
func TestTextSummarySkippedCheck(t *testing.T) {
	r := sample()
	r.Limits = 7
	r.Verify.Checks = append(r.Verify.Checks, verify.Check{Name: "limit_per_user", Skipped: "the target answers 404 on /v1/limits"})
	var buf bytes.Buffer
	r.WriteText(&buf)
	out := buf.String()
	for _, want := range []string{"in 7 limit groups", "skip limit_per_user", "SKIPPED, not checked: the target answers 404 on /v1/limits"} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "ok   limit_per_user") || strings.Contains(out, "FAIL limit_per_user") {
		t.Errorf("a skipped check reads as run:\n%s", out)
	}
}

// TestSweep: one step per concurrency, each with its runs and ratios, in
// the JSON and as a table; a failure in any step fails the report.
func TestSweep(t *testing.T) {
	r := &Report{Scenario: "accept"}
	for i, c := range []int{64, 256} {
		s := Step{Concurrency: c}
		s.Allot = NewRun(result(int64(1000*(i+1))), Shape{Concurrency: c})
		s.Baseline = NewRun(result(4000), Shape{Concurrency: c})
		s.RedisLua = NewRun(result(1000), Shape{Concurrency: c})
		s.SetRatios()
		s.Verify = &Verification{Pass: true, Checks: []verify.Check{{Name: "no_oversell", Checked: 10}}}
		r.Sweep = append(r.Sweep, s)
	}
	if r.Failed() {
		t.Fatal("a passing sweep failed")
	}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Allot *Run `json:"allot"`
		Sweep []struct {
			Concurrency     int     `json:"concurrency"`
			ThroughputRatio float64 `json:"throughput_ratio"`
			RedisRatio      float64 `json:"redis_ratio"`
			Allot           struct {
				ThroughputRPS float64 `json:"throughput_rps"`
				Latency       Latency `json:"latency"`
			} `json:"allot"`
		} `json:"sweep"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Allot != nil || len(doc.Sweep) != 2 || doc.Sweep[1].Concurrency != 256 || doc.Sweep[1].RedisRatio != 2 ||
		doc.Sweep[0].ThroughputRatio != 0.25 || doc.Sweep[1].Allot.Latency.P99Ms == 0 {
		t.Fatalf("sweep JSON %s", b)
	}
	var buf bytes.Buffer
	r.WriteText(&buf)
	out := buf.String()
	for _, want := range []string{"concurrency", "redis-lua", "\n           64        500       2000        500     0.250     1.000", "\n          256       1000"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "ok   ") {
		t.Errorf("a sweep lists the checks that passed:\n%s", out)
	}
	r.Sweep[1].RedisCheck = &redislua.Audit{Pass: false}
	if !r.Failed() {
		t.Error("a failed Redis audit in a step does not fail the report")
	}
	r.Sweep[1].RedisCheck = nil
	r.Sweep[0].Verify.Pass = false
	if !r.Failed() {
		t.Error("a failed verification in a step does not fail the report")
	}
}
