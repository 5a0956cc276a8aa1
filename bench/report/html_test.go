package report

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"allot/bench/loadgen"
	"allot/bench/verify"
)

// withTimeline gives res a timeline of secs seconds whose latencies grow
// second by second.
func withTimeline(res *loadgen.Result, secs int) *loadgen.Result {
	for i := range secs {
		h := hdrhistogram.New(1, int64(time.Minute/time.Microsecond), 2)
		for j := range 100 {
			h.RecordValue(int64((i + 1) * (j + 1) * 100))
		}
		res.Timeline = append(res.Timeline, loadgen.Second{
			Offset: time.Duration(i) * time.Second, OK: int64(50 + i), Rejected: 40, Throttled: 8, Failed: int64(2 - i%2),
			Latency: h,
		})
	}
	return res
}

func writeHTML(t *testing.T, r *Report) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "report.html")
	if err := r.WriteHTML(path); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestHTMLOpensOffline: the page names nothing to fetch: no external
// script, style sheet, image, font or frame, and no script that runs.
func TestHTMLOpensOffline(t *testing.T) {
	r := sample()
	r.Allot = NewRun(withTimeline(result(1000), 3), Shape{Target: "embedded", Concurrency: 64})
	page := writeHTML(t, r)
	for _, bad := range []*regexp.Regexp{
		regexp.MustCompile(`(?i)\s(src|href|action|poster|srcset)\s*=`),
		regexp.MustCompile(`(?i)<(link|iframe|img|object|embed|base)\b`),
		regexp.MustCompile(`(?i)url\s*\(|@import`),
		regexp.MustCompile(`(?i)https?://[^"<\s]*\.(js|css|png|svg|woff2?)\b`),
	} {
		if m := bad.FindString(page); m != "" {
			t.Errorf("the page would fetch or link something: %q", m)
		}
	}
	scripts := regexp.MustCompile(`(?i)<script\b[^>]*>`).FindAllString(page, -1)
	if len(scripts) != 1 || !strings.Contains(scripts[0], `type="application/json"`) {
		t.Errorf("scripts %q: want only the embedded JSON data", scripts)
	}
	if !strings.Contains(page, "default-src 'none'") {
		t.Error("no Content-Security-Policy forbidding fetches")
	}
}

// TestHTMLNumbersEqualJSON: the JSON embedded in the page equals the JSON
// report, and every number the page shows (each carries its JSON path in
// data-json) is that path's value in the JSON report, rounded as shown.
func TestHTMLNumbersEqualJSON(t *testing.T) {
	for name, r := range map[string]*Report{"single": htmlSample(), "sweep": htmlSweep()} {
		t.Run(name, func(t *testing.T) {
			page := writeHTML(t, r)
			want, err := json.Marshal(r)
			if err != nil {
				t.Fatal(err)
			}
			var wantDoc, gotDoc any
			if err := json.Unmarshal(want, &wantDoc); err != nil {
				t.Fatal(err)
			}
			m := regexp.MustCompile(`(?s)<script type="application/json" id="allot-report">(.*?)</script>`).FindStringSubmatch(page)
			if m == nil {
				t.Fatal("no embedded JSON report")
			}
			if err := json.Unmarshal([]byte(m[1]), &gotDoc); err != nil {
				t.Fatalf("embedded JSON: %v", err)
			}
			if !reflect.DeepEqual(gotDoc, wantDoc) {
				t.Error("the embedded JSON differs from the JSON report")
			}
			cells := regexp.MustCompile(`data-json="([^"]+)">([^<]*)<`).FindAllStringSubmatch(page, -1)
			seen := map[string]bool{}
			for _, c := range cells {
				path, shown := c[1], c[2]
				seen[path] = true
				v, ok := lookup(wantDoc, path)
				if !ok {
					t.Errorf("%s: no such value in the JSON report", path)
					continue
				}
				jv, ok := v.(float64)
				if !ok {
					t.Errorf("%s: JSON value %v is not a number", path, v)
					continue
				}
				sv, err := strconv.ParseFloat(shown, 64)
				if err != nil {
					t.Errorf("%s: shown %q is not a number", path, shown)
					continue
				}
				decimals := 0
				if i := strings.IndexByte(shown, '.'); i >= 0 {
					decimals = len(shown) - i - 1
				}
				if math.Abs(sv-jv) > 0.5*math.Pow(10, -float64(decimals))+1e-9 {
					t.Errorf("%s: page shows %s, JSON has %v", path, shown, jv)
				}
			}
			for _, p := range mustShow[name] {
				if !seen[p] {
					t.Errorf("the page does not show %s", p)
				}
			}
			// One chart pair per run, each line with a point per second.
			lines := regexp.MustCompile(`<polyline class="line [a-z0-9]+" points="([^"]*)"`).FindAllStringSubmatch(page, -1)
			if want := 8 * len(runsOf(r)); len(lines) != want {
				t.Fatalf("%d chart lines, want %d", len(lines), want)
			}
			for i, l := range lines {
				run := runsOf(r)[i/8]
				// The seconds that began at least a quarter second before
				// the end of the measured phase.
				want := 0
				for _, s := range run.Timeline {
					if run.DurationS-s.StartS >= 0.25 {
						want++
					}
				}
				if n := len(strings.Fields(l[1])); n != want || want == 0 {
					t.Errorf("chart line %d has %d points, want %d of the run's %d seconds", i, n, want, len(run.Timeline))
				}
			}
		})
	}
}

var mustShow = map[string][]string{
	"single": {"allot.throughput_rps", "allot.latency.p99_ms", "baseline.requests", "redis_lua.latency.p50_ms",
		"throughput_ratio", "redis_ratio", "verify.checks.1.failures", "allot.responses.409 sold_out",
		"allot.operations.0.requests", "disk.fdatasync_p99_ms", "redis_check.sold"},
	"sweep": {"sweep.0.allot.throughput_rps", "sweep.1.baseline.latency.p99_ms", "sweep.1.verify.checks.0.checked"},
}

func htmlSample() *Report {
	r := sample()
	r.Allot = NewRun(withTimeline(result(1000), 3), Shape{Target: "embedded", Concurrency: 64})
	r.Baseline = NewRun(withTimeline(result(4000), 2), Shape{Target: "baseline", Concurrency: 64})
	r.RedisLua = NewRun(withTimeline(result(2000), 1), Shape{Target: "redis-lua", Concurrency: 64})
	r.SetRatios()
	return r
}

func htmlSweep() *Report {
	r := &Report{Scenario: "accept", CPUs: 2}
	for i, c := range []int{64, 256} {
		s := Step{Concurrency: c}
		s.Allot = NewRun(withTimeline(result(int64(1000*(i+1))), 2), Shape{Concurrency: c})
		s.Baseline = NewRun(withTimeline(result(4000), 2), Shape{Concurrency: c})
		s.SetRatios()
		s.Verify = &Verification{Pass: true, Checks: []verify.Check{{Name: "no_oversell", Checked: int64(10 + i)}}}
		r.Sweep = append(r.Sweep, s)
	}
	return r
}

// runsOf lists the runs in the order the page shows them.
func runsOf(r *Report) []*Run {
	var out []*Run
	add := func(m *Measured) {
		for _, run := range []*Run{m.Allot, m.Baseline, m.RedisLua} {
			if run != nil {
				out = append(out, run)
			}
		}
	}
	add(&r.Measured)
	for i := range r.Sweep {
		add(&r.Sweep[i].Measured)
	}
	return out
}

// lookup resolves a dotted path ("sweep.0.allot.requests") in decoded JSON.
func lookup(doc any, path string) (any, bool) {
	cur := doc
	for _, part := range strings.Split(path, ".") {
		switch v := cur.(type) {
		case map[string]any:
			next, ok := v[part]
			if !ok {
				return nil, false
			}
			cur = next
		case []any:
			i, err := strconv.Atoi(part)
			if err != nil || i < 0 || i >= len(v) {
				return nil, false
			}
			cur = v[i]
		default:
			return nil, false
		}
	}
	return cur, true
}
