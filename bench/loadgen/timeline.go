package loadgen

import (
	"sync"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// Timeline histograms keep 2 significant digits: a percentile per second
// to within 1 %, at a tenth of the memory of the run's own histograms.
const timelineDigits = 2

// Outcome classes of an answer, as the progress line and the timeline
// count them.
const (
	liveOK        = iota // 2xx
	liveRejected         // 409, 422: the domain said no
	liveThrottled        // 429, 503
	liveFailed           // anything else, transport errors included
	liveCount
)

// Second is one second of the measured phase: its answers by class and
// their latency.
type Second struct {
	// Offset is the second's start, from the start of the measured phase.
	Offset    time.Duration
	OK        int64
	Rejected  int64
	Throttled int64
	Failed    int64
	// Latency holds the second's latencies in microseconds (2
	// significant digits).
	Latency *hdrhistogram.Histogram
}

// timeline gathers the measured answers per second of the run, shared by
// all workers. A worker batches its samples (pendingSamples) so that the
// lock is taken once per batch, not once per answer.
type timeline struct {
	start time.Time // start of the measured phase

	mu    sync.Mutex
	secs  []*Second
	total *hdrhistogram.Histogram // every flushed sample: the p99 so far
}

func newTimeline(start time.Time) *timeline {
	return &timeline{start: start, total: newTimelineHistogram()}
}

func newTimelineHistogram() *hdrhistogram.Histogram {
	return hdrhistogram.New(histMin, histMax, timelineDigits)
}

// sample is one measured answer waiting in a worker's batch.
type sample struct {
	sec   int32
	class uint8
	us    int64
}

// Batching bounds: a worker flushes after this many samples or this long,
// whichever comes first, so the p99 so far lags by at most about that.
const (
	pendingSamples = 128
	pendingAge     = 200 * time.Millisecond
)

// sampleBatch is a worker's samples not yet in the timeline.
type sampleBatch struct {
	s     []sample
	since time.Time // when the oldest pending sample was added
}

// add queues one answer, done at done, and flushes when the batch is full
// or old enough.
func (b *sampleBatch) add(t *timeline, done time.Time, class int, us int64) {
	sec := int32(done.Sub(t.start) / time.Second)
	if sec < 0 {
		sec = 0 // measured from an intended send just before the phase began
	}
	if len(b.s) == 0 {
		if b.s == nil {
			b.s = make([]sample, 0, pendingSamples)
		}
		b.since = done
	}
	b.s = append(b.s, sample{sec: sec, class: uint8(class), us: us})
	if len(b.s) == pendingSamples || done.Sub(b.since) >= pendingAge {
		t.flush(b)
	}
}

// flush moves b's samples into the timeline.
func (t *timeline) flush(b *sampleBatch) {
	if len(b.s) == 0 {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, s := range b.s {
		for int(s.sec) >= len(t.secs) {
			t.secs = append(t.secs, &Second{Offset: time.Duration(len(t.secs)) * time.Second, Latency: newTimelineHistogram()})
		}
		sec := t.secs[s.sec]
		switch s.class {
		case liveOK:
			sec.OK++
		case liveRejected:
			sec.Rejected++
		case liveThrottled:
			sec.Throttled++
		default:
			sec.Failed++
		}
		_ = sec.Latency.RecordValue(s.us) // clamped by the caller: cannot fail
		_ = t.total.RecordValue(s.us)
	}
	b.s = b.s[:0]
}

// p99 is the 99th percentile of the flushed samples so far; 0 before any.
func (t *timeline) p99() time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.total.TotalCount() == 0 {
		return 0
	}
	return time.Duration(t.total.ValueAtQuantile(99)) * time.Microsecond
}

// seconds returns the timeline; the workers have stopped and flushed.
func (t *timeline) seconds() []Second {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]Second, len(t.secs))
	for i, s := range t.secs {
		out[i] = *s
	}
	return out
}
