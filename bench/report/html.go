package report

import (
	_ "embed"
	"html/template"
	"os"
	"sort"
	"strconv"

	"allot/bench/redislua"
)

//go:embed report.html.tmpl
var htmlSource string

// htmlTemplate renders WriteHTML's file.
var htmlTemplate = template.Must(template.New("report").Parse(htmlSource))

// htmlRun is one load run as the page shows it. Path is the run's place in
// the JSON report ("allot", "sweep.1.baseline"): every number the page
// prints carries its JSON path in a data-json attribute, so that a test
// can hold the page to the JSON.
type htmlRun struct {
	Title      string
	Path       string
	Run        *Run
	Throughput template.HTML
	Latency    template.HTML
	Mix        []mixRow
}

// minChartedSecond is the shortest last second the charts show: a sliver
// at the end of a run holds the last few answers, whose rate and
// percentiles say little. The JSON report keeps it.
const minChartedSecond = 0.25

// chartedSeconds is r's timeline without a last second shorter than
// minChartedSecond.
func chartedSeconds(r *Run) []Interval {
	t := r.Timeline
	for len(t) > 0 && r.DurationS-t[len(t)-1].StartS < minChartedSecond {
		t = t[:len(t)-1]
	}
	return t
}

// mixRow is one kind of answer in a run's outcome mix.
type mixRow struct {
	Kind    string
	Count   int64
	Percent float64
}

// htmlVerify is one verification as the page shows it, with the Redis
// audit of the same step (AuditPath is its place in the JSON report).
type htmlVerify struct {
	Title     string
	Path      string
	Verify    *Verification
	Audit     *redislua.Audit
	AuditPath string
}

// htmlView is what the template renders.
type htmlView struct {
	Report   *Report
	Runs     []htmlRun
	Verifies []htmlVerify
	Failed   bool
}

// WriteHTML writes the report as one self-contained HTML file: inline CSS
// and SVG, no script that runs and nothing fetched, so it opens offline
// and can be mailed. The JSON report is embedded in it as data.
func (r *Report) WriteHTML(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := htmlTemplate.Execute(f, r.htmlView()); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func (r *Report) htmlView() htmlView {
	v := htmlView{Report: r, Failed: r.Failed()}
	add := func(prefix, label string, m *Measured) {
		for _, run := range []struct {
			key, title string
			r          *Run
		}{
			{"allot", "allot", m.Allot},
			{"baseline", "baseline: bare gin JSON handler", m.Baseline},
			{"redis_lua", "redis-lua: gin + go-redis + seckill Lua, persistence off", m.RedisLua},
		} {
			if run.r != nil {
				v.Runs = append(v.Runs, newHTMLRun(label+run.title, prefix+run.key, run.r))
			}
		}
		if m.Verify != nil || m.RedisCheck != nil {
			v.Verifies = append(v.Verifies, htmlVerify{Title: label + "verification", Path: prefix + "verify", Verify: m.Verify,
				Audit: m.RedisCheck, AuditPath: prefix + "redis_check"})
		}
	}
	add("", "", &r.Measured)
	for i := range r.Sweep {
		s := &r.Sweep[i]
		add("sweep."+strconv.Itoa(i)+".", strconv.Itoa(s.Concurrency)+" connections: ", &s.Measured)
	}
	return v
}

func newHTMLRun(title, path string, r *Run) htmlRun {
	shown := chartedSeconds(r)
	xs := make([]float64, len(shown))
	ok, rej, thr, fail := make([]float64, len(xs)), make([]float64, len(xs)), make([]float64, len(xs)), make([]float64, len(xs))
	p50, p90, p99, mx := make([]float64, len(xs)), make([]float64, len(xs)), make([]float64, len(xs)), make([]float64, len(xs))
	for i, t := range shown {
		xs[i] = t.StartS
		// The last second may be cut short by the end of the run: its
		// counts are a rate over what it lasted.
		width := min(r.DurationS-t.StartS, 1)
		ok[i], rej[i], thr[i], fail[i] = float64(t.OK)/width, float64(t.Rejected)/width, float64(t.Throttled)/width, float64(t.Failed)/width
		p50[i], p90[i], p99[i], mx[i] = t.Latency.P50Ms, t.Latency.P90Ms, t.Latency.P99Ms, t.Latency.MaxMs
	}
	hr := htmlRun{
		Title: title, Path: path, Run: r,
		Throughput: lineChart(title+": answers per second by outcome", "answers/s", xs, []series{
			{"2xx accepted", "ok", ok}, {"409/422 refused", "rejected", rej},
			{"429/503 throttled", "throttled", thr}, {"other, timeouts, transport errors", "failed", fail},
		}, false),
		Latency: lineChart(title+": latency percentiles per second", "ms (log scale)", xs, []series{
			{"p50", "p50", p50}, {"p90", "p90", p90}, {"p99", "p99", p99}, {"max", "max", mx},
		}, true),
	}
	var total int64
	for _, n := range r.Responses {
		total += n
	}
	for k, n := range r.Responses {
		row := mixRow{Kind: k, Count: n}
		if total > 0 {
			row.Percent = 100 * float64(n) / float64(total)
		}
		hr.Mix = append(hr.Mix, row)
	}
	sort.Slice(hr.Mix, func(i, j int) bool {
		if hr.Mix[i].Count != hr.Mix[j].Count {
			return hr.Mix[i].Count > hr.Mix[j].Count
		}
		return hr.Mix[i].Kind < hr.Mix[j].Kind
	})
	return hr
}
