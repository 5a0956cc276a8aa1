package cluster

import (
	"fmt"
	"log/slog"
	"math"
	"sync/atomic"

	"github.com/hashicorp/raft"
)

// A Raft voter promises two things with its disk: the entries it
// acknowledged stay in its log (a commit counted on them), and it votes at
// most once per term. A node whose data dir was wiped has forgotten both.
// If it votes as before, a candidate that lacks a committed entry can win
// with its vote (the entry is then overwritten), and it can vote twice in
// one term (two leaders). The vote guard keeps such a node from voting, and
// from standing for election, until it is safe again:
//
//   - It arms when the node starts without Raft state (and when the Raft
//     database is gone while snapshots remain: the term and vote are lost
//     all the same). A brand-new node is armed too: it cannot tell a first
//     start from a wipe, and a new node has nothing to lose by waiting.
//   - Armed, the node refuses every RequestVote and RequestPreVote, refuses
//     TimeoutNow (a leadership transfer to it), and sends no vote requests
//     of its own. It still accepts entries and snapshots: that is how it
//     catches up, and an entry it acknowledges is on its disk.
//   - It disarms once it holds a committed entry of the term of a leader it
//     heard from since it started: a leader announced commit index C in
//     term T, this node's log reaches C, and its entry at C has term T (a
//     leader's first entry, its no-op, commits before any index of its
//     term does, so C covers every entry committed in earlier terms; the
//     entry's term proves it is the leader's own). Then its log holds
//     every entry committed before the wipe that this leader knows of.
//   - From then on it refuses votes in terms up to the floor: the term it
//     had when it disarmed. It may have voted in those terms before the
//     wipe and cannot remember for whom. Raft itself refuses terms below
//     its current term, so the floor matters only while the two are equal.
//
// The floor lives in Raft's stable store (voteFloorKey), next to the term
// and vote it stands in for: a restart keeps both, and a node that was
// armed when it stopped is armed when it starts. A node that kept its data
// has a floor at or below its current term and is not affected.
//
// What the guard cannot see: a vote the node cast before the wipe in a term
// above every term it hears of afterwards. That needs a candidate that
// collected the vote and is still waiting for its election when the node is
// back, which a restart slower than an election timeout rules out.

// voteFloorKey is the stable-store key of the vote floor. Raft's own keys
// ("CurrentTerm", "LastVoteTerm", "LastVoteCand") do not collide with it.
var voteFloorKey = []byte("allot_vote_floor")

// floorArmed is the floor of a node that refuses every vote: no term is
// above it.
const floorArmed = math.MaxUint64

// voteGuard decides which vote requests this node may answer. The guarded
// transport asks it; the floor is read by any goroutine, and the
// announcement fields are touched only by the transport's consumer loop.
type voteGuard struct {
	stable raft.StableStore
	logger *slog.Logger
	// floor: votes in terms <= floor are refused; floorArmed refuses all,
	// and the node does not stand for election.
	floor   atomic.Uint64
	refused atomic.Uint64
	probe   atomic.Pointer[catchUpProbe]
	// founder, when set, is the only candidate this node votes for while
	// its log is empty: it disarmed to found a cluster with that founder
	// (commitFounding), and an empty log is a safe vote in that new
	// cluster only.
	founder atomic.Pointer[string]

	// The last commit index a leader announced, and its term.
	heardTerm, heardCommit uint64
}

// openVoteGuard loads the floor from the stable store, arming the guard (and
// persisting that) when the node has lost, or never had, its Raft state.
func openVoteGuard(stable raft.StableStore, logs raft.LogStore, hasState bool, logger *slog.Logger) (*voteGuard, error) {
	g := &voteGuard{stable: stable, logger: logger}
	floor, err := stable.GetUint64(voteFloorKey)
	switch {
	case err == nil && hasState:
		g.floor.Store(floor)
		if floor == floorArmed {
			logger.Warn("vote guard still armed: this node lost its raft state and has not caught up with a leader yet; it does not vote or stand for election")
		}
		return g, nil
	case err != nil && !isNotFound(err):
		return nil, fmt.Errorf("vote guard: read floor: %w", err)
	case hasState:
		// State but no floor: a node from before the guard, or one whose
		// Raft database is gone while its snapshots remain.
		last, err := logs.LastIndex()
		if err != nil {
			return nil, fmt.Errorf("vote guard: read log: %w", err)
		}
		if last > 0 {
			return g, nil
		}
	}
	if err := stable.SetUint64(voteFloorKey, floorArmed); err != nil {
		return nil, fmt.Errorf("vote guard: arm: %w", err)
	}
	g.floor.Store(floorArmed)
	logger.Warn("no raft state in the data dir: this node does not vote or stand for election until it has caught up with a leader")
	return g, nil
}

// isNotFound matches a stable store's "no such key": hashicorp/raft's
// StableStore contract is an error whose text is "not found".
func isNotFound(err error) bool { return err != nil && err.Error() == "not found" }

// standing reports whether this node may vote at all (and so stand for
// election): the guard is disarmed.
func (g *voteGuard) standing() bool { return g.floor.Load() != floorArmed }

// mayVote reports whether a vote request for term may reach Raft. An armed
// guard first checks whether the node has caught up by now.
func (g *voteGuard) mayVote(term uint64) bool {
	if !g.standing() {
		g.tryDisarm()
	}
	if term > g.floor.Load() {
		return true
	}
	if g.refused.Add(1) == 1 {
		g.logger.Warn("vote guard refuses a vote request", "term", term, "floor", g.floorString())
	}
	return false
}

// mayVoteFor is mayVote for a vote request of candidate (its server id),
// which a node committed to found a cluster grants, while its log is
// empty, only to its founder.
func (g *voteGuard) mayVoteFor(term uint64, candidate []byte) bool {
	if f := g.founder.Load(); f != nil && string(candidate) != *f && g.logEmpty() {
		if g.refused.Add(1) == 1 {
			g.logger.Warn("vote guard refuses a vote request: committed to found a cluster, this node votes only for its founder until its log holds an entry",
				"term", term, "candidate", string(candidate), "founder", *f)
		}
		return false
	}
	return g.mayVote(term)
}

// logEmpty reports whether this node's log holds no entry (true until the
// probe is attached: Raft is not running yet).
func (g *voteGuard) logEmpty() bool {
	p := g.probe.Load()
	return p == nil || p.raft.LastIndex() == 0
}

// heard records a commit index announced by the leader of term (from an
// AppendEntries or a snapshot it sent and this node accepted) and disarms
// the guard if the node has caught up with it.
func (g *voteGuard) heard(term, commit uint64) {
	if g.standing() || commit == 0 {
		return
	}
	if term > g.heardTerm || (term == g.heardTerm && commit > g.heardCommit) {
		g.heardTerm, g.heardCommit = term, commit
	}
	g.tryDisarm()
}

func (g *voteGuard) tryDisarm() {
	p := g.probe.Load()
	if p == nil || g.standing() {
		return
	}
	if term, ok := p.caughtUp(g.heardTerm, g.heardCommit); ok {
		g.disarm(term, "caught up with a leader")
	}
}

// disarm lets the node vote in terms above floor, persisting the floor
// first: a vote granted must never rest on a floor a restart forgets.
func (g *voteGuard) disarm(floor uint64, why string) {
	if err := g.stable.SetUint64(voteFloorKey, floor); err != nil {
		g.logger.Error("vote guard: persist floor; staying armed", "error", err)
		return
	}
	g.floor.Store(floor)
	g.logger.Info("vote guard disarmed: this node votes again", "why", why, "in_terms_above", floor)
}

// rearm arms a guard that was disarmed with floor 0 to found a new
// cluster (commitFounding) again, persisting that: the node did not end up
// in that cluster and may have lost data of the one it joins instead. A
// guard that has caught up with a leader since (floor above 0) or is armed
// is left alone. If the floor cannot be persisted the node refuses votes
// until it stops, and the error says so: a restart would read floor 0.
func (g *voteGuard) rearm(why string) error {
	g.founder.Store(nil)
	if !g.floor.CompareAndSwap(0, floorArmed) {
		return nil
	}
	if err := g.stable.SetUint64(voteFloorKey, floorArmed); err != nil {
		return fmt.Errorf("vote guard: persist armed floor: %w", err)
	}
	g.logger.Warn("vote guard armed again: this node does not vote or stand for election until it has caught up with a leader", "why", why)
	return nil
}

func (g *voteGuard) floorString() string {
	if f := g.floor.Load(); f != floorArmed {
		return fmt.Sprint(f)
	}
	return "armed"
}

// catchUpProbe reads what the guard needs from Raft and the stores. It is
// attached once Raft runs; until then the guard stays as it is.
type catchUpProbe struct {
	raft  *raft.Raft
	logs  raft.LogStore
	snaps raft.SnapshotStore
}

// caughtUp reports whether this node holds a committed entry of the term
// of the leader that announced commit in term (see the comment at the top),
// and the current term, the floor from then on. A node that leads while
// armed is caught up too: it cannot have won a vote (the guard sends no
// vote requests), so it is the only voter of its configuration, and its
// log is the cluster's.
func (p *catchUpProbe) caughtUp(term, commit uint64) (uint64, bool) {
	if p.raft.State() == raft.Leader {
		return p.raft.CurrentTerm(), true
	}
	if commit == 0 || p.raft.LastIndex() < commit || !p.committedInTerm(commit, term) {
		return 0, false
	}
	return p.raft.CurrentTerm(), true
}

// committedInTerm reports whether the entry at the committed index has
// term, or a snapshot ending at or after index ends on an entry of term
// (what a snapshot holds is committed).
func (p *catchUpProbe) committedInTerm(index, term uint64) bool {
	var l raft.Log
	if err := p.logs.GetLog(index, &l); err == nil {
		return l.Term == term
	}
	metas, err := p.snaps.List() // newest first
	return err == nil && len(metas) > 0 && metas[0].Index >= index && metas[0].Term == term
}

// VoteStatus is what the vote guard says about this node.
type VoteStatus struct {
	// CanVote is false while the node refuses all votes: it started
	// without Raft state and has not caught up with a leader yet.
	CanVote bool
	// Floor is the highest term in which the node refuses to vote once it
	// can (0 when CanVote is false).
	Floor uint64
	// Refused counts the vote requests refused since Start.
	Refused uint64
}

// VoteStatus reports the vote guard's state (see voteguard.go).
func (n *Node) VoteStatus() VoteStatus {
	g := n.trans.guard
	f := g.floor.Load()
	if f == floorArmed {
		return VoteStatus{Refused: g.refused.Load()}
	}
	return VoteStatus{CanVote: true, Floor: f, Refused: g.refused.Load()}
}
