package actors

import (
	"context"
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"allot/actors/domain"
)

// maxCachedReservations is how many reservations an actor keeps in its
// working copy, while some of its events are in flight, before it drops
// those committed state already has (see dropCommitted).
const maxCachedReservations = 256

// resyncTimeout bounds the barrier a dirty actor waits for.
const resyncTimeout = 10 * time.Second

// resourceActor owns the working copy of one resource on the leader: the
// committed resource plus the effect of every event it decided that is not
// yet committed. All events for the resource come from this actor and reach
// the log in the order it decided them, so the working copy is exactly what
// committed state will be once they apply.
type resourceActor struct {
	term *term
	id   string

	resource     *domain.Resource               // nil: no such resource (yet, or deleted)
	reservations map[string]*workingReservation // those touched; others are read from committed state
	cacheLimit   int                            // the size of reservations that makes dropCommitted run
	loaded       bool
	resyncing    bool // a barrier is running before the working copy is reloaded

	received atomic.Int64 // requests received, compared with the registry's sent count
	pending  atomic.Int64 // events handed to the proposer, not yet applied or failed
	dirty    atomic.Bool  // an event failed: the working copy must be reloaded
	gate     answerGate   // answers waiting for the events they depend on

	claims   map[uint64]*openClaim // reservations waiting for their limits (claims.go)
	claimSeq uint64
}

func newResourceActor(t *term, id string) *resourceActor {
	return &resourceActor{term: t, id: id}
}

// Receive implements actor.Actor.
func (a *resourceActor) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *actor.Started:
		ctx.SetReceiveTimeout(a.term.engine.cfg.IdleTimeout)
	case *actor.ReceiveTimeout:
		if a.term.registry.tryPassivate(a) {
			if h := a.term.engine.hooks.Passivated; h != nil {
				h()
			}
			ctx.Stop(ctx.Self())
			return
		}
		// protoactor cancels the timeout once it fires: arm it again, or an
		// actor that could not stop now would never stop.
		ctx.SetReceiveTimeout(a.term.engine.cfg.IdleTimeout)
	case *request:
		a.received.Add(1)
		a.handle(msg)
	case *actor.Stopping:
		// The term is over: a reservation still waiting for its limits
		// is answered here, as queued requests are (nothing was proposed).
		for seq, c := range a.claims {
			a.endClaim(seq, c)
			a.term.engine.answer(c.req, reply{err: fmt.Errorf("leadership is changing: %w", domain.ErrUnavailable)})
		}
	}
}

func (a *resourceActor) handle(r *request) {
	e := a.term.engine
	if a.term.ctx.Err() != nil {
		e.answer(r, reply{err: fmt.Errorf("leadership is changing: %w", domain.ErrUnavailable)})
		return
	}
	if r.op == opResync {
		a.resyncing = false
		if r.resyncErr == nil {
			a.reload()
			a.rearmExpiries()
		} else {
			a.wakeAfter(e.cfg.ExpiryRetry) // try again, even if no request comes
		}
		return
	}
	if r.op == opClaimed {
		// Before ensureLoaded: an answer to a claim must never be dropped,
		// or the claim would stay open (and the actor busy) for good.
		a.claimed(r.claim, a.term.clock.now())
		return
	}
	if !a.ensureLoaded() {
		if r.op == opExpire { // not dropped: asked again once the actor has recovered
			a.term.expiry.add(r.rid, a.id, a.term.clock.now()+int64(e.cfg.ExpiryRetry))
			return
		}
		e.answer(r, reply{err: fmt.Errorf("resource %s is recovering from a failed commit: %w", a.id, domain.ErrUnavailable)})
		return
	}
	now := a.term.clock.now()
	switch r.op {
	case opReserve:
		a.reserve(r, now)
	case opTransition, opExpire:
		a.transition(r, now)
	case opPut:
		a.put(r, now)
	case opDelete:
		a.delete(r, now)
	case opWake: // ensureLoaded above did what was needed
	}
}

// ensureLoaded builds the working copy from committed state when it has none.
// After a failed event the copy may be wrong, and an event whose outcome was
// unknown may still commit: the actor then waits until none of its events is
// in flight, runs a Raft barrier (every earlier entry applied) and reloads.
// Meanwhile it reports false and requests are answered "unavailable".
func (a *resourceActor) ensureLoaded() bool {
	if !a.loaded {
		a.reload()
		return true
	}
	if !a.dirty.Load() {
		switch {
		case len(a.reservations) > 0 && a.pending.Load() == 0:
			// Nothing in flight: committed state says all the copy says.
			// Dropping it keeps a million resources touched a few times
			// each from holding their reservations twice until they go
			// idle.
			a.reservations = make(map[string]*workingReservation)
			a.cacheLimit = maxCachedReservations
		case len(a.reservations) > a.cacheLimit:
			a.dropCommitted()
		}
		return true
	}
	if a.pending.Load() == 0 && !a.resyncing {
		a.resyncing = true
		go a.resync()
	}
	return false
}

// wake asks the actor to look at itself (resynchronise when dirty) even if
// no request is coming; it is a no-op once the term is over.
func (a *resourceActor) wake() { _ = a.term.send(a.id, &request{op: opWake}) }

// wakeAfter wakes the actor after d (a no-op if the term has ended by then).
func (a *resourceActor) wakeAfter(d time.Duration) { time.AfterFunc(d, a.wake) }

// rearmExpiries schedules an expiry check for every hold of the resource in
// committed state. After an unknown outcome a hold may have committed
// without the proposer learning it; duplicates in the heap are harmless.
func (a *resourceActor) rearmExpiries() {
	var holds []expiryItem
	a.term.engine.log.View(func(st *domain.State) { // collect only: Apply waits while we hold the view
		st.EachHeldOf(a.id, func(res domain.Reservation) {
			holds = append(holds, expiryItem{at: res.ExpiresAt, rid: res.ID, source: a.id})
		})
	})
	for _, h := range holds {
		a.term.expiry.add(h.rid, h.source, h.at)
	}
}

// resync runs the barrier off the actor's goroutine and reports back through
// the mailbox.
func (a *resourceActor) resync() {
	ctx, cancel := context.WithTimeout(a.term.ctx, resyncTimeout)
	defer cancel()
	err := a.term.engine.log.Barrier(ctx)
	_ = a.term.send(a.id, &request{op: opResync, resyncErr: err}) // fails only when the term is over
}

// reload replaces the working copy with committed state.
func (a *resourceActor) reload() {
	a.dirty.Store(false)
	a.resource = nil
	a.term.engine.log.View(func(st *domain.State) {
		if r, ok := st.Resource(a.id); ok {
			a.resource = r.Clone()
		}
	})
	a.reservations = make(map[string]*workingReservation)
	a.cacheLimit = maxCachedReservations
	a.loaded = true
	a.resetGate()
}

func (a *resourceActor) reserve(r *request, now int64) {
	e := a.term.engine
	if a.resource == nil {
		a.reply(r, reply{err: fmt.Errorf("resource %s: %w", a.id, domain.ErrNotFound)})
		return
	}
	kind := a.resource.Spec.Kind
	res, err := a.resource.DecideReserve(r.reserve, "", now)
	if err != nil { // the flash-crowd path: no id, no event, no log
		a.decided(kind, err, 0)
		a.reply(r, reply{err: err})
		return
	}
	if len(a.resource.Spec.Limits) > 0 {
		a.startClaims(r, now) // claims.go: the limits first, then accept
		return
	}
	res.ID = e.ids.next(now)
	a.accept(r, res, now, nil)
}

// accept takes the units of a decided reservation in the working copy and
// proposes it; limits are the limit groups whose claims it holds, settled
// once its outcome is known.
func (a *resourceActor) accept(r *request, res domain.Reservation, now int64, limits []string) {
	a.resource.ApplyReserve(&res)
	w := &workingReservation{Reservation: res}
	a.reservations[res.ID] = w
	a.decided(a.resource.Spec.Kind, nil, res.Status)
	ev := domain.Event{Type: domain.EvReserve, At: now, ResourceID: a.id, Reservation: res}
	out := domain.Outcome{Code: http.StatusCreated, Reservation: res}
	ev.Idem = idemRecord(r, out, now)
	w.ord = a.proposeSettling(r, ev, reply{outcome: out}, limits)
}

func (a *resourceActor) transition(r *request, now int64) {
	res := a.reservation(r.rid)
	if r.op == opExpire {
		a.expire(r, res, now)
		return
	}
	if res == nil || a.resource == nil {
		a.reply(r, reply{err: domain.ReservationNotFound(r.rid)})
		return
	}
	if !r.caller.CanAccess(res.User) {
		a.reply(r, reply{err: fmt.Errorf("reservation %s belongs to another user: %w", r.rid, domain.ErrPermissionDenied)})
		return
	}
	kind := a.resource.Spec.Kind
	noop, err := a.resource.CheckTransition(&res.Reservation, r.to, now)
	if err != nil || noop {
		a.decided(kind, err, 0)
		a.reply(r, reply{outcome: domain.Outcome{Code: http.StatusOK, Reservation: res.Reservation}, err: err})
		return
	}
	a.applyTransition(r, res, now)
}

// expire turns a due hold into an expired event. A hold that is not due by
// leader time yet (the heap's look was early, or the wall clock stepped) is
// looked at again when it is; one that is no longer held needs nothing (if
// what moved it does not commit, the resync re-arms its timer).
func (a *resourceActor) expire(r *request, res *workingReservation, now int64) {
	if res == nil || a.resource == nil || res.Status != domain.StatusHeld {
		return
	}
	if now < res.ExpiresAt {
		a.term.expiry.add(res.ID, a.id, res.ExpiresAt)
		return
	}
	if h := a.term.engine.hooks.ExpiryLag; h != nil {
		h(time.Duration(now - res.ExpiresAt))
	}
	a.applyTransition(r, res, now)
}

func (a *resourceActor) applyTransition(r *request, res *workingReservation, now int64) {
	a.resource.ApplyTransition(&res.Reservation, r.to, now)
	a.decided(a.resource.Spec.Kind, nil, r.to)
	ev := domain.Event{Type: domain.EvTransition, At: now, ResourceID: a.id, ReservationID: res.ID, To: r.to}
	out := domain.Outcome{Code: http.StatusOK, Reservation: res.Reservation}
	ev.Idem = idemRecord(r, out, now)
	res.ord = a.propose(r, ev, reply{outcome: out})
}

func (a *resourceActor) put(r *request, now int64) {
	created := a.resource == nil
	next := a.resource
	if created {
		next = &domain.Resource{ID: a.id}
	} else {
		next = next.Clone()
	}
	err := next.CheckUpdate(r.spec)
	if err == nil && (len(r.spec.Limits) > 0 || len(next.Spec.Limits) > 0) {
		a.term.engine.log.View(func(st *domain.State) {
			if st.LogFormat() < domain.BatchV4 {
				err = fmt.Errorf("the cluster's log format is %d; limits need 4 (an upgrade is under way): %w", st.LogFormat(), domain.ErrUnavailable)
				return
			}
			err = st.CheckResourceLimits(next, r.spec) // the working copy's taken units, committed limits
		})
	}
	if err != nil {
		a.reply(r, reply{err: err})
		return
	}
	next.ApplyUpdate(*r.spec, now)
	a.resource = next
	ev := domain.Event{Type: domain.EvPutResource, At: now, ResourceID: a.id, Spec: *r.spec}
	a.propose(r, ev, reply{resource: next.Clone(), created: created})
}

func (a *resourceActor) delete(r *request, now int64) {
	if a.resource == nil {
		a.reply(r, reply{err: fmt.Errorf("resource %s: %w", a.id, domain.ErrNotFound)})
		return
	}
	if a.resource.HasTaken() {
		a.reply(r, reply{err: fmt.Errorf("resource %s has held or confirmed reservations: %w", a.id, domain.ErrInvalidState)})
		return
	}
	a.resource = nil
	a.propose(r, domain.Event{Type: domain.EvDeleteResource, At: now, ResourceID: a.id}, reply{})
}

// propose hands an accepted event to the proposer and returns its ordinal;
// the answer goes out when it commits. Blocks only while the proposer's
// queue is full (back-pressure).
func (a *resourceActor) propose(r *request, ev domain.Event, ok reply) uint64 {
	return a.proposeSettling(r, ev, ok, nil)
}

// proposeSettling is propose for a reservation that holds claims of limits.
func (a *resourceActor) proposeSettling(r *request, ev domain.Event, ok reply, limits []string) uint64 {
	a.pending.Add(1)
	p := proposal{event: ev, req: r, ok: ok, actor: a, ordinal: a.nextOrdinal(), decidedAt: time.Now(), limits: limits}
	if !a.term.proposer.enqueue(p) {
		a.dirty.Store(true)
		a.term.engine.answer(r, reply{err: fmt.Errorf("leadership is changing: %w", domain.ErrUnavailable)})
		a.abandon(p.ordinal)
		a.release(ev.Reservation.ID, limits)
	}
	return p.ordinal
}

func (a *resourceActor) decided(kind domain.Kind, err error, status domain.Status) {
	if hook := a.term.engine.hooks.Decided; hook != nil {
		hook(kind, status, err)
	}
}

// idemRecord builds the record that stores this answer under the request's
// Idempotency-Key, or nil without one.
func idemRecord(r *request, out domain.Outcome, now int64) *domain.IdemRecord {
	if r.idem == nil {
		return nil
	}
	return &domain.IdemRecord{User: r.idemUser(), Key: r.idem.Key, Fingerprint: r.idem.Fingerprint,
		Code: out.Code, Reservation: out.Reservation, CreatedAt: now}
}
