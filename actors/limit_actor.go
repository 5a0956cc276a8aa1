package actors

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"allot/actors/domain"
)

// limitActor decides the shares of one limit group on the leader
// (domain/limits.go). A resource actor whose resource names limits asks
// each of them, one after another in id order, for a claim before it
// proposes the reservation; the limit actor grants it against committed
// counts plus the claims it granted that have not settled yet, and the
// resource actor settles every claim once the reservation's outcome is
// known. Nothing blocks on a future: claims, answers and settlements are
// messages.
//
// Answers report committed state. A claim that committed counts alone
// refuse is refused at once; one that only the unsettled grants stand in the
// way of waits until they settle (a grant that then fails would have made the
// refusal wrong). Claims are asked for in id order, so two reservations never
// wait for each other's grants. While a change of the limit itself is in
// flight, claims wait for it too: a grant decided under a spec that does not
// commit could pass a bound, and so could one decided under the old spec
// while a change whose outcome is unknown may still commit (claims then wait
// for a barrier).
//
// A grant whose reservation had an unknown outcome stays counted until a
// barrier started after that outcome has passed (committed state then holds
// the reservation if it committed), and then goes. A barrier says nothing of
// entries proposed after it started, so one already running does not cover
// a grant that turned doubtful meanwhile.
type limitActor struct {
	term *term
	id   string

	grants       map[string]limitGrant // by reservation id
	pendingTotal int64
	pendingUser  map[string]int64
	doubtful     map[string]uint64 // grants whose reservation's outcome is unknown, with the epoch they turned so
	barrier      bool              // a barrier for the doubtful grants is running
	epoch        uint64            // barriers started; the running one covers grants doubtful before it

	waiting  []*limitClaim // claims that unsettled grants or a change stand in the way of
	changes  []*request    // puts and deletes of the limit waiting for the grants to settle
	changing bool          // a put or delete of the limit is in flight
}

type limitGrant struct {
	user string
	q    int64
}

// limitClaim asks limit for q units of user for reservation rid of
// resource; the answer goes back to the resource's actor.
type limitClaim struct {
	limit, resource, rid, user string
	q                          int64
	seq                        uint64 // the resource actor's claim number
}

// limitSettle says how the reservation of a grant ended: committed or not
// (the grant goes) or unknown (it goes after a barrier).
type limitSettle struct {
	rid     string
	unknown bool
}

type limitBarrierDone struct{ err error }

// limitChange is an admin's put or delete of the limit (request.op
// opPutLimit or opDeleteLimit), and limitChangeDone its outcome.
type limitChange struct{ req *request }

// unknown: the change may still commit, and claims wait for a barrier.
type limitChangeDone struct{ unknown bool }

func newLimitActor(t *term, id string) *limitActor {
	return &limitActor{term: t, id: id, grants: make(map[string]limitGrant), pendingUser: make(map[string]int64), doubtful: make(map[string]uint64)}
}

// Receive implements actor.Actor.
func (a *limitActor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *limitClaim:
		a.claim(m)
	case *limitSettle:
		if m.unknown {
			if _, ok := a.grants[m.rid]; ok {
				a.doubtful[m.rid] = a.epoch
				a.startBarrier()
			}
			return
		}
		a.drop(m.rid)
		a.retry()
	case *limitBarrierDone:
		a.barrier = false
		if m.err != nil {
			a.startBarrier() // still doubtful: try again while the term lasts
			return
		}
		for rid, e := range a.doubtful {
			if e < a.epoch {
				a.drop(rid)
			}
		}
		if len(a.doubtful) > 0 {
			a.startBarrier() // for those that turned doubtful while it ran
		}
		a.retry()
	case *limitChange:
		a.changes = append(a.changes, m.req)
		a.retry()
	case *limitChangeDone:
		if m.unknown {
			a.changeBarrier()
			return
		}
		a.changing = false
		a.retry()
	case *actor.Stopping:
		// The term is over: changes still waiting are answered (nothing of
		// them was proposed); waiting claims are their resource actors'.
		for _, r := range a.changes {
			a.term.engine.answer(r, reply{err: fmt.Errorf("leadership is changing: %w", domain.ErrUnavailable)})
		}
		a.changes = nil
	}
}

// claim grants, refuses or queues a claim.
func (a *limitActor) claim(c *limitClaim) {
	if a.changing || len(a.changes) > 0 || !a.decide(c) {
		a.waiting = append(a.waiting, c)
	}
}

// decide answers c and reports true, or reports false when c must wait.
func (a *limitActor) decide(c *limitClaim) bool {
	found := false
	var definite, tentative error
	a.term.engine.log.View(func(st *domain.State) {
		if l, ok := st.Limit(a.id); ok {
			found = true
			definite = l.CheckShare(c.user, c.q, 0, 0)
			tentative = l.CheckShare(c.user, c.q, a.pendingTotal, a.pendingUser[c.user])
		}
	})
	switch {
	case !found:
		a.answer(c, fmt.Errorf("limit %s of resource %s: %w", a.id, c.resource, domain.ErrNotFound))
		return true
	case definite != nil:
		a.answer(c, definite)
		return true
	case tentative != nil:
		return false
	}
	a.grants[c.rid] = limitGrant{user: c.user, q: c.q}
	a.pendingTotal += c.q
	a.pendingUser[c.user] += c.q
	a.answer(c, nil)
	return true
}

// retry moves on after a grant went or a change finished: a waiting change
// goes first once no grant is left to settle (a bound checked while grants
// are in flight could be passed by one that commits after the change), then
// the waiting claims are decided again, in order.
func (a *limitActor) retry() {
	if a.changing {
		return
	}
	if len(a.changes) > 0 {
		if len(a.grants) > 0 {
			return
		}
		r := a.changes[0]
		a.changes = a.changes[1:]
		a.change(r)
		if a.changing {
			return
		}
		a.retry() // refused at once: the next one
		return
	}
	if len(a.waiting) == 0 {
		return
	}
	kept := a.waiting[:0]
	for _, c := range a.waiting {
		if !a.decide(c) {
			kept = append(kept, c)
		}
	}
	clear(a.waiting[len(kept):])
	a.waiting = kept
}

// drop forgets the grant of reservation rid.
func (a *limitActor) drop(rid string) {
	g, ok := a.grants[rid]
	if !ok {
		return
	}
	delete(a.grants, rid)
	delete(a.doubtful, rid)
	a.pendingTotal -= g.q
	if n := a.pendingUser[g.user] - g.q; n > 0 {
		a.pendingUser[g.user] = n
	} else {
		delete(a.pendingUser, g.user)
	}
}

// answer tells c's resource actor the verdict (nil: granted).
func (a *limitActor) answer(c *limitClaim, err error) {
	_ = a.term.send(c.resource, &request{op: opClaimed, claim: &claimAnswer{seq: c.seq, limit: a.id, err: err}})
}

func (a *limitActor) startBarrier() {
	if a.barrier || a.term.ctx.Err() != nil {
		return
	}
	a.barrier = true
	a.epoch++
	t := a.term
	go func() {
		ctx, cancel := context.WithTimeout(t.ctx, resyncTimeout)
		defer cancel()
		err := t.engine.log.Barrier(ctx)
		if err != nil { // tried again after a pause: some fail at once
			pause := time.NewTimer(t.engine.cfg.ExpiryRetry)
			defer pause.Stop()
			select {
			case <-pause.C:
			case <-t.ctx.Done():
				return
			}
		}
		t.sendLimit(a.id, &limitBarrierDone{err: err})
	}()
}

// change decides an admin's put or delete of the limit against committed
// state and the unsettled grants, and proposes it.
func (a *limitActor) change(r *request) {
	e := a.term.engine
	now := a.term.clock.now()
	var err error
	created := false
	ev := domain.Event{At: now, Limit: &domain.LimitOp{ID: a.id, Spec: r.limitSpec}}
	e.log.View(func(st *domain.State) {
		_, exists := st.Limit(a.id)
		created = !exists
		switch {
		case st.LogFormat() < domain.BatchV4:
			err = fmt.Errorf("the cluster's log format is %d; limits need 4 (an upgrade is under way): %w", st.LogFormat(), domain.ErrUnavailable)
		case r.op == opPutLimit:
			ev.Type = domain.EvPutLimit
			err = st.CheckPutLimit(ev.Limit)
		default:
			ev.Type = domain.EvDeleteLimit
			err = st.CheckDeleteLimit(a.id)
		}
	})
	if err != nil {
		a.term.lease.answer(r, reply{err: err})
		return
	}
	a.changing = true
	e.log.Propose(&domain.Batch{Events: []domain.Event{ev}}, func(results []error, perr error) {
		rep := reply{created: created}
		unknown := perr != nil || len(results) != 1
		switch {
		case perr != nil:
			rep.err = perr
		case len(results) != 1:
			rep.err = fmt.Errorf("log answered %d results for 1 event: %w", len(results), domain.ErrOutcomeUnknown)
		case results[0] != nil:
			rep.err = fmt.Errorf("committed state refused the change: %w", results[0])
		case ev.Type == domain.EvPutLimit:
			e.log.View(func(st *domain.State) {
				if l, ok := st.Limit(a.id); ok {
					rep.limit = l.Clone()
				}
			})
		}
		e.answer(r, rep) // here, not from the actor: the term may be over by now
		a.term.sendLimit(a.id, &limitChangeDone{unknown: unknown})
	})
}

// changeBarrier ends a change whose outcome is unknown once a barrier has
// passed: committed state then holds the change if it committed, and claims
// are decided under the spec that holds. A failed barrier is tried again
// after a pause while the term lasts.
func (a *limitActor) changeBarrier() {
	t := a.term
	go func() {
		ctx, cancel := context.WithTimeout(t.ctx, resyncTimeout)
		defer cancel()
		if err := t.engine.log.Barrier(ctx); err != nil {
			time.AfterFunc(t.engine.cfg.ExpiryRetry, func() { t.sendLimit(a.id, &limitChangeDone{unknown: true}) })
			return
		}
		t.sendLimit(a.id, &limitChangeDone{})
	}()
}

// limitRegistry holds the term's limit actors; they live as long as the term.
type limitRegistry struct {
	mu     sync.Mutex
	actors map[string]*actor.PID
}

// sendLimit hands msg to the actor of limit id, activating it if needed;
// it reports false, sending nothing, once the term is over.
func (t *term) sendLimit(id string, msg any) bool {
	r := &t.limits
	r.mu.Lock()
	defer r.mu.Unlock()
	if t.ctx.Err() != nil {
		return false
	}
	if r.actors == nil {
		r.actors = make(map[string]*actor.PID)
	}
	pid := r.actors[id]
	if pid == nil {
		act := newLimitActor(t, id)
		pid = t.engine.system.Root.Spawn(actor.PropsFromProducer(func() actor.Actor { return act }))
		r.actors[id] = pid
	}
	t.engine.system.Root.Send(pid, msg)
	return true
}

// eachLimit calls fn for every live limit actor.
func (r *limitRegistry) each(fn func(*actor.PID)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, pid := range r.actors {
		fn(pid)
	}
}
