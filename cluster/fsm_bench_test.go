package cluster

import (
	"strconv"
	"testing"

	"github.com/hashicorp/raft"

	"allot/actors/domain"
	"allot/storage"
)

// benchEntries is one cycle of the apply benchmark: a put of each resource,
// then entries of perEntry reservations spread over the resources, stamped
// with term 1 as a ready leader writes them.
func benchEntries(nResources, nEntries, perEntry int) (setup *raft.Log, entries []*raft.Log) {
	var put domain.Batch
	for r := range nResources {
		put.Events = append(put.Events, putVoucher("v"+strconv.Itoa(r), 1<<40))
	}
	setup = command(1, 1, &domain.Batch{Term: 1, Events: put.Events})
	for e := range nEntries {
		b := domain.Batch{Term: 1}
		for k := range perEntry {
			id := strconv.Itoa(e*perEntry + k)
			b.Events = append(b.Events, reserve("v"+strconv.Itoa((e*perEntry+k)%nResources), "r"+id, "u"+id))
		}
		entries = append(entries, command(uint64(2+e), 1, &b))
	}
	return setup, entries
}

// BenchmarkApplyBatch measures the FSM's apply path as Raft drives it:
// groups of 64 committed entries, each one batch of events (1 event: a
// quiet leader; 16: group commit under load). Each cycle starts from a
// fresh FSM (outside the timer) so that the state does not grow with b.N.
//
// stream=on is the same with the change stream on (log format 4, every
// reservation rendered and written to a bbolt event log): the ratio of the
// two is what the stream costs the accept path in Apply.
func BenchmarkApplyBatch(b *testing.B) {
	const group, groups = 64, 8
	for _, stream := range []bool{false, true} {
		for _, perEntry := range []int{1, 16} {
			name := "stream=off/events=" + strconv.Itoa(perEntry)
			if stream {
				name = "stream=on/events=" + strconv.Itoa(perEntry)
			}
			b.Run(name, func(b *testing.B) { benchApply(b, stream, group, groups, perEntry) })
		}
	}
}

func benchApply(b *testing.B, stream bool, group, groups, perEntry int) {
	setup, entries := benchEntries(64, group*groups, perEntry)
	if stream {
		raise := domain.Batch{Term: 1, Events: []domain.Event{{Type: domain.EvLogFormat, LogFormat: domain.BatchV4}}}
		raise.Events = append(raise.Events, mustDecode(b, setup.Data).Events...)
		setup = command(1, 1, &raise)
	}
	var f *FSM
	var events *storage.EventLog
	next := len(entries)
	b.ReportAllocs()
	for b.Loop() {
		if next == len(entries) {
			b.StopTimer()
			f = NewFSM(quietLogger())
			if stream {
				if events != nil {
					events.Close()
				}
				var err error
				if events, err = storage.OpenEventLog(b.TempDir(), quietLogger()); err != nil {
					b.Fatal(err)
				}
				f.SetEventLog(events)
			}
			f.ApplyBatch([]*raft.Log{setup})
			next = 0
			b.StartTimer()
		}
		for _, resp := range f.ApplyBatch(entries[next : next+group]) {
			if errs, ok := resp.([]error); !ok || errs[0] != nil {
				b.Fatalf("response %v", resp)
			}
		}
		next += group
	}
	if events != nil {
		events.Close()
	}
}

func mustDecode(b *testing.B, data []byte) domain.Batch {
	batch, err := domain.DecodeBatch(data)
	if err != nil {
		b.Fatal(err)
	}
	return batch
}

// BenchmarkAuditFold measures folding one entry into the log digest, the
// audit's whole cost on the apply path (audit.go).
func BenchmarkAuditFold(b *testing.B) {
	for _, perEntry := range []int{1, 16} {
		b.Run("events="+strconv.Itoa(perEntry), func(b *testing.B) {
			_, entries := benchEntries(64, 1, perEntry)
			errs := make([]error, perEntry)
			var a auditLog
			a.every = defaultAuditInterval
			var d domain.LogDigest
			b.SetBytes(int64(len(entries[0].Data)))
			b.ReportAllocs()
			for b.Loop() {
				d = a.fold(d, entries[0], errs)
			}
		})
	}
}
