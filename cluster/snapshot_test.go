package cluster

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"allot/actors/domain"
	"allot/storage"
)

// TestSnapshotPersistWhileApplying: snapshots taken at random points of a
// history are persisted while Apply goes on (several at once), and each
// stream is exactly what a deep copy of the state taken at its point
// writes. Run it with -race: Persist reads the frozen view on its own
// goroutine while Apply writes to the state that shares it.
func TestSnapshotPersistWhileApplying(t *testing.T) {
	s := genStream(t, 11, 10_000, 1)
	rnd := rand.New(rand.NewPCG(11, 3))
	f := NewFSM(quietLogger())
	type pending struct {
		want []byte
		sink *bufferSink
		done chan error
	}
	var all []pending
	for i := 0; i < len(s.entries); {
		j := min(len(s.entries), i+1+rnd.IntN(len(s.entries)/8))
		s.feed(t, f, rnd, i, j)
		i = j
		snap, err := f.Snapshot()
		if err != nil {
			t.Fatal(err)
		}
		var deep *domain.State
		f.View(func(st *domain.State) { deep = st.Clone() })
		var want bytes.Buffer
		if err := storage.WriteSnapshot(&want, deep); err != nil {
			t.Fatal(err)
		}
		p := pending{want: want.Bytes(), sink: new(bufferSink), done: make(chan error, 1)}
		go func() {
			p.done <- snap.Persist(p.sink)
			snap.Release()
		}()
		all = append(all, p)
	}
	for n, p := range all {
		if err := <-p.done; err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(p.sink.Bytes(), p.want) {
			t.Fatalf("snapshot %d: persisted %d bytes unlike the %d of a deep copy at its point", n, p.sink.Len(), len(p.want))
		}
	}
	if len(all) < 4 {
		t.Fatalf("only %d snapshots", len(all))
	}
	if hashOf(f) != s.final {
		t.Fatal("the state after the history differs from the reference")
	}
}
