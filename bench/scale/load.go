package scale

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"allot/actors/domain"
)

// Phase is what one loading phase did.
type Phase struct {
	// Done counts the calls acknowledged (committed); Unknown those whose
	// outcome stayed unknown (they may or may not be in the state);
	// Retries the calls refused before anything was proposed and sent
	// again.
	Done      int64   `json:"done"`
	Unknown   int64   `json:"unknown_outcomes"`
	Retries   int64   `json:"retries"`
	DurationS float64 `json:"duration_s"`
	// PerSecond is Done over the phase's duration.
	PerSecond float64 `json:"per_second"`
}

// retryWait is how long a call refused as unavailable (nothing proposed)
// waits before it is sent again.
const retryWait = 20 * time.Millisecond

// errRetry marks a call that may be sent again as it is: nothing of it was
// proposed.
var errRetry = errors.New("retry")

// callFn makes call i of a phase. It returns nil when acknowledged,
// domain.ErrOutcomeUnknown (wrapped) when its fate is unknown, errRetry
// when nothing was proposed, and anything else to end the phase.
type callFn func(ctx context.Context, i int64) error

// classify sorts an engine error for runPhase. idempotent calls (a put of
// a resource by its id) are sent again even after an unknown outcome.
func classify(err error, idempotent bool) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, domain.ErrUnavailable), errors.Is(err, domain.ErrNotLeader), errors.Is(err, domain.ErrRateLimited):
		return fmt.Errorf("%w: %w", errRetry, err)
	case errors.Is(err, domain.ErrOutcomeUnknown) && idempotent:
		return fmt.Errorf("%w: %w", errRetry, err)
	}
	return err
}

// runPhase makes calls 0..total-1 from conc goroutines, each taking the
// next index as soon as its previous call was answered: thousands in
// flight, so that the proposer's group commit fills its batches. Every
// progress period it writes a line with the count, the rate and the
// process's memory. It returns once every goroutine is gone.
func runPhase(ctx context.Context, name string, total int64, conc int, progress time.Duration, out io.Writer, call callFn) (Phase, error) {
	var (
		next, done, unknown, retries atomic.Int64
		errOnce                      sync.Once
		firstErr                     error
		wg                           sync.WaitGroup
	)
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	fail := func(err error) {
		errOnce.Do(func() { firstErr = err })
		cancel(err)
	}
	start := time.Now()
	for range min(int64(conc), max(total, 1)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := next.Add(1) - 1
				if i >= total {
					return
				}
				for {
					err := call(ctx, i)
					switch {
					case err == nil:
						done.Add(1)
					case errors.Is(err, errRetry) && ctx.Err() == nil:
						retries.Add(1)
						select {
						case <-ctx.Done():
						case <-time.After(retryWait):
						}
						continue
					case errors.Is(err, domain.ErrOutcomeUnknown) && ctx.Err() == nil:
						unknown.Add(1)
					case ctx.Err() != nil:
						fail(context.Cause(ctx))
					default:
						fail(fmt.Errorf("%s %d: %w", name, i, err))
					}
					break
				}
			}
		}()
	}
	stopTicks := make(chan struct{})
	ticked := make(chan struct{})
	go func() {
		defer close(ticked)
		t := time.NewTicker(progress)
		defer t.Stop()
		last, lastAt := int64(0), start
		for {
			select {
			case <-stopTicks:
				return
			case now := <-t.C:
				d := done.Load()
				m := readMem()
				fmt.Fprintf(out, "bench: scale: %s %d/%d (%.1f%%), %.0f/s, rss %s, heap %s, unknown %d, retries %d\n",
					name, d, total, 100*float64(d)/float64(max(total, 1)), float64(d-last)/now.Sub(lastAt).Seconds(),
					human(m.RSS), human(m.HeapObjects), unknown.Load(), retries.Load())
				last, lastAt = d, now
			}
		}
	}()
	wg.Wait()
	close(stopTicks)
	<-ticked
	el := time.Since(start)
	p := Phase{Done: done.Load(), Unknown: unknown.Load(), Retries: retries.Load(), DurationS: el.Seconds()}
	p.PerSecond = float64(p.Done) / max(el.Seconds(), 1e-9)
	if firstErr != nil {
		return p, firstErr
	}
	return p, nil
}

// human is n bytes in GiB or MiB, "unknown" when negative (not measured).
func human(n int64) string {
	switch {
	case n < 0:
		return "unknown"
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}
