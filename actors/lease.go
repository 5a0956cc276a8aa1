package actors

import (
	"context"
	"fmt"
	"sync"

	"allot/actors/domain"
)

// leaseGate sends the definite answers of one term that are not themselves
// commits — rejections, no-ops, not-found — only while this node provably
// still leads. Under the Raft leader lease (Log.LeaseValid) they go out at
// once; otherwise they wait for a leadership check, one for all the
// answers that queued up meanwhile, and are refused as unavailable if it
// fails. A leader that was paused (or cut off) past its lease may have been
// replaced: its state is stale and its "not found" or "sold out" could be
// wrong.
type leaseGate struct {
	engine *Engine
	ctx    context.Context // the term's: ends the checks when it ends

	mu      sync.Mutex
	queued  []heldAnswer
	running bool
}

// answer sends rep to r under the lease, or after a leadership check.
func (g *leaseGate) answer(r *request, rep reply) {
	if g.ctx.Err() != nil { // another term's lease says nothing about this one's answers
		g.engine.answer(r, reply{err: fmt.Errorf("leadership is changing: %w", domain.ErrUnavailable)})
		return
	}
	if g.engine.log.LeaseValid() {
		g.engine.answer(r, rep)
		return
	}
	g.mu.Lock()
	g.queued = append(g.queued, heldAnswer{req: r, rep: rep})
	start := !g.running
	g.running = true
	g.mu.Unlock()
	if start {
		go g.run()
	}
}

// run checks leadership for the answers queued so far, round after round,
// until none is left. An answer queued during a check waits for the next:
// only a check that began after the answer was decided vouches for it.
func (g *leaseGate) run() {
	for {
		g.mu.Lock()
		batch := g.queued
		g.queued = nil
		if len(batch) == 0 {
			g.running = false
			g.mu.Unlock()
			return
		}
		g.mu.Unlock()
		err := g.engine.log.VerifyLeader(g.ctx)
		for _, w := range batch {
			if err != nil {
				g.engine.answer(w.req, reply{err: fmt.Errorf("cannot confirm this node still leads: %w: %w", domain.ErrUnavailable, err)})
			} else {
				g.engine.answer(w.req, w.rep)
			}
		}
	}
}

// confirmed returns err, a definite answer read from this node's committed
// state outside any actor (a reservation or resource that does not exist),
// once this node is known to still lead; otherwise why it cannot say.
func (e *Engine) confirmed(ctx context.Context, err error) error {
	if e.log.LeaseValid() {
		return err
	}
	if verr := e.log.VerifyLeader(ctx); verr != nil {
		return fmt.Errorf("cannot confirm this node still leads: %w", verr)
	}
	return err
}
