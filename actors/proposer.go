package actors

import (
	"context"
	"fmt"
	"time"

	"allot/actors/domain"
)

// proposal is one decided event on its way to the log, with the request to
// answer once it is committed.
type proposal struct {
	event     domain.Event
	req       *request
	ok        reply // the answer if the event applies
	actor     *resourceActor
	decidedAt time.Time
}

// proposer batches the events of all actors into Raft entries (group
// commit). It proposes at once whatever is queued, up to MaxBatch events, and
// keeps at most MaxInflightBatches entries in flight: under light load a
// batch is one event and waits for nothing; under heavy load events pile up
// while entries commit and the next batch is large.
type proposer struct {
	term  *term
	in    chan proposal
	slots chan struct{} // one token per entry in flight
}

func newProposer(e *Engine, t *term) *proposer {
	return &proposer{
		term:  t,
		in:    make(chan proposal, e.cfg.QueueSize),
		slots: make(chan struct{}, e.cfg.MaxInflightBatches),
	}
}

// enqueue queues a decided event; false when the term is over.
func (p *proposer) enqueue(pr proposal) bool {
	select {
	case p.in <- pr:
		return true
	case <-p.term.ctx.Done():
		return false
	}
}

// close is called once no actor of the term is left; run answers what is
// still queued and returns.
func (p *proposer) close() { close(p.in) }

func (p *proposer) run(ctx context.Context) {
	max := p.term.engine.cfg.MaxBatch
	for {
		first, ok := <-p.in
		if !ok {
			return
		}
		batch := p.drain(append(make([]proposal, 0, 8), first), max)
		if ctx.Err() == nil {
			select {
			case p.slots <- struct{}{}:
				batch = p.drain(batch, max) // more arrived while entries were in flight
				p.propose(batch)
				continue
			case <-ctx.Done():
			}
		}
		p.finish(batch, time.Time{}, nil, fmt.Errorf("leadership is changing: %w", domain.ErrUnavailable))
	}
}

// drain adds what is queued right now, without waiting, up to max events.
func (p *proposer) drain(batch []proposal, max int) []proposal {
	for len(batch) < max {
		select {
		case pr, ok := <-p.in:
			if !ok {
				return batch
			}
			batch = append(batch, pr)
		default:
			return batch
		}
	}
	return batch
}

func (p *proposer) propose(batch []proposal) {
	b := &domain.Batch{Events: make([]domain.Event, len(batch))}
	for i := range batch {
		b.Events[i] = batch[i].event
	}
	proposed := time.Now()
	p.term.engine.log.Propose(b, func(results []error, err error) {
		<-p.slots
		p.finish(batch, proposed, results, err)
	})
}

// finish answers every request of a batch: applied, refused by the FSM (a
// bug: the working copy was wrong, so the actor reloads), or unknown.
// proposed is when the batch went to the log, zero if it never did.
func (p *proposer) finish(batch []proposal, proposed time.Time, results []error, err error) {
	e := p.term.engine
	now := time.Now()
	for i := range batch {
		pr := &batch[i]
		rep := pr.ok
		switch {
		case err != nil:
			rep = reply{err: err}
		case i >= len(results):
			rep = reply{err: fmt.Errorf("log answered %d results for %d events: %w", len(results), len(batch), domain.ErrOutcomeUnknown)}
		case results[i] != nil:
			rep = reply{err: fmt.Errorf("committed state refused the decision: %w", results[i])}
		}
		if rep.err != nil {
			pr.actor.dirty.Store(true) // before pending drops, so the actor sees it
			if pr.req.op == opExpire {
				p.term.expiry.add(pr.event.ReservationID, pr.event.ResourceID, now.Add(e.cfg.ExpiryRetry).UnixNano())
			}
		} else if ev := &pr.event; ev.Type == domain.EvReserve && ev.Reservation.Status == domain.StatusHeld {
			p.term.expiry.add(ev.Reservation.ID, ev.ResourceID, ev.Reservation.ExpiresAt)
		}
		pr.actor.pending.Add(-1)
		e.answer(pr.req, rep)
	}
	if e.hooks.Committed != nil && len(batch) > 0 {
		bs := BatchStats{Events: len(batch), Wait: now.Sub(batch[0].decidedAt), Err: err}
		if !proposed.IsZero() {
			bs.Commit = now.Sub(proposed)
		}
		e.hooks.Committed(bs)
	}
}
