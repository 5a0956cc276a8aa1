package actors

import (
	"context"
	"sync"

	"github.com/asynkron/protoactor-go/actor"

	"allot/actors/domain"
)

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

// current is the term being led, nil while not leading.
func (e *Engine) current() *term {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.term
}
