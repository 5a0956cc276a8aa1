package domain_test

import (
	"strconv"
	"testing"

	"allot/actors/domain"
)

// benchResource returns a resource with spec whose first `taken` units are
// held by distinct users.
func benchResource(b *testing.B, spec domain.Spec, taken int) *domain.Resource {
	r := &domain.Resource{ID: "bench"}
	if err := r.CheckUpdate(&spec); err != nil {
		b.Fatal(err)
	}
	r.ApplyUpdate(spec, t0)
	for i := range taken {
		res, err := r.DecideReserve(domain.ReserveRequest{User: "u" + strconv.Itoa(i), Quantity: 1}, "r"+strconv.Itoa(i), t0)
		if err != nil {
			b.Fatal(err)
		}
		r.ApplyReserve(&res)
	}
	return r
}

// BenchmarkDecideReserve measures an actor's decision: in a flash sale
// almost every request takes the sold-out path.
func BenchmarkDecideReserve(b *testing.B) {
	voucher := domain.Spec{Kind: domain.KindVoucher, Capacity: 1000, PerUserLimit: 1, HoldSeconds: 900}
	for _, bc := range []struct {
		name string
		r    *domain.Resource
		q    domain.ReserveRequest
		ok   bool
	}{
		{"sold_out", benchResource(b, voucher, 1000), domain.ReserveRequest{User: "late", Quantity: 1}, false},
		{"limit_exceeded", benchResource(b, voucher, 10), domain.ReserveRequest{User: "u3", Quantity: 1}, false},
		{"accept", benchResource(b, voucher, 10), domain.ReserveRequest{User: "new", Quantity: 1}, true},
		{"accept_room_3_nights", benchResource(b, domain.Spec{Kind: domain.KindRoom, HoldSeconds: 900,
			Inventory: []domain.InventoryRow{{From: dec1, To: dec1 + 365, Rooms: 100}}}, 0),
			domain.ReserveRequest{User: "new", Quantity: 1, CheckIn: dec1 + 10, CheckOut: dec1 + 13}, true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := bc.r.DecideReserve(bc.q, "rsv", t0); (err == nil) != bc.ok {
					b.Fatal(err)
				}
			}
		})
	}
}

func benchBatch(b *testing.B) domain.Batch {
	events, _ := generated(b, 3, 1024)
	return domain.Batch{Events: events}
}

func BenchmarkEncodeBatch(b *testing.B) {
	batch := benchBatch(b)
	buf := domain.EncodeBatch(nil, &batch)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		buf = domain.EncodeBatch(buf[:0], &batch)
	}
}

func BenchmarkDecodeBatch(b *testing.B) {
	batch := benchBatch(b)
	data := domain.EncodeBatch(nil, &batch)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := domain.DecodeBatch(data); err != nil {
			b.Fatal(err)
		}
	}
}
