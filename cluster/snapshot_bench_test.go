package cluster

import (
	"bytes"
	"io"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"allot/actors/domain"
)

// snapshotFSM returns an FSM holding nResources vouchers and nReservations
// held reservations spread over them, every other one with an
// idempotency record, and the index of its last entry.
func snapshotFSM(tb testing.TB, nResources, nReservations int) (*FSM, uint64) {
	tb.Helper()
	f := NewFSM(quietLogger())
	const perEntry = 4096
	index := uint64(0)
	apply := func(evs []domain.Event) {
		index++
		for _, resp := range f.ApplyBatch([]*raft.Log{command(index, 1, &domain.Batch{Term: 1, Events: evs})}) {
			for _, err := range resp.([]error) {
				if err != nil {
					tb.Fatal(err)
				}
			}
		}
	}
	var evs []domain.Event
	for r := range nResources {
		evs = append(evs, putVoucher("v"+strconv.Itoa(r), 1<<40))
		if len(evs) == perEntry || r == nResources-1 {
			apply(evs)
			evs = evs[:0]
		}
	}
	for i := range nReservations {
		id := strconv.Itoa(i)
		ev := reserve("v"+strconv.Itoa(i%nResources), "r"+id, "u"+strconv.Itoa(i%(nReservations/4+1)))
		if i%2 == 0 {
			ev.Idem = &domain.IdemRecord{User: ev.Reservation.User, Key: "k" + id, Code: 201, Reservation: ev.Reservation, CreatedAt: ev.At}
		}
		evs = append(evs, ev)
		if len(evs) == perEntry || i == nReservations-1 {
			apply(evs)
			evs = evs[:0]
		}
	}
	return f, index
}

// BenchmarkSnapshotPause measures how long FSM.Snapshot holds up Apply on a
// state of 100k resources and 1M reservations: the time from the call to
// its return, while the FSM goroutine can apply nothing. After each
// snapshot (outside the timer) one ApplyBatch of 64 entries of 16 new
// reservations is applied, then another: after-ns is the first one's
// time, which with a copy-on-write state pays for the first writes into
// the parts it shares with the snapshot, and second-ns the second's
// (which still does, for the parts the first did not touch).
func BenchmarkSnapshotPause(b *testing.B) { benchSnapshotPause(b, 100_000, 1_000_000) }

// BenchmarkSnapshotPauseLarge is BenchmarkSnapshotPause at 1M resources
// and 10M reservations, about 8 GB of heap: it runs only with
// ALLOT_BENCH_LARGE=1.
func BenchmarkSnapshotPauseLarge(b *testing.B) {
	if os.Getenv("ALLOT_BENCH_LARGE") != "1" {
		b.Skip("set ALLOT_BENCH_LARGE=1 to build a state of 10M reservations")
	}
	benchSnapshotPause(b, 1_000_000, 10_000_000)
}

func benchSnapshotPause(b *testing.B, nResources, nReservations int) {
	f, index := snapshotFSM(b, nResources, nReservations)
	next := 0
	group := func() []*raft.Log {
		logs := make([]*raft.Log, 64)
		for i := range logs {
			bt := domain.Batch{Term: 1}
			for range 16 {
				id := "n" + strconv.Itoa(next)
				bt.Events = append(bt.Events, reserve("v"+strconv.Itoa(next%nResources), id, "w"+id))
				next++
			}
			index++
			logs[i] = command(index, 1, &bt)
		}
		return logs
	}
	timed := func(logs []*raft.Log) time.Duration {
		start := time.Now()
		f.ApplyBatch(logs)
		return time.Since(start)
	}
	var afterNs, secondNs time.Duration
	var snaps []raft.FSMSnapshot
	b.ReportAllocs()
	for b.Loop() {
		snap, err := f.Snapshot()
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		snaps = append(snaps, snap)
		g1, g2 := group(), group()
		afterNs += timed(g1)
		secondNs += timed(g2)
		if len(snaps) > 2 {
			snaps[0].Release()
			snaps = snaps[1:]
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(afterNs.Nanoseconds())/float64(b.N), "after-ns")
	b.ReportMetric(float64(secondNs.Nanoseconds())/float64(b.N), "second-ns")
	for _, s := range snaps {
		s.Release()
	}
}

// BenchmarkApplyWarm is BenchmarkApplyBatch's entries of 16 reservations
// applied to a state that already holds 10k resources and 200k
// reservations: the steady state, where every part of the state exists
// already. snapshots=every256 takes a snapshot every 256 entries (released
// at once), so it includes what the writes after a snapshot pay to copy
// the parts they touch.
func BenchmarkApplyWarm(b *testing.B) {
	const nResources = 10_000
	for _, every := range []int{0, 256} {
		name := "snapshots=none"
		if every > 0 {
			name = "snapshots=every" + strconv.Itoa(every)
		}
		b.Run(name, func(b *testing.B) {
			f, index := snapshotFSM(b, nResources, 200_000)
			next := 0
			entry := func() *raft.Log {
				bt := domain.Batch{Term: 1}
				for range 16 {
					id := strconv.Itoa(next)
					bt.Events = append(bt.Events, reserve("v"+strconv.Itoa(next%nResources), "n"+id, "w"+strconv.Itoa(next%50_000)))
					next++
				}
				index++
				return command(index, 1, &bt)
			}
			b.ReportAllocs()
			n := 0
			for b.Loop() {
				b.StopTimer()
				l := entry()
				b.StartTimer()
				if errs := f.ApplyBatch([]*raft.Log{l})[0].([]error); errs[0] != nil {
					b.Fatal(errs[0])
				}
				if n++; every > 0 && n%every == 0 {
					snap, err := f.Snapshot()
					if err != nil {
						b.Fatal(err)
					}
					snap.Release()
				}
			}
		})
	}
}

// BenchmarkSnapshotRestore measures FSM.Restore of a snapshot of 100k
// resources and 1M reservations (no change stream): decoding and
// rebuilding the state, the largest part of a restart's and of a snapshot
// install's time.
func BenchmarkSnapshotRestore(b *testing.B) {
	src, _ := snapshotFSM(b, 100_000, 1_000_000)
	snap, err := src.Snapshot()
	if err != nil {
		b.Fatal(err)
	}
	var sink bufferSink
	if err := snap.Persist(&sink); err != nil {
		b.Fatal(err)
	}
	snap.Release()
	src = nil
	raw := sink.Bytes()
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		dst := NewFSM(quietLogger())
		if err := dst.Restore(io.NopCloser(bytes.NewReader(raw))); err != nil {
			b.Fatal(err)
		}
	}
}
