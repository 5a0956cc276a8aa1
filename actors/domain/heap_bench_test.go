package domain_test

import (
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"testing"

	"allot/actors/domain"
)

// BenchmarkHeapPerReservation measures the live heap a committed
// reservation costs: a state of 100k vouchers and 1M held reservations
// (every other one with an idempotency record, 4 reservations per user),
// applied from decoded batches as the FSM applies them, then the heap
// after a GC per reservation (bytes/reservation). One op is the whole
// build; run it with -benchtime 1x. ALLOT_HEAP_PROFILE=file writes a heap
// profile of the state there.
func BenchmarkHeapPerReservation(b *testing.B) {
	const nResources, nReservations, perBatch = 100_000, 1_000_000, 4096
	at := int64(1_700_000_000e9)
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		st := domain.NewState()
		apply := func(evs []domain.Event) {
			batch, err := domain.DecodeBatch(domain.EncodeBatch(nil, &domain.Batch{Events: evs}))
			if err != nil {
				b.Fatal(err)
			}
			for i := range batch.Events {
				if err := st.Apply(&batch.Events[i]); err != nil {
					b.Fatal(err)
				}
			}
		}
		var evs []domain.Event
		for r := range nResources {
			evs = append(evs, domain.Event{Type: domain.EvPutResource, At: at, ResourceID: "v" + strconv.Itoa(r),
				Spec: domain.Spec{Kind: domain.KindVoucher, Capacity: 1 << 40, HoldSeconds: 900}})
			if len(evs) == perBatch {
				apply(evs)
				evs = evs[:0]
			}
		}
		apply(evs)
		evs = evs[:0]
		b.StopTimer()
		runtime.GC()
		var mid runtime.MemStats
		runtime.ReadMemStats(&mid)
		b.StartTimer()
		for i := range nReservations {
			id, rid := "r"+strconv.Itoa(i), "v"+strconv.Itoa(i%nResources)
			res := domain.Reservation{ID: id, ResourceID: rid, Kind: domain.KindVoucher, User: "u" + strconv.Itoa(i/4),
				Quantity: 1, Status: domain.StatusHeld, CreatedAt: at, ExpiresAt: at + 900e9, UpdatedAt: at}
			ev := domain.Event{Type: domain.EvReserve, At: at, ResourceID: rid, Reservation: res}
			if i%2 == 0 {
				ev.Idem = &domain.IdemRecord{User: res.User, Key: "k" + id, Code: 201, Reservation: res, CreatedAt: at}
			}
			evs = append(evs, ev)
			if len(evs) == perBatch {
				apply(evs)
				evs = evs[:0]
			}
		}
		apply(evs)
		evs = nil
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-mid.HeapAlloc)/nReservations, "bytes/reservation")
		b.ReportMetric(float64(mid.HeapAlloc-before.HeapAlloc)/nResources, "bytes/resource")
		if path := os.Getenv("ALLOT_HEAP_PROFILE"); path != "" { // where the bytes are: go tool pprof -sample_index=inuse_space
			out, err := os.Create(path)
			if err != nil {
				b.Fatal(err)
			}
			if err := pprof.WriteHeapProfile(out); err != nil {
				b.Fatal(err)
			}
			out.Close()
		}
		runtime.KeepAlive(st)
	}
}
