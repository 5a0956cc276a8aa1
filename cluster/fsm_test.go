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
				continue // does not decode: the whole entry would be refused (TestFSMUndecodableEntry)
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

func TestFSMUndecodableEntry(t *testing.T) {
	f := NewFSM(quietLogger())
	before := hashOf(f)
	resp := f.Apply(&raft.Log{Index: 1, Type: raft.LogCommand, Data: []byte{domain.BatchVersion, 3, 0xff}})
	errs, ok := resp.([]error)
	if !ok || len(errs) != 1 || !errors.Is(errs[0], domain.ErrCorrupt) {
		t.Fatalf("response %#v, want one ErrCorrupt", resp)
	}
	if f.Violations() != 1 || f.AppliedIndex() != 1 || hashOf(f) != before {
		t.Fatalf("violations %d, applied %d, state changed %v", f.Violations(), f.AppliedIndex(), hashOf(f) != before)
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
