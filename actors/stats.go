package actors

import "time"

// BatchStats describes one batch of events the proposer finished, for
// Hooks.Committed.
type BatchStats struct {
	// Events is the number of events in the batch: one Raft entry.
	Events int
	// Wait is the time from the decision of the batch's oldest event to the
	// batch's outcome: what the slowest request of the batch waited for
	// group commit and Raft together.
	Wait time.Duration
	// Commit is the time from handing the batch to the log to its outcome
	// (commit and apply on this node); 0 when it was never handed over.
	Commit time.Duration
	// Err is nil when the batch was committed and applied. Otherwise its
	// events failed (domain.ErrUnavailable: never proposed) or their fate is
	// unknown (domain.ErrOutcomeUnknown).
	Err error
}

// Stats is a snapshot of the engine's leader-side state. On a node that does
// not lead, every field is zero.
type Stats struct {
	// Leading reports whether the engine serves writes (a term is running).
	Leading bool
	// ActiveActors is the number of live resource actors.
	ActiveActors int
	// MaxMailbox is the most requests waiting in any one actor's mailbox.
	MaxMailbox int64
	// QueuedEvents is the number of decided events waiting for the proposer
	// (its queue holds at most Config.QueueSize).
	QueuedEvents int
	// InflightBatches is the number of batches handed to the log and not
	// yet finished (at most Config.MaxInflightBatches).
	InflightBatches int
	// ExpiryTimers is the number of scheduled expiry checks in the leader's
	// heap (a hold whose expiry is being retried may appear twice).
	ExpiryTimers int
	// ClockStepsIgnored is how many times this term's leader time stopped
	// following the wall clock because it was more than a second off its
	// monotonic course (the wall clock stepped, or the term started more
	// than a second behind the committed time). Above 0, leader time and this
	// node's wall clock disagree; see ClockAhead for by how much.
	ClockStepsIgnored uint64
	// ClockAhead is leader time minus this node's wall clock, now.
	ClockAhead time.Duration
}

// Stats reports the engine's current state. It visits every live actor,
// taking one registry shard lock at a time, so its cost grows with the number
// of active actors: meant for a metrics scrape, not for the request path.
func (e *Engine) Stats() Stats {
	t := e.current()
	if t == nil {
		return Stats{}
	}
	st := Stats{
		Leading:         true,
		QueuedEvents:    len(t.proposer.in),
		InflightBatches: len(t.proposer.slots),
		ExpiryTimers:    t.expiry.pending(),

		ClockStepsIgnored: t.clock.ignoredSteps(),
		ClockAhead:        t.clock.aheadOfWall(),
	}
	st.ActiveActors, st.MaxMailbox = t.registry.load()
	return st
}

// load returns the number of live actors and the longest mailbox: requests
// sent to an actor that it has not received yet.
func (r *registry) load() (actors int, maxMailbox int64) {
	for i := range r.shards {
		s := &r.shards[i]
		s.Lock()
		actors += len(s.actors)
		for _, e := range s.actors {
			maxMailbox = max(maxMailbox, e.sent-e.act.received.Load())
		}
		s.Unlock()
	}
	return actors, maxMailbox
}
