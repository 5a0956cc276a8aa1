package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/raft"

	"allot/actors/domain"
	"allot/httpapi/jsonview"
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

	// halt is set once, on the first entry this FSM cannot apply (see
	// halt.go); from then on nothing is applied. onHalt, when set before
	// Raft starts, is called once with it on the FSM goroutine.
	halt   atomic.Pointer[Halt]
	onHalt func(*Halt)
	// maxFormat is the newest batch version this FSM decodes:
	// domain.BatchVersion, lower in tests that play an older binary.
	maxFormat byte
	// logFormat is the newest log format the committed log allows a leader
	// to write: raised by EvLogFormat events and by stamped (BatchV2)
	// entries, never lowered (see domain/logversion.go).
	logFormat atomic.Uint32

	// audit folds every applied entry into the log digest (kept in st) and
	// records its audit points (audit.go).
	audit auditLog
	// alter, set only by tests before Raft starts (Config.alterEntry),
	// replaces command entries as this FSM applies them: a node whose copy
	// of the log differs from the others'.
	alter func(*raft.Log) *raft.Log

	// members mirrors the member records of st, replaced (never changed)
	// whenever they change, so that routing a request to the leader reads
	// it without taking mu.
	members atomic.Pointer[map[string]domain.Member]

	// events, when set before Raft starts, receives the change stream
	// (domain/change.go) of every applied entry; changes and evBatch are
	// the apply goroutine's scratch for it.
	events  *storage.EventLog
	changes []domain.Change
	evBatch storage.EventBatch

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
	f := &FSM{logger: logger, st: domain.NewState(), maxFormat: domain.BatchVersion}
	f.audit.every = defaultAuditInterval
	f.logFormat.Store(domain.BatchV1)
	f.members.Store(new(map[string]domain.Member))
	return f
}

// Apply applies one entry; see ApplyBatch.
func (f *FSM) Apply(l *raft.Log) any {
	return f.ApplyBatch([]*raft.Log{l})[0]
}

// ApplyBatch applies committed entries in order. The response for a command
// entry is a []error with one element per event of its batch: nil when the
// event was applied, else why State.Apply refused it. A refused event
// changes nothing; it means the leader proposed something the rules forbid,
// a bug, so it is counted (Violations) and logged at error level.
// EvLogFormat events are the FSM's own (they raise LogFormat) and answer
// nil. Configuration entries change nothing and get nil.
//
// An entry that cannot be applied as every other node applies it (see
// halt.go) halts the FSM: that entry and every later one are answered with
// an error wrapping domain.ErrUnavailable and change nothing, and the
// applied index stays at the last good entry.
//
// Every entry applied is folded into the log digest (audit.go).
func (f *FSM) ApplyBatch(logs []*raft.Log) []any {
	resp := make([]any, len(logs))
	if h := f.halt.Load(); h != nil {
		for i, l := range logs {
			resp[i] = h.refusal(l.Index)
		}
		return resp
	}
	if f.alter != nil {
		logs = f.altered(logs)
	}
	batches := make([]domain.Batch, len(logs))
	decodeErrs := make([]error, len(logs))
	// Decode before taking the lock: readers wait only for the apply.
	for i, l := range logs {
		if l.Type == raft.LogCommand {
			batches[i], decodeErrs[i] = f.decode(l.Data)
		}
	}
	var halt *Halt
	var last uint64 // the last entry applied
	var lastTerm uint64
	membersChanged := false
	f.changes = f.changes[:0]
	var ch domain.Change
	f.mu.Lock()
	digest := f.st.LogDigest()
	for i, l := range logs {
		if halt == nil && l.Type == raft.LogCommand {
			halt = f.check(l, &batches[i], decodeErrs[i])
		}
		if halt != nil {
			resp[i] = halt.refusal(l.Index)
			continue
		}
		last, lastTerm = l.Index, l.Term
		if l.Type != raft.LogCommand {
			digest = f.audit.fold(digest, l, nil)
			continue
		}
		if batches[i].Term != 0 {
			f.raiseLogFormat(domain.BatchV2)
		}
		evs := batches[i].Events
		errs := make([]error, len(evs))
		for j := range evs {
			if evs[j].Type == domain.EvLogFormat {
				f.raiseLogFormat(evs[j].LogFormat) // check made sure this binary knows it
				continue
			}
			changed, err := f.st.ApplyChange(&evs[j], &ch)
			if errors.Is(err, domain.ErrDuplicateKey) {
				errs[j] = err // a retry decided twice: answered from the record, not a bug
			} else if err != nil {
				errs[j] = err
				f.violation(l, j, &evs[j], err)
			} else if t := evs[j].Type; t == domain.EvSetMember || t == domain.EvRemoveMember {
				membersChanged = true
			}
			if changed && f.events != nil {
				f.changes = append(f.changes, ch)
			}
		}
		resp[i] = errs
		digest = f.audit.fold(digest, l, errs)
	}
	f.st.SetLogDigest(digest)
	if membersChanged {
		f.refreshMembersLocked()
	}
	f.mu.Unlock()
	if err := f.storeChanges(); err != nil && halt == nil {
		// The state has these entries, the stream does not: stop before
		// anything reads past them (Restore starts over from a snapshot).
		halt = &Halt{Reason: HaltEventLog, Index: last, Term: lastTerm, Err: err}
	}
	f.advance(last)
	if halt != nil {
		f.stop(halt)
	}
	return resp
}

// storeChanges renders the changes of this apply into the event log and
// makes them visible to its readers. Rendering happens outside f.mu.
func (f *FSM) storeChanges() error {
	if len(f.changes) == 0 {
		return nil
	}
	f.evBatch.Reset()
	for i := range f.changes {
		f.evBatch.End(jsonview.AppendChange(f.evBatch.Add(&f.changes[i]), &f.changes[i]))
		f.changes[i] = domain.Change{} // drop the references to state
	}
	return f.events.Append(&f.evBatch)
}

// SetEventLog makes the FSM write the change stream into l; call it before
// Raft starts.
func (f *FSM) SetEventLog(l *storage.EventLog) { f.events = l }

// EventLog is the log the FSM writes the change stream into, nil if none.
func (f *FSM) EventLog() *storage.EventLog { return f.events }

// altered returns logs with the command entries f.alter replaces replaced,
// leaving Raft's own entries untouched.
func (f *FSM) altered(logs []*raft.Log) []*raft.Log {
	out := make([]*raft.Log, len(logs))
	for i, l := range logs {
		out[i] = l
		if l.Type == raft.LogCommand {
			if alt := f.alter(l); alt != nil {
				out[i] = alt
			}
		}
	}
	return out
}

// decode decodes a command entry, refusing batch versions newer than this
// FSM knows.
func (f *FSM) decode(data []byte) (domain.Batch, error) {
	if len(data) > 0 && data[0] > f.maxFormat {
		return domain.Batch{}, fmt.Errorf("batch version %d is newer than this binary's %d: %w", data[0], f.maxFormat, domain.ErrCorrupt)
	}
	return domain.DecodeBatch(data)
}

// check returns why command entry l (decoded into b, or not: decodeErr)
// must halt the FSM, or nil when it can be applied.
func (f *FSM) check(l *raft.Log, b *domain.Batch, decodeErr error) *Halt {
	halt := func(r HaltReason, format string, args ...any) *Halt {
		return &Halt{Reason: r, Index: l.Index, Term: l.Term, Err: fmt.Errorf(format, args...)}
	}
	switch {
	case decodeErr != nil:
		return &Halt{Reason: HaltUndecodable, Index: l.Index, Term: l.Term, Err: decodeErr}
	case b.Term != 0 && b.Term != l.Term:
		return halt(HaltTermMismatch, "entry stamped with term %d by its proposer is stored under term %d: "+
			"this node's log diverged from the leader's (hashicorp/raft #695)", b.Term, l.Term)
	}
	for j := range b.Events {
		if ev := &b.Events[j]; ev.Type == domain.EvLogFormat && (!domain.LogFormatKnown(ev.LogFormat) || ev.LogFormat > f.maxFormat) {
			return halt(HaltLogFormat, "the cluster moved to log format %d; this binary knows formats up to %d", ev.LogFormat, f.maxFormat)
		}
	}
	return nil
}

// raiseLogFormat records that the committed log allows format v, in the
// state (hashed, snapshotted) and in the atomic mirror Propose reads; f.mu
// is held.
func (f *FSM) raiseLogFormat(v uint8) {
	f.st.RaiseLogFormat(v)
	for {
		cur := f.logFormat.Load()
		if uint32(v) <= cur || f.logFormat.CompareAndSwap(cur, uint32(v)) {
			return
		}
	}
}

// LogFormat is the newest log format (batch version) that the committed log
// allows a leader to write.
func (f *FSM) LogFormat() uint8 { return uint8(f.logFormat.Load()) }

// violation counts and reports an event the rules refused.
func (f *FSM) violation(l *raft.Log, j int, ev *domain.Event, err error) {
	f.violations.Add(1)
	attrs := []any{slog.Uint64("index", l.Index), slog.Uint64("term", l.Term), slog.Any("error", err),
		slog.Int("event", j), slog.Int("type", int(ev.Type)), slog.String("resource", ev.ResourceID), slog.Int64("at", ev.At)}
	f.logger.Error("INVARIANT VIOLATION: committed event refused by the rules; state unchanged", attrs...)
}

// Violations is how many committed events the rules refused
// since this FSM was created. Anything but 0 is a bug.
func (f *FSM) Violations() uint64 { return f.violations.Load() }

// AppliedIndex is an index such that every log entry up to it is reflected
// in the state.
func (f *FSM) AppliedIndex() uint64 { return f.applied.Load() }

// StoreConfiguration is told of each committed configuration entry when Raft
// applies entries one at a time: such an entry changes no state but
// advances the applied index, so that a read whose read index is a
// membership change does not wait for the next command. (Batched, Raft hands
// configuration entries to ApplyBatch, which does the same and also folds
// them into the log digest. Raft batches for every BatchingFSM, which this
// FSM and its metrics wrapper are, so this is not called in a node.)
func (f *FSM) StoreConfiguration(index uint64, _ raft.Configuration) {
	if f.halt.Load() == nil {
		f.advance(index)
	}
}

// NoteApplied records that every entry up to index is reflected in the state
// although the FSM did not see it: a barrier that completed at index proves
// it. It never lowers the applied index, and a halted FSM ignores it.
func (f *FSM) NoteApplied(index uint64) {
	if f.halt.Load() == nil {
		f.advance(index)
	}
}

// advance raises the applied index to index and wakes the waiters it
// satisfies. The waiter count is read after the store, and WaitApplied
// re-checks the index after raising it, so no wake-up is lost.
func (f *FSM) advance(index uint64) {
	if index == 0 {
		return
	}
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

// frozen returns a view of the committed state that Apply does not change
// (domain.State.Freeze), to read without the lock. Freeze writes to the
// live state, so it takes the write lock, for O(shards).
func (f *FSM) frozen() *domain.State {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.st.Freeze()
}

// Snapshot returns a frozen view of the state for Persist to stream while
// Apply goes on (domain.State.Freeze): it copies the shard directories,
// not the state (under a millisecond at 10M reservations); the writes
// after it copy the parts of the state they touch first, once each.
//
// A halted FSM refuses: Raft would label the snapshot with its own applied
// index, past the entry the FSM could not apply, and a restart from it
// would skip that entry silently.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	if h := f.halt.Load(); h != nil {
		return nil, fmt.Errorf("snapshot: %w", h)
	}
	snap := &fsmSnapshot{st: f.frozen(), events: f.events}
	if f.events != nil {
		// Snapshot runs on the apply goroutine: the log holds every record
		// up to st's head, and the pin keeps retention from taking any of
		// them before Persist has streamed them.
		snap.pin = f.events.Pin(f.events.Earliest())
	}
	return snap, nil
}

// Restore replaces the whole state with the one in the snapshot. On error
// the previous state stays (Raft will not use this FSM further anyway).
// When the stream knows its snapshot's index (the node's snapshot store
// tells it, see catchup.go), the applied index rises to it; Raft only
// installs snapshots ahead of what was applied, so it never has to fall.
// The log digest goes on from the snapshot's (see restoredDigest).
func (f *FSM) Restore(rc io.ReadCloser) error {
	if h := f.halt.Load(); h != nil {
		return fmt.Errorf("restore: %w", h)
	}
	var restore *storage.EventRestore
	st, err := storage.ReadSnapshotWith(rc, func(head uint64) storage.EventSink {
		if f.events == nil {
			return nil
		}
		restore = f.events.BeginRestore(head)
		return restore
	})
	if err == nil && f.events != nil {
		if restore == nil { // a snapshot from before the stream
			restore = f.events.BeginRestore(0)
		}
		err = restore.Commit()
	}
	if err != nil {
		if restore != nil {
			restore.Abort()
		}
		return fmt.Errorf("restore: %w", err)
	}
	snapIndex, indexed := snapshotIndex(rc)
	digest := restoredDigest(st.LogDigest(), snapIndex, indexed)
	if digest != st.LogDigest() {
		f.logger.Warn("the restored snapshot carries no log digest (written before digests existed): "+
			"this node's audit chain starts anew here and is compared only with nodes whose chain starts at the same index",
			slog.Uint64("snapshot_index", snapIndex))
	}
	st.SetLogDigest(digest)
	f.mu.Lock()
	f.st = st
	f.raiseLogFormat(st.LogFormat())
	f.refreshMembersLocked()
	f.audit.restart(digest.Base)
	f.mu.Unlock()
	f.restores.Add(1)
	if indexed {
		f.advance(snapIndex)
	}
	return nil
}

// snapshotIndex finds the index the node's snapshot store attached to a
// stream (indexedSnapshots). Raft hands FSM.Restore the stream it opened
// wrapped in a reader of its own that counts the bytes, behind
// raft.ReadCloserWrapper.
func snapshotIndex(rc io.ReadCloser) (uint64, bool) {
	for {
		switch r := rc.(type) {
		case *snapshotReader:
			return r.index, true
		case raft.ReadCloserWrapper:
			rc = r.WrappedReadCloser()
		default:
			return 0, false
		}
	}
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
	st     *domain.State
	events *storage.EventLog // nil: no stream to carry
	pin    *storage.EventPin // from the oldest record kept when the snapshot was taken
}

// Persist streams the frozen state and the stream's records up to its
// head into the sink.
func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	var each storage.EachEvent
	if s.events != nil {
		head := s.st.EventHead()
		each = func(fn func(off uint64, raw []byte) error) error { return s.pin.EachUpTo(head, fn) }
	}
	if err := storage.WriteSnapshotWith(sink, s.st, each); err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}

// Release drops the frozen view and the pin on the stream.
func (s *fsmSnapshot) Release() {
	if s.events != nil {
		s.pin.Unpin()
		s.events = nil
	}
	s.st = nil
}
