package actors

import (
	"fmt"

	"allot/actors/domain"
)

// The resource actor's half of limit groups (limit_actor.go). A
// reservation of a resource that names limits is decided in steps, each a
// message, so the actor goes on deciding other requests meanwhile:
//
//  1. the resource's own rules decide it against the working copy (a
//     refusal is answered as always, and no limit is asked);
//  2. the limit actors are asked for a claim one after another, in id
//     order; a refusal ends it (the claims granted so far are released)
//     and is answered with the limit's id;
//  3. once every limit granted, the resource's rules decide again (the
//     working copy moved on meanwhile), and the reservation is proposed
//     with its stock and every share in one event, or refused and its
//     claims released.
//
// The proposer settles the claims of a proposed reservation once its
// outcome is known. While a claim is open the actor counts as busy, so it
// is not passivated with an answer owed.

// claimAnswer is a limit actor's verdict on claim seq (err nil: granted).
type claimAnswer struct {
	seq   uint64
	limit string
	err   error
}

// openClaim is a reservation waiting for its limits.
type openClaim struct {
	req     *request
	rid     string
	limits  []string // the resource's, when the claim started
	granted int      // limits[:granted] granted
}

// startClaims begins step 2 for request r, which the resource's rules
// accepted.
func (a *resourceActor) startClaims(r *request, now int64) {
	if a.claims == nil {
		a.claims = make(map[uint64]*openClaim)
	}
	a.claimSeq++
	c := &openClaim{req: r, rid: a.term.engine.ids.next(now), limits: a.resource.Spec.Limits}
	a.claims[a.claimSeq] = c
	a.pending.Add(1) // busy until the claim ends
	a.askNext(a.claimSeq, c)
}

func (a *resourceActor) askNext(seq uint64, c *openClaim) {
	a.term.sendLimit(c.limits[c.granted], &limitClaim{
		limit: c.limits[c.granted], resource: a.id, rid: c.rid,
		user: c.req.reserve.User, q: c.req.reserve.Quantity, seq: seq,
	})
}

// claimed handles a limit actor's answer.
func (a *resourceActor) claimed(ans *claimAnswer, now int64) {
	c := a.claims[ans.seq]
	if c == nil {
		return
	}
	if ans.err != nil {
		a.endClaim(ans.seq, c)
		a.decided(a.kind(), ans.err, 0)
		a.reply(c.req, reply{err: ans.err})
		return
	}
	c.granted++
	if a.dirty.Load() || !a.loaded {
		// An event of this actor failed meanwhile: its working copy is
		// not to be trusted until it has reloaded.
		a.endClaim(ans.seq, c)
		a.term.engine.answer(c.req, reply{err: fmt.Errorf("resource %s is recovering from a failed commit: %w", a.id, domain.ErrUnavailable)})
		return
	}
	if c.granted < len(c.limits) {
		a.askNext(ans.seq, c)
		return
	}
	// Step 3: every limit granted.
	delete(a.claims, ans.seq)
	a.claimDone() // the event proposed below, if any, counts from here
	if a.resource == nil || !sameLimits(a.resource.Spec.Limits, c.limits) {
		a.release(c.rid, c.limits)
		a.reply(c.req, reply{err: fmt.Errorf("resource %s changed while its limits were asked; retry: %w", a.id, domain.ErrUnavailable)})
		return
	}
	res, err := a.resource.DecideReserve(c.req.reserve, c.rid, now)
	if err != nil {
		a.release(c.rid, c.limits)
		a.decided(a.kind(), err, 0)
		a.reply(c.req, reply{err: err})
		return
	}
	a.accept(c.req, res, now, c.limits)
}

// endClaim ends a claim that will not be proposed and releases what it was
// granted.
func (a *resourceActor) endClaim(seq uint64, c *openClaim) {
	delete(a.claims, seq)
	a.release(c.rid, c.limits[:c.granted])
	a.claimDone()
}

// claimDone marks a claim ended. A dirty actor with nothing else open is
// woken to resynchronise: the proposer wakes it only when an event is the
// last thing to resolve, and a hold whose outcome was unknown gets its
// expiry timer back only from the reload.
func (a *resourceActor) claimDone() {
	if a.pending.Add(-1) == 0 && a.dirty.Load() {
		a.wake()
	}
}

// release tells the limit actors that granted reservation rid a claim that
// it will not commit.
func (a *resourceActor) release(rid string, limits []string) {
	for _, id := range limits {
		a.term.sendLimit(id, &limitSettle{rid: rid})
	}
}

func (a *resourceActor) kind() domain.Kind {
	if a.resource == nil {
		return 0
	}
	return a.resource.Spec.Kind
}

func sameLimits(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
