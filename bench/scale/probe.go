package scale

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"
)

// probe commits one small reservation at a time, back to back, and keeps
// when each was sent and how long it took to commit: what a client sees
// of a pause of the log. A call refused before anything was proposed
// (unavailable: a resource reloading after a failed commit, say) is sent
// again after a short wait, as a client retries a 503, and the commit's
// time runs from its first attempt.
type probe struct {
	commit func(ctx context.Context) error

	mu       sync.Mutex
	samples  []sample
	quit     chan struct{}
	stopOnce sync.Once
	done     chan struct{}
}

type sample struct {
	at      time.Time
	lat     time.Duration
	failed  bool // it ended in an error that is not retried (an unknown outcome)
	retries int
}

// probeRetryWait is the probe's wait before it sends a refused call again.
const probeRetryWait = 5 * time.Millisecond

// ProbeStats summarizes the probe's commits in one window: Commits counts
// them, the failed ones (Errors) included, whose wait counts in the
// latencies too; Retries counts the refused attempts sent again.
type ProbeStats struct {
	Commits int     `json:"commits"`
	Errors  int     `json:"errors"`
	Retries int     `json:"retries"`
	P50Ms   float64 `json:"p50_ms"`
	P99Ms   float64 `json:"p99_ms"`
	MaxMs   float64 `json:"max_ms"`
}

// startProbe runs commit until stop. stop lets the commit in flight finish
// (it is not cancelled), so that every reservation the probe made is
// committed, and counted, once stop returns.
func startProbe(ctx context.Context, commit func(ctx context.Context) error) *probe {
	p := &probe{commit: commit, quit: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		for {
			select {
			case <-p.quit:
				return
			case <-ctx.Done():
				return
			default:
			}
			at := time.Now()
			retries := 0
			err := p.commit(ctx)
			for errors.Is(classify(err, false), errRetry) && ctx.Err() == nil {
				retries++
				time.Sleep(probeRetryWait)
				err = p.commit(ctx)
			}
			lat := time.Since(at)
			p.mu.Lock()
			p.samples = append(p.samples, sample{at, lat, err != nil, retries})
			p.mu.Unlock()
		}
	}()
	return p
}

func (p *probe) stop() {
	p.stopOnce.Do(func() { close(p.quit) })
	<-p.done
}

// window summarizes the commits that were in flight at any moment between
// from and to: a commit sent before a pause and answered after it counts.
func (p *probe) window(from, to time.Time) ProbeStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	var lats []time.Duration
	errs, retries := 0, 0
	for _, s := range p.samples {
		if !s.at.Before(to) || !s.at.Add(s.lat).After(from) {
			continue
		}
		// A failed commit (an apply timeout) waited too: its wait counts.
		lats = append(lats, s.lat)
		retries += s.retries
		if s.failed {
			errs++
		}
	}
	st := ProbeStats{Commits: len(lats), Errors: errs, Retries: retries}
	if len(lats) == 0 {
		return st
	}
	slices.Sort(lats)
	q := func(f float64) float64 { return ms(lats[min(len(lats)-1, int(f*float64(len(lats))))]) }
	st.P50Ms, st.P99Ms, st.MaxMs = q(0.50), q(0.99), ms(lats[len(lats)-1])
	return st
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
