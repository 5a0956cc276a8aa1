package cluster

import (
	"encoding/binary"
	"errors"
	"math"
	"sync"

	"github.com/cespare/xxhash/v2"
	"github.com/hashicorp/raft"

	"allot/actors/domain"
)

// The audit, first half: what this node applied, as a digest. The term
// stamp (halt.go) catches one known way for a node's log to differ from the
// others' (hashicorp/raft #695) at the entry. The audit is the second line,
// for any silent divergence of committed state: a different entry at the
// same index however it got there, or an apply that does not decide the
// same on every node. Its two halves:
//
//   - Here, each FSM folds every entry it applies — command and
//     configuration entries, the ones Raft shows to FSMs — into a running
//     digest: (previous digest, index, term, type, data, and which events
//     the rules refused). At audit points, the first entry applied at or
//     past each multiple of Config.AuditInterval, it records (index, term,
//     digest) in a ring of the last auditRingSize points.
//   - The auditor (auditor.go) asks the other nodes for their points and
//     compares them at the indexes both have; a node that a strict majority
//     of the voters disagrees with halts (HaltDiverged).
//
// Why a chain and not a digest per audit window: the digest at an index
// covers every entry before it, so once two nodes differ they differ at
// every later point, and a comparison that was missed (a peer down, points
// rotated out of the ring) is made up by the next one.
//
// Why the log and not the state: deterministic apply (FSM: no clock, no
// random source, no map order) of the same entries gives the same state, so
// equal log digests mean equal states except for a non-deterministic apply
// bug. Folding in which events the rules refused catches such a bug as soon
// as it changes a decision, which is what clients see. A full State.Hash
// at audit points would catch the rest, but it is O(state) and needs a
// frozen copy at the same index on every node: with FSM.Snapshot's copy
// blocking Apply for O(state), that is too dear to do routinely. The test
// kit compares State.Hash at quiescence instead (servertest.WaitConverged).
//
// Cost: one xxhash64 over each entry's bytes on the apply path, under the
// FSM lock Apply holds anyway, and a short lock every AuditInterval entries
// (BenchmarkApplyBatch; docs/DESIGN.md quotes the ratio).
//
// The chain survives restarts and snapshot installs: the digest and its
// index live in domain.State (LogDigest), which snapshots carry, so a node
// that restores a snapshot, its own at start or one a leader sent it, goes
// on from the digest at the snapshot as if it had applied every entry
// itself. A snapshot written before digests existed (format 1 or 2) has
// none: the node starts a new chain at its index (Base), and is compared
// only with nodes whose chain starts at the same index.

// auditRingSize is how many recent audit points a node keeps and reports:
// at the default interval, the last 65536 entries.
const auditRingSize = 64

// defaultAuditInterval is Config.AuditInterval's default.
const defaultAuditInterval = 1024

// noChain is the Base of a chain that cannot be compared with anyone's: a
// snapshot without a digest restored without knowing its index.
const noChain = math.MaxUint64

// AuditPoint is a node's log digest at an audit point.
type AuditPoint struct {
	// Index and Term are the entry the digest runs up to.
	Index, Term uint64
	// Digest is the LogDigest.Sum after that entry.
	Digest uint64
}

// auditLog is the FSM's half of the audit: it folds entries into the
// digest (on the FSM goroutine, with the FSM's lock held) and keeps the
// ring of recent audit points (behind its own lock, for the auditor and
// the peers that ask).
type auditLog struct {
	every uint64 // Config.AuditInterval
	buf   []byte // what fold hashes, reused

	mu     sync.Mutex
	base   uint64 // the Base of the chain the points belong to
	points [auditRingSize]AuditPoint
	n      int // points held
	next   int // where the next one goes
}

// fold returns d with entry l folded in. errs are the results of l's
// events (nil for a configuration entry): which ones the rules refused is
// part of what the node applied. When l is an audit point, it is recorded.
//
// The new digest is xxhash64 of (previous digest, index, term, type,
// xxhash64 of the data, the refused events' positions and codes): two
// one-shot hashes, which cost less than streaming the header and the data
// through one digest for the small entries of a quiet leader.
func (a *auditLog) fold(d domain.LogDigest, l *raft.Log, errs []error) domain.LogDigest {
	b := a.buf[:0]
	b = binary.LittleEndian.AppendUint64(b, d.Sum)
	b = binary.LittleEndian.AppendUint64(b, l.Index)
	b = binary.LittleEndian.AppendUint64(b, l.Term)
	b = append(b, byte(l.Type))
	b = binary.LittleEndian.AppendUint64(b, xxhash.Sum64(l.Data))
	for j, err := range errs {
		if err != nil {
			b = binary.AppendUvarint(b, uint64(j))
			b = append(b, refusalCode(err))
		}
	}
	a.buf = b
	prev := d.Index
	d.Index, d.Sum = l.Index, xxhash.Sum64(b)
	if a.every > 0 && l.Index/a.every > prev/a.every {
		a.record(AuditPoint{Index: l.Index, Term: l.Term, Digest: d.Sum})
	}
	return d
}

// refusalCode is how a refused event enters the digest: a retry answered
// from its idempotency record, or a rule violation.
func refusalCode(err error) byte {
	if errors.Is(err, domain.ErrDuplicateKey) {
		return 1
	}
	return 2
}

func (a *auditLog) record(p AuditPoint) {
	a.mu.Lock()
	a.points[a.next] = p
	a.next = (a.next + 1) % auditRingSize
	a.n = min(a.n+1, auditRingSize)
	a.mu.Unlock()
}

// restart forgets the points: the state was replaced by a snapshot whose
// chain starts after base.
func (a *auditLog) restart(base uint64) {
	a.mu.Lock()
	a.base, a.n, a.next = base, 0, 0
	a.mu.Unlock()
}

// report returns the chain's base and the points held, oldest first. A
// chain that cannot be compared reports no points.
func (a *auditLog) report() (base uint64, points []AuditPoint) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.base == noChain {
		return a.base, nil
	}
	points = make([]AuditPoint, 0, a.n)
	for i := range a.n {
		points = append(points, a.points[(a.next-a.n+i+auditRingSize)%auditRingSize])
	}
	return a.base, points
}

// last returns the newest audit point, false when there is none.
func (a *auditLog) last() (AuditPoint, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.n == 0 || a.base == noChain {
		return AuditPoint{}, false
	}
	return a.points[(a.next-1+auditRingSize)%auditRingSize], true
}

// restoredDigest is the digest a state restored from a snapshot continues
// from: the snapshot's own, or for a snapshot without one (format 1 or 2),
// a new chain starting at the snapshot's index (noChain when that is not
// known either).
func restoredDigest(d domain.LogDigest, snapIndex uint64, known bool) domain.LogDigest {
	switch {
	case d.Index != 0:
		return d
	case known:
		return domain.LogDigest{Base: snapIndex, Index: snapIndex}
	default:
		return domain.LogDigest{Base: noChain}
	}
}

// AuditPoints returns the base of this FSM's digest chain and its recent
// audit points, oldest first.
func (f *FSM) AuditPoints() (base uint64, points []AuditPoint) { return f.audit.report() }

// LogDigest returns the digest of the entries this FSM applied.
func (f *FSM) LogDigest() domain.LogDigest {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.st.LogDigest()
}
