package cluster

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/raft"

	"allot/actors/domain"
	"allot/storage"
)

// FSM is the committed state of one shard as Raft applies it: a
// domain.State that changes only in ApplyBatch and Restore.
//
// Threading (from hashicorp/raft): Apply, ApplyBatch, Snapshot and Restore
// are called from one goroutine; FSMSnapshot.Persist runs concurrently with
// Apply. Readers (View) may run on any goroutine at any time.
//
// Determinism: ApplyBatch reads no clock, no random source and no map order;
// everything it needs is in the entry. Logging a violation has no effect on
// the state.
type FSM struct {
	logger *slog.Logger

	mu sync.RWMutex // guards st: written by the Raft FSM goroutine, read by View
	st *domain.State

	// applied is an index such that every entry up to it is reflected in
	// st. Raft does not show barriers and no-ops to the FSM, so it may lag
	// behind raft.AppliedIndex until the next command or configuration
	// entry, or a barrier of this node (NoteApplied).
	applied    atomic.Uint64
	violations atomic.Uint64
	restores   atomic.Uint64

	// members mirrors the member records of st, replaced (never changed)
	// whenever they change, so that routing a request to the leader reads
	// it without taking mu.
	members atomic.Pointer[map[string]domain.Member]

	waitMu  sync.Mutex
	nwait   atomic.Int32 // len(waiters), read without waitMu on the apply path
	waiters []applyWaiter
}

type applyWaiter struct {
	index uint64
	ch    chan struct{}
}

var (
	_ raft.BatchingFSM        = (*FSM)(nil)
	_ raft.ConfigurationStore = (*FSM)(nil)
)

// NewFSM returns an FSM holding an empty state. logger receives invariant
// violations.
func NewFSM(logger *slog.Logger) *FSM {
	if logger == nil {
		logger = slog.Default()
	}
	f := &FSM{logger: logger, st: domain.NewState()}
	f.members.Store(new(map[string]domain.Member))
	return f
}

// Apply applies one entry; see ApplyBatch.
func (f *FSM) Apply(l *raft.Log) any {
	return f.ApplyBatch([]*raft.Log{l})[0]
}

// ApplyBatch applies committed entries in order. The response for a command
// entry is a []error with one element per event of its batch: nil when the
// event was applied, else why State.Apply refused it. A refused event changes
// nothing; it means the leader proposed something the rules forbid, a bug,
// so it is counted (Violations) and logged at error level. An entry that
// does not decode (also a bug) is answered with a single error. Configuration
// entries change nothing and get nil.
func (f *FSM) ApplyBatch(logs []*raft.Log) []any {
	resp := make([]any, len(logs))
	batches := make([]domain.Batch, len(logs))
	decodeErrs := make([]error, len(logs))
	// Decode before taking the lock: readers wait only for the apply.
	for i, l := range logs {
		if l.Type == raft.LogCommand {
			batches[i], decodeErrs[i] = domain.DecodeBatch(l.Data)
		}
	}
	membersChanged := false
	f.mu.Lock()
	for i, l := range logs {
		if l.Type != raft.LogCommand {
			continue
		}
		if err := decodeErrs[i]; err != nil {
			f.violation(l, -1, nil, err)
			resp[i] = []error{fmt.Errorf("entry %d: %w", l.Index, err)}
			continue
		}
		evs := batches[i].Events
		errs := make([]error, len(evs))
		for j := range evs {
			if err := f.st.Apply(&evs[j]); err != nil {
				errs[j] = err
				f.violation(l, j, &evs[j], err)
			} else if t := evs[j].Type; t == domain.EvSetMember || t == domain.EvRemoveMember {
				membersChanged = true
			}
		}
		resp[i] = errs
	}
	if membersChanged {
		f.refreshMembersLocked()
	}
	f.mu.Unlock()
	if len(logs) > 0 {
		f.advance(logs[len(logs)-1].Index)
	}
	return resp
}

// violation counts and reports an event (or, with j < 0, an entry) the
// rules refused.
func (f *FSM) violation(l *raft.Log, j int, ev *domain.Event, err error) {
	f.violations.Add(1)
	attrs := []any{slog.Uint64("index", l.Index), slog.Uint64("term", l.Term), slog.Any("error", err)}
	if ev != nil {
		attrs = append(attrs, slog.Int("event", j), slog.Int("type", int(ev.Type)),
			slog.String("resource", ev.ResourceID), slog.Int64("at", ev.At))
	}
	f.logger.Error("INVARIANT VIOLATION: committed event refused by the rules; state unchanged", attrs...)
}

// Violations is how many committed events (or entries) the rules refused
// since this FSM was created. Anything but 0 is a bug.
func (f *FSM) Violations() uint64 { return f.violations.Load() }

// AppliedIndex is an index such that every log entry up to it is reflected
// in the state.
func (f *FSM) AppliedIndex() uint64 { return f.applied.Load() }

// StoreConfiguration is told of each committed configuration entry when Raft
// applies entries one at a time: such an entry changes no state but
// advances the applied index, so that a read whose read index is a
// membership change does not wait for the next command. (Batched, Raft hands
// configuration entries to ApplyBatch, which does the same.)
func (f *FSM) StoreConfiguration(index uint64, _ raft.Configuration) { f.advance(index) }

// NoteApplied records that every entry up to index is reflected in the state
// although the FSM did not see it: a barrier that completed at index proves
// it. It never lowers the applied index.
func (f *FSM) NoteApplied(index uint64) { f.advance(index) }

// advance raises the applied index to index and wakes the waiters it
// satisfies. The waiter count is read after the store, and WaitApplied
// re-checks the index after raising it, so no wake-up is lost.
func (f *FSM) advance(index uint64) {
	for {
		cur := f.applied.Load()
		if index <= cur || f.applied.CompareAndSwap(cur, index) {
			break
		}
	}
	if f.nwait.Load() == 0 {
		return
	}
	applied := f.applied.Load()
	f.waitMu.Lock()
	kept := f.waiters[:0]
	for _, w := range f.waiters {
		if w.index <= applied {
			close(w.ch)
		} else {
			kept = append(kept, w)
		}
	}
	clear(f.waiters[len(kept):])
	f.waiters = kept
	f.nwait.Store(int32(len(kept)))
	f.waitMu.Unlock()
}

// WaitApplied blocks until AppliedIndex() >= index or ctx is done.
func (f *FSM) WaitApplied(ctx context.Context, index uint64) error {
	if f.applied.Load() >= index {
		return nil
	}
	w := applyWaiter{index: index, ch: make(chan struct{})}
	f.waitMu.Lock()
	f.waiters = append(f.waiters, w)
	f.nwait.Store(int32(len(f.waiters)))
	if f.applied.Load() >= index {
		f.removeWaiterLocked(w.ch)
		f.waitMu.Unlock()
		return nil
	}
	f.waitMu.Unlock()
	select {
	case <-w.ch:
		return nil
	case <-ctx.Done():
		f.waitMu.Lock()
		f.removeWaiterLocked(w.ch)
		f.waitMu.Unlock()
		return fmt.Errorf("wait for index %d (applied %d): %w", index, f.applied.Load(), ctx.Err())
	}
}

func (f *FSM) removeWaiterLocked(ch chan struct{}) {
	for i, w := range f.waiters {
		if w.ch == ch {
			last := len(f.waiters) - 1
			f.waiters[i] = f.waiters[last]
			f.waiters[last] = applyWaiter{}
			f.waiters = f.waiters[:last]
			break
		}
	}
	f.nwait.Store(int32(len(f.waiters)))
}

// View runs fn with read access to the committed state. fn must not block
// or keep references into the state after it returns.
func (f *FSM) View(fn func(*domain.State)) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	fn(f.st)
}

// Snapshot returns a frozen deep copy of the state for Persist to stream
// while Apply goes on. The copy is O(state) in time and memory and blocks
// Apply (not readers) while it is made; a copy-on-write State would make
// this O(1) if snapshots of very large states ever stall the log.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.RLock()
	st := f.st.Clone()
	f.mu.RUnlock()
	return &fsmSnapshot{st: st}, nil
}

// Restore replaces the whole state with the one in the snapshot. On error
// the previous state stays (Raft will not use this FSM further anyway).
// The applied index is left as it is: it stays a valid lower bound because
// Raft only installs snapshots ahead of what was applied.
func (f *FSM) Restore(rc io.ReadCloser) error {
	st, err := storage.ReadSnapshot(rc)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	f.mu.Lock()
	f.st = st
	f.refreshMembersLocked()
	f.mu.Unlock()
	f.restores.Add(1)
	return nil
}

// Restores counts the snapshots restored into this FSM: the node's own at
// start, or one the leader sent to a follower too far behind for its log.
func (f *FSM) Restores() uint64 { return f.restores.Load() }

// refreshMembersLocked republishes the member records; f.mu is held.
func (f *FSM) refreshMembersLocked() {
	ms := f.st.Members()
	m := make(map[string]domain.Member, len(ms))
	for _, mem := range ms {
		m[mem.ID] = mem
	}
	f.members.Store(&m)
}

// Member returns the committed record of node id without locking the state.
func (f *FSM) Member(id string) (domain.Member, bool) {
	m, ok := (*f.members.Load())[id]
	return m, ok
}

type fsmSnapshot struct {
	st *domain.State
}

// Persist streams the frozen state into the sink.
func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	if err := storage.WriteSnapshot(sink, s.st); err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}

// Release drops the frozen copy.
func (s *fsmSnapshot) Release() { s.st = nil }
