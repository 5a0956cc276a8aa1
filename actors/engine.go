// Package actors runs allot's write path on the leader: one protoactor actor
// per resource decides requests one at a time against its working copy of the
// resource, rejections are answered at once, and acceptances become events
// that a proposer batches into Raft entries (group commit). Expiry timers turn
// due holds into expired events. Followers run none of this.
package actors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"allot/actors/domain"
)

// Config tunes the engine. Zero fields take the defaults of DefaultConfig.
type Config struct {
	// MaxBatch is the most events one Raft entry carries.
	MaxBatch int
	// MaxInflightBatches bounds the entries proposed but not yet applied.
	// While they are in flight, new events queue up and form the next, larger
	// batch: group commit that adds no wait under light load.
	MaxInflightBatches int
	// QueueSize is the proposer's queue of decided events; when full, actors
	// wait (back-pressure).
	QueueSize int
	// IdleTimeout passivates an actor that received nothing for this long.
	IdleTimeout time.Duration
	// ExpiryRetry is how soon an expiry whose event failed is tried again.
	ExpiryRetry time.Duration
	// Logger receives engine logs; nil discards them.
	Logger *slog.Logger
	// Clock is the wall clock leader time is read from; nil is the
	// machine's. See leaderClock for how steps of it are handled.
	Clock Clock
	// Retention is how long, in leader time, cancelled and expired
	// reservations stay in committed state after they finished; 0 keeps
	// them forever (fill leaves 0 alone). Only the leader's setting counts:
	// the prune event carries its cutoff (retention.go).
	Retention time.Duration
	// PruneInterval is how often the leader looks for reservations past
	// Retention.
	PruneInterval time.Duration
	// Events is this node's copy of the change stream, which the leader
	// delivers to webhooks from; nil delivers nothing (webhooks can still
	// be written).
	Events EventSource
	// Webhooks tunes webhook delivery; zero fields take the defaults.
	Webhooks WebhookConfig
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		MaxBatch:           1024,
		MaxInflightBatches: 4,
		QueueSize:          16384,
		IdleTimeout:        2 * time.Minute,
		ExpiryRetry:        time.Second,
		Retention:          DefaultRetention,
		PruneInterval:      time.Minute,
		Webhooks:           DefaultWebhookConfig(),
	}
}

func (c *Config) fill() {
	d := DefaultConfig()
	if c.MaxBatch <= 0 {
		c.MaxBatch = d.MaxBatch
	}
	if c.MaxInflightBatches <= 0 {
		c.MaxInflightBatches = d.MaxInflightBatches
	}
	if c.QueueSize <= 0 {
		c.QueueSize = d.QueueSize
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = d.IdleTimeout
	}
	if c.ExpiryRetry <= 0 {
		c.ExpiryRetry = d.ExpiryRetry
	}
	if c.PruneInterval <= 0 {
		c.PruneInterval = d.PruneInterval
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Clock == nil {
		c.Clock = systemClock{}
	}
	c.Webhooks.fill()
}

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

// term is the engine's state for one stretch of leadership: its actors,
// proposer and expiry timers. A new term starts from committed state.
type term struct {
	engine   *Engine
	ctx      context.Context
	cancel   context.CancelFunc
	registry registry
	limits   limitRegistry
	proposer *proposer
	expiry   *expiry
	clock    *leaderClock
	lease    leaseGate
	hooks    *hookManager
	wg       sync.WaitGroup
}

// SetLeader starts (true) or stops (false) serving writes. The cluster calls
// it from one goroutine, in order, and calls SetLeader(true) only after its
// barrier: every actor activated afterwards sees all committed state.
func (e *Engine) SetLeader(leader bool) {
	e.mu.Lock()
	old := e.term
	e.term = nil
	e.mu.Unlock()
	if old != nil {
		old.stop() // before the new term loads committed state: nothing of the old one is in flight
	}
	if leader {
		t := e.newTerm()
		e.mu.Lock()
		e.term = t
		e.mu.Unlock()
		e.cfg.Logger.Info("engine leading: actors enabled")
	} else {
		e.cfg.Logger.Info("engine not leading: actors stopped")
	}
}

func (e *Engine) newTerm() *term {
	ctx, cancel := context.WithCancel(context.Background())
	t := &term{engine: e, ctx: ctx, cancel: cancel, lease: leaseGate{engine: e, ctx: ctx}}
	t.registry.init()
	t.proposer = newProposer(e, t)
	t.expiry = newExpiry(t)
	t.hooks = newHookManager(t)
	e.log.View(func(st *domain.State) {
		t.clock = newLeaderClock(e.cfg.Clock, st.LastTime())
		st.EachHeld(func(r domain.Reservation) { t.expiry.add(r.ID, r.ResourceID, r.ExpiresAt) })
	})
	t.wg.Add(4)
	go func() { defer t.wg.Done(); t.proposer.run(ctx) }()
	go func() { defer t.wg.Done(); t.expiry.run(ctx) }()
	go func() { defer t.wg.Done(); pruner{term: t}.run(ctx) }()
	go func() { defer t.wg.Done(); t.hooks.run(ctx) }()
	return t
}

// stop ends a term: actors stop after the messages already queued to them
// (which they answer "unavailable": the term is over), the proposer fails what
// it has not proposed, and waiters on proposed batches learn the outcome from
// Raft (unknown when leadership was lost).
func (t *term) stop() {
	t.cancel() // from here on, send refuses and actors answer "unavailable"
	var pids []*actor.PID
	t.registry.each(func(pid *actor.PID) { pids = append(pids, pid) })
	t.limits.each(func(pid *actor.PID) { pids = append(pids, pid) })
	for _, pid := range pids {
		_ = t.engine.system.Root.PoisonFuture(pid).Wait()
	}
	t.proposer.close() // no actor is left to hand it events
	t.wg.Wait()
}

// Close stops the engine for good.
func (e *Engine) Close() {
	e.SetLeader(false)
	e.system.Shutdown()
}

func (e *Engine) current() *term {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.term
}

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

// DeleteResource implements httpapi.Engine.
func (e *Engine) DeleteResource(ctx context.Context, id string) error {
	return e.call(ctx, id, &request{op: opDelete}).err
}

// claimIdem handles an Idempotency-Key before the request reaches an actor:
// it claims the key (a concurrent twin gets request_in_progress) and, if a
// committed answer exists, returns it (done=true). The claim comes first so
// that an answer committed after our look-up cannot be missed.
func (e *Engine) claimIdem(r *request) (domain.Outcome, bool, error) {
	if r.idem == nil {
		return domain.Outcome{}, false, nil
	}
	user := r.idemUser()
	k := user + "\x00" + r.idem.Key
	if !e.inflight.claim(k) {
		return domain.Outcome{}, true, fmt.Errorf("a request with this Idempotency-Key is still running: %w", domain.ErrRequestInProgress)
	}
	var rec domain.IdemRecord
	var found bool
	e.log.View(func(st *domain.State) { rec, found = st.Idem(user, r.idem.Key) })
	if !found {
		r.idemClear = k
		return domain.Outcome{}, false, nil
	}
	e.inflight.release(k)
	if rec.Fingerprint != r.idem.Fingerprint {
		return domain.Outcome{}, true, fmt.Errorf("Idempotency-Key already used for another request: %w", domain.ErrIdempotencyKeyReused)
	}
	if e.hooks.Replayed != nil {
		e.hooks.Replayed()
	}
	return domain.Outcome{Code: rec.Code, Reservation: rec.Reservation, Replayed: true}, true, nil
}

// inflightKeys are the idempotency keys of requests being decided or
// committed on this node, sharded to keep the lock cold.
type inflightKeys struct {
	shards [32]struct {
		sync.Mutex
		keys map[string]struct{}
	}
}

func (k *inflightKeys) shard(key string) *struct {
	sync.Mutex
	keys map[string]struct{}
} {
	return &k.shards[fnv32(key)%uint32(len(k.shards))]
}

func (k *inflightKeys) claim(key string) bool {
	s := k.shard(key)
	s.Lock()
	defer s.Unlock()
	if _, busy := s.keys[key]; busy {
		return false
	}
	if s.keys == nil {
		s.keys = make(map[string]struct{})
	}
	s.keys[key] = struct{}{}
	return true
}

func (k *inflightKeys) release(key string) {
	s := k.shard(key)
	s.Lock()
	delete(s.keys, key)
	s.Unlock()
}

func fnv32(s string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h = (h ^ uint32(s[i])) * 16777619
	}
	return h
}

// counter is an atomic int64 with the operations the actors need.
type counter = atomic.Int64
