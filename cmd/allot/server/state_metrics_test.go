package server

import (
	"fmt"
	"sync"
	"testing"

	"allot/actors/domain"
)

// BenchmarkUnitsScan measures one scan of allot_units over a million
// vouchers and a thousand room types with a year of nights each.
func BenchmarkUnitsScan(b *testing.B) {
	st := domain.NewState()
	put := func(id string, spec domain.Spec) {
		if err := st.Apply(&domain.Event{Type: domain.EvPutResource, At: 1, ResourceID: id, Spec: spec}); err != nil {
			b.Fatal(err)
		}
	}
	for i := range 1_000_000 {
		put(fmt.Sprintf("voucher-%07d", i), domain.Spec{Kind: domain.KindVoucher, Capacity: 100, PerUserLimit: 1})
	}
	from, _ := domain.ParseDay("2030-01-01")
	for i := range 1000 {
		put(fmt.Sprintf("room-%04d", i), domain.Spec{Kind: domain.KindRoom,
			Inventory: []domain.InventoryRow{{From: from, To: from + 365, Rooms: 10}}})
	}
	var mu sync.RWMutex
	c := newStateCollector(func(fn func(*domain.State)) { mu.RLock(); defer mu.RUnlock(); fn(st) })
	b.ResetTimer()
	for range b.N {
		t := c.scan()
		if t.resources[0] != 1_000_000 || t.available[2] != 1000*365*10 {
			b.Fatalf("totals %+v", t)
		}
	}
}
