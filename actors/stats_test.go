package actors

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"allot/actors/domain"
)

// hookLog records what the engine reports through its hooks.
type hookLog struct {
	mu                                     sync.Mutex
	decisions                              map[string]int // "kind outcome"
	batches                                []BatchStats
	replays, activated, passivated, depths atomic.Int64
}

func (h *hookLog) hooks() Hooks {
	return Hooks{
		Decided: func(kind domain.Kind, to domain.Status, err error) {
			name := to.String()
			switch {
			case err != nil:
				name = domain.ErrorCode(err)
			case to == 0:
				name = "unchanged"
			}
			h.mu.Lock()
			h.decisions[kind.String()+" "+name]++
			h.mu.Unlock()
		},
		Committed: func(b BatchStats) {
			h.mu.Lock()
			h.batches = append(h.batches, b)
			h.mu.Unlock()
		},
		Replayed:     func() { h.replays.Add(1) },
		Activated:    func() { h.activated.Add(1) },
		Passivated:   func() { h.passivated.Add(1) },
		MailboxDepth: func(int64) { h.depths.Add(1) },
	}
}

func TestHooksAndStats(t *testing.T) {
	h := &hookLog{decisions: map[string]int{}}
	log := newMemLog()
	// Long enough that no actor passivates between the steps below on a
	// loaded machine (a second activation would change the counts); short
	// enough that the passivation at the end is quick.
	e := New(log, Config{IdleTimeout: time.Second}, h.hooks())
	if st := e.Stats(); st != (Stats{}) {
		t.Fatalf("stats of a follower: %+v", st)
	}
	e.SetLeader(true)
	t.Cleanup(e.Close)

	putVoucher(t, e, "v1", 2, 900)
	putVoucher(t, e, "v2", 1, 900)
	key := &domain.IdemKey{Key: "k", Fingerprint: [16]byte{1}}
	first, err := reserve(e, "v1", "alice", key)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reserve(e, "v1", "alice", key); err != nil { // replayed
		t.Fatal(err)
	}
	if _, err := reserve(e, "v1", "alice", nil); !errors.Is(err, domain.ErrLimitExceeded) {
		t.Fatalf("second unit for alice: %v", err)
	}
	if _, err := reserve(e, "v1", "bob", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := reserve(e, "v1", "carol", nil); !errors.Is(err, domain.ErrSoldOut) {
		t.Fatalf("carol: %v", err)
	}
	confirm := func() error {
		_, err := e.Transition(context.Background(), domain.TransitionCommand{
			ReservationID: first.Reservation.ID, To: domain.StatusConfirmed, Caller: domain.Principal{User: "alice"}})
		return err
	}
	if err := confirm(); err != nil {
		t.Fatal(err)
	}
	if err := confirm(); err != nil { // already confirmed: unchanged
		t.Fatal(err)
	}
	// 32 more requests to v2 (one hold, 31 sold out) make two mailbox
	// samples at least.
	for i := range 32 {
		_, _ = reserve(e, "v2", fmt.Sprintf("u%d", i), nil)
	}

	h.mu.Lock()
	for want, n := range map[string]int{
		"voucher held":           3, // alice, bob, one on v2 "voucher confirmed": 1, "voucher unchanged": 1,
		"voucher limit_exceeded": 1, "voucher sold_out": 32,
	} {
		if h.decisions[want] != n {
			t.Errorf("%s: %d decisions, want %d (all: %v)", want, h.decisions[want], n, h.decisions)
		}
	}
	events := 0
	for _, b := range h.batches {
		if b.Err != nil || b.Events < 1 || b.Wait < b.Commit || b.Commit < 0 {
			t.Errorf("batch %+v", b)
		}
		events += b.Events
	}
	h.mu.Unlock()
	if events != 6 { // 2 puts, 3 reservations, 1 confirm
		t.Errorf("%d events committed, want 6", events)
	}
	if h.replays.Load() != 1 || h.activated.Load() != 2 || h.depths.Load() < 2 {
		t.Errorf("replays %d activations %d mailbox samples %d", h.replays.Load(), h.activated.Load(), h.depths.Load())
	}
	// Three holds scheduled; alice's, confirmed since, leaves the heap when due.
	st := e.Stats()
	if !st.Leading || st.ActiveActors != 2 || st.ExpiryTimers != 3 || st.MaxMailbox != 0 || st.QueuedEvents != 0 {
		t.Errorf("stats %+v", st)
	}
	// Idle actors passivate.
	waitFor(t, 10*time.Second, func() bool { return h.passivated.Load() == 2 })
	if st := e.Stats(); st.ActiveActors != 0 {
		t.Errorf("stats after passivation %+v", st)
	}
	log.check(t)
}
