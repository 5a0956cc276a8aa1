// Package loadgen drives HTTP load with a closed loop (a fixed number of
// workers, each sending as soon as its last answer came back) or an open
// loop (a fixed arrival rate). Latency is recorded per worker in HdrHistograms
// and merged at the end. In the open loop it is measured from the time a
// request was scheduled to be sent, not from when a worker got round to it,
// so a stalled server shows up as the waiting it causes (no coordinated
// omission, as in wrk2).
package loadgen

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// Histogram bounds: microseconds from 1 µs to 5 minutes, 3 significant digits.
const (
	histMin    = 1
	histMax    = int64(5 * time.Minute / time.Microsecond)
	histDigits = 3
)

// LateThreshold is how far behind its schedule an open-loop send may start
// before it counts in Result.LateSends: a sign that the workers (the
// connection pool) were all busy and the generator, not just the server, was
// the bottleneck.
const LateThreshold = 10 * time.Millisecond

// Exhausted is what WorkerSource.Next returns when a worker will never have
// anything more to send.
const Exhausted time.Duration = -1

// maxIdle bounds one idle wait of a worker whose source has nothing due, so
// that it notices the end of the run.
const maxIdle = 50 * time.Millisecond

// Call is one HTTP request. A WorkerSource fills it; Body is sent as is and
// must not change until Done.
type Call struct {
	Op      int    // index into Config.Ops
	Method  string // GET, PUT, POST
	Path    string // path and query, e.g. "/v1/resources/x/reservations"
	Body    []byte // JSON; nil for none
	Auth    string // Authorization header; "" for none
	IdemKey string // Idempotency-Key header; "" for none
}

// Response is the answer to a Call.
type Response struct {
	Status     int           // HTTP status; 0 when no response came
	Code       string        // problem details "code" of an error; "timeout" or "transport_error" when Status is 0
	Limit      string        // limit_exceeded: the refusing limit group's id, "" for the resource's own per_user_limit
	Rule       string        // limit_exceeded: the bound that refused, "per_user" or "capacity"
	Body       []byte        // valid only until Done returns
	RetryAfter time.Duration // from Retry-After, 0 if absent
	Replayed   bool          // Idempotent-Replayed: true
	Err        error         // transport error, if any
	Latency    time.Duration // from the intended send time (open loop) or the actual one (closed loop)
}

// Source produces the requests of a run.
type Source interface {
	// Worker returns the request generator of worker id. It is called once
	// per worker before the run; the generator is then used by that worker's
	// goroutine only, so it needs no locking of its own state.
	Worker(id int) WorkerSource
}

// WorkerSource generates one worker's requests and follows up on answers.
type WorkerSource interface {
	// Next fills c with the next call to send and returns 0. When nothing
	// is due yet it returns how long until something may be, and Exhausted
	// when nothing ever will be.
	Next(now time.Time, c *Call) time.Duration
	// Done reports the answer to the call Next filled last. It is called
	// for every call sent, also during warmup.
	Done(c *Call, r *Response, now time.Time)
}

// Config says how to drive the load.
type Config struct {
	// Targets are base URLs (http://host:port); worker i sends to
	// Targets[i%len(Targets)].
	Targets []string
	// Concurrency is the number of workers: requests in flight in the
	// closed loop, the most requests in flight in the open loop.
	Concurrency int
	// Rate is the open-loop arrival rate in requests per second; 0 runs a
	// closed loop.
	Rate float64
	// Warmup is sent but not recorded.
	Warmup time.Duration
	// Duration is the measured phase after Warmup.
	Duration time.Duration
	// Requests ends the measured phase after this many requests; 0 means
	// Duration alone ends it.
	Requests int64
	// Ops names the operations that Call.Op indexes.
	Ops []string
	// Client sends the requests. It should keep Concurrency connections
	// per target alive (see NewClient) and carry the per-request timeout.
	Client *http.Client
	// Progress, if set, is called about once a second from a goroutine of
	// its own while the run lasts.
	Progress func(Progress)
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	switch {
	case len(c.Targets) == 0:
		return errors.New("loadgen: no target")
	case c.Concurrency < 1:
		return errors.New("loadgen: concurrency must be at least 1")
	case c.Rate < 0:
		return errors.New("loadgen: rate must not be negative")
	case c.Duration <= 0:
		return errors.New("loadgen: duration must be positive; every run is bounded in time")
	case c.Warmup < 0 || c.Requests < 0:
		return errors.New("loadgen: warmup and requests must not be negative")
	case len(c.Ops) == 0:
		return errors.New("loadgen: no operations named")
	case c.Client == nil:
		return errors.New("loadgen: no HTTP client")
	}
	return nil
}

// Progress is a live view of a run, warmup included.
type Progress struct {
	Elapsed   time.Duration
	Requests  int64 // answered (or failed) so far
	OK        int64 // 2xx
	Rejected  int64 // 409, 422: the domain said no
	Throttled int64 // 429, 503
	Failed    int64 // anything else, transport errors included
	// P99 is the 99th percentile latency of the measured answers so far
	// (0 during warmup). Workers add their answers in batches, flushed when
	// full or, at the next answer, older than pendingAge: it lags by about
	// that while answers keep coming, longer behind a stalled worker.
	P99 time.Duration
}

// CodeKey identifies a kind of answer: HTTP status plus problem code.
// Group tells a limit_exceeded of a limit group (one booking a day
// whichever slot, a campaign's quota) from one of the resource's own
// per_user_limit, and Rule a group's per-user bound from its capacity
// ("per_user", "capacity"; "" from a server that does not say): they
// are different outcomes of a run.
type CodeKey struct {
	Status int
	Code   string
	Group  bool
	Rule   string
}

func (k CodeKey) String() string {
	switch {
	case k.Status == 0:
		return k.Code
	case k.Code == "":
		return strconv.Itoa(k.Status)
	case k.Group && k.Rule != "":
		return strconv.Itoa(k.Status) + " " + k.Code + " (limit group " + k.Rule + ")"
	case k.Group:
		return strconv.Itoa(k.Status) + " " + k.Code + " (limit group)"
	}
	return strconv.Itoa(k.Status) + " " + k.Code
}

// OpResult is the measured latency of one operation.
type OpResult struct {
	Name    string
	Latency *hdrhistogram.Histogram // microseconds
}

// Result is the measured phase of a run.
type Result struct {
	Open      bool          // open loop
	Elapsed   time.Duration // measured phase: end of warmup to the last measured answer
	Requests  int64         // measured requests answered
	Latency   *hdrhistogram.Histogram
	Ops       []OpResult // operations with at least one measured request, in Config.Ops order
	Codes     map[CodeKey]int64
	LateSends int64 // open loop: measured sends that started LateThreshold or more behind schedule
	// Timeline is the measured phase second by second.
	Timeline []Second
}

// Throughput is measured requests per second.
func (r *Result) Throughput() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Requests) / r.Elapsed.Seconds()
}

// newHistogram returns an empty latency histogram in microseconds.
func newHistogram() *hdrhistogram.Histogram { return hdrhistogram.New(histMin, histMax, histDigits) }

// Run drives src with cfg until the measured phase ends, ctx is cancelled
// or every worker is exhausted, waits for the requests in flight and returns
// what was measured. Cancelling ctx also aborts requests in flight.
func Run(ctx context.Context, cfg Config, src Source) (*Result, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	d := &driver{cfg: cfg, start: time.Now()}
	d.warmupEnd = d.start.Add(cfg.Warmup)
	d.end = d.warmupEnd.Add(cfg.Duration)
	d.timeline = newTimeline(d.warmupEnd)
	if cfg.Rate > 0 {
		d.interval = float64(time.Second) / cfg.Rate
		if cfg.Requests > 0 {
			d.maxSlot = int64(math.Ceil(float64(cfg.Warmup)/d.interval)) + cfg.Requests
		}
	}
	workers := make([]*worker, cfg.Concurrency)
	for i := range workers {
		workers[i] = newWorker(d, i, src.Worker(i))
	}
	stopProgress := d.progress(workers)
	var wg sync.WaitGroup
	for _, w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.run(ctx)
		}()
	}
	wg.Wait()
	stopProgress()
	if err := ctx.Err(); err != nil {
		return d.result(workers), fmt.Errorf("loadgen: run cut short: %w", err)
	}
	return d.result(workers), nil
}

// driver is the state the workers share: the clock of the run and, in the
// open loop, the schedule.
type driver struct {
	cfg       Config
	start     time.Time
	warmupEnd time.Time
	end       time.Time
	interval  float64 // open loop: nanoseconds between scheduled sends
	maxSlot   int64   // open loop: first slot past the request budget; 0 = none
	slot      atomic.Int64
	measured  atomic.Int64 // closed loop: measured sends so far
	timeline  *timeline
}

// claim reserves the next send and returns when it is meant to happen and
// whether it is measured; ok is false when the run has no sends left.
// In the open loop slot k is due at start + k/Rate, whichever worker takes
// it and however late.
func (d *driver) claim(now time.Time) (intended time.Time, measured, ok bool) {
	if d.interval > 0 {
		k := d.slot.Add(1) - 1
		intended = d.start.Add(time.Duration(float64(k) * d.interval))
		if !intended.Before(d.end) || d.maxSlot > 0 && k >= d.maxSlot {
			return intended, false, false
		}
		return intended, !intended.Before(d.warmupEnd), true
	}
	if !now.Before(d.end) {
		return now, false, false
	}
	measured = !now.Before(d.warmupEnd)
	if measured && d.cfg.Requests > 0 && d.measured.Add(1) > d.cfg.Requests {
		return now, false, false
	}
	return now, measured, true
}

func (d *driver) progress(workers []*worker) (stop func()) {
	if d.cfg.Progress == nil {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case now := <-t.C:
				p := Progress{Elapsed: now.Sub(d.start)}
				for _, w := range workers {
					p.OK += w.live[liveOK].Load()
					p.Rejected += w.live[liveRejected].Load()
					p.Throttled += w.live[liveThrottled].Load()
					p.Failed += w.live[liveFailed].Load()
				}
				p.Requests = p.OK + p.Rejected + p.Throttled + p.Failed
				p.P99 = d.timeline.p99()
				d.cfg.Progress(p)
			}
		}
	}()
	return func() {
		close(done)
		wg.Wait()
	}
}

// result merges the workers' records; it runs after they all stopped.
func (d *driver) result(workers []*worker) *Result {
	r := &Result{Open: d.interval > 0, Latency: newHistogram(), Codes: make(map[CodeKey]int64)}
	var last time.Time
	for i, name := range d.cfg.Ops {
		var h *hdrhistogram.Histogram
		for _, w := range workers {
			if w.hist[i] == nil {
				continue
			}
			if h == nil {
				h = newHistogram()
			}
			h.Merge(w.hist[i])
		}
		if h != nil {
			r.Ops = append(r.Ops, OpResult{Name: name, Latency: h})
			r.Latency.Merge(h)
		}
	}
	for _, w := range workers {
		for k, n := range w.codes {
			r.Codes[k] += n
		}
		r.LateSends += w.late
		if w.lastDone.After(last) {
			last = w.lastDone
		}
	}
	for _, w := range workers {
		d.timeline.flush(&w.pending)
	}
	r.Timeline = d.timeline.seconds()
	r.Requests = r.Latency.TotalCount()
	if r.Requests > 0 {
		r.Elapsed = last.Sub(d.warmupEnd)
	}
	return r
}
