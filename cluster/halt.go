package cluster

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/hashicorp/raft"

	"allot/actors/domain"
)

// Fail-stop. An entry that a node cannot apply as the others do — it does
// not decode, it asks for a log format this binary does not know, or its
// stamped term is not its log term (hashicorp/raft #695) — must not be
// skipped: skipping it makes this node's state differ from the others'
// without anyone noticing. So the FSM halts: it applies nothing from that
// entry on, its state stays as of the last good entry, and the node stops
// Raft (so it never leads and never votes with a log it cannot apply) and
// refuses every request. Operators learn of it from the error log, the
// allot_fsm_halted gauge and its alerts; docs/OPERATIONS.md has the repair.
//
// A rule refusal (State.Apply refusing a well-formed event) is not a halt:
// it is deterministic, every node refuses the same event the same way, so
// the states stay equal; it is counted as an invariant violation instead.

// HaltReason says why an FSM halted; it is the reason label of
// allot_fsm_halted.
type HaltReason string

const (
	// HaltUndecodable: an entry does not decode (corrupt, an unknown batch
	// version or event type): a newer binary wrote it, or a bug did.
	HaltUndecodable HaltReason = "undecodable"
	// HaltLogFormat: a committed log-format event names a format this
	// binary does not understand: the cluster moved on without it.
	HaltLogFormat HaltReason = "log_format"
	// HaltTermMismatch: an entry's stamped term differs from the term Raft
	// stored it under: this node's log diverged (hashicorp/raft #695).
	HaltTermMismatch HaltReason = "term_mismatch"
	// HaltDiverged: the audit found this node's log digest at an audit
	// point differs from the one a strict majority of the voters agree on
	// (audit.go, auditor.go): what it applied is not what they applied.
	// Unlike the others, this halt is recorded in the data dir, so that a
	// restart halts at once instead of serving until the next audit.
	HaltDiverged HaltReason = "diverged"
	// HaltEventLog: the change stream's records of applied entries could
	// not be written (disk full, I/O error). The state moved on but the
	// stream did not, and it must never have a gap, so the FSM stops; a
	// restart makes the records again from the snapshot and the log.
	HaltEventLog HaltReason = "event_log"
)

// haltReasons are every HaltReason, for metrics.
var haltReasons = [...]HaltReason{HaltUndecodable, HaltLogFormat, HaltTermMismatch, HaltDiverged, HaltEventLog}

// Halt records where and why an FSM stopped applying entries.
type Halt struct {
	Reason HaltReason
	// Index and Term are the raft log entry that could not be applied.
	Index, Term uint64
	// Err is the detail (decode error, stamped term, format).
	Err error
}

func (h *Halt) Error() string {
	return fmt.Sprintf("fsm halted at entry %d (term %d): %s: %v", h.Index, h.Term, h.Reason, h.Err)
}

// refusal is the error a halted FSM answers for an entry it did not apply:
// the entry is committed, so whether it takes effect elsewhere is unknown
// to the proposer (see proposal.results).
func (h *Halt) refusal(index uint64) error {
	return fmt.Errorf("entry %d not applied: %w: %w", index, h, domain.ErrUnavailable)
}

// Halted returns why the FSM halted, nil while it applies entries.
func (f *FSM) Halted() *Halt { return f.halt.Load() }

// stop halts the FSM at h (the first halt wins), logs it and tells the
// node. It runs without f.mu, on Raft's FSM goroutine or, for the audit's
// halt, on the auditor's (an entry being applied meanwhile is the last).
func (f *FSM) stop(h *Halt) {
	if !f.halt.CompareAndSwap(nil, h) {
		return
	}
	f.logger.Error("FSM HALTED: this node cannot go on applying the committed log as the other nodes do "+
		"(an entry it cannot apply, or one the audit found it applied differently); "+
		"this node applies nothing more, stops Raft and refuses every request until it is repaired "+
		"(docs/OPERATIONS.md)",
		slog.String("reason", string(h.Reason)), slog.Uint64("index", h.Index), slog.Uint64("term", h.Term),
		slog.Uint64("applied", f.applied.Load()), slog.Any("error", h.Err))
	if f.onHalt != nil {
		f.onHalt(h)
	}
}

// fsmHalted is the FSM's onHalt: it runs on Raft's FSM goroutine, which
// raft.Shutdown waits for, so the node stops Raft from a goroutine of its
// own. Shutdown waits for that goroutine (wg) before closing the stores.
func (n *Node) fsmHalted(h *Halt) {
	n.wg.Add(1)
	go n.failStop(h)
}

// failStop takes a node whose FSM halted out of service: it is no longer a
// ready leader, hands leadership to another voter if it leads, and stops
// Raft. The process keeps running, so that /readyz, /metrics and the logs
// say what happened; a restart meets the same entry and halts again.
func (n *Node) failStop(h *Halt) {
	defer n.wg.Done()
	select {
	case <-n.raftStarted:
	case <-n.stop:
		return
	}
	n.clearReady()
	if n.raft.State() == raft.Leader && n.hasOtherVoters() {
		ctx, cancel := context.WithTimeout(context.Background(), n.cfg.ShutdownTimeout)
		err := n.transferLeadership(ctx)
		cancel()
		if err != nil {
			n.logger.Warn("halted leader could not hand leadership over; stopping raft anyway", "error", err)
		}
	}
	if err := n.stopRaft(); err != nil {
		n.logger.Error("halted node: raft shutdown", "error", err)
		return
	}
	n.logger.Error("raft stopped because the FSM halted", "reason", string(h.Reason), "index", h.Index)
}

// stopRaft shuts Raft down once; every caller waits for that one shutdown
// (raft.Shutdown returns at once to a second caller, before Raft stopped).
func (n *Node) stopRaft() error {
	n.raftStop.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), n.cfg.ShutdownTimeout)
		defer cancel()
		n.raftStopErr = awaitFuture(ctx, n.raft.Shutdown()) // also closes the transport
		n.raftStopped.Store(n.raftStopErr == nil)
	})
	return n.raftStopErr
}
