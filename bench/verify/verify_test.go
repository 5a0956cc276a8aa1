package verify

import (
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)

// consistent returns a small final state that satisfies every rule: a
// voucher with a held, a confirmed and a cancelled reservation, a sold-out
// voucher, and a room type with two stays and an expired hold.
func consistent() Input {
	held := Reservation{ID: "r1", ResourceID: "v1", User: "u1", Status: StatusHeld, Quantity: 1,
		CreatedAt: t0, ExpiresAt: t0.Add(15 * time.Minute), UpdatedAt: t0}
	return Input{
		Resources: []Resource{
			{ID: "v1", Kind: KindVoucher, Capacity: 3, PerUserLimit: 1, Available: 1, Held: 1, Confirmed: 1,
				Reservations: []Reservation{
					held,
					{ID: "r2", ResourceID: "v1", User: "u2", Status: StatusConfirmed, Quantity: 1},
					{ID: "r3", ResourceID: "v1", User: "u3", Status: StatusCancelled, Quantity: 1},
				}},
			{ID: "v2", Kind: KindVoucher, Capacity: 1, PerUserLimit: 1, Available: 0, Confirmed: 1,
				Reservations: []Reservation{
					{ID: "r7", ResourceID: "v2", User: "u7", Status: StatusCompleted, Quantity: 1},
				}},
			{ID: "h1", Kind: KindRoom, ReadAt: t0.Add(20 * time.Second), Nights: map[string]Night{
				"2026-12-01": {Rooms: 2, Available: 1},
				"2026-12-02": {Rooms: 2, Available: 0},
			}, Reservations: []Reservation{
				{ID: "r4", ResourceID: "h1", User: "u4", Status: StatusCheckedIn, Quantity: 1, CheckIn: "2026-12-01", CheckOut: "2026-12-03"},
				{ID: "r5", ResourceID: "h1", User: "u5", Status: StatusHeld, Quantity: 1, CheckIn: "2026-12-02", CheckOut: "2026-12-03",
					ExpiresAt: t0.Add(10 * time.Second)},
				{ID: "r6", ResourceID: "h1", User: "u6", Status: StatusExpired, Quantity: 2, CheckIn: "2026-12-01", CheckOut: "2026-12-02",
					CreatedAt: t0, UpdatedAt: t0.Add(11 * time.Second)}, // expires_at is shown while held only
			}},
		},
		Acks: []Ack{
			{ID: "r1", ResourceID: "v1", User: "u1", Key: "k1", Quantity: 1, Status: StatusHeld},
			{ID: "r2", ResourceID: "v1", User: "u2", Key: "k1", Quantity: 1, Status: StatusHeld, Maybe: []string{StatusConfirmed}},
			{ID: "r4", ResourceID: "h1", User: "u4", Key: "k1", Quantity: 1, Status: StatusCheckedIn},
			{ID: "r6", ResourceID: "h1", User: "u6", Key: "k1", Quantity: 2, Status: StatusHeld, ExpiresAt: t0.Add(10 * time.Second)},
			{ID: "r7", ResourceID: "v2", User: "u7", Key: "k1", Quantity: 1, Status: StatusCompleted},
		},
		SoldOut: []SoldOut{
			{ResourceID: "v2", Quantity: 1},
			{ResourceID: "h1", CheckIn: "2026-12-02", CheckOut: "2026-12-03", Quantity: 1},
		},
		Responses:   100,
		ExpiryGrace: 10 * time.Second,
	}
}

func failed(r Result) map[string]Check {
	out := make(map[string]Check)
	for _, c := range r.Checks {
		if c.Failures > 0 {
			out[c.Name] = c
		}
	}
	return out
}

func TestConsistentStatePasses(t *testing.T) {
	r := Verify(consistent())
	if !r.Pass {
		t.Fatalf("consistent state failed: %+v", failed(r))
	}
	for _, c := range r.Checks {
		if c.Checked == 0 && c.Name != "idempotency" {
			t.Errorf("check %s looked at nothing", c.Name)
		}
	}
}

func TestBrokenStatesFail(t *testing.T) {
	tests := []struct {
		name   string
		check  string // the check that must fail
		mutate func(in *Input)
	}{
		{"voucher oversold", "no_oversell", func(in *Input) {
			v := &in.Resources[0]
			v.Reservations = append(v.Reservations,
				Reservation{ID: "r8", ResourceID: "v1", User: "u8", Status: StatusConfirmed, Quantity: 1},
				Reservation{ID: "r9", ResourceID: "v1", User: "u9", Status: StatusConfirmed, Quantity: 1})
			v.Confirmed, v.Available = 3, -1
		}},
		{"room night oversold", "no_oversell", func(in *Input) {
			h := &in.Resources[2]
			h.Reservations = append(h.Reservations, Reservation{ID: "r8", ResourceID: "h1", User: "u8",
				Status: StatusConfirmed, Quantity: 1, CheckIn: "2026-12-02", CheckOut: "2026-12-03"})
			h.Nights["2026-12-02"] = Night{Rooms: 2, Available: -1}
		}},
		{"night without inventory", "no_oversell", func(in *Input) {
			h := &in.Resources[2]
			h.Reservations[0].CheckOut = "2026-12-04"
		}},
		{"201 missing", "acknowledged_reservations_present", func(in *Input) {
			in.Acks = append(in.Acks, Ack{ID: "r-lost", ResourceID: "v1", User: "u10", Quantity: 1, Status: StatusHeld})
		}},
		{"201 on another user", "acknowledged_reservations_present", func(in *Input) {
			in.Acks[0].User = "someone-else"
		}},
		{"status the history does not allow", "acknowledged_reservations_present", func(in *Input) {
			in.Acks[0].Status = StatusConfirmed // acknowledged confirm, stored held
		}},
		{"counters disagree with reservations", "counts_consistent", func(in *Input) {
			in.Resources[0].Held, in.Resources[0].Available = 2, 0
		}},
		{"counters do not add up", "counts_consistent", func(in *Input) {
			in.Resources[0].Available = 2
		}},
		{"night available wrong", "counts_consistent", func(in *Input) {
			in.Resources[2].Nights["2026-12-01"] = Night{Rooms: 2, Available: 2}
		}},
		{"reservation listed twice", "counts_consistent", func(in *Input) {
			v := &in.Resources[0]
			v.Reservations = append(v.Reservations, v.Reservations[2])
		}},
		{"user above limit", "per_user_limit", func(in *Input) {
			in.Resources[0].Reservations[1].User = "u1"
			in.Acks[1].User = "u1"
		}},
		{"one key, two reservations", "idempotency", func(in *Input) {
			in.Acks[1].User, in.Acks[1].Key = "u1", "k1"
		}},
		{"sold out while units were free", "no_false_sold_out", func(in *Input) {
			v := &in.Resources[1]
			v.Capacity, v.Available = 2, 1
		}},
		{"room sold out while every night was free", "no_false_sold_out", func(in *Input) {
			h := &in.Resources[2]
			h.Reservations = h.Reservations[:2] // nothing ever returned
			h.Nights["2026-12-02"] = Night{Rooms: 3, Available: 1}
		}},
		{"expired early", "expiry_on_time", func(in *Input) {
			in.Resources[2].Reservations[2].UpdatedAt = t0.Add(9 * time.Second)
		}},
		{"expired late", "expiry_on_time", func(in *Input) {
			in.Resources[2].ReadAt = t0.Add(21 * time.Second) // r5 was due at t0+10s, grace 10s
		}},
		{"unexpected responses", "no_unexpected_responses", func(in *Input) {
			in.Unexpected, in.UnexpectedExamples = 1, []string{"confirm: 500"}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := consistent()
			tt.mutate(&in)
			r := Verify(in)
			if r.Pass {
				t.Fatal("broken state passed")
			}
			f := failed(r)
			c, ok := f[tt.check]
			if !ok {
				t.Fatalf("check %s did not fail; failed: %+v", tt.check, f)
			}
			if len(c.Examples) == 0 {
				t.Errorf("check %s failed without an example", tt.check)
			}
		})
	}
}

func TestAllowedStatus(t *testing.T) {
	tests := []struct {
		now, acked string
		maybe      []string
		want       bool
	}{
		{StatusHeld, StatusHeld, nil, true},
		{StatusExpired, StatusHeld, nil, true},
		{StatusConfirmed, StatusHeld, nil, false},
		{StatusConfirmed, StatusHeld, []string{StatusConfirmed}, true},
		{StatusExpired, StatusConfirmed, nil, false},
		{StatusCancelled, StatusConfirmed, []string{StatusCancelled}, true},
		{StatusCompleted, StatusCheckedIn, nil, false},
	}
	for _, tt := range tests {
		if got := allowedStatus(tt.now, tt.acked, tt.maybe); got != tt.want {
			t.Errorf("allowedStatus(%s, %s, %v) = %v, want %v", tt.now, tt.acked, tt.maybe, got, tt.want)
		}
	}
}
