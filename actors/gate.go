package actors

import (
	"fmt"
	"sync"

	"allot/actors/domain"
)

// errDependsOnFailed answers a request whose answer was worked out from
// events that then did not commit (or whose outcome is unknown): the answer
// may be wrong, so none is given and the client retries.
var errDependsOnFailed = fmt.Errorf("the state this answer was based on did not commit (or its outcome is unknown); retry: %w", domain.ErrUnavailable)

// answerGate holds back an actor's answers until what they say is
// committed. An actor decides against its working copy, which includes its
// own events still in flight; a rejection or a "nothing to do" worked out
// from it (confirm of a hold whose confirm is in flight, sold out behind
// pending reservations, not found behind a pending delete) is true only
// once those events commit. So every such answer waits for the outcome of
// the last event the actor had proposed when it decided: released when that
// and every earlier one committed, refused (errDependsOnFailed) when one of
// them did not.
//
// Events of one actor resolve in the order it proposed them (the proposer
// finishes batches in proposal order), so "resolved" is one ordinal.
type answerGate struct {
	mu       sync.Mutex
	proposed uint64       // ordinal of the last event handed to the proposer
	resolved uint64       // ordinal of the last event whose outcome is known
	failed   uint64       // first event since the last reload that did not commit; 0 = none
	waiting  []heldAnswer // in decision order
}

// heldAnswer is an answer waiting for the events up to after.
type heldAnswer struct {
	after uint64
	req   *request
	rep   reply
}

// nextOrdinal numbers an event the actor is about to propose.
func (a *resourceActor) nextOrdinal() uint64 {
	g := &a.gate
	g.mu.Lock()
	defer g.mu.Unlock()
	g.proposed++
	return g.proposed
}

// reply sends an answer worked out from the working copy once what it says
// is committed and this node still leads (see leaseGate).
func (a *resourceActor) reply(r *request, rep reply) {
	g := &a.gate
	g.mu.Lock()
	switch {
	case g.failed != 0:
		g.mu.Unlock()
		a.term.engine.answer(r, reply{err: errDependsOnFailed})
	case g.resolved < g.proposed:
		g.waiting = append(g.waiting, heldAnswer{after: g.proposed, req: r, rep: rep})
		g.mu.Unlock()
	default:
		g.mu.Unlock()
		a.term.lease.answer(r, rep)
	}
}

// resolve records the outcome of event ordinal (ok: committed as decided)
// and sends the answers that were waiting for it. It reports whether the
// actor must be woken to resynchronise: it is dirty and nothing of it is
// in flight any more.
func (a *resourceActor) resolve(ordinal uint64, ok bool) (kick bool) {
	g := &a.gate
	g.mu.Lock()
	g.resolved = max(g.resolved, ordinal)
	if !ok && (g.failed == 0 || ordinal < g.failed) {
		g.failed = ordinal
	}
	var release, refuse []heldAnswer
	if len(g.waiting) > 0 {
		kept := g.waiting[:0]
		for _, w := range g.waiting {
			switch {
			case g.failed != 0 && w.after >= g.failed:
				refuse = append(refuse, w)
			case w.after <= g.resolved:
				release = append(release, w)
			default:
				kept = append(kept, w)
			}
		}
		clear(g.waiting[len(kept):])
		g.waiting = kept
	}
	pending := a.pending.Add(-1)
	g.mu.Unlock()
	for _, w := range release {
		a.term.lease.answer(w.req, w.rep)
	}
	for _, w := range refuse {
		a.term.engine.answer(w.req, reply{err: errDependsOnFailed})
	}
	return pending == 0 && a.dirty.Load()
}

// abandon records that event ordinal never reached the proposer (the term
// ended while it waited to be queued). Unlike resolve it does not move
// "resolved": earlier events may still be in flight, and answers that wait
// only for them keep waiting; those that depend on this one are refused.
func (a *resourceActor) abandon(ordinal uint64) {
	g := &a.gate
	g.mu.Lock()
	if g.failed == 0 || ordinal < g.failed {
		g.failed = ordinal
	}
	var refuse []heldAnswer
	kept := g.waiting[:0]
	for _, w := range g.waiting {
		if w.after >= g.failed {
			refuse = append(refuse, w)
		} else {
			kept = append(kept, w)
		}
	}
	clear(g.waiting[len(kept):])
	g.waiting = kept
	a.pending.Add(-1)
	g.mu.Unlock()
	for _, w := range refuse {
		a.term.engine.answer(w.req, reply{err: errDependsOnFailed})
	}
}

// resetGate starts a new epoch after a reload from committed state: nothing
// is in flight, and what failed before is reflected in the new copy.
func (a *resourceActor) resetGate() {
	g := &a.gate
	g.mu.Lock()
	g.failed = 0
	g.resolved = g.proposed
	stale := g.waiting
	g.waiting = nil
	g.mu.Unlock()
	for _, w := range stale { // none: reload waits until nothing is in flight
		a.term.engine.answer(w.req, reply{err: errDependsOnFailed})
	}
}

// resolvedOrdinal is the ordinal of the last event whose outcome is known.
func (a *resourceActor) resolvedOrdinal() uint64 {
	a.gate.mu.Lock()
	defer a.gate.mu.Unlock()
	return a.gate.resolved
}
