package actors

import (
	"context"
	"errors"
	"fmt"
	"sync"
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
	ordinal   uint64 // the event's number among its actor's (answerGate)
	decidedAt time.Time
	limits    []string // limit groups whose claims the reservation holds (claims.go)
}

// proposer batches the events of all actors into Raft entries (group
// commit). It proposes at once whatever is queued, up to MaxBatch events, and
// keeps at most MaxInflightBatches entries in flight: under light load a
// batch is one event and waits for nothing; under heavy load events pile up
// while entries commit and the next batch is large.
//
// Batches finish in the order they were proposed, whatever order the log
// reports their outcomes in: an actor's events then resolve in the order it
// decided them, which its answerGate relies on.
type proposer struct {
	term  *term
	in    chan proposal
	slots chan struct{} // one token per entry in flight
	seq   uint64        // batches numbered by run, in proposal order

	// spare holds finished batches' slices for run to fill again, and
	// events is the one entry's event list run hands to the log (which
	// encodes it before Propose returns): under a crowd a batch is hundreds
	// of proposals, and growing fresh slices for each was most of the
	// bytes allocated per committed reservation.
	spare  chan []proposal
	events []domain.Event

	orderMu sync.Mutex
	next    uint64             // the batch to finish next
	early   map[uint64]outcome // batches whose outcome came before an earlier one's
}

// outcome is what the log said about one batch.
type outcome struct {
	batch    []proposal
	proposed time.Time
	results  []error
	err      error
}

func newProposer(e *Engine, t *term) *proposer {
	return &proposer{
		term:  t,
		in:    make(chan proposal, e.cfg.QueueSize),
		slots: make(chan struct{}, e.cfg.MaxInflightBatches),
		early: make(map[uint64]outcome),
		spare: make(chan []proposal, e.cfg.MaxInflightBatches+1),
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
		batch := p.drain(append(p.newBatch(), first), max)
		seq := p.seq
		p.seq++
		if ctx.Err() == nil {
			select {
			case p.slots <- struct{}{}:
				batch = p.drain(batch, max) // more arrived while entries were in flight
				p.propose(seq, batch)
				continue
			case <-ctx.Done():
			}
		}
		p.complete(seq, outcome{batch: batch, err: fmt.Errorf("leadership is changing: %w", domain.ErrUnavailable)})
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

// newBatch returns an empty batch, reusing a finished one's slice.
func (p *proposer) newBatch() []proposal {
	select {
	case b := <-p.spare:
		return b
	default:
		return make([]proposal, 0, 8)
	}
}

// recycle hands a finished batch's slice back to run, without the
// references its proposals held.
func (p *proposer) recycle(batch []proposal) {
	clear(batch)
	select {
	case p.spare <- batch[:0]:
	default:
	}
}

func (p *proposer) propose(seq uint64, batch []proposal) {
	p.events = p.events[:0]
	for i := range batch {
		p.events = append(p.events, batch[i].event)
	}
	b := &domain.Batch{Events: p.events}
	proposed := time.Now()
	p.term.engine.log.Propose(b, func(results []error, err error) {
		<-p.slots
		p.complete(seq, outcome{batch: batch, proposed: proposed, results: results, err: err})
	})
	clear(p.events) // encoded: drop the references until the next entry
}

// complete finishes batch seq and every later one already reported, in
// order. The lock is held while finishing so that no two batches finish
// out of order or at once.
func (p *proposer) complete(seq uint64, o outcome) {
	p.orderMu.Lock()
	defer p.orderMu.Unlock()
	p.early[seq] = o
	for {
		o, ok := p.early[p.next]
		if !ok {
			return
		}
		delete(p.early, p.next)
		p.next++
		p.finish(o.batch, o.proposed, o.results, o.err)
		p.recycle(o.batch)
	}
}

// finish answers every request of a batch — applied, answered from the
// committed record of its Idempotency-Key, refused by the FSM (a bug: the
// working copy was wrong), or unknown — and resolves each event in its
// actor's answerGate. An actor whose event did not commit as decided is
// dirty: it reloads from committed state after a barrier, and is woken to
// do so as soon as nothing of it is in flight, so that holds whose outcome
// was unknown get their expiry timers back. proposed is when the batch went
// to the log, zero if it never did.
func (p *proposer) finish(batch []proposal, proposed time.Time, results []error, err error) {
	e := p.term.engine
	now := time.Now()
	var kick []*resourceActor
	for i := range batch {
		pr := &batch[i]
		rep := pr.ok
		switch {
		case err != nil:
			rep = reply{err: err}
		case i >= len(results):
			rep = reply{err: fmt.Errorf("log answered %d results for %d events: %w", len(results), len(batch), domain.ErrOutcomeUnknown)}
		case results[i] != nil:
			rep = refusedReply(e, pr.req, results[i])
		}
		committed := err == nil && i < len(results) && results[i] == nil
		if committed && pr.event.Type == domain.EvPutResource {
			rep = committedPut(e.log, &pr.event, pr.ok)
		}
		if !committed {
			pr.actor.dirty.Store(true) // before the gate resolves, so the actor sees it
			if pr.req.op == opExpire {
				p.term.expiry.add(pr.event.ReservationID, pr.event.ResourceID, p.term.clock.now()+int64(e.cfg.ExpiryRetry))
			}
		} else if ev := &pr.event; ev.Type == domain.EvReserve && ev.Reservation.Status == domain.StatusHeld {
			p.term.expiry.add(ev.Reservation.ID, ev.ResourceID, ev.Reservation.ExpiresAt)
		}
		for _, id := range pr.limits {
			// Committed (now in committed state) or refused: the grant goes.
			// Unknown: it goes once a barrier shows what committed.
			p.term.sendLimit(id, &limitSettle{rid: pr.event.Reservation.ID, unknown: err != nil || i >= len(results)})
		}
		e.answer(pr.req, rep)
		if pr.actor.resolve(pr.ordinal, committed) {
			kick = append(kick, pr.actor)
		}
	}
	for _, a := range kick {
		a.wake()
	}
	if e.hooks.Committed != nil && len(batch) > 0 {
		bs := BatchStats{Events: len(batch), Wait: now.Sub(batch[0].decidedAt), Err: err}
		if !proposed.IsZero() {
			bs.Commit = now.Sub(proposed)
		}
		e.hooks.Committed(bs)
	}
}

// refusedReply is the answer to a request whose event the FSM refused:
// the committed answer of its Idempotency-Key when a twin got there first,
// else the refusal (a bug: the working copy was wrong). Apart from finish's
// loop so that the error's target escapes only for a refused event.
func refusedReply(e *Engine, r *request, refused error) reply {
	var dup *domain.DuplicateKeyError
	if !errors.As(refused, &dup) {
		return reply{err: fmt.Errorf("committed state refused the decision: %w", refused)}
	}
	rep := replayRecord(r, dup.Record)
	if e.hooks.Replayed != nil && rep.err == nil {
		e.hooks.Replayed()
	}
	return rep
}

// committedPut is the answer to a PUT that committed, read from committed
// state rather than the actor's working copy: that copy may include events
// of the actor that did not commit (a lost create, a lost reservation), so
// neither "created" nor the counts could be trusted from it. Created means
// this event created the resource. decided is the fallback for a resource a
// later event already deleted again.
func committedPut(log Log, ev *domain.Event, decided reply) reply {
	rep := decided
	log.View(func(st *domain.State) {
		if r, ok := st.Resource(ev.ResourceID); ok {
			rep = reply{resource: r.Clone(), created: r.CreatedAt == ev.At}
		}
	})
	return rep
}

// replayRecord is the answer to a request whose Idempotency-Key turned out
// to have a committed answer already when its event reached the FSM.
func replayRecord(r *request, rec domain.IdemRecord) reply {
	if r.idem != nil && rec.Fingerprint != r.idem.Fingerprint {
		return reply{err: fmt.Errorf("Idempotency-Key already used for another request: %w", domain.ErrIdempotencyKeyReused)}
	}
	return reply{outcome: domain.Outcome{Code: rec.Code, Reservation: rec.Reservation, Replayed: true}}
}
