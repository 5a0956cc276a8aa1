package cluster

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"allot/actors/domain"
	"allot/actors/domain/domaintest"
	"allot/storage"
)

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// stream is a generated history cut into Raft entries.
type stream struct {
	entries []*raft.Log
	refused [][]bool // per entry, per event: State.Apply refuses it
	nEvents int
	nBad    int
	final   [32]byte // hash of a plain State after the whole stream
}

// genStream plays the leader for n events: accepted events are committed,
// and one in eight of the leader's rejections is proposed anyway, the bug
// the FSM must count without diverging. Events are cut into batches of
// random sizes; every eighth entry is a configuration entry.
func genStream(t *testing.T, seed uint64, n int, firstIndex uint64) *stream {
	t.Helper()
	g := domaintest.NewSeeded(seed)
	rnd := rand.New(rand.NewPCG(seed, 1))
	st := domain.NewState()
	s := &stream{}
	index := firstIndex
	for s.nEvents < n {
		if rnd.IntN(8) == 0 {
			s.entries = append(s.entries, &raft.Log{Index: index, Term: 1, Type: raft.LogConfiguration})
			s.refused = append(s.refused, nil)
			index++
		}
		var b domain.Batch
		var refused []bool
		for size := 1 + rnd.IntN(40); len(b.Events) < size && s.nEvents < n; {
			ev, decideErr := g.Next(st)
			if decideErr != nil && rnd.IntN(8) != 0 {
				continue
			}
			if ev.Type > domain.EvTransition {
				continue // does not decode: it would halt the FSM (TestFSMHaltsOnUndecodableEntry)
			}
			err := st.Apply(&ev)
			if (err == nil) != (decideErr == nil) {
				t.Fatalf("generator decided %v, Apply says %v", decideErr, err)
			}
			b.Events = append(b.Events, ev)
			refused = append(refused, err != nil)
			s.nEvents++
			if err != nil {
				s.nBad++
			}
		}
		s.entries = append(s.entries, &raft.Log{Index: index, Term: 1, Type: raft.LogCommand, Data: domain.EncodeBatch(nil, &b)})
		s.refused = append(s.refused, refused)
		index++
	}
	s.final = st.Hash()
	return s
}

// feed applies entries[from:to] to f in runs of random length, checking
// every response.
func (s *stream) feed(t *testing.T, f *FSM, rnd *rand.Rand, from, to int) {
	t.Helper()
	for i := from; i < to; {
		j := min(to, i+1+rnd.IntN(6))
		var resps []any
		if j == i+1 && rnd.IntN(2) == 0 {
			resps = []any{f.Apply(s.entries[i])}
		} else {
			resps = f.ApplyBatch(s.entries[i:j])
		}
		if len(resps) != j-i {
			t.Fatalf("entries %d..%d: %d responses", i, j, len(resps))
		}
		for k, resp := range resps {
			s.check(t, i+k, resp)
		}
		i = j
	}
}

func (s *stream) check(t *testing.T, i int, resp any) {
	t.Helper()
	want := s.refused[i]
	if s.entries[i].Type != raft.LogCommand {
		if resp != nil {
			t.Fatalf("entry %d (configuration): response %v", i, resp)
		}
		return
	}
	errs, ok := resp.([]error)
	if !ok || len(errs) != len(want) {
		t.Fatalf("entry %d: response %v, want %d results", i, resp, len(want))
	}
	for k, err := range errs {
		if (err != nil) != want[k] {
			t.Fatalf("entry %d event %d: result %v, want refused=%v", i, k, err, want[k])
		}
	}
}

func hashOf(f *FSM) (h [32]byte) {
	f.View(func(st *domain.State) { h = st.Hash() })
	return h
}

func TestFSMDeterminism(t *testing.T) {
	s := genStream(t, 42, 10_000, 1)
	if s.nBad == 0 {
		t.Fatal("the stream has no refused events; the test would not cover violations")
	}
	last := s.entries[len(s.entries)-1].Index
	for run := uint64(0); run < 3; run++ {
		f := NewFSM(quietLogger())
		s.feed(t, f, rand.New(rand.NewPCG(run, 7)), 0, len(s.entries))
		if got := hashOf(f); got != s.final {
			t.Fatalf("run %d: state hash differs from the reference", run)
		}
		if got := f.Violations(); got != uint64(s.nBad) {
			t.Fatalf("run %d: %d violations, want %d", run, got, s.nBad)
		}
		if got := f.AppliedIndex(); got != last {
			t.Fatalf("run %d: applied index %d, want %d", run, got, last)
		}
		f.View(func(st *domain.State) {
			if err := st.CheckInvariants(); err != nil {
				t.Fatalf("run %d: %v", run, err)
			}
		})
	}
}

// bufferSink is a raft.SnapshotSink writing into memory.
type bufferSink struct {
	bytes.Buffer
	closed, cancelled bool
}

func (s *bufferSink) ID() string    { return "test" }
func (s *bufferSink) Close() error  { s.closed = true; return nil }
func (s *bufferSink) Cancel() error { s.cancelled = true; return nil }

func TestFSMSnapshotRestore(t *testing.T) {
	s := genStream(t, 43, 10_000, 1)
	half := len(s.entries) / 2
	rnd := rand.New(rand.NewPCG(1, 2))

	src := NewFSM(quietLogger())
	s.feed(t, src, rnd, 0, half)
	atSnapshot := hashOf(src)
	snap, err := src.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	// Persist streams the frozen copy while Apply goes on.
	var sink bufferSink
	persisted := make(chan error, 1)
	go func() { persisted <- snap.Persist(&sink) }()
	s.feed(t, src, rnd, half, len(s.entries))
	if err := <-persisted; err != nil {
		t.Fatal(err)
	}
	snap.Release()
	if !sink.closed || sink.cancelled {
		t.Fatalf("sink closed=%v cancelled=%v", sink.closed, sink.cancelled)
	}

	// Restore into an FSM that already holds another history: nothing of
	// it may survive.
	dst := NewFSM(quietLogger())
	other := genStream(t, 99, 500, 1)
	other.feed(t, dst, rnd, 0, len(other.entries))
	if hashOf(dst) == atSnapshot {
		t.Fatal("the other history equals the snapshot; pick another seed")
	}
	if err := dst.Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))); err != nil {
		t.Fatal(err)
	}
	if hashOf(dst) != atSnapshot {
		t.Fatal("restored state differs from the state at the snapshot")
	}
	s.feed(t, dst, rnd, half, len(s.entries))
	if hashOf(dst) != s.final || hashOf(src) != s.final {
		t.Fatal("snapshot + rest of the log differs from the direct run")
	}

	// A corrupt snapshot is refused and leaves the state alone.
	bad := bytes.Clone(sink.Bytes())
	bad[len(bad)/2] ^= 1
	if err := dst.Restore(io.NopCloser(bytes.NewReader(bad))); !errors.Is(err, domain.ErrCorrupt) {
		t.Fatalf("corrupt snapshot: %v", err)
	}
	if hashOf(dst) != s.final {
		t.Fatal("a failed restore changed the state")
	}
}

// TestFSMHaltsOnUndecodableEntry: in one ApplyBatch, the entries before an
// undecodable one are applied and the rest are not; the FSM stays halted,
// refuses snapshots and restores, and tells its owner once.
func TestFSMHaltsOnUndecodableEntry(t *testing.T) {
	f := NewFSM(quietLogger())
	var halts []*Halt
	f.onHalt = func(h *Halt) { halts = append(halts, h) }
	good := func(index uint64, ev domain.Event) *raft.Log {
		return &raft.Log{Index: index, Term: 1, Type: raft.LogCommand, Data: domain.EncodeBatch(nil, &domain.Batch{Events: []domain.Event{ev}})}
	}
	f.Apply(good(1, putVoucher("v1", 10)))
	atGood := hashOf(f)
	resps := f.ApplyBatch([]*raft.Log{
		good(2, reserve("v1", "r1", "alice")),
		{Index: 3, Term: 1, Type: raft.LogCommand, Data: []byte{domain.BatchV1, 3, 0xff}},
		good(4, reserve("v1", "r2", "bob")),
		{Index: 5, Term: 1, Type: raft.LogConfiguration},
	})
	if errs, ok := resps[0].([]error); !ok || len(errs) != 1 || errs[0] != nil {
		t.Fatalf("entry before the bad one: %#v", resps[0])
	}
	for i, r := range resps[1:] {
		if err, ok := r.(error); !ok || !errors.Is(err, domain.ErrUnavailable) {
			t.Fatalf("entry %d: response %#v, want an ErrUnavailable", i+3, r)
		}
	}
	h := f.Halted()
	if h == nil || h.Reason != HaltUndecodable || h.Index != 3 || !errors.Is(h.Err, domain.ErrCorrupt) || len(halts) != 1 || halts[0] != h {
		t.Fatalf("halt %+v, told %d times", h, len(halts))
	}
	if hashOf(f) == atGood || f.AppliedIndex() != 2 || f.Violations() != 0 {
		t.Fatalf("applied %d, violations %d; want entry 2 applied and nothing after", f.AppliedIndex(), f.Violations())
	}
	afterGood := hashOf(f)
	if err, ok := f.Apply(good(6, reserve("v1", "r3", "carol"))).(error); !ok || !errors.Is(err, domain.ErrUnavailable) {
		t.Fatalf("apply after the halt: %v", err)
	}
	f.NoteApplied(9)
	f.StoreConfiguration(10, raft.Configuration{})
	if hashOf(f) != afterGood || f.AppliedIndex() != 2 {
		t.Fatalf("a halted FSM moved: applied %d", f.AppliedIndex())
	}
	if _, err := f.Snapshot(); err == nil {
		t.Fatal("a halted FSM took a snapshot: a restart from it would skip the bad entry")
	}
	var sink bufferSink
	src := NewFSM(quietLogger())
	snap, _ := src.Snapshot()
	if err := snap.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	if err := f.Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))); err == nil {
		t.Fatal("a halted FSM restored a snapshot")
	}
	if len(halts) != 1 {
		t.Fatalf("told of the halt %d times", len(halts))
	}
}

func TestFSMWaitApplied(t *testing.T) {
	f := NewFSM(quietLogger())
	command := func(index uint64) *raft.Log {
		return &raft.Log{Index: index, Type: raft.LogCommand, Data: domain.EncodeBatch(nil, &domain.Batch{})}
	}

	waited := make(chan error, 1)
	go func() { waited <- f.WaitApplied(context.Background(), 3) }()
	f.Apply(command(1))
	f.Apply(command(2))
	select {
	case err := <-waited:
		t.Fatalf("WaitApplied(3) returned at index 2: %v", err)
	case <-time.After(20 * time.Millisecond):
	}
	f.ApplyBatch([]*raft.Log{command(3), command(4)})
	select {
	case err := <-waited:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("WaitApplied(3) still blocked at index 4")
	}

	// A barrier's index, noted by the node, also satisfies waiters.
	go func() { waited <- f.WaitApplied(context.Background(), 9) }()
	f.NoteApplied(9)
	if err := <-waited; err != nil {
		t.Fatal(err)
	}
	f.NoteApplied(5) // never lowers
	if got := f.AppliedIndex(); got != 9 {
		t.Fatalf("applied index %d after NoteApplied(5), want 9", got)
	}
	// So does a configuration entry applied one at a time.
	go func() { waited <- f.WaitApplied(context.Background(), 10) }()
	f.StoreConfiguration(10, raft.Configuration{})
	if err := <-waited; err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if err := f.WaitApplied(ctx, 100); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitApplied past the deadline: %v", err)
	}
	f.waitMu.Lock()
	left := len(f.waiters)
	f.waitMu.Unlock()
	if left != 0 {
		t.Fatalf("%d waiters left behind", left)
	}
}

// The committed log format survives a snapshot: a restored FSM reports it.
func TestFSMRestoreKeepsLogFormat(t *testing.T) {
	f := NewFSM(quietLogger())
	f.mu.Lock()
	f.raiseLogFormat(domain.BatchV2)
	f.mu.Unlock()
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := storage.WriteSnapshot(&buf, snap.(*fsmSnapshot).st); err != nil {
		t.Fatal(err)
	}
	g := NewFSM(quietLogger())
	if err := g.Restore(io.NopCloser(&buf)); err != nil {
		t.Fatal(err)
	}
	if got := g.LogFormat(); got != domain.BatchV2 {
		t.Fatalf("restored log format %d, want %d", got, domain.BatchV2)
	}
}
