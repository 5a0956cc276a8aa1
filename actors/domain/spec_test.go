package domain_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"allot/actors/domain"
)

func TestSpecValidate(t *testing.T) {
	row := func(from, to domain.Day, rooms int64) domain.InventoryRow {
		return domain.InventoryRow{From: from, To: to, Rooms: rooms}
	}
	attrs := func(n int) map[string]string {
		m := make(map[string]string, n)
		for i := range n {
			m["k"+strconv.Itoa(i)] = "v"
		}
		return m
	}
	manyRows := make([]domain.InventoryRow, domain.MaxInventoryRows+1)
	for i := range manyRows {
		manyRows[i] = row(dec1+domain.Day(i), dec1+domain.Day(i)+1, 1)
	}
	long := strings.Repeat("a", domain.MaxAttributeLen)
	voucher := domain.KindVoucher
	room := domain.KindRoom
	for _, tc := range []struct {
		name string
		spec domain.Spec
		ok   bool
	}{
		{"voucher", domain.Spec{Kind: voucher, Capacity: 10, PerUserLimit: 1, HoldSeconds: 900}, true},
		{"slot without capacity", domain.Spec{Kind: domain.KindSlot}, true},
		{"max capacity", domain.Spec{Kind: voucher, Capacity: domain.MaxCapacity}, true},
		{"capacity over max", domain.Spec{Kind: voucher, Capacity: domain.MaxCapacity + 1}, false},
		{"negative capacity", domain.Spec{Kind: voucher, Capacity: -1}, false},
		{"voucher with inventory", domain.Spec{Kind: voucher, Capacity: 1, Inventory: []domain.InventoryRow{row(dec1, dec1+1, 1)}}, false},
		{"no kind", domain.Spec{Capacity: 1}, false},
		{"unknown kind", domain.Spec{Kind: 4, Capacity: 1}, false},

		{"room", domain.Spec{Kind: room, Inventory: []domain.InventoryRow{row(dec1, dec1+31, 10), row(dec1+24, dec1+25, 0)}}, true},
		{"room without inventory", domain.Spec{Kind: room}, true},
		{"room with capacity", domain.Spec{Kind: room, Capacity: 1}, false},
		{"row ending where it starts", domain.Spec{Kind: room, Inventory: []domain.InventoryRow{row(dec1, dec1, 1)}}, false},
		{"row ending before it starts", domain.Spec{Kind: room, Inventory: []domain.InventoryRow{row(dec1, dec1+5, 1), row(dec1+3, dec1+2, 1)}}, false},
		{"negative rooms", domain.Spec{Kind: room, Inventory: []domain.InventoryRow{row(dec1, dec1+1, -1)}}, false},
		{"max rooms", domain.Spec{Kind: room, Inventory: []domain.InventoryRow{row(dec1, dec1+1, domain.MaxRoomsPerNight)}}, true},
		{"rooms over max", domain.Spec{Kind: room, Inventory: []domain.InventoryRow{row(dec1, dec1+1, domain.MaxRoomsPerNight+1)}}, false},
		{"max rows", domain.Spec{Kind: room, Inventory: manyRows[1:]}, true},
		{"too many rows", domain.Spec{Kind: room, Inventory: manyRows}, false},
		{"longest span", domain.Spec{Kind: room, Inventory: []domain.InventoryRow{row(dec1, dec1+domain.MaxNights, 1)}}, true},
		{"span too long", domain.Spec{Kind: room, Inventory: []domain.InventoryRow{row(dec1, dec1+1, 1), row(dec1+domain.MaxNights, dec1+domain.MaxNights+1, 1)}}, false},
		{"span overflowing Day", domain.Spec{Kind: room, Inventory: []domain.InventoryRow{row(-1<<31, -1<<31+1, 1), row(1<<31-2, 1<<31-1, 1)}}, false},

		{"negative limit", domain.Spec{Kind: voucher, PerUserLimit: -1}, false},
		{"confirm at once", domain.Spec{Kind: voucher, HoldSeconds: 0}, true},
		{"longest hold", domain.Spec{Kind: voucher, HoldSeconds: domain.MaxHoldSeconds}, true},
		{"hold too long", domain.Spec{Kind: voucher, HoldSeconds: domain.MaxHoldSeconds + 1}, false},
		{"negative hold", domain.Spec{Kind: voucher, HoldSeconds: -1}, false},
		{"window", domain.Spec{Kind: voucher, OpensAt: t0, ClosesAt: t0 + 1}, true},
		{"opens only", domain.Spec{Kind: voucher, OpensAt: t0}, true},
		{"closes only", domain.Spec{Kind: voucher, ClosesAt: t0}, true},
		{"closes when it opens", domain.Spec{Kind: voucher, OpensAt: t0, ClosesAt: t0}, false},
		{"closes before it opens", domain.Spec{Kind: voucher, OpensAt: t0, ClosesAt: t0 - 1}, false},
		{"max attributes", domain.Spec{Kind: voucher, Attributes: attrs(domain.MaxAttributes)}, true},
		{"too many attributes", domain.Spec{Kind: voucher, Attributes: attrs(domain.MaxAttributes + 1)}, false},
		{"longest attribute", domain.Spec{Kind: voucher, Attributes: map[string]string{long: long}}, true},
		{"empty attribute key", domain.Spec{Kind: voucher, Attributes: map[string]string{"": "v"}}, false},
		{"empty attribute value", domain.Spec{Kind: voucher, Attributes: map[string]string{"k": ""}}, true},
		{"attribute key too long", domain.Spec{Kind: voucher, Attributes: map[string]string{long + "a": "v"}}, false},
		{"attribute value too long", domain.Spec{Kind: voucher, Attributes: map[string]string{"k": long + "a"}}, false},
	} {
		err := tc.spec.Validate()
		if tc.ok && err != nil || !tc.ok && sentinel(err) != domain.ErrInvalidArgument {
			t.Errorf("%s: %v", tc.name, err)
		}
		if err != nil {
			// Apply refuses the same spec.
			mustRefuse(t, domain.NewState(), domain.Event{Type: domain.EvPutResource, At: t0, ResourceID: "r", Spec: tc.spec}, domain.ErrInvalidArgument)
		}
	}
}

func TestPutResource(t *testing.T) {
	st := domain.NewState()
	put := func(id string, spec domain.Spec, when int64) domain.Event {
		return domain.Event{Type: domain.EvPutResource, At: when, ResourceID: id, Spec: spec}
	}
	for _, id := range []string{"", "a b", "a/b", "é", strings.Repeat("x", domain.MaxIDLen+1)} {
		mustRefuse(t, st, put(id, domain.Spec{Kind: domain.KindVoucher}, t0), domain.ErrInvalidArgument)
	}
	longest := strings.Repeat("x", domain.MaxIDLen)
	for _, id := range []string{"v", "A-z_0.9:x", longest} {
		mustApply(t, st, put(id, domain.Spec{Kind: domain.KindVoucher, Capacity: 3, HoldSeconds: 900}, t0))
	}
	mustReserve(t, st, "v", domain.ReserveRequest{User: "a", Quantity: 2}, "r1", t0)
	mustTransition(t, st, "r1", confirmed, t0)
	mustReserve(t, st, "v", domain.ReserveRequest{User: "b", Quantity: 1}, "r2", t0)
	wantCounts(t, st, "v", 0, 1, 2)

	t.Run("capacity", func(t *testing.T) {
		mustRefuse(t, st, put("v", domain.Spec{Kind: domain.KindVoucher, Capacity: 2}, at(time.Minute)), domain.ErrInvalidState)
		wantCounts(t, st, "v", 0, 1, 2)
		mustApply(t, st, put("v", domain.Spec{Kind: domain.KindVoucher, Capacity: 10, PerUserLimit: 1}, at(time.Minute)))
		wantCounts(t, st, "v", 7, 1, 2)
		mustApply(t, st, put("v", domain.Spec{Kind: domain.KindVoucher, Capacity: 3}, at(2*time.Minute)))
		wantCounts(t, st, "v", 0, 1, 2)
		r, _ := st.Resource("v")
		if r.CreatedAt != t0 || r.UpdatedAt != at(2*time.Minute) || r.Spec.HoldSeconds != 0 {
			t.Fatalf("updated resource %+v", r)
		}
		// Holds made before the update keep their expiry.
		if res, _ := st.Reservation("r2"); res.Status != held || res.ExpiresAt != at(holdPeriod) {
			t.Fatalf("hold after update %+v", res)
		}
	})
	t.Run("kind never changes", func(t *testing.T) {
		mustRefuse(t, st, put("v", domain.Spec{Kind: domain.KindSlot, Capacity: 3}, at(time.Hour)), domain.ErrInvalidArgument)
		mustRefuse(t, st, put("v", domain.Spec{Kind: domain.KindRoom}, at(time.Hour)), domain.ErrInvalidArgument)
		mustRefuse(t, st, put("A-z_0.9:x", domain.Spec{Kind: domain.KindSlot}, at(time.Hour)), domain.ErrInvalidArgument)
	})
	if n, _, _, _ := st.Counts(); n != 3 {
		t.Fatalf("%d resources, want 3", n)
	}
}

// TestPutRoomInventory changes a room type's inventory around its bookings:
// a night may not drop below its taken rooms or leave the inventory while
// taken; counts follow their night when the inventory moves.
func TestPutRoomInventory(t *testing.T) {
	row := func(from, to domain.Day, rooms int64) domain.InventoryRow {
		return domain.InventoryRow{From: from, To: to, Rooms: rooms}
	}
	put := func(rows ...domain.InventoryRow) domain.Event {
		return domain.Event{Type: domain.EvPutResource, At: t0, ResourceID: "h",
			Spec: domain.Spec{Kind: domain.KindRoom, HoldSeconds: 900, Inventory: rows}}
	}
	st := domain.NewState()
	mustApply(t, st, put(row(dec1, dec1+3, 2)))
	mustReserve(t, st, "h", domain.ReserveRequest{User: "a", Quantity: 1, CheckIn: dec1 + 1, CheckOut: dec1 + 3}, "r1", t0)
	mustTransition(t, st, "r1", confirmed, t0)
	mustReserve(t, st, "h", domain.ReserveRequest{User: "b", Quantity: 1, CheckIn: dec1 + 2, CheckOut: dec1 + 3}, "r2", t0)
	wantNights(t, st, "h", dec1, night(2, 0, 0), night(2, 0, 1), night(2, 1, 1))

	mustRefuse(t, st, put(row(dec1, dec1+3, 2), row(dec1+1, dec1+2, 0)), domain.ErrInvalidState)
	mustRefuse(t, st, put(row(dec1, dec1+3, 1)), domain.ErrInvalidState)
	mustRefuse(t, st, put(row(dec1, dec1+2, 2)), domain.ErrInvalidState)
	mustRefuse(t, st, put(row(dec1+2, dec1+3, 2)), domain.ErrInvalidState)
	mustRefuse(t, st, put(), domain.ErrInvalidState)
	wantNights(t, st, "h", dec1, night(2, 0, 0), night(2, 0, 1), night(2, 1, 1))

	// A free night may go to zero; later rows win.
	mustApply(t, st, put(row(dec1, dec1+3, 2), row(dec1, dec1+1, 0)))
	wantNights(t, st, "h", dec1, night(0, 0, 0), night(2, 0, 1), night(2, 1, 1))
	// Growing to both sides keeps each night's counts on its night.
	mustApply(t, st, put(row(dec1-2, dec1+5, 4)))
	wantNights(t, st, "h", dec1-3, night(0, 0, 0), night(4, 0, 0), night(4, 0, 0), night(4, 0, 0),
		night(4, 0, 1), night(4, 1, 1), night(4, 0, 0), night(4, 0, 0), night(0, 0, 0))
	if r, _ := st.Resource("h"); r.NightBase != dec1-2 || len(r.Nights) != 7 {
		t.Fatalf("nights from %s, %d of them", r.NightBase, len(r.Nights))
	}
	// Shrinking to exactly what is taken.
	mustApply(t, st, put(row(dec1+1, dec1+3, 2), row(dec1+1, dec1+2, 1)))
	wantNights(t, st, "h", dec1, night(0, 0, 0), night(1, 0, 1), night(2, 1, 1), night(0, 0, 0))
	_, err := reserve(t, st, "h", domain.ReserveRequest{User: "c", Quantity: 1, CheckIn: dec1 + 1, CheckOut: dec1 + 2}, "r3", t0)
	wantErr(t, err, domain.ErrSoldOut)
	_, err = reserve(t, st, "h", domain.ReserveRequest{User: "c", Quantity: 1, CheckIn: dec1, CheckOut: dec1 + 3}, "r3", t0)
	wantErr(t, err, domain.ErrSoldOut)
	mustTransition(t, st, "r2", expired, at(holdPeriod))
	wantNights(t, st, "h", dec1+1, night(1, 0, 1), night(2, 0, 1))
}

func TestDeleteResource(t *testing.T) {
	del := func(id string) domain.Event {
		return domain.Event{Type: domain.EvDeleteResource, At: at(time.Hour), ResourceID: id}
	}
	for _, tc := range []struct {
		status domain.Status
		ok     bool
	}{
		{held, false},
		{confirmed, false},
		{checkedIn, false},
		// Completed units stay taken: deleting would let a new resource of
		// the same id start with counts its old reservations contradict.
		{completed, false},
		{cancelled, true},
		{expired, true},
	} {
		t.Run(tc.status.String(), func(t *testing.T) {
			for _, kind := range []domain.Kind{domain.KindSlot, domain.KindRoom} {
				st := lifecycleState(t, kind, tc.status)
				if !tc.ok {
					mustRefuse(t, st, del("x"), domain.ErrInvalidState)
					continue
				}
				mustApply(t, st, del("x"))
				if _, ok := st.Resource("x"); ok {
					t.Fatal("still there")
				}
				mustRefuse(t, st, del("x"), domain.ErrNotFound)
				if _, ok := st.Reservation("r1"); !ok {
					t.Fatal("the reservation went with its resource")
				}
				// Nothing can happen to the old reservation any more.
				mustRefuse(t, st, domain.Event{Type: domain.EvTransition, At: at(time.Hour), ResourceID: "x", ReservationID: "r1", To: cancelled}, domain.ErrNotFound)
				// The id may be used again, by another kind too.
				mustApply(t, st, domain.Event{Type: domain.EvPutResource, At: at(time.Hour), ResourceID: "x", Spec: domain.Spec{Kind: domain.KindVoucher, Capacity: 1}})
				mustReserve(t, st, "x", domain.ReserveRequest{User: "alice", Quantity: 1}, "r2", at(time.Hour))
				wantCounts(t, st, "x", 0, 0, 1)
			}
		})
	}
	mustRefuse(t, domain.NewState(), del("nope"), domain.ErrNotFound)
}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		s string
		d domain.Day
	}{{"1970-01-01", 0}, {"1969-12-31", -1}, {"2026-12-01", dec1}, {"2028-02-29", dec1 + 455}} {
		d, err := domain.ParseDay(tc.s)
		if err != nil || d != tc.d || d.String() != tc.s {
			t.Errorf("ParseDay(%q) = %d, %v; String %q", tc.s, d, err, d.String())
		}
	}
	for _, s := range []string{"", "2026-13-01", "2026-02-30", "2026-12-01T00:00:00Z", "01/12/2026"} {
		if _, err := domain.ParseDay(s); sentinel(err) != domain.ErrInvalidArgument {
			t.Errorf("ParseDay(%q): %v", s, err)
		}
	}
	for k := domain.KindVoucher; k <= domain.KindRoom; k++ {
		if got, err := domain.ParseKind(k.String()); got != k || err != nil {
			t.Errorf("ParseKind(%q) = %v, %v", k, got, err)
		}
	}
	for s := held; s <= completed; s++ {
		if got, err := domain.ParseStatus(s.String()); got != s || err != nil {
			t.Errorf("ParseStatus(%q) = %v, %v", s, got, err)
		}
	}
	for _, s := range []string{"", "Voucher", "kind(0)"} {
		if _, err := domain.ParseKind(s); sentinel(err) != domain.ErrInvalidArgument {
			t.Errorf("ParseKind(%q): %v", s, err)
		}
		if _, err := domain.ParseStatus(s); sentinel(err) != domain.ErrInvalidArgument {
			t.Errorf("ParseStatus(%q): %v", s, err)
		}
	}
}
