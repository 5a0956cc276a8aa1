package actors

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"allot/actors/domain"
)

// TestLimitHistoryUnderFaults runs users who book, cancel and let holds
// expire over slots that share a day limit and a capacity (which an admin
// keeps raising and lowering), while the log
// reports some outcomes as unknown (before or after applying them, always
// in log order) and leadership ends now and then with entries in flight
// (a prefix of them commits). Then: every 201 is committed, the state keeps
// its invariants, no decision was refused by committed state (the actors'
// view was right), and once the faults stop and the holds are gone every
// user can book again (no grant stuck in a limit actor).
func TestLimitHistoryUnderFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("a few seconds of load")
	}
	e, log := newCtlLimitEngine(t, Config{ExpiryRetry: 20 * time.Millisecond})
	mustPutLimit(t, e, "day", 1, 0)
	mustPutLimit(t, e, "quota", 0, 12)
	slots := []string{"s0", "s1", "s2", "s3"}
	for _, s := range slots {
		putSpec(t, e, s, domain.Spec{Kind: domain.KindSlot, Capacity: 5, HoldSeconds: 1, Limits: []string{"day", "quota"}})
	}
	putSpec(t, e, "free", domain.Spec{Kind: domain.KindSlot, Capacity: 1000, HoldSeconds: 1, Limits: []string{"day"}})
	const users = 24
	stop := make(chan struct{})
	var acked sync.Map // reservation id → user, for every 201
	var answers [8]atomic.Int64

	log.hold.Store(true)
	var faults sync.WaitGroup
	faults.Go(func() { faulter(t, e, log, stop) })

	var clients sync.WaitGroup
	clients.Go(func() { // an admin raises and lowers the quota (a lowering under what is taken is refused)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			_, _, err := e.PutLimit(ctx, "quota", domain.LimitSpec{Capacity: int64(8 + 4*(i%2))})
			cancel()
			if err != nil && !errors.Is(err, domain.ErrInvalidState) && !errors.Is(err, domain.ErrUnavailable) &&
				!errors.Is(err, domain.ErrOutcomeUnknown) && !errors.Is(err, domain.ErrNotLeader) {
				t.Errorf("quota change: %v", err)
			}
		}
	})
	for u := range users {
		clients.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(u), 7))
			user := fmt.Sprintf("u%02d", u)
			var mine []string
			for {
				select {
				case <-stop:
					return
				default:
				}
				if len(mine) > 0 && rng.IntN(3) == 0 {
					rid := mine[rng.IntN(len(mine))]
					_, _ = transition(e, rid, domain.StatusCancelled, domain.Principal{User: user})
					continue
				}
				out, err := reserve(e, slots[rng.IntN(len(slots))], user, nil)
				switch {
				case err == nil:
					answers[0].Add(1)
					acked.Store(out.Reservation.ID, user)
					mine = append(mine, out.Reservation.ID)
				case errors.Is(err, domain.ErrLimitExceeded):
					answers[1].Add(1)
				case errors.Is(err, domain.ErrSoldOut):
					answers[2].Add(1)
				case errors.Is(err, domain.ErrOutcomeUnknown):
					answers[3].Add(1)
				case errors.Is(err, domain.ErrUnavailable), errors.Is(err, domain.ErrNotLeader):
					answers[4].Add(1)
					time.Sleep(time.Millisecond)
				default:
					t.Errorf("%s: %+v %v", user, out, err)
				}
			}
		})
	}
	time.Sleep(3 * time.Second)
	close(stop)
	clients.Wait()
	faults.Wait()
	t.Logf("201 %d, limit_exceeded %d, sold_out %d, unknown %d, unavailable %d",
		answers[0].Load(), answers[1].Load(), answers[2].Load(), answers[3].Load(), answers[4].Load())

	acked.Range(func(k, v any) bool {
		var ok bool
		log.View(func(st *domain.State) { _, ok = st.Reservation(k.(string)) })
		if !ok {
			t.Errorf("201 for %s of %s, which did not commit", k, v)
		}
		return true
	})
	if n := log.refusedRules.Load(); n != 0 {
		t.Errorf("committed state refused %d decisions", n)
	}
	// Every hold expires (no timer lost); then nothing is taken.
	waitFor(t, 15*time.Second, func() bool {
		taken := int64(-1)
		log.View(func(st *domain.State) {
			l, _ := st.Limit("day")
			taken = l.Taken
		})
		return taken == 0
	})
	log.View(func(st *domain.State) {
		if err := st.CheckInvariants(); err != nil {
			t.Fatal(err)
		}
	})
	for u := range users {
		user := fmt.Sprintf("u%02d", u)
		if _, err := retryUntil(t, func() (domain.Outcome, error) { return reserve(e, "free", user, nil) }); err != nil {
			t.Errorf("%s after the faults: %v", user, err)
		}
	}
}

// faulter resolves the log's proposals until stop: in log order, most
// applied and reported, some reported unknown after or before they apply;
// every so often it ends the term with proposals in flight, of which a
// prefix commits unseen and the rest is lost. Then it lets the log run
// freely.
func faulter(t *testing.T, e *Engine, log *ctlLog, stop <-chan struct{}) {
	rng := rand.New(rand.NewPCG(1, 2))
	nextTerm := time.Now().Add(400 * time.Millisecond)
	pop := func() *ctlProposal {
		log.mu.Lock()
		defer log.mu.Unlock()
		if len(log.waiting) == 0 {
			return nil
		}
		p := log.waiting[0]
		log.waiting = log.waiting[1:]
		return p
	}
	for {
		select {
		case <-stop:
			log.hold.Store(false)
			for p := pop(); p != nil; p = pop() {
				log.commit(p)
			}
			return
		case <-log.arrived:
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(nextTerm) {
			nextTerm = time.Now().Add(time.Duration(200+rng.IntN(400)) * time.Millisecond)
			e.SetLeader(false)
			var inflight []*ctlProposal
			for p := pop(); p != nil; p = pop() {
				inflight = append(inflight, p)
			}
			keep := rng.IntN(len(inflight) + 1)
			for i, p := range inflight {
				if i < keep {
					log.commitUnseen(p)
				} else {
					log.lose(p)
				}
			}
			for len(log.arrived) > 0 {
				<-log.arrived
			}
			e.SetLeader(true)
			continue
		}
		for p := pop(); p != nil; p = pop() {
			switch n := rng.IntN(10); {
			case n == 0:
				log.commitUnseen(p)
			case n == 1: // an entry that outlived its wait, then committed
				// A barrier started after the report waits for the entry,
				// as Raft's does for every entry before it.
				release := log.blockBarriers()
				p.finish(nil, fmt.Errorf("no outcome after the apply timeout: %w", domain.ErrOutcomeUnknown))
				time.Sleep(3 * time.Millisecond)
				log.apply(p)
				release()
			default:
				log.commit(p)
			}
		}
	}
}
