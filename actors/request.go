package actors

import (
	"context"
	"errors"
	"fmt"

	"allot/actors/domain"
)

// reply is what an actor or the proposer answers a request with.
type reply struct {
	outcome  domain.Outcome
	resource *domain.Resource // PutResource
	created  bool
	limit    *domain.Limit // PutLimit
	err      error
}

// request is a message to a resource actor; the answer goes to done, exactly once.
type request struct {
	op        op
	reserve   domain.ReserveRequest
	rid       string
	to        domain.Status
	caller    domain.Principal
	spec      *domain.Spec // opPut
	idem      *domain.IdemKey
	done      chan reply
	idemClear string // in-flight key to release with the answer
	resyncErr error
	claim     *claimAnswer     // opClaimed
	limitSpec domain.LimitSpec // opPutLimit
}

type op uint8

const (
	opReserve op = iota + 1
	opTransition
	opPut
	opDelete
	opExpire
	opResync   // the barrier a dirty actor waited for has returned (err in resyncErr)
	opWake     // nothing to do but recover if dirty (see resourceActor.wake)
	opClaimed  // a limit actor answered one of the actor's claims (claims.go)
	opPutLimit // to a limit actor: create or update the limit
	opDeleteLimit
)

// idemUser is the user whose Idempotency-Key scope the request belongs to:
// the reserving user, or the caller of a transition.
func (r *request) idemUser() string {
	if r.op == opReserve {
		return r.reserve.User
	}
	return r.caller.User
}

// answer delivers the reply and releases the idempotency key.
func (e *Engine) answer(r *request, rep reply) {
	if r.idemClear != "" {
		e.inflight.release(r.idemClear)
	}
	if r.done != nil {
		r.done <- rep
	}
}

// call routes a request to its resource's actor and waits for the answer or
// ctx. Once the request is handed over, a passed deadline is "unknown".
func (e *Engine) call(ctx context.Context, resourceID string, r *request) reply {
	t := e.current()
	if t == nil {
		e.answer(r, reply{})
		return reply{err: fmt.Errorf("this node does not lead: %w", domain.ErrNotLeader)}
	}
	r.done = make(chan reply, 1)
	if err := t.send(resourceID, r); err != nil {
		r.done = nil
		e.answer(r, reply{})
		if errors.Is(err, domain.ErrNotFound) {
			err = e.confirmed(ctx, err) // read from committed state: only a leader may say so
		}
		return reply{err: err}
	}
	select {
	case rep := <-r.done:
		return rep
	case <-ctx.Done():
		return reply{err: fmt.Errorf("%v: %w", ctx.Err(), domain.ErrOutcomeUnknown)}
	}
}

// callLimit routes a change of a limit to the limit's actor and waits for
// the answer or ctx (then "unknown": it may have been proposed).
func (e *Engine) callLimit(ctx context.Context, id string, r *request) reply {
	t := e.current()
	if t == nil {
		return reply{err: fmt.Errorf("this node does not lead: %w", domain.ErrNotLeader)}
	}
	r.done = make(chan reply, 1)
	if !t.sendLimit(id, &limitChange{req: r}) {
		return reply{err: fmt.Errorf("leadership is changing: %w", domain.ErrUnavailable)}
	}
	select {
	case rep := <-r.done:
		return rep
	case <-ctx.Done():
		return reply{err: fmt.Errorf("%v: %w", ctx.Err(), domain.ErrOutcomeUnknown)}
	}
}
