package cluster

import (
	"bytes"
	"io"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

// gatedSink is a snapshot sink whose first Write waits for open: Persist
// is under way, holding its pin, when the test lets the FSM go on.
type gatedSink struct {
	bufferSink
	started chan struct{}
	open    chan struct{}
	once    sync.Once
}

func (s *gatedSink) Write(p []byte) (int, error) {
	s.once.Do(func() { close(s.started); <-s.open })
	return s.bufferSink.Write(p)
}

// TestPersistAcrossRestore: a follower whose snapshot is being persisted
// installs the leader's (whose retention pruned the older events) at the
// same time, as Raft's snapshot and FSM goroutines may do. The snapshot
// being persisted still carries the events it was taken with, and the
// follower ends with the leader's stream.
func TestPersistAcrossRestore(t *testing.T) {
	s := genStream(t, 47, 16_000, 2) // the follower has more events than one read of EachUpTo takes
	half := len(s.entries) / 2
	rnd := rand.New(rand.NewPCG(5, 6))

	leader := streamingFSM(t)
	leader.EventLog().SetRetention(time.Nanosecond)
	s.feed(t, leader, rnd, 0, len(s.entries))
	var leaderSnap bufferSink
	ls, err := leader.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	if err := ls.Persist(&leaderSnap); err != nil {
		t.Fatal(err)
	}
	ls.Release()
	if e := leader.EventLog().Earliest(); e < 2 {
		t.Fatalf("the leader kept its events from %d: nothing was pruned", e)
	}

	follower := streamingFSM(t)
	s.feed(t, follower, rnd, 0, half)
	before, _ := eventsOf(t, follower)
	snap, err := follower.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	sink := &gatedSink{started: make(chan struct{}), open: make(chan struct{})}
	persisted := make(chan error, 1)
	go func() { persisted <- snap.Persist(sink) }()
	<-sink.started
	if err := follower.Restore(io.NopCloser(bytes.NewReader(leaderSnap.Bytes()))); err != nil {
		t.Fatal(err)
	}
	close(sink.open)
	if err := <-persisted; err != nil {
		t.Fatalf("persist across a restore: %v", err)
	}
	snap.Release()

	// The persisted snapshot has the follower's events from before.
	again := streamingFSM(t)
	if err := again.Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))); err != nil {
		t.Fatal(err)
	}
	got, _ := eventsOf(t, again)
	if len(got) != len(before) || len(got) == 0 || got[0] != before[0] || got[len(got)-1] != before[len(before)-1] {
		t.Fatalf("persisted %d events, the follower had %d", len(got), len(before))
	}
	// The follower has the leader's stream.
	if e, h := follower.EventLog().Earliest(), follower.EventLog().Head(); e != leader.EventLog().Earliest() || h != leader.EventLog().Head() {
		t.Fatalf("follower keeps %d..%d, the leader %d..%d", e, h, leader.EventLog().Earliest(), leader.EventLog().Head())
	}
}
