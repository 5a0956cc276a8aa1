package domain_test

import (
	"fmt"
	"testing"
	"time"

	"allot/actors/domain"
)

func TestReserveWindow(t *testing.T) {
	opens, closes := at(time.Hour), at(2*time.Hour)
	for _, kind := range []domain.Kind{domain.KindVoucher, domain.KindSlot} {
		for _, tc := range []struct {
			name string
			at   int64
			want error
		}{
			{"long before", t0, domain.ErrNotOpen},
			{"just before opens_at", opens - 1, domain.ErrNotOpen},
			{"at opens_at", opens, nil},
			{"just before closes_at", closes - 1, nil},
			{"at closes_at", closes, domain.ErrClosed},
			{"after closes_at", closes + int64(time.Hour), domain.ErrClosed},
		} {
			t.Run(fmt.Sprintf("%s/%s", kind, tc.name), func(t *testing.T) {
				st := newState(t, "v", domain.Spec{Kind: kind, Capacity: 5, PerUserLimit: 1, HoldSeconds: 900, OpensAt: opens, ClosesAt: closes})
				_, err := reserve(t, st, "v", domain.ReserveRequest{User: "alice", Quantity: 1}, "r1", tc.at)
				wantErr(t, err, tc.want)
				if tc.want != nil {
					wantCounts(t, st, "v", 5, 0, 0)
					wantUser(t, st, "v", "alice", 0)
					return
				}
				wantCounts(t, st, "v", 4, 1, 0)
				wantUser(t, st, "v", "alice", 1)
				res, _ := st.Reservation("r1")
				if res.Status != domain.StatusHeld || res.CreatedAt != tc.at || res.ExpiresAt != tc.at+900e9 || res.Kind != kind {
					t.Fatalf("reservation %+v", res)
				}
			})
		}
	}
	t.Run("room", func(t *testing.T) {
		st := newState(t, "h", domain.Spec{Kind: domain.KindRoom, OpensAt: opens, ClosesAt: closes, HoldSeconds: 60,
			Inventory: []domain.InventoryRow{{From: dec1, To: dec1 + 3, Rooms: 2}}})
		stay := domain.ReserveRequest{User: "bob", Quantity: 1, CheckIn: dec1, CheckOut: dec1 + 2}
		_, err := reserve(t, st, "h", stay, "r1", opens-1)
		wantErr(t, err, domain.ErrNotOpen)
		_, err = reserve(t, st, "h", stay, "r1", closes)
		wantErr(t, err, domain.ErrClosed)
		wantNights(t, st, "h", dec1, night(2, 0, 0), night(2, 0, 0))
		mustReserve(t, st, "h", stay, "r1", opens)
		wantNights(t, st, "h", dec1, night(2, 1, 0), night(2, 1, 0), night(2, 0, 0))
	})
	t.Run("only closes_at", func(t *testing.T) {
		st := newState(t, "v", domain.Spec{Kind: domain.KindVoucher, Capacity: 5, ClosesAt: closes})
		mustReserve(t, st, "v", domain.ReserveRequest{User: "a", Quantity: 1}, "r1", t0-int64(24*time.Hour))
		_, err := reserve(t, st, "v", domain.ReserveRequest{User: "b", Quantity: 1}, "r2", closes)
		wantErr(t, err, domain.ErrClosed)
	})
}

// TestReservePerUserLimit checks which statuses count against the limit:
// held, confirmed, checked in and completed do; cancelled and expired do not.
func TestReservePerUserLimit(t *testing.T) {
	hold := time.Duration(900) * time.Second
	for _, tc := range []struct {
		status  domain.Status
		counted bool
	}{
		{domain.StatusHeld, true},
		{domain.StatusConfirmed, true},
		{domain.StatusCheckedIn, true},
		{domain.StatusCompleted, true},
		{domain.StatusCancelled, false},
		{domain.StatusExpired, false},
	} {
		t.Run(tc.status.String(), func(t *testing.T) {
			st := newState(t, "s", domain.Spec{Kind: domain.KindSlot, Capacity: 10, PerUserLimit: 2, HoldSeconds: 900})
			mustReserve(t, st, "s", domain.ReserveRequest{User: "alice", Quantity: 1}, "r1", t0)
			when := at(time.Second)
			switch tc.status {
			case domain.StatusConfirmed:
				mustTransition(t, st, "r1", domain.StatusConfirmed, when)
			case domain.StatusCheckedIn, domain.StatusCompleted:
				mustTransition(t, st, "r1", domain.StatusConfirmed, when)
				mustTransition(t, st, "r1", tc.status, when)
			case domain.StatusCancelled:
				mustTransition(t, st, "r1", domain.StatusCancelled, when)
			case domain.StatusExpired:
				when = at(hold)
				mustTransition(t, st, "r1", domain.StatusExpired, when)
			}
			counted := int64(0)
			if tc.counted {
				counted = 1
			}
			wantUser(t, st, "s", "alice", counted)

			// Two more units fit only when the first one no longer counts.
			two := domain.ReserveRequest{User: "alice", Quantity: 2}
			_, err := reserve(t, st, "s", two, "r2", when)
			if tc.counted {
				wantErr(t, err, domain.ErrLimitExceeded)
				wantUser(t, st, "s", "alice", 1)
				mustReserve(t, st, "s", domain.ReserveRequest{User: "alice", Quantity: 1}, "r2", when)
			} else {
				wantErr(t, err, nil)
			}
			wantUser(t, st, "s", "alice", 2)
			_, err = reserve(t, st, "s", domain.ReserveRequest{User: "alice", Quantity: 1}, "r3", when)
			wantErr(t, err, domain.ErrLimitExceeded)
			// Another user has a limit of their own.
			mustReserve(t, st, "s", domain.ReserveRequest{User: "bob", Quantity: 2}, "r4", when)
			wantUser(t, st, "s", "alice", 2)
		})
	}
	t.Run("no limit", func(t *testing.T) {
		st := newState(t, "v", domain.Spec{Kind: domain.KindVoucher, Capacity: 5, HoldSeconds: 900})
		mustReserve(t, st, "v", domain.ReserveRequest{User: "alice", Quantity: 3}, "r1", t0)
		mustReserve(t, st, "v", domain.ReserveRequest{User: "alice", Quantity: 2}, "r2", t0)
		wantUser(t, st, "v", "alice", 5)
		wantCounts(t, st, "v", 0, 5, 0)
	})
	t.Run("room counts rooms, not nights", func(t *testing.T) {
		st := newState(t, "h", domain.Spec{Kind: domain.KindRoom, PerUserLimit: 2, HoldSeconds: 900,
			Inventory: []domain.InventoryRow{{From: dec1, To: dec1 + 10, Rooms: 5}}})
		mustReserve(t, st, "h", domain.ReserveRequest{User: "alice", Quantity: 1, CheckIn: dec1, CheckOut: dec1 + 5}, "r1", t0)
		wantUser(t, st, "h", "alice", 1)
		mustReserve(t, st, "h", domain.ReserveRequest{User: "alice", Quantity: 1, CheckIn: dec1 + 5, CheckOut: dec1 + 6}, "r2", t0)
		_, err := reserve(t, st, "h", domain.ReserveRequest{User: "alice", Quantity: 1, CheckIn: dec1 + 7, CheckOut: dec1 + 8}, "r3", t0)
		wantErr(t, err, domain.ErrLimitExceeded)
	})
	t.Run("window is checked before the limit, the limit before stock", func(t *testing.T) {
		st := newState(t, "v", domain.Spec{Kind: domain.KindVoucher, Capacity: 1, PerUserLimit: 1, HoldSeconds: 900, ClosesAt: at(time.Hour)})
		mustReserve(t, st, "v", domain.ReserveRequest{User: "alice", Quantity: 1}, "r1", t0)
		_, err := reserve(t, st, "v", domain.ReserveRequest{User: "alice", Quantity: 1}, "r2", t0)
		wantErr(t, err, domain.ErrLimitExceeded)
		_, err = reserve(t, st, "v", domain.ReserveRequest{User: "bob", Quantity: 1}, "r2", t0)
		wantErr(t, err, domain.ErrSoldOut)
		_, err = reserve(t, st, "v", domain.ReserveRequest{User: "alice", Quantity: 1}, "r2", at(time.Hour))
		wantErr(t, err, domain.ErrClosed)
	})
}

func TestReserveStock(t *testing.T) {
	for _, kind := range []domain.Kind{domain.KindVoucher, domain.KindSlot} {
		t.Run(kind.String(), func(t *testing.T) {
			st := newState(t, "v", domain.Spec{Kind: kind, Capacity: 3, HoldSeconds: 900})
			mustReserve(t, st, "v", domain.ReserveRequest{User: "a", Quantity: 2}, "r1", t0)
			wantCounts(t, st, "v", 1, 2, 0)
			_, err := reserve(t, st, "v", domain.ReserveRequest{User: "b", Quantity: 2}, "r2", t0)
			wantErr(t, err, domain.ErrSoldOut)
			wantCounts(t, st, "v", 1, 2, 0)
			wantUser(t, st, "v", "b", 0)
			mustReserve(t, st, "v", domain.ReserveRequest{User: "b", Quantity: 1}, "r2", t0)
			wantCounts(t, st, "v", 0, 3, 0)
			_, err = reserve(t, st, "v", domain.ReserveRequest{User: "c", Quantity: 1}, "r3", t0)
			wantErr(t, err, domain.ErrSoldOut)
			// A cancelled hold returns its units.
			mustTransition(t, st, "r1", domain.StatusCancelled, t0)
			wantCounts(t, st, "v", 2, 1, 0)
			mustReserve(t, st, "v", domain.ReserveRequest{User: "c", Quantity: 2}, "r3", t0)
			wantCounts(t, st, "v", 0, 3, 0)
		})
	}
	t.Run("capacity 0", func(t *testing.T) {
		st := newState(t, "v", domain.Spec{Kind: domain.KindVoucher})
		_, err := reserve(t, st, "v", domain.ReserveRequest{User: "a", Quantity: 1}, "r1", t0)
		wantErr(t, err, domain.ErrSoldOut)
	})
	t.Run("no hold time confirms at once", func(t *testing.T) {
		st := newState(t, "v", domain.Spec{Kind: domain.KindVoucher, Capacity: 2})
		res := mustReserve(t, st, "v", domain.ReserveRequest{User: "a", Quantity: 1}, "r1", t0)
		if res.Status != domain.StatusConfirmed || res.ExpiresAt != 0 {
			t.Fatalf("reservation %+v", res)
		}
		wantCounts(t, st, "v", 1, 0, 1)
		if _, _, _, held := st.Counts(); held != 0 {
			t.Fatalf("%d held in the expiry index", held)
		}
	})
	t.Run("bad requests", func(t *testing.T) {
		st := newState(t, "v", domain.Spec{Kind: domain.KindVoucher, Capacity: 2, HoldSeconds: 900})
		for _, q := range []domain.ReserveRequest{
			{User: "a", Quantity: 0},
			{User: "", Quantity: 1},
			{User: "a", Quantity: 1, CheckIn: dec1, CheckOut: dec1 + 1},
		} {
			_, err := reserve(t, st, "v", q, "r1", t0)
			wantErr(t, err, domain.ErrInvalidArgument)
		}
		wantCounts(t, st, "v", 2, 0, 0)
	})
}

// TestReserveRoom checks stays: all nights or none, later inventory rows
// winning, and nights without inventory.
func TestReserveRoom(t *testing.T) {
	// Two rooms per night from Dec 1 to Dec 5, one on Dec 3, none on Dec 6.
	spec := domain.Spec{Kind: domain.KindRoom, HoldSeconds: 900, Inventory: []domain.InventoryRow{
		{From: dec1, To: dec1 + 7, Rooms: 2},
		{From: dec1 + 2, To: dec1 + 3, Rooms: 1},
		{From: dec1 + 5, To: dec1 + 6, Rooms: 0},
	}}
	stay := func(user string, quantity int64, in, out domain.Day) domain.ReserveRequest {
		return domain.ReserveRequest{User: user, Quantity: quantity, CheckIn: in, CheckOut: out}
	}
	st := newState(t, "h", spec)
	wantNights(t, st, "h", dec1-1, night(0, 0, 0), night(2, 0, 0), night(2, 0, 0), night(1, 0, 0),
		night(2, 0, 0), night(2, 0, 0), night(0, 0, 0), night(2, 0, 0), night(0, 0, 0))

	mustReserve(t, st, "h", stay("a", 1, dec1, dec1+2), "r1", t0)
	wantNights(t, st, "h", dec1, night(2, 1, 0), night(2, 1, 0), night(1, 0, 0))
	wantUser(t, st, "h", "a", 1)

	// Dec 2 to Dec 4 takes the only room of Dec 3.
	mustReserve(t, st, "h", stay("b", 1, dec1+1, dec1+4), "r2", t0)
	wantNights(t, st, "h", dec1, night(2, 1, 0), night(2, 2, 0), night(1, 1, 0), night(2, 1, 0))

	for _, tc := range []struct {
		name string
		q    domain.ReserveRequest
		want error
	}{
		{"one full night takes nothing", stay("c", 1, dec1+2, dec1+5), domain.ErrSoldOut},
		{"full first night", stay("c", 1, dec1+1, dec1+2), domain.ErrSoldOut},
		{"more rooms than a night has", stay("c", 2, dec1+3, dec1+5), domain.ErrSoldOut},
		{"night with zero rooms", stay("c", 1, dec1+4, dec1+7), domain.ErrSoldOut},
		{"night before the inventory", stay("c", 1, dec1-1, dec1+1), domain.ErrSoldOut},
		{"night after the inventory", stay("c", 1, dec1+6, dec1+8), domain.ErrSoldOut},
		{"check_out == check_in", stay("c", 1, dec1, dec1), domain.ErrInvalidArgument},
		{"check_out before check_in", stay("c", 1, dec1+1, dec1), domain.ErrInvalidArgument},
		{"no stay", stay("c", 1, 0, 0), domain.ErrInvalidArgument},
		{"too long", stay("c", 1, dec1, dec1+domain.MaxStayNights+1), domain.ErrInvalidArgument},
	} {
		_, err := reserve(t, st, "h", tc.q, "r3", t0)
		if sentinel(err) != tc.want {
			t.Errorf("%s: got %v, want %v", tc.name, err, tc.want)
		}
	}
	wantNights(t, st, "h", dec1-1, night(0, 0, 0), night(2, 1, 0), night(2, 2, 0), night(1, 1, 0),
		night(2, 1, 0), night(2, 0, 0), night(0, 0, 0), night(2, 0, 0), night(0, 0, 0))
	wantUser(t, st, "h", "c", 0)

	// Confirming moves every night of the stay; cancelling returns them.
	mustTransition(t, st, "r2", domain.StatusConfirmed, at(time.Minute))
	wantNights(t, st, "h", dec1, night(2, 1, 0), night(2, 1, 1), night(1, 0, 1), night(2, 0, 1))
	mustReserve(t, st, "h", stay("c", 2, dec1+4, dec1+5), "r3", at(time.Minute))
	wantNights(t, st, "h", dec1+3, night(2, 0, 1), night(2, 2, 0))
	wantUser(t, st, "h", "c", 2)
	mustTransition(t, st, "r2", domain.StatusCancelled, at(time.Minute))
	wantNights(t, st, "h", dec1, night(2, 1, 0), night(2, 1, 0), night(1, 0, 0), night(2, 0, 0), night(2, 2, 0))
	wantUser(t, st, "h", "b", 0)
	mustReserve(t, st, "h", stay("d", 1, dec1+1, dec1+4), "r4", at(time.Minute))
}

func TestReserveRequestValidate(t *testing.T) {
	long := make([]byte, domain.MaxUserLen+1)
	for i := range long {
		long[i] = 'u'
	}
	for _, tc := range []struct {
		name string
		kind domain.Kind
		q    domain.ReserveRequest
		ok   bool
	}{
		{"one unit", domain.KindVoucher, domain.ReserveRequest{User: "a", Quantity: 1}, true},
		{"max quantity", domain.KindSlot, domain.ReserveRequest{User: "a", Quantity: domain.MaxQuantity}, true},
		{"max user", domain.KindSlot, domain.ReserveRequest{User: string(long[1:]), Quantity: 1}, true},
		{"no user", domain.KindVoucher, domain.ReserveRequest{Quantity: 1}, false},
		{"long user", domain.KindVoucher, domain.ReserveRequest{User: string(long), Quantity: 1}, false},
		{"zero quantity", domain.KindVoucher, domain.ReserveRequest{User: "a"}, false},
		{"negative quantity", domain.KindVoucher, domain.ReserveRequest{User: "a", Quantity: -1}, false},
		{"too many", domain.KindVoucher, domain.ReserveRequest{User: "a", Quantity: domain.MaxQuantity + 1}, false},
		{"stay for a voucher", domain.KindVoucher, domain.ReserveRequest{User: "a", Quantity: 1, CheckIn: dec1, CheckOut: dec1 + 1}, false},
		{"check_in only for a slot", domain.KindSlot, domain.ReserveRequest{User: "a", Quantity: 1, CheckIn: dec1}, false},
		{"one night", domain.KindRoom, domain.ReserveRequest{User: "a", Quantity: 1, CheckIn: dec1, CheckOut: dec1 + 1}, true},
		{"longest stay", domain.KindRoom, domain.ReserveRequest{User: "a", Quantity: 1, CheckIn: dec1, CheckOut: dec1 + domain.MaxStayNights}, true},
		{"stay too long", domain.KindRoom, domain.ReserveRequest{User: "a", Quantity: 1, CheckIn: dec1, CheckOut: dec1 + domain.MaxStayNights + 1}, false},
		{"stay spanning all days", domain.KindRoom, domain.ReserveRequest{User: "a", Quantity: 1, CheckIn: -1 << 31, CheckOut: 1<<31 - 1}, false},
		{"empty stay", domain.KindRoom, domain.ReserveRequest{User: "a", Quantity: 1, CheckIn: dec1, CheckOut: dec1}, false},
		{"no stay", domain.KindRoom, domain.ReserveRequest{User: "a", Quantity: 1}, false},
	} {
		err := tc.q.Validate(tc.kind)
		if tc.ok && err != nil || !tc.ok && sentinel(err) != domain.ErrInvalidArgument {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}

// TestRefusalMessages: refusals carry their detail for logs and problem
// details, and match their sentinel.
func TestRefusalMessages(t *testing.T) {
	st := newState(t, "v", domain.Spec{Kind: domain.KindVoucher, Capacity: 3, PerUserLimit: 2, HoldSeconds: 900,
		OpensAt: at(time.Hour), ClosesAt: at(2 * time.Hour)})
	mustReserve(t, st, "v", domain.ReserveRequest{User: "a", Quantity: 2}, "r1", at(time.Hour))
	hr := newState(t, "h", domain.Spec{Kind: domain.KindRoom, Inventory: []domain.InventoryRow{{From: dec1, To: dec1 + 2, Rooms: 1}}})
	for _, tc := range []struct {
		st   *domain.State
		id   string
		q    domain.ReserveRequest
		at   int64
		want string
	}{
		{st, "v", domain.ReserveRequest{User: "b", Quantity: 1}, t0, "v opens at 2026-11-21T11:00:00Z: not open yet"},
		{st, "v", domain.ReserveRequest{User: "b", Quantity: 1}, at(3 * time.Hour), "v closed at 2026-11-21T12:00:00Z: closed"},
		{st, "v", domain.ReserveRequest{User: "a", Quantity: 1}, at(time.Hour), "at most 2 per user, 2 already taken: limit exceeded"},
		{st, "v", domain.ReserveRequest{User: "b", Quantity: 2}, at(time.Hour), "1 left: sold out"},
		{hr, "h", domain.ReserveRequest{User: "b", Quantity: 1, CheckIn: dec1 + 1, CheckOut: dec1 + 3}, t0, "night 2026-12-03 has 0 rooms left: sold out"},
	} {
		_, err := reserve(t, tc.st, tc.id, tc.q, "r2", tc.at)
		if err == nil || err.Error() != tc.want {
			t.Errorf("got %v, want %q", err, tc.want)
		}
	}
}
