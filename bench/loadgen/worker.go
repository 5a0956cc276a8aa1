package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// maxBody bounds how much of an answer is read.
const maxBody = 1 << 20

// worker sends one request at a time and records what it measured. Only
// its own goroutine touches it, except the live counters.
type worker struct {
	d     *driver
	src   WorkerSource
	base  string
	timer *time.Timer

	call    Call
	resp    Response
	buf     bytes.Buffer
	problem struct {
		Code  string `json:"code"`
		Limit string `json:"limit"`
		Rule  string `json:"rule"`
	}

	hist     []*hdrhistogram.Histogram // per op, created on first use
	codes    map[CodeKey]int64
	late     int64
	lastDone time.Time
	pending  sampleBatch // measured answers not yet in the timeline
	live     [liveCount]atomic.Int64
	_        [64]byte // keep the next worker's counters off this cache line
}

func newWorker(d *driver, id int, src WorkerSource) *worker {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return &worker{
		d:     d,
		src:   src,
		base:  d.cfg.Targets[id%len(d.cfg.Targets)],
		timer: t,
		hist:  make([]*hdrhistogram.Histogram, len(d.cfg.Ops)),
		codes: make(map[CodeKey]int64),
	}
}

// sleep waits d or until ctx is done; it reports whether ctx is still live.
func (w *worker) sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	w.timer.Reset(d)
	select {
	case <-w.timer.C:
		return true
	case <-ctx.Done():
		w.timer.Stop()
		return false
	}
}

func (w *worker) run(ctx context.Context) {
	for ctx.Err() == nil {
		now := time.Now()
		wait := w.src.Next(now, &w.call)
		if wait < 0 {
			return
		}
		if wait > 0 {
			// Nothing due: idle, but not past the end of the run.
			if !now.Before(w.d.end) || !w.sleep(ctx, min(wait, maxIdle, w.d.end.Sub(now))) {
				return
			}
			continue
		}
		intended, measured, ok := w.d.claim(now)
		if !ok {
			return
		}
		if w.d.interval > 0 && !w.sleep(ctx, time.Until(intended)) {
			return
		}
		sent := time.Now()
		if w.d.interval == 0 {
			intended = sent
		} else if measured && sent.Sub(intended) >= LateThreshold {
			w.late++
		}
		w.send(ctx)
		done := time.Now()
		w.resp.Latency = done.Sub(intended)
		w.record(measured, done)
		w.src.Done(&w.call, &w.resp, done)
	}
}

// send performs w.call and fills w.resp.
func (w *worker) send(ctx context.Context) {
	c := &w.call
	w.resp = Response{}
	var body io.Reader = http.NoBody
	if c.Body != nil {
		body = bytes.NewReader(c.Body)
	}
	req, err := http.NewRequestWithContext(ctx, c.Method, w.base+c.Path, body)
	if err != nil {
		w.fail(err)
		return
	}
	if c.Body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.Auth != "" {
		req.Header.Set("Authorization", c.Auth)
	}
	if c.IdemKey != "" {
		req.Header.Set("Idempotency-Key", c.IdemKey)
	}
	res, err := w.d.cfg.Client.Do(req)
	if err != nil {
		w.fail(err)
		return
	}
	w.buf.Reset()
	_, err = w.buf.ReadFrom(io.LimitReader(res.Body, maxBody))
	res.Body.Close()
	if err != nil {
		w.fail(err)
		return
	}
	w.resp.Status = res.StatusCode
	w.resp.Body = w.buf.Bytes()
	w.resp.Replayed = res.Header.Get("Idempotent-Replayed") == "true"
	if ra := res.Header.Get("Retry-After"); ra != "" {
		if s, err := strconv.Atoi(ra); err == nil && s >= 0 {
			w.resp.RetryAfter = time.Duration(s) * time.Second
		}
	}
	if res.StatusCode >= 400 {
		w.problem.Code, w.problem.Limit, w.problem.Rule = "", "", ""
		if json.Unmarshal(w.resp.Body, &w.problem) == nil {
			w.resp.Code, w.resp.Limit, w.resp.Rule = w.problem.Code, w.problem.Limit, w.problem.Rule
		}
	}
}

func (w *worker) fail(err error) {
	w.resp.Err = err
	w.resp.Code = "transport_error"
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout() {
		w.resp.Code = "timeout"
	}
}

// record counts the answer live and, when measured, in the histograms.
func (w *worker) record(measured bool, done time.Time) {
	r := &w.resp
	class := liveFailed
	switch {
	case r.Status >= 200 && r.Status < 300:
		class = liveOK
	case r.Status == http.StatusConflict || r.Status == http.StatusUnprocessableEntity:
		class = liveRejected
	case r.Status == http.StatusTooManyRequests || r.Status == http.StatusServiceUnavailable:
		class = liveThrottled
	}
	w.live[class].Add(1)
	if !measured {
		return
	}
	h := w.hist[w.call.Op]
	if h == nil {
		h = newHistogram()
		w.hist[w.call.Op] = h
	}
	us := min(max(r.Latency.Microseconds(), histMin), histMax)
	_ = h.RecordValue(us) // clamped: cannot fail
	w.pending.add(w.d.timeline, done, class, us)
	key := CodeKey{Status: r.Status, Code: r.Code}
	if r.Limit != "" {
		key.Group, key.Rule = true, r.Rule
	}
	w.codes[key]++
	w.lastDone = done
}
