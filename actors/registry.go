package actors

import (
	"fmt"
	"sync"

	"github.com/asynkron/protoactor-go/actor"

	"allot/actors/domain"
)

// registry maps resource ids to their live actors for one term. Every send
// goes through it under a shard lock and is counted, which is what makes
// passivation safe: an actor may stop only when it has received everything
// ever sent to it (sent == received) and has no event awaiting commit, so
// its successor activates from committed state that is complete.
type registry struct {
	shards [64]registryShard
}

type registryShard struct {
	sync.Mutex
	actors map[string]*registryEntry
	sends  uint32 // requests sent through the shard, to sample mailbox depths
}

// mailboxSampleMask picks the sends whose mailbox depth is reported: one in 16.
const mailboxSampleMask = 15

type registryEntry struct {
	pid  *actor.PID
	act  *resourceActor
	sent int64 // requests sent, under the shard lock
}

func (r *registry) init() {
	for i := range r.shards {
		r.shards[i].actors = make(map[string]*registryEntry)
	}
}

func (r *registry) shard(id string) *registryShard {
	return &r.shards[fnv32(id)%uint32(len(r.shards))]
}

// send hands req to the actor of resourceID, activating it if needed. A
// resource that is neither committed nor being created has no actor.
func (t *term) send(resourceID string, req *request) error {
	s := t.registry.shard(resourceID)
	s.Lock()
	defer s.Unlock()
	if t.ctx.Err() != nil {
		return fmt.Errorf("leadership is changing: %w", domain.ErrUnavailable)
	}
	e := s.actors[resourceID]
	if e == nil {
		if req.op != opPut && !t.committedExists(resourceID) {
			return fmt.Errorf("resource %s: %w", resourceID, domain.ErrNotFound)
		}
		act := newResourceActor(t, resourceID)
		pid := t.engine.system.Root.Spawn(actor.PropsFromProducer(func() actor.Actor { return act }))
		e = &registryEntry{pid: pid, act: act}
		s.actors[resourceID] = e
		if h := t.engine.hooks.Activated; h != nil {
			h()
		}
	}
	if s.sends++; s.sends&mailboxSampleMask == 0 {
		if h := t.engine.hooks.MailboxDepth; h != nil {
			h(e.sent - e.act.received.Load())
		}
	}
	e.sent++
	t.engine.system.Root.Send(e.pid, req)
	return nil
}

func (t *term) committedExists(id string) (ok bool) {
	t.engine.log.View(func(st *domain.State) { _, ok = st.Resource(id) })
	return ok
}

// tryPassivate removes act from the registry if nothing is queued for it and
// nothing it decided awaits commit. The caller then stops itself.
func (r *registry) tryPassivate(act *resourceActor) bool {
	s := r.shard(act.id)
	s.Lock()
	defer s.Unlock()
	e := s.actors[act.id]
	// A dirty actor stays until it has resynchronised: a successor would
	// reload without the barrier an unknown outcome needs.
	if e == nil || e.act != act || e.sent != act.received.Load() || act.pending.Load() != 0 ||
		act.dirty.Load() || act.resyncing {
		return false
	}
	delete(s.actors, act.id)
	return true
}

// each calls fn for every live actor, one shard lock at a time.
func (r *registry) each(fn func(*actor.PID)) {
	for i := range r.shards {
		s := &r.shards[i]
		s.Lock()
		for _, e := range s.actors {
			fn(e.pid)
		}
		s.Unlock()
	}
}

// size returns the number of live actors.
func (r *registry) size() int {
	n := 0
	for i := range r.shards {
		s := &r.shards[i]
		s.Lock()
		n += len(s.actors)
		s.Unlock()
	}
	return n
}

// fnv32 is FNV-1a, the hash that picks a shard here and in inflightKeys.
func fnv32(s string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h = (h ^ uint32(s[i])) * 16777619
	}
	return h
}
