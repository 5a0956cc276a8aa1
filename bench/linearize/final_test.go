package linearize

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func finalFixture() (FinalState, []Ack) {
	fs := FinalState{
		ReadAt:      at(100),
		ExpiryGrace: 5 * time.Second,
		Resources: []FinalResource{{
			ID:   "v1",
			Spec: Spec{Kind: "voucher", Capacity: 2, PerUserLimit: 1, Hold: 10 * time.Second},
			Reservations: []Reservation{
				{ID: "r1", User: "a", Quantity: 1, Status: "confirmed"},
				{ID: "r2", User: "b", Quantity: 1, Status: "held", ExpiresAt: at(99)},
				{ID: "r3", User: "a", Quantity: 1, Status: "cancelled"},
			},
			Counts: &Counts{Available: 0, Held: 1, Confirmed: 1},
		}, {
			ID:   "h1",
			Spec: Spec{Kind: "room", Inventory: map[string]int64{"2026-12-01": 2, "2026-12-02": 1}},
			Reservations: []Reservation{
				{ID: "h-1", User: "a", Quantity: 1, Status: "confirmed", CheckIn: "2026-12-01", CheckOut: "2026-12-03"},
				{ID: "h-2", User: "b", Quantity: 1, Status: "held", CheckIn: "2026-12-01", CheckOut: "2026-12-02"},
			},
			Counts: &Counts{Nights: map[string]NightCount{"2026-12-01": {Rooms: 2, Available: 0}, "2026-12-02": {Rooms: 1, Available: 0}}},
		}},
	}
	acks := []Ack{
		{ID: "r1", Resource: "v1", User: "a", Key: "k1", Quantity: 1},
		{ID: "r1", Resource: "v1", User: "a", Key: "k1", Quantity: 1}, // a replay
		{ID: "r2", Resource: "v1", User: "b", Quantity: 1},
		{ID: "h-1", Resource: "h1", User: "a", Key: "k1", Quantity: 1}, // same key, other resource
	}
	return fs, acks
}

func TestCheckFinalAcceptsAConsistentState(t *testing.T) {
	fs, acks := finalFixture()
	if err := CheckFinal(fs, acks); err != nil {
		t.Fatal(err)
	}
}

func TestCheckFinalFindsEachViolation(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(fs *FinalState, acks *[]Ack)
		want   error
	}{
		{"oversold", func(fs *FinalState, _ *[]Ack) {
			fs.Resources[0].Reservations[2].Status = "held"
			fs.Resources[0].Reservations[2].User = "c"
			fs.Resources[0].Counts = nil
		}, ErrOversold},
		{"room night oversold", func(fs *FinalState, _ *[]Ack) {
			fs.Resources[1].Reservations[1].CheckOut = "2026-12-03"
			fs.Resources[1].Counts = nil
		}, ErrOversold},
		{"ack lost", func(_ *FinalState, acks *[]Ack) {
			*acks = append(*acks, Ack{ID: "r9", Resource: "v1", User: "c", Quantity: 1})
		}, ErrAckLost},
		{"ack on another resource", func(_ *FinalState, acks *[]Ack) {
			*acks = append(*acks, Ack{ID: "h-2", Resource: "v1", User: "b", Quantity: 1})
		}, ErrAckLost},
		{"key twice", func(_ *FinalState, acks *[]Ack) {
			*acks = append(*acks, Ack{ID: "r3", Resource: "v1", User: "a", Key: "k1", Quantity: 1})
		}, ErrKeyTwice},
		{"user limit", func(fs *FinalState, _ *[]Ack) {
			fs.Resources[0].Reservations[1].User = "a"
		}, ErrUserLimit},
		{"duplicate id", func(fs *FinalState, _ *[]Ack) {
			fs.Resources[0].Reservations[2].ID = "r1"
		}, ErrDuplicateID},
		{"counts", func(fs *FinalState, _ *[]Ack) {
			fs.Resources[0].Counts = &Counts{Available: 1, Held: 0, Confirmed: 1}
		}, ErrCounts},
		{"room counts", func(fs *FinalState, _ *[]Ack) {
			fs.Resources[1].Counts.Nights["2026-12-02"] = NightCount{Rooms: 1, Available: 1}
		}, ErrCounts},
		{"stuck hold", func(fs *FinalState, _ *[]Ack) {
			fs.Resources[0].Reservations[1].ExpiresAt = at(90)
		}, ErrStuckHold},
		{"bad status", func(fs *FinalState, _ *[]Ack) {
			fs.Resources[0].Reservations[2].Status = "lost"
		}, ErrUnknownState},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs, acks := finalFixture()
			tc.change(&fs, &acks)
			err := CheckFinal(fs, acks)
			if !errors.Is(err, tc.want) {
				t.Fatalf("want %v, got %v", tc.want, err)
			}
			if strings.Count(err.Error(), "\n") > 1 {
				t.Logf("more than one violation: %v", err)
			}
		})
	}
}

func TestAcksFromAHistory(t *testing.T) {
	h := new(hist).
		op(0, 0, 0.1, reserve("a", "k1"), created("r1", "a", 10)).
		op(0, 1, 1.1, reserve("a", "k1"), replayed("r1", "a", 10)).
		op(1, 1, 1.1, reserve("b", ""), problem(409, "sold_out")).
		unknown(2, 1, reserve("c", "k3"))
	acks := Acks(h.history())
	if len(acks) != 2 || acks[0] != (Ack{ID: "r1", Resource: res, User: "a", Key: "k1", Quantity: 1}) || acks[1] != acks[0] {
		t.Fatalf("acks %+v", acks)
	}
}
