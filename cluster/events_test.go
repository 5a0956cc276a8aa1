package cluster

import (
	"bytes"
	"encoding/json"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/hashicorp/raft"

	"allot/actors/domain"
	"allot/storage"
)

// streamingFSM is an FSM writing its change stream into a fresh event log,
// with the log format that numbers changes committed at index 1.
func streamingFSM(t *testing.T) *FSM {
	t.Helper()
	l, err := storage.OpenEventLog(t.TempDir(), quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	f := NewFSM(quietLogger())
	f.SetEventLog(l)
	raise := domain.Batch{Events: []domain.Event{{Type: domain.EvLogFormat, LogFormat: domain.BatchV4}}}
	f.Apply(&raft.Log{Index: 1, Term: 1, Type: raft.LogCommand, Data: domain.EncodeBatch(nil, &raise)})
	return f
}

type streamEvent struct {
	Offset      uint64 `json:"offset"`
	Type        string `json:"type"`
	ResourceID  string `json:"resource_id"`
	From        string `json:"from"`
	Reservation *struct {
		ID     string `json:"id"`
		Status string `json:"status"`
	} `json:"reservation"`
}

// eventsOf reads the whole stream of f's event log, raw and decoded.
func eventsOf(t *testing.T, f *FSM) ([]string, []streamEvent) {
	t.Helper()
	var raw []string
	var evs []streamEvent
	if _, err := f.EventLog().Read(0, func(r storage.EventRecord) bool {
		raw = append(raw, string(r.JSON()))
		var ev streamEvent
		if err := json.Unmarshal(r.JSON(), &ev); err != nil {
			t.Fatalf("event %d: %v: %s", r.Offset, err, r.JSON())
		}
		if ev.Offset != r.Offset || ev.Type != r.Type().String() || ev.ResourceID != string(r.ResourceID()) {
			t.Fatalf("event %d: the record's header and JSON disagree: %s", r.Offset, r.JSON())
		}
		evs = append(evs, ev)
		return true
	}); err != nil {
		t.Fatal(err)
	}
	return raw, evs
}

// checkStream checks the stream against the history's own account: one
// change per applied event, offsets 1..n, and every reservation created
// once and then moving from the status it was in.
func checkStream(t *testing.T, evs []streamEvent, wantChanges int) {
	t.Helper()
	if len(evs) != wantChanges {
		t.Fatalf("%d changes in the stream, %d events applied", len(evs), wantChanges)
	}
	status := map[string]string{}
	for i, ev := range evs {
		if ev.Offset != uint64(i+1) {
			t.Fatalf("change %d has offset %d: a gap or a reorder", i+1, ev.Offset)
		}
		if ev.Reservation == nil {
			continue
		}
		id := ev.Reservation.ID
		if ev.From != status[id] {
			t.Fatalf("offset %d: %s from %q, but it was %q", ev.Offset, id, ev.From, status[id])
		}
		if ev.Type != "reservation."+ev.Reservation.Status {
			t.Fatalf("offset %d: type %s for status %s", ev.Offset, ev.Type, ev.Reservation.Status)
		}
		status[id] = ev.Reservation.Status
	}
}

func appliedEvents(s *stream) int {
	n := 0
	for _, refused := range s.refused {
		for _, r := range refused {
			if !r {
				n++
			}
		}
	}
	return n
}

// Every applied event is one change, numbered without gaps, and the same
// history applied in other runs of entries gives byte-identical streams.
func TestFSMStreamIsDeterministic(t *testing.T) {
	s := genStream(t, 44, 5_000, 2)
	var first []string
	for run := uint64(0); run < 2; run++ {
		f := streamingFSM(t)
		s.feed(t, f, rand.New(rand.NewPCG(run, 9)), 0, len(s.entries))
		raw, evs := eventsOf(t, f)
		checkStream(t, evs, appliedEvents(s))
		var head uint64
		f.View(func(st *domain.State) { head = st.EventHead() })
		if head != uint64(len(evs)) || f.EventLog().Head() != head {
			t.Fatalf("state head %d, log head %d, %d events", head, f.EventLog().Head(), len(evs))
		}
		if run == 0 {
			first = raw
			continue
		}
		for i := range raw {
			if raw[i] != first[i] {
				t.Fatalf("offset %d differs between runs:\n%s\n%s", i+1, raw[i], first[i])
			}
		}
	}
}

// A snapshot carries the stream: a node that installs it (an empty event
// log) and applies the rest of the log has the stream of the node that
// applied everything, and so does a node restarting from its own snapshot.
func TestFSMStreamSurvivesSnapshotRestore(t *testing.T) {
	s := genStream(t, 45, 4_000, 2)
	half := len(s.entries) / 2
	rnd := rand.New(rand.NewPCG(3, 4))
	src := streamingFSM(t)
	s.feed(t, src, rnd, 0, half)
	snap, err := src.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var sink bufferSink
	persisted := make(chan error, 1)
	go func() { persisted <- snap.Persist(&sink) }()
	s.feed(t, src, rnd, half, len(s.entries))
	if err := <-persisted; err != nil {
		t.Fatal(err)
	}
	snap.Release()
	want, _ := eventsOf(t, src)

	// A new follower: an empty event log, the snapshot, the log tail.
	dst := streamingFSM(t)
	if err := dst.Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))); err != nil {
		t.Fatal(err)
	}
	s.feed(t, dst, rnd, half, len(s.entries))
	got, evs := eventsOf(t, dst)
	checkStream(t, evs, appliedEvents(s))
	if len(got) != len(want) {
		t.Fatalf("installed %d events, source has %d", len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("offset %d differs after install", i+1)
		}
	}

	// The source restarting from its own snapshot: its event log already
	// holds everything; the tail is written again, the same.
	restarted := NewFSM(quietLogger())
	restarted.SetEventLog(src.EventLog())
	if err := restarted.Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))); err != nil {
		t.Fatal(err)
	}
	var snapHead uint64
	restarted.View(func(st *domain.State) { snapHead = st.EventHead() })
	if h := src.EventLog().Head(); h != snapHead {
		t.Fatalf("after restoring, readers see up to %d, the snapshot's head is %d", h, snapHead)
	}
	s.feed(t, restarted, rnd, half, len(s.entries))
	again, _ := eventsOf(t, restarted)
	if len(again) != len(want) || again[len(again)-1] != want[len(want)-1] {
		t.Fatalf("restart: %d events, want %d", len(again), len(want))
	}

	// A corrupt snapshot changes neither state nor stream.
	bad := bytes.Clone(sink.Bytes())
	bad[len(bad)-10] ^= 1
	fresh := streamingFSM(t)
	if err := fresh.Restore(io.NopCloser(bytes.NewReader(bad))); err == nil {
		t.Fatal("corrupt snapshot restored")
	}
	if raw, _ := eventsOf(t, fresh); len(raw) != 0 || fresh.EventLog().Head() != 0 {
		t.Fatalf("a failed restore left %d events, head %d", len(raw), fresh.EventLog().Head())
	}
}

// Before the log format numbers changes (a cluster upgraded from binaries
// without the stream), nothing is streamed, and numbering starts at 1 with
// the first change after the raise.
func TestFSMStreamStartsAtLogFormat4(t *testing.T) {
	l, err := storage.OpenEventLog(t.TempDir(), quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	f := NewFSM(quietLogger())
	f.SetEventLog(l)
	put := func(index uint64, id string) {
		b := domain.Batch{Events: []domain.Event{{Type: domain.EvPutResource, At: int64(index), ResourceID: id,
			Spec: domain.Spec{Kind: domain.KindVoucher, Capacity: 1}}}}
		f.Apply(&raft.Log{Index: index, Term: 1, Type: raft.LogCommand, Data: domain.EncodeBatch(nil, &b)})
	}
	put(1, "before")
	if l.Head() != 0 {
		t.Fatalf("a change under log format 1 was streamed (head %d)", l.Head())
	}
	raise := domain.Batch{Events: []domain.Event{{Type: domain.EvLogFormat, LogFormat: domain.BatchV4},
		{Type: domain.EvPutResource, At: 3, ResourceID: "after", Spec: domain.Spec{Kind: domain.KindVoucher, Capacity: 1}}}}
	f.Apply(&raft.Log{Index: 2, Term: 1, Type: raft.LogCommand, Data: domain.EncodeBatch(nil, &raise)})
	_, evs := eventsOf(t, f)
	if len(evs) != 1 || evs[0].Offset != 1 || evs[0].ResourceID != "after" || evs[0].Type != "resource.created" {
		t.Fatalf("stream after the raise: %+v", evs)
	}
}
