package actors

import (
	"context"
	"time"

	"allot/actors/domain"
)

// DefaultRetention is how long finished reservations stay by default.
const DefaultRetention = 720 * time.Hour

// pruner is the leader's retention sweep. Every PruneInterval it compares
// the oldest cancelled or expired reservation in committed state with leader
// time minus Retention, and when it is older it proposes an EvPrune with
// that cutoff; Apply removes what finished before it, at most
// MaxPrunePerEvent per entry, so a backlog goes in a few entries one after
// another. The cutoff travels in the event: Apply reads no clock, and
// followers need not share the leader's setting. Nothing is proposed until
// the committed log format allows EvPrune (BatchV3): a node of an older
// binary would stop on it.
type pruner struct {
	term *term
}

func (p pruner) run(ctx context.Context) {
	cfg := &p.term.engine.cfg
	if cfg.Retention <= 0 {
		return // keep forever
	}
	tick := time.NewTicker(cfg.PruneInterval)
	defer tick.Stop()
	for {
		p.sweep(ctx)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// sweep proposes prune events while some finished reservation is due.
func (p pruner) sweep(ctx context.Context) {
	e := p.term.engine
	for ctx.Err() == nil {
		now := p.term.clock.now()
		cutoff := now - int64(e.cfg.Retention)
		var due bool
		e.log.View(func(st *domain.State) {
			oldest, ok := st.OldestFinished()
			due = ok && oldest < cutoff && st.LogFormat() >= domain.BatchV3
		})
		if !due {
			return
		}
		ev := domain.Event{Type: domain.EvPrune, At: now, PruneBefore: cutoff, PruneMax: domain.MaxPrunePerEvent}
		done := make(chan error, 1)
		e.log.Propose(&domain.Batch{Events: []domain.Event{ev}}, func(results []error, err error) {
			if err == nil && len(results) == 1 {
				err = results[0]
			}
			done <- err
		})
		select {
		case err := <-done:
			if err != nil {
				// Lost with the leadership, or refused (a bug): try again at
				// the next tick, from committed state.
				e.cfg.Logger.Warn("prune of finished reservations failed", "before", domain.FormatTime(cutoff), "error", err)
				return
			}
		case <-ctx.Done():
			return
		}
	}
}
