package verify

import (
	"strings"
	"testing"
)

// limited returns a consistent state with two limit groups: a hospital day
// (two slots, per_user 1) where u1 cancelled a booking and rebooked on the
// other slot, and a campaign quota (capacity 2, per_user 1) over two
// vouchers, one of whose reservations is a hold.
func limited() Input {
	slot := func(id string, xs ...Reservation) Resource {
		var held, conf int64
		for _, x := range xs {
			switch {
			case x.Status == StatusHeld:
				held += x.Quantity
			case taken(x.Status):
				conf += x.Quantity
			}
		}
		return Resource{ID: id, Kind: KindSlot, Capacity: 3, PerUserLimit: 1, Available: 3 - held - conf,
			Held: held, Confirmed: conf, Limits: []string{"day"}, Reservations: xs}
	}
	in := Input{
		Resources: []Resource{
			slot("s1",
				Reservation{ID: "a1", ResourceID: "s1", User: "u1", Status: StatusCancelled, Quantity: 1},
				Reservation{ID: "a2", ResourceID: "s1", User: "u2", Status: StatusConfirmed, Quantity: 1}),
			slot("s2",
				Reservation{ID: "a3", ResourceID: "s2", User: "u1", Status: StatusConfirmed, Quantity: 1}),
			{ID: "c1", Kind: KindVoucher, Capacity: 5, PerUserLimit: 1, Available: 4, Confirmed: 1, Limits: []string{"camp"},
				Reservations: []Reservation{{ID: "b1", ResourceID: "c1", User: "u3", Status: StatusCompleted, Quantity: 1}}},
			{ID: "c2", Kind: KindVoucher, Capacity: 5, PerUserLimit: 1, Available: 4, Held: 1, Limits: []string{"camp"},
				Reservations: []Reservation{{ID: "b2", ResourceID: "c2", User: "u4", Status: StatusHeld, Quantity: 1}}},
		},
		Acks: []Ack{
			{ID: "a1", ResourceID: "s1", User: "u1", Key: "a", Quantity: 1, Status: StatusCancelled},
			{ID: "a2", ResourceID: "s1", User: "u2", Key: "a", Quantity: 1, Status: StatusConfirmed},
			{ID: "a3", ResourceID: "s2", User: "u1", Key: "b", Quantity: 1, Status: StatusConfirmed},
			{ID: "b1", ResourceID: "c1", User: "u3", Key: "a", Quantity: 1, Status: StatusCompleted},
			{ID: "b2", ResourceID: "c2", User: "u4", Key: "a", Quantity: 1, Status: StatusHeld},
		},
		Limits: []Limit{
			{ID: "day", PerUser: 1, Taken: 2, Resources: []string{"s2", "s1"}},
			{ID: "camp", PerUser: 1, Capacity: 2, Taken: 2, Resources: []string{"c1", "c2"}},
		},
		Responses: 10,
	}
	return in
}

func checkNamed(t *testing.T, r Result, name string) Check {
	t.Helper()
	for _, c := range r.Checks {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no check %s in %+v", name, r.Checks)
	return Check{}
}

func TestLimitChecksPass(t *testing.T) {
	r := Verify(limited())
	if !r.Pass {
		t.Fatalf("consistent limited state failed: %+v", failed(r))
	}
	want := map[string]int64{
		CheckLimitTaken:    2, // both limits
		CheckLimitCapacity: 1, // only camp has a capacity
		CheckLimitPerUser:  4, // u1, u2 on day; u3, u4 on camp
		CheckLimitAcks:     4,
	}
	for name, n := range want {
		if c := checkNamed(t, r, name); c.Checked != n || c.Skipped != "" {
			t.Errorf("%s: checked %d (skipped %q), want %d", name, c.Checked, c.Skipped, n)
		}
	}
}

func TestLimitChecksFail(t *testing.T) {
	cases := []struct {
		name   string
		breaks func(in *Input)
		check  string
		detail string
	}{
		{"taken below the members' sum", func(in *Input) { in.Limits[0].Taken = 1 }, CheckLimitTaken, "take 2"},
		{"taken above the members' sum", func(in *Input) { in.Limits[1].Taken = 3; in.Limits[1].Capacity = 3 }, CheckLimitTaken, "take 2"},
		{"a member the limit does not list", func(in *Input) { in.Limits[0].Resources = []string{"s1"} }, CheckLimitTaken, "name it"},
		{"quota exceeded", func(in *Input) { in.Limits[1].Capacity = 1 }, CheckLimitCapacity, "capacity 1"},
		{"two bookings of one day in the final state", func(in *Input) {
			in.Resources[0].Reservations[0].Status = StatusConfirmed
			in.Resources[0].Confirmed, in.Resources[0].Available = 2, 1
			in.Limits[0].Taken = 3
		}, CheckLimitPerUser, "user u1 holds 2"},
		{"two confirmed bookings acknowledged", func(in *Input) { in.Acks[0].Status = StatusConfirmed }, CheckLimitAcks, "user u1 was acknowledged 2"},
		{"checked in beside a confirmed one", func(in *Input) { in.Acks[0].Status = StatusCheckedIn }, CheckLimitAcks, "user u1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := limited()
			tc.breaks(&in)
			r := Verify(in)
			if r.Pass {
				t.Fatal("passed")
			}
			c, ok := failed(r)[tc.check]
			if !ok {
				t.Fatalf("%s did not fail; failed: %+v", tc.check, failed(r))
			}
			if len(c.Examples) == 0 || !strings.Contains(c.Examples[0], tc.detail) {
				t.Errorf("%s: examples %q, want one with %q", tc.check, c.Examples, tc.detail)
			}
		})
	}
}

// TestLimitAcksExplained: acknowledgements a cancel or expiry may explain
// (a hold, a cancel whose answer was lost) do not count against per_user.
func TestLimitAcksExplained(t *testing.T) {
	for _, tc := range []struct {
		name string
		ack  Ack
	}{
		{"earlier hold", Ack{Status: StatusHeld}},
		{"cancel of unknown outcome", Ack{Status: StatusConfirmed, Maybe: []string{StatusCancelled}}},
		{"cancelled", Ack{Status: StatusCancelled}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := limited()
			a := &in.Acks[0]
			a.Status, a.Maybe = tc.ack.Status, tc.ack.Maybe
			if c := checkNamed(t, Verify(in), CheckLimitAcks); c.Failures != 0 {
				t.Errorf("failed: %v", c.Examples)
			}
		})
	}
}

func TestLimitChecksSkipped(t *testing.T) {
	in := limited()
	in.Limits, in.LimitsSkipped = nil, "the target answers 404 on /v1/limits"
	in.Resources[0].Reservations[0].Status = StatusConfirmed // would fail limit_per_user if checked
	in.Resources[0].Confirmed, in.Resources[0].Available = 2, 1
	in.Acks[0].Status = StatusConfirmed
	r := Verify(in)
	if !r.Pass {
		t.Fatalf("skipped checks failed the run: %+v", failed(r))
	}
	for _, name := range []string{CheckLimitTaken, CheckLimitCapacity, CheckLimitPerUser, CheckLimitAcks} {
		if c := checkNamed(t, r, name); c.Skipped == "" || c.Checked != 0 || c.Failures != 0 {
			t.Errorf("%s: %+v, want skipped with nothing checked", name, c)
		}
	}
}

func TestNoLimitsNoLimitChecks(t *testing.T) {
	for _, c := range Verify(consistent()).Checks {
		if strings.HasPrefix(c.Name, "limit_") {
			t.Errorf("a run without limits reports %s", c.Name)
		}
	}
}
