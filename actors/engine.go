// Package actors runs allot's write path on the leader: one protoactor actor
// per resource decides requests one at a time against its working copy of the
// resource, rejections are answered at once, and acceptances become events
// that a proposer batches into Raft entries (group commit). Expiry timers turn
// due holds into expired events. Followers run none of this.
package actors

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"allot/actors/domain"
)

// Engine is the leader-side write path of one shard. It implements
// httpapi.Engine. It serves writes only between SetLeader(true) (called by the
// cluster after its post-election barrier) and SetLeader(false).
type Engine struct {
	cfg    Config
	log    Log
	system *actor.ActorSystem
	ids    *idGenerator
	hooks  Hooks

	mu   sync.Mutex // guards term
	term *term      // nil while not leading

	inflight inflightKeys

	// Webhooks: the turn of the API's writes (webhooks.go), the delivery
	// counters and the client that POSTs (webhook_delivery.go).
	hookTurn   hookTurn
	hookCounts hookCounts
	hookClient *http.Client
}

// Hooks lets the caller observe the engine (metrics); every field is optional
// and must be cheap and non-blocking: most are called on the write path.
type Hooks struct {
	// Decided is called by a resource actor for every decision on a
	// reservation of a resource of kind: with err nil, to is the status the
	// reservation moves to, or 0 when the transition had already happened
	// and nothing changes; otherwise err is the rule that refused the
	// request (sold out, limit, window, state, a late confirm, ...).
	Decided func(kind domain.Kind, to domain.Status, err error)
	// Committed is called once per batch of events the proposer finished,
	// committed or not (see BatchStats).
	Committed func(BatchStats)
	// ExpiryLag is called when an expiry is decided, with how late it is.
	ExpiryLag func(lag time.Duration)
	// Replayed is called when a request is answered from the committed
	// record of its Idempotency-Key instead of being decided again.
	Replayed func()
	// Activated is called when a resource actor starts, Passivated when one
	// stops after IdleTimeout without messages (actors stopped because
	// leadership ended are not passivations).
	Activated, Passivated func()
	// MailboxDepth is called for a sample of the requests sent to resource
	// actors (one in 16 per registry shard) with how many requests were
	// already waiting in that actor's mailbox. It runs under a registry
	// lock.
	MailboxDepth func(depth int64)
}

// New returns an engine that is not yet leading.
func New(log Log, cfg Config, hooks Hooks) *Engine {
	cfg.fill()
	logger := cfg.Logger
	system := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return logger.With("library", "protoactor")
	}))
	return &Engine{cfg: cfg, log: log, system: system, ids: newIDGenerator(), hooks: hooks,
		hookTurn: make(hookTurn, 1),
		hookClient: &http.Client{
			Transport: cfg.Webhooks.Transport,
			Timeout:   cfg.Webhooks.Timeout,
			// A redirect is not an acknowledgement: it is retried like
			// any other answer that is not 2xx.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}}
}

// Close stops the engine for good.
func (e *Engine) Close() {
	e.SetLeader(false)
	e.system.Shutdown()
}

// Reserve implements httpapi.Engine.
func (e *Engine) Reserve(ctx context.Context, cmd domain.ReserveCommand) (domain.Outcome, error) {
	r := &request{op: opReserve, reserve: cmd.Request, caller: cmd.Caller, idem: cmd.Idem}
	if out, done, err := e.claimIdem(r); done {
		return out, err
	}
	rep := e.call(ctx, cmd.ResourceID, r)
	return rep.outcome, rep.err
}

// Transition implements httpapi.Engine.
func (e *Engine) Transition(ctx context.Context, cmd domain.TransitionCommand) (domain.Outcome, error) {
	r := &request{op: opTransition, rid: cmd.ReservationID, to: cmd.To, caller: cmd.Caller, idem: cmd.Idem}
	switch cmd.To {
	case domain.StatusConfirmed, domain.StatusCancelled, domain.StatusCheckedIn, domain.StatusCompleted:
	default:
		return domain.Outcome{}, fmt.Errorf("transition to %s: %w", cmd.To, domain.ErrInvalidArgument)
	}
	if e.current() == nil {
		// A follower's committed state may lag: do not answer not_found
		// from it.
		return domain.Outcome{}, fmt.Errorf("this node does not lead: %w", domain.ErrNotLeader)
	}
	// The key first: a retry whose reservation was pruned since (retention
	// shorter than the key's 24 h) still gets the answer on record.
	if out, done, err := e.claimIdem(r); done {
		return out, err
	}
	var res domain.Reservation
	var found, orphan bool
	e.log.View(func(st *domain.State) {
		res, found = st.Reservation(cmd.ReservationID)
		if found {
			_, ok := st.Resource(res.ResourceID)
			orphan = !ok
		}
	})
	if !found {
		e.answer(r, reply{}) // releases the key's claim
		return domain.Outcome{}, e.confirmed(ctx, domain.ReservationNotFound(cmd.ReservationID))
	}
	if orphan {
		e.answer(r, reply{})
		return orphanTransition(res, cmd, e.confirmed(ctx, nil))
	}
	rep := e.call(ctx, res.ResourceID, r)
	return rep.outcome, rep.err
}

// orphanTransition answers a transition of a reservation whose resource
// was deleted (it stays in the state until retention; deletion is refused
// while any is taken, so it is finished). There is no actor to ask and
// nothing can change it any more, so the committed reservation is the
// answer: the owner's repeat of what already happened is 200 unchanged,
// anyone else's is 403, any other move 409. leaderErr is the check that
// this node still leads, which a definite answer needs.
func orphanTransition(res domain.Reservation, cmd domain.TransitionCommand, leaderErr error) (domain.Outcome, error) {
	switch {
	case leaderErr != nil:
		return domain.Outcome{}, leaderErr
	case !cmd.Caller.CanAccess(res.User):
		return domain.Outcome{}, fmt.Errorf("reservation %s belongs to another user: %w", res.ID, domain.ErrPermissionDenied)
	case res.Status != cmd.To:
		return domain.Outcome{}, fmt.Errorf("reservation %s is %s and its resource %s was deleted: %w",
			res.ID, res.Status, res.ResourceID, domain.ErrInvalidState)
	}
	return domain.Outcome{Code: http.StatusOK, Reservation: res}, nil
}

// PutResource implements httpapi.Engine.
func (e *Engine) PutResource(ctx context.Context, id string, spec domain.Spec) (*domain.Resource, bool, error) {
	if !domain.ValidID(id) {
		return nil, false, fmt.Errorf("bad resource id %q: %w", id, domain.ErrInvalidArgument)
	}
	if err := spec.Validate(); err != nil {
		return nil, false, err
	}
	rep := e.call(ctx, id, &request{op: opPut, spec: &spec})
	return rep.resource, rep.created, rep.err
}

// PutLimit creates (created=true) or updates limit group id and returns it
// as committed.
func (e *Engine) PutLimit(ctx context.Context, id string, spec domain.LimitSpec) (*domain.Limit, bool, error) {
	if !domain.ValidID(id) {
		return nil, false, fmt.Errorf("bad limit id %q: %w", id, domain.ErrInvalidArgument)
	}
	if err := spec.Validate(); err != nil {
		return nil, false, err
	}
	rep := e.callLimit(ctx, id, &request{op: opPutLimit, limitSpec: spec})
	return rep.limit, rep.created, rep.err
}

// DeleteLimit removes limit group id, which no resource may name.
func (e *Engine) DeleteLimit(ctx context.Context, id string) error {
	return e.callLimit(ctx, id, &request{op: opDeleteLimit}).err
}

// DeleteResource implements httpapi.Engine.
func (e *Engine) DeleteResource(ctx context.Context, id string) error {
	return e.call(ctx, id, &request{op: opDelete}).err
}
