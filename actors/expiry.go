package actors

import (
	"container/heap"
	"context"
	"errors"
	"sync"
	"time"

	"allot/actors/domain"
)

// expiryBatch is the most due holds handed to actors per wake-up, so one
// huge backlog does not starve the actors' other work.
const expiryBatch = 4096

// expiry is the leader's timer heap over held reservations. When a hold is
// due it asks the resource's actor to expire it; the actor checks the hold
// against its own clock (never early) and proposes an expired event. The heap
// is rebuilt from committed state at the start of every term, so holds due
// during a failover or a restart expire promptly on the new leader.
type expiry struct {
	term *term
	mu   sync.Mutex
	h    expiryHeap
	wake chan struct{}
}

type expiryItem struct {
	at          int64 // Unix ns
	rid, source string
}

type expiryHeap []expiryItem

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].at < h[j].at }
func (h expiryHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *expiryHeap) Push(x any)        { *h = append(*h, x.(expiryItem)) }
func (h *expiryHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	*h = old[:len(old)-1]
	return it
}

func newExpiry(t *term) *expiry {
	return &expiry{term: t, wake: make(chan struct{}, 1)}
}

// add schedules an expiry check of reservation rid (of resource source) at at.
// Duplicates are harmless: the actor ignores holds that are no longer held.
func (x *expiry) add(rid, source string, at int64) {
	x.mu.Lock()
	heap.Push(&x.h, expiryItem{at: at, rid: rid, source: source})
	first := x.h[0].rid == rid && x.h[0].at == at
	x.mu.Unlock()
	if first {
		select {
		case x.wake <- struct{}{}:
		default:
		}
	}
}

// pending returns the number of scheduled expiry checks.
func (x *expiry) pending() int {
	x.mu.Lock()
	defer x.mu.Unlock()
	return len(x.h)
}

func (x *expiry) run(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var due []expiryItem
	for {
		due = due[:0]
		now := x.term.clock.now()
		wait := time.Hour
		x.mu.Lock()
		for len(x.h) > 0 && len(due) < expiryBatch {
			if x.h[0].at > now {
				wait = time.Duration(x.h[0].at - now)
				break
			}
			due = append(due, heap.Pop(&x.h).(expiryItem))
		}
		x.mu.Unlock()
		for _, it := range due {
			req := &request{op: opExpire, rid: it.rid, to: domain.StatusExpired}
			if err := x.term.send(it.source, req); errors.Is(err, domain.ErrUnavailable) {
				return // the term is over; the next one rebuilds from committed state
			}
			// Any other error (a stale duplicate for a resource deleted since)
			// concerns that hold only.
		}
		if len(due) == expiryBatch {
			wait = 0
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-x.wake:
		case <-timer.C:
		}
	}
}
