package actors

import (
	"fmt"
	"sync"

	"allot/actors/domain"
)

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
