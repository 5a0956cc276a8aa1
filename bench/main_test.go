package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestOptions(t *testing.T) {
	o, err := parseOptions(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.scenario != "seckill" || len(o.targets) != 0 || o.duration.Seconds() != 20 || o.rate != 0 || !o.verify {
		t.Errorf("defaults: %+v", o)
	}
	o, err = parseOptions([]string{"--target", "http://10.0.0.1:8080/, http://10.0.0.2:8080", "--rate", "500"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(o.targets, " ") != "http://10.0.0.1:8080 http://10.0.0.2:8080" || o.rate != 500 {
		t.Errorf("targets %q rate %v", o.targets, o.rate)
	}
	for _, args := range [][]string{
		{"--nodes", "0"},
		{"--nodes", "8"},
		{"--nodes", "3", "--target", "http://10.0.0.1:8080"},
		{"--scenario", "casino"},
		{"--target", "10.0.0.1:8080"},
		{"--target", "http://h:1/v1"},
		{"--concurrency", "0"},
		{"--duration", "0s"},
		{"--rate", "-1"},
		{"--stock", "0"},
		{"--scenario", "campaign", "--campaign-quota", "0"},
		{"--auth-secret-file", "x"},
		{"extra"},
		{"--sweep", "64,x"},
		{"--sweep", "64,0"},
		{"--sweep", "64,256", "--rate", "100"},
		{"--sweep", "1,2,3,4,5,6,7,8,9"},
		{"--redis", "--scenario", "hospital"},
		{"--redis", "--scenario", "campaign"},
		{"--redis", "--scenario", "mixed"},
	} {
		if _, err := parseOptions(args, io.Discard); err == nil {
			t.Errorf("%q accepted", args)
		}
	}
	if o, err := parseOptions([]string{"--sweep", "64, 256,1024", "--redis", "--scenario", "accept"}, io.Discard); err != nil ||
		fmt.Sprint(o.sweep) != "[64 256 1024]" || !o.redis {
		t.Errorf("--sweep 64,256,1024 --redis: %v, sweep %v redis %v", err, o.sweep, o.redis)
	}
	for _, sc := range []string{"seckill", "soldout", "accept"} {
		if _, err := parseOptions([]string{"--redis", "--scenario", sc}, io.Discard); err != nil {
			t.Errorf("--redis --scenario %s: %v", sc, err)
		}
	}
	if o, err := parseOptions([]string{"--nodes", "3"}, io.Discard); err != nil || o.nodes != 3 {
		t.Errorf("--nodes 3: %v, nodes %d", err, o.nodes)
	}
	if _, err := parseOptions([]string{"--nodes", "8"}, io.Discard); err == nil || !strings.Contains(err.Error(), "at most 7") {
		t.Errorf("--nodes 8: %v, want a clear refusal", err)
	}
}

// TestRedisNeedsTheServer: without redis-server on PATH, --redis stops
// before any load, naming the package to install.
func TestRedisNeedsTheServer(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	var out, errs bytes.Buffer
	if code := run([]string{"--redis", "--scenario", "accept", "--duration", "1s"}, &out, &errs); code != exitError {
		t.Fatalf("exit %d, want %d", code, exitError)
	}
	if !strings.Contains(errs.String(), "apt-get install redis-server") {
		t.Errorf("stderr %q does not say how to install redis-server", errs.String())
	}
}

func TestTargetNeedsSecret(t *testing.T) {
	t.Setenv("ALLOT_AUTH_SECRET", "")
	var out, errs bytes.Buffer
	if code := run([]string{"--target", "http://127.0.0.1:1"}, &out, &errs); code != exitError {
		t.Fatalf("exit %d, want %d", code, exitError)
	}
	if !strings.Contains(errs.String(), "ALLOT_AUTH_SECRET") {
		t.Errorf("stderr %q does not say where the secret comes from", errs.String())
	}
}

// TestEmbeddedRun is the whole tool end to end: an embedded node, a small
// seckill that sells out, the read-back and verification, the JSON report.
func TestEmbeddedRun(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an embedded node")
	}
	path := filepath.Join(t.TempDir(), "report.json")
	var out, errs bytes.Buffer
	// The run ends once the 400 users have tried; --duration only bounds it.
	code := run([]string{"--duration", "30s", "--concurrency", "8", "--vouchers", "2", "--stock", "40",
		"--users", "400", "--json", path}, &out, &errs)
	if code != exitPass {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errs.String())
	}
	if !strings.Contains(out.String(), "verify: PASS") {
		t.Errorf("summary lacks the verdict:\n%s", out.String())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Allot struct {
			Requests      int64            `json:"requests"`
			ThroughputRPS float64          `json:"throughput_rps"`
			Responses     map[string]int64 `json:"responses"`
		} `json:"allot"`
		Verify struct {
			Pass         bool `json:"pass"`
			Acknowledged int  `json:"acknowledged"`
			Stream       *struct {
				Skipped string `json:"skipped"`
				Created int    `json:"created"`
			} `json:"stream"`
		} `json:"verify"`
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	// 400 users race for 80 units, each trying once; a few try twice.
	if rep.Allot.Requests < 400 || rep.Allot.ThroughputRPS <= 0 || !rep.Verify.Pass {
		t.Errorf("report: %+v", rep)
	}
	if got := rep.Allot.Responses["201"]; got != 80 || rep.Verify.Acknowledged != 80 {
		t.Errorf("%d answered 201, %d acknowledged; want the 80 units sold exactly", got, rep.Verify.Acknowledged)
	}
	if rep.Allot.Responses["409 sold_out"] == 0 {
		t.Errorf("no sold_out answers: %v", rep.Allot.Responses)
	}
	// The change stream is checked when the node has one, and its skip is
	// said out loud when not.
	switch s := rep.Verify.Stream; {
	case s == nil:
		t.Error("the report says nothing of the change stream")
	case s.Skipped != "":
		if !strings.Contains(out.String(), "stream: SKIPPED") {
			t.Errorf("the summary does not say the stream was skipped:\n%s", out.String())
		}
		t.Logf("stream checks skipped: %s", s.Skipped)
	case s.Created != 80:
		t.Errorf("the stream creates %d reservations, want the 80 acknowledged", s.Created)
	}
}

// TestEmbeddedCampaign: the campaign's quota, not the vouchers' stock,
// sells out; its refusals are limit_exceeded of the limit group, and the
// limit checks run and pass on the state read back.
func TestEmbeddedCampaign(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an embedded node")
	}
	path := filepath.Join(t.TempDir(), "report.json")
	var out, errs bytes.Buffer
	code := run([]string{"--scenario", "campaign", "--duration", "2s", "--concurrency", "8",
		"--campaign-vouchers", "3", "--campaign-stock", "60", "--campaign-quota", "100", "--json", path}, &out, &errs)
	if code != exitPass {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errs.String())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Limits int `json:"limit_groups"`
		Allot  struct {
			Responses map[string]int64 `json:"responses"`
		} `json:"allot"`
		Verify struct {
			Pass   bool `json:"pass"`
			Checks []struct {
				Name     string `json:"name"`
				Checked  int64  `json:"checked"`
				Failures int64  `json:"failures"`
				Skipped  string `json:"skipped"`
			} `json:"checks"`
		} `json:"verify"`
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	if !rep.Verify.Pass || rep.Limits != 1 {
		t.Fatalf("report: %+v", rep)
	}
	// The quota refuses for its capacity; a user's second coupon, had the
	// quota room left, for the per-user bound: counted apart.
	if rep.Allot.Responses["409 limit_exceeded (limit group capacity)"] == 0 || rep.Allot.Responses["409 sold_out"] != 0 ||
		rep.Allot.Responses["409 limit_exceeded (limit group)"] != 0 {
		t.Errorf("responses %v: want the quota refusing by its capacity, no voucher sold out", rep.Allot.Responses)
	}
	checked := map[string]int64{}
	for _, c := range rep.Verify.Checks {
		if c.Skipped != "" {
			t.Errorf("%s skipped: %s", c.Name, c.Skipped)
		}
		checked[c.Name] = c.Checked
	}
	for _, name := range []string{"limit_taken_matches_members", "limit_capacity", "limit_per_user", "limit_acknowledged_per_user"} {
		if checked[name] == 0 {
			t.Errorf("%s checked nothing (checks %v)", name, checked)
		}
	}
}

// TestEmbeddedCluster runs a small seckill against a 3-node embedded
// cluster, as --nodes 3 does, and checks that it verifies and that every
// node took reservation requests.
func TestEmbeddedCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an embedded cluster")
	}
	secret := "bench-cluster-test-secret-0123456789abcdef"
	urls, stop, err := startCluster(context.Background(), 3, []byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := stop(); err != nil {
			t.Errorf("stop: %v", err)
		}
	}()
	t.Setenv("ALLOT_AUTH_SECRET", secret)
	var out, errs bytes.Buffer
	code := run([]string{"--target", strings.Join(urls, ","), "--duration", "20s", "--concurrency", "6",
		"--vouchers", "2", "--stock", "20", "--users", "200"}, &out, &errs)
	if code != exitPass {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errs.String())
	}
	if !strings.Contains(out.String(), "verify: PASS") {
		t.Errorf("summary lacks the verdict:\n%s", out.String())
	}
	for _, u := range urls {
		if n := reserveRequests(t, u); n == 0 {
			t.Errorf("%s answered no reservation requests", u)
		}
	}
}

// reserveRequests sums allot_http_requests_total of the reserve route in
// base's /metrics.
func reserveRequests(t *testing.T, base string) float64 {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, line := range strings.Split(string(body), "\n") {
		if !strings.HasPrefix(line, "allot_http_requests_total{") || !strings.Contains(line, `reservations"`) || !strings.Contains(line, `method="POST"`) {
			continue
		}
		var v float64
		if _, err := fmt.Sscan(line[strings.LastIndexByte(line, ' ')+1:], &v); err == nil {
			sum += v
		}
	}
	return sum
}

// reportOf runs the bench with args and a JSON report, wants exit code
// want, and returns the report decoded into v.
func reportOf(t *testing.T, args []string, want int, v any) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "report.json")
	var out, errs bytes.Buffer
	if code := run(append(args, "--json", path), &out, &errs); code != want {
		t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, want, out.String(), errs.String())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

// pathReport is the part of the JSON report the path scenarios check.
type pathReport struct {
	Allot struct {
		Requests  int64            `json:"requests"`
		Responses map[string]int64 `json:"responses"`
	} `json:"allot"`
	Verify struct {
		Pass         bool `json:"pass"`
		Acknowledged int  `json:"acknowledged"`
		Reservations int  `json:"reservations"`
	} `json:"verify"`
}

// TestEmbeddedSoldOut: the stock is sold in setup, so every measured
// reserve is a sold_out, and the state read back holds exactly the
// presale's reservations.
func TestEmbeddedSoldOut(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an embedded node")
	}
	var rep pathReport
	reportOf(t, []string{"--scenario", "soldout", "--duration", "1s", "--concurrency", "8", "--vouchers", "2", "--stock", "20"}, exitPass, &rep)
	if rep.Allot.Requests == 0 || rep.Allot.Responses["409 sold_out"] != rep.Allot.Requests {
		t.Errorf("responses %v of %d requests: want every one sold_out", rep.Allot.Responses, rep.Allot.Requests)
	}
	if !rep.Verify.Pass || rep.Verify.Acknowledged != 40 || rep.Verify.Reservations != 40 {
		t.Errorf("verify %+v: want the 40 units sold in setup, and nothing else", rep.Verify)
	}
}

// TestEmbeddedAccept: every measured reserve is a new reservation.
func TestEmbeddedAccept(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an embedded node")
	}
	var rep pathReport
	reportOf(t, []string{"--scenario", "accept", "--duration", "1s", "--concurrency", "8", "--vouchers", "2"}, exitPass, &rep)
	n := rep.Allot.Responses["201"]
	if n == 0 || n != rep.Allot.Requests || !rep.Verify.Pass || int64(rep.Verify.Acknowledged) != n || int64(rep.Verify.Reservations) != n {
		t.Errorf("responses %v of %d requests, verify %+v: want every request a reservation", rep.Allot.Responses, rep.Allot.Requests, rep.Verify)
	}
}

// TestSweep: one step per concurrency, each with its own fresh resources,
// verified on its own, with the baseline (and Redis, when installed) beside
// it and the ratios stated.
func TestSweep(t *testing.T) {
	if testing.Short() {
		t.Skip("starts embedded nodes")
	}
	args := []string{"--scenario", "soldout", "--sweep", "2,4", "--duration", "500ms", "--vouchers", "2", "--stock", "5", "--baseline"}
	_, err := exec.LookPath("redis-server")
	redis := err == nil
	if redis {
		args = append(args, "--redis")
	} else {
		t.Log("redis-server not on PATH: the sweep runs without --redis")
	}
	var rep struct {
		Allot *struct{} `json:"allot"`
		Sweep []struct {
			Concurrency     int     `json:"concurrency"`
			ThroughputRatio float64 `json:"throughput_ratio"`
			RedisRatio      float64 `json:"redis_ratio"`
			pathReport
			Baseline   *struct{ Concurrency int } `json:"baseline"`
			RedisCheck *struct {
				Pass bool  `json:"pass"`
				Sold int64 `json:"sold"`
			} `json:"redis_check"`
		} `json:"sweep"`
	}
	out := reportOf(t, args, exitPass, &rep)
	if rep.Allot != nil || len(rep.Sweep) != 2 {
		t.Fatalf("report has %d steps (top-level allot %v):\n%s", len(rep.Sweep), rep.Allot, out)
	}
	for i, st := range rep.Sweep {
		if want := []int{2, 4}[i]; st.Concurrency != want || st.Baseline == nil || st.Baseline.Concurrency != want {
			t.Errorf("step %d: concurrency %d, baseline %+v; want %d", i, st.Concurrency, st.Baseline, want)
		}
		// Fresh resources each step: only that step's 10 presold units.
		if !st.Verify.Pass || st.Verify.Reservations != 10 || st.Allot.Responses["409 sold_out"] != st.Allot.Requests || st.ThroughputRatio <= 0 {
			t.Errorf("step %d: %+v", i, st)
		}
		if redis && (st.RedisRatio <= 0 || st.RedisCheck == nil || !st.RedisCheck.Pass || st.RedisCheck.Sold != 10) {
			t.Errorf("step %d: redis ratio %v, check %+v", i, st.RedisRatio, st.RedisCheck)
		}
	}
	if !strings.Contains(out, "sweep, closed loop") {
		t.Errorf("no sweep table:\n%s", out)
	}
}

func TestScaleOptions(t *testing.T) {
	o, err := parseOptions([]string{"--scale", "--scale-resources", "200", "--scale-reservations", "2000", "--scale-timeout", "1m"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !o.scaleMode || o.scale.Resources != 200 || o.scale.Reservations != 2000 || o.scale.Timeout.Minutes() != 1 {
		t.Errorf("scale options: %+v", o.scale)
	}
	if o, err := parseOptions(nil, io.Discard); err != nil || o.scaleMode || o.scale.Resources != 1_000_000 || o.scale.Reservations != 10_000_000 {
		t.Errorf("defaults: %v, %+v", err, o.scale)
	}
	for _, args := range [][]string{
		{"--scale", "--target", "http://10.0.0.1:8080"},
		{"--scale", "--nodes", "3"},
		{"--scale", "--baseline"},
		{"--scale", "--redis"},
		{"--scale", "--sweep", "64,256"},
		{"--scale", "--scale-resources", "0"},
		{"--scale", "--scale-timeout", "0s"},
	} {
		if _, err := parseOptions(args, io.Discard); err == nil {
			t.Errorf("%q accepted", args)
		}
	}
}
