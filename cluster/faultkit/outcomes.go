package faultkit

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"allot/actors"
	"allot/actors/domain"
)

// UnknownOutcomes wraps the log the engine proposes to (server.Config.WrapLog)
// and hides the outcome of chosen proposals: the batch is still handed to
// Raft, and commits as it would have, but the engine is told
// domain.ErrOutcomeUnknown, the way an ApplyTimeout or a leader lost just
// after appending looks to it. The engine must then treat the events as
// "may or may not have happened" and find out from committed state.
//
// Which proposals: the next n (FailNext) and, after those, each with
// probability p (SetRate), drawn from a seeded source. When: see Timing.
// Everything else of the log (View, Barrier, the lease) passes through.
type UnknownOutcomes struct {
	actors.Log

	mu     sync.Mutex
	next   int
	rate   float64
	timing Timing
	delay  time.Duration
	rng    *rand.Rand
	stats  OutcomeStats
}

// Timing is when the engine hears that an affected proposal's outcome is
// unknown.
type Timing int

const (
	// AfterOutcome: once the real outcome is in (the entry committed and
	// was applied on this node, or it failed), plus the delay of SetDelay:
	// an answer lost on its way back, or an ApplyTimeout that fired just as
	// the entry committed. The default.
	AfterOutcome Timing = iota
	// AtOnce: as soon as the batch is handed to Raft, before it can have
	// committed: a leader that lost its leadership right after appending.
	// The entry may commit later, unseen by the engine.
	AtOnce
)

// OutcomeStats counts what an UnknownOutcomes did.
type OutcomeStats struct {
	// Proposals counts every batch proposed through the wrapper.
	Proposals uint64
	// Unknown counts the batches whose outcome was hidden.
	Unknown uint64
	// Committed counts the hidden batches whose real outcome turned out
	// to be committed, Failed those whose real outcome was an error (in
	// AtOnce mode both are known only later).
	Committed, Failed uint64
}

// NewUnknownOutcomes wraps inner; it hides nothing until told to. seed
// seeds the draws of SetRate.
func NewUnknownOutcomes(inner actors.Log, seed uint64) *UnknownOutcomes {
	return &UnknownOutcomes{Log: inner, rng: rand.New(rand.NewPCG(seed, seed^0x5851f42d4c957f2d))}
}

// FailNext hides the outcome of the next n proposals.
func (u *UnknownOutcomes) FailNext(n int) {
	u.mu.Lock()
	u.next = n
	u.mu.Unlock()
}

// SetRate hides the outcome of each later proposal with probability p.
func (u *UnknownOutcomes) SetRate(p float64) {
	u.mu.Lock()
	u.rate = p
	u.mu.Unlock()
}

// SetTiming chooses when the engine hears of a hidden outcome.
func (u *UnknownOutcomes) SetTiming(t Timing) {
	u.mu.Lock()
	u.timing = t
	u.mu.Unlock()
}

// SetDelay holds the unknown answer d after the real outcome (AfterOutcome
// timing only), so that the engine waits longer than Raft did.
func (u *UnknownOutcomes) SetDelay(d time.Duration) {
	u.mu.Lock()
	u.delay = d
	u.mu.Unlock()
}

// Stats reports what the wrapper did so far.
func (u *UnknownOutcomes) Stats() OutcomeStats {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.stats
}

// Propose hands b to the wrapped log; for a chosen batch, done hears
// domain.ErrOutcomeUnknown instead of the real outcome.
func (u *UnknownOutcomes) Propose(b *domain.Batch, done func(results []error, err error)) {
	u.mu.Lock()
	u.stats.Proposals++
	hide := u.next > 0
	if hide {
		u.next--
	} else if u.rate > 0 {
		hide = u.rng.Float64() < u.rate
	}
	if hide {
		u.stats.Unknown++
	}
	timing, delay, seq := u.timing, u.delay, u.stats.Proposals
	u.mu.Unlock()
	if !hide {
		u.Log.Propose(b, done)
		return
	}
	unknown := fmt.Errorf("faultkit: outcome of proposal %d withheld: %w", seq, domain.ErrOutcomeUnknown)
	if timing == AtOnce {
		go done(nil, unknown)
	}
	u.Log.Propose(b, func(results []error, err error) {
		u.mu.Lock()
		if err == nil {
			u.stats.Committed++
		} else {
			u.stats.Failed++
		}
		u.mu.Unlock()
		switch {
		case timing == AtOnce:
		case delay > 0:
			time.AfterFunc(delay, func() { done(nil, unknown) })
		default:
			done(nil, unknown)
		}
	})
}
