package linearize

import (
	"os"
	"testing"
	"time"
)

// Legal histories.

func TestConcurrentReservesUpToCapacity(t *testing.T) {
	h := new(hist).
		op(0, 0, 0.3, reserve("a", "ka"), created("r1", "a", 10.1)).
		op(1, 0.1, 0.4, reserve("b", "kb"), created("r2", "b", 10.2)).
		op(2, 0.2, 0.5, reserve("c", "kc"), problem(409, "sold_out")).
		op(3, 0.6, 0.7, readRes(), counts(0, 2, 0))
	r := wantOk(t, h, opts(voucher(2, 1, 10*time.Second)))
	if r.Operations != 4 || r.Unknown != 0 || r.Resources[res].Operations != 4 {
		t.Fatalf("counts: %+v", r)
	}
}

func TestSoldOutBeforeAConcurrentCancelIsLegal(t *testing.T) {
	h := new(hist).
		op(0, 0, 0.1, reserve("a", ""), created("r1", "a", 10)).
		op(0, 1, 1.5, transition(OpCancel, "a", "r1"), ok200("r1", "a", "cancelled")).
		op(1, 0.9, 1.2, reserve("b", ""), problem(409, "sold_out")).
		op(1, 2, 2.1, reserve("b", ""), created("r2", "b", 12))
	wantOk(t, h, opts(voucher(1, 0, 10*time.Second)))
}

func TestUnknownReserveThatHappened(t *testing.T) {
	h := new(hist).
		op(0, 0, 0.1, reserve("a", ""), created("r1", "a", 10)).
		unknown(1, 0.2, reserve("b", "kb")).
		op(2, 1, 1.1, readRes(), counts(0, 2, 0)).
		op(2, 1.2, 1.3, reserve("c", ""), problem(409, "sold_out"))
	r := wantOk(t, h, opts(voucher(2, 0, 10*time.Second)))
	if r.Unknown != 1 {
		t.Fatalf("unknown outcomes: %+v", r)
	}
}

func TestUnknownReserveThatDidNotHappen(t *testing.T) {
	h := new(hist).
		op(0, 0, 0.1, reserve("a", ""), created("r1", "a", 10)).
		unknown(1, 0.2, reserve("b", "kb")).
		op(2, 1, 1.1, readRes(), counts(1, 1, 0)).
		op(2, 1.2, 1.3, reserve("c", ""), created("r3", "c", 11.2)).
		op(2, 1.4, 1.5, listAll(), listed(item("r1", "a", "held"), item("r3", "c", "held")))
	wantOk(t, h, opts(voucher(2, 0, 10*time.Second)))
}

func TestUnknownReserveRevealedByListThenConfirmed(t *testing.T) {
	h := new(hist).
		unknown(0, 0, reserve("a", "")).
		op(1, 1, 1.1, listAll(), listed(item("rX", "a", "held"))).
		op(0, 2, 2.1, transition(OpConfirm, "a", "rX"), ok200("rX", "a", "confirmed")).
		op(1, 3, 3.1, getRes("a", "rX"), ok200("rX", "a", "confirmed")).
		op(1, 3.2, 3.3, readRes(), counts(0, 0, 1))
	wantOk(t, h, opts(voucher(1, 0, 10*time.Second)))
}

func TestRetryWithTheSameKeyAfterUnknown(t *testing.T) {
	h := new(hist).
		unknown(0, 0, reserve("a", "k1")).
		op(0, 1, 1.1, reserve("a", "k1"), replayed("rA", "a", 10.05)).
		op(0, 1.2, 1.3, reserve("a", "k1"), replayed("rA", "a", 10.05)).
		op(1, 2, 2.1, readRes(), counts(0, 1, 0)).
		op(0, 3, 3.1, getRes("a", "rA"), held("rA", "a", 10.05))
	wantOk(t, h, opts(voucher(1, 1, 10*time.Second)))
}

func TestRetryAfterUnknownThatDidNotHappenDecidesAfresh(t *testing.T) {
	h := new(hist).
		unknown(0, 0, reserve("a", "k1")).
		op(0, 1, 1.1, reserve("a", "k1"), created("rA", "a", 11.05)).
		op(1, 2, 2.1, readRes(), counts(0, 1, 0))
	wantOk(t, h, opts(voucher(1, 1, 10*time.Second)))
}

func TestConfirmRacingExpiryWithinBounds(t *testing.T) {
	// expires_at 10.0; skew 0.1: a confirm that began before 10.1 may
	// succeed, one that ended after 9.9 may be told expired
	for _, tc := range []struct {
		name string
		call float64
		ret  float64
		out  Output
	}{
		{"confirmed just before", 9.95, 10.2, ok200("r1", "a", "confirmed")},
		{"confirmed within skew", 10.05, 10.2, ok200("r1", "a", "confirmed")},
		{"expired within skew", 9.8, 9.95, problem(409, "expired")},
		{"expired just after", 10.0, 10.1, problem(409, "expired")},
		{"invalid_state once expired", 10.5, 10.6, problem(409, "invalid_state")},
		{"expired once expired", 11.2, 11.3, problem(409, "expired")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := new(hist).
				op(0, 0, 0.1, reserve("a", ""), created("r1", "a", 10)).
				op(0, tc.call, tc.ret, transition(OpConfirm, "a", "r1"), tc.out)
			wantOk(t, h, opts(voucher(1, 0, 10*time.Second)))
		})
	}
}

func TestReadsWithinTheExpiryWindow(t *testing.T) {
	// expires 10.0, skew 0.1, lateness 1: held until 11.1 at the latest
	h := new(hist).
		op(0, 0, 0.1, reserve("a", ""), created("r1", "a", 10)).
		op(1, 10.5, 10.6, getRes("a", "r1"), held("r1", "a", 10)).
		op(1, 10.7, 10.8, readRes(), counts(0, 1, 0)).
		op(1, 10.9, 11, getRes("a", "r1"), ok200("r1", "a", "expired")).
		op(1, 11.1, 11.2, readRes(), counts(1, 0, 0))
	wantOk(t, h, opts(voucher(1, 0, 10*time.Second)))
}

func TestExpiryGivesStockBack(t *testing.T) {
	h := new(hist).
		op(0, 0, 0.1, reserve("a", ""), created("r1", "a", 10)).
		op(1, 5, 5.1, reserve("b", ""), problem(409, "sold_out")).
		op(1, 12, 12.1, reserve("b", ""), created("r2", "b", 22)).
		op(0, 12.2, 12.3, transition(OpConfirm, "a", "r1"), problem(409, "invalid_state"))
	wantOk(t, h, opts(voucher(1, 0, 10*time.Second)))
}

func TestLifecycleAndRepeatedTransitions(t *testing.T) {
	h := new(hist).
		op(0, 0, 0.1, reserve("a", ""), created("r1", "a", 10)).
		op(0, 1, 1.1, transition(OpConfirm, "a", "r1"), ok200("r1", "a", "confirmed")).
		op(0, 1.2, 1.3, transition(OpConfirm, "a", "r1"), ok200("r1", "a", "confirmed")).
		op(1, 1.4, 1.5, transition(OpConfirm, "b", "r1"), problem(403, "permission_denied")).
		op(1, 1.6, 1.7, Input{Op: OpCheckIn, Resource: res, User: "adm", Admin: true, ID: "r1"}, problem(409, "invalid_state")).
		op(1, 1.8, 1.9, Input{Op: OpComplete, Resource: res, User: "adm", Admin: true, ID: "r1"}, ok200("r1", "a", "completed")).
		op(0, 2, 2.1, transition(OpCancel, "a", "r1"), problem(409, "invalid_state")).
		op(0, 2.2, 2.3, readRes(), counts(1, 0, 1)).
		op(0, 20, 20.1, getRes("a", "r1"), ok200("r1", "a", "completed"))
	wantOk(t, h, opts(voucher(2, 0, 10*time.Second)))
}

func TestUnknownCancelEitherWay(t *testing.T) {
	for _, st := range []string{"cancelled", "held"} {
		t.Run(st, func(t *testing.T) {
			h := new(hist).
				op(0, 0, 0.1, reserve("a", ""), created("r1", "a", 10)).
				unknown(0, 1, transition(OpCancel, "a", "r1")).
				op(1, 2, 2.1, getRes("a", "r1"), ok200("r1", "a", st))
			wantOk(t, h, opts(voucher(1, 0, 10*time.Second)))
		})
	}
}

func TestKeyedTransitionReplaysItsFirstAnswer(t *testing.T) {
	in := transition(OpConfirm, "a", "r1")
	in.Key = "pay-1"
	h := new(hist).
		op(0, 0, 0.1, reserve("a", ""), created("r1", "a", 10)).
		unknown(0, 1, in).
		op(1, 2, 2.1, transition(OpCancel, "a", "r1"), ok200("r1", "a", "cancelled")).
		op(0, 3, 3.1, in, Output{Status: 200, Replayed: true, Reservation: &Reservation{ID: "r1", Status: "confirmed"}})
	wantOk(t, h, opts(voucher(1, 0, 10*time.Second)))
}

func TestPerUserLimit(t *testing.T) {
	h := new(hist).
		op(0, 0, 0.1, reserve("a", ""), created("r1", "a", 10)).
		op(0, 0.2, 0.3, reserve("a", ""), problem(409, "limit_exceeded")).
		op(0, 0.4, 0.5, transition(OpCancel, "a", "r1"), ok200("r1", "a", "cancelled")).
		op(0, 0.6, 0.7, reserve("a", ""), created("r2", "a", 10.65))
	wantOk(t, h, opts(voucher(5, 1, 10*time.Second)))
}

func TestNoHoldConfirmsAtOnce(t *testing.T) {
	h := new(hist).
		op(0, 0, 0.1, reserve("a", ""), Output{Status: 201, Reservation: &Reservation{ID: "r1", User: "a", Quantity: 1, Status: "confirmed"}}).
		op(0, 100, 100.1, readRes(), counts(0, 0, 1))
	wantOk(t, h, opts(voucher(1, 0, 0)))
}

// Illegal histories.

func TestIllegalOversell(t *testing.T) {
	h := new(hist).
		op(0, 0, 0.3, reserve("a", ""), created("r1", "a", 10.1)).
		op(1, 0.1, 0.4, reserve("b", ""), created("r2", "b", 10.2)).
		op(2, 0.2, 0.5, reserve("c", ""), created("r3", "c", 10.3))
	wantIllegal(t, h, opts(voucher(2, 0, 10*time.Second)))
}

func TestIllegalKeyBooksTwice(t *testing.T) {
	t.Run("two ids", func(t *testing.T) {
		h := new(hist).
			op(0, 0, 0.1, reserve("a", "k1"), created("r1", "a", 10)).
			op(0, 1, 1.1, reserve("a", "k1"), replayed("r2", "a", 11))
		wantIllegal(t, h, opts(voucher(5, 0, 10*time.Second)))
	})
	t.Run("unknown first attempt found in the list", func(t *testing.T) {
		// defect 3: the first attempt committed, the retry was decided
		// afresh
		h := new(hist).
			unknown(0, 0, reserve("a", "k1")).
			op(0, 1, 1.1, reserve("a", "k1"), created("r2", "a", 11.05)).
			op(1, 2, 2.1, listAll(), listed(item("r1", "a", "held"), item("r2", "a", "held")))
		wantIllegal(t, h, opts(voucher(5, 0, 10*time.Second)))
	})
}

func TestIllegalConfirmedHoldLaterExpired(t *testing.T) {
	// defect 2: a 200 "confirmed" for a hold that then expires
	h := new(hist).
		op(0, 0, 0.1, reserve("a", ""), created("r1", "a", 10)).
		op(0, 1, 1.1, transition(OpConfirm, "a", "r1"), ok200("r1", "a", "confirmed")).
		op(1, 20, 20.1, getRes("a", "r1"), ok200("r1", "a", "expired"))
	wantIllegal(t, h, opts(voucher(1, 0, 10*time.Second)))
	h = new(hist).
		op(0, 0, 0.1, reserve("a", ""), created("r1", "a", 10)).
		op(0, 1, 1.1, transition(OpConfirm, "a", "r1"), ok200("r1", "a", "confirmed")).
		op(1, 20, 20.1, readRes(), counts(1, 0, 0))
	wantIllegal(t, h, opts(voucher(1, 0, 10*time.Second)))
}

func TestIllegalReadShowsStockNeverReturned(t *testing.T) {
	h := new(hist).
		op(0, 0, 0.1, reserve("a", ""), created("r1", "a", 10)).
		op(1, 0.2, 0.3, reserve("b", ""), created("r2", "b", 10.2)).
		op(2, 1, 1.1, readRes(), counts(1, 1, 0))
	wantIllegal(t, h, opts(voucher(2, 0, 10*time.Second)))
}

func TestIllegalNotFoundForAnAcknowledgedReservation(t *testing.T) {
	h := new(hist).
		op(0, 0, 0.1, reserve("a", ""), created("r1", "a", 10)).
		op(0, 1, 1.1, transition(OpConfirm, "a", "r1"), problem(404, "not_found"))
	wantIllegal(t, h, opts(voucher(1, 0, 10*time.Second)))
}

func TestIllegalSoldOutWhileStockAvailable(t *testing.T) {
	h := new(hist).
		op(0, 0, 0.1, reserve("a", ""), created("r1", "a", 10)).
		op(1, 1, 1.1, reserve("b", ""), problem(409, "sold_out"))
	wantIllegal(t, h, opts(voucher(2, 0, 10*time.Second)))
	// an unknown reserve can explain it
	h.unknown(2, 0.5, reserve("c", "kc"))
	wantOk(t, h, opts(voucher(2, 0, 10*time.Second)))
}

func TestIllegalStaleReadAfterAcknowledgedWrite(t *testing.T) {
	h := new(hist).
		op(0, 0, 0.1, reserve("a", ""), created("r1", "a", 10)).
		op(1, 0.2, 0.3, readRes(), counts(1, 0, 0))
	wantIllegal(t, h, opts(voucher(1, 0, 10*time.Second)))
	h = new(hist).
		op(0, 0, 0.1, reserve("a", ""), created("r1", "a", 10)).
		op(0, 1, 1.1, transition(OpConfirm, "a", "r1"), ok200("r1", "a", "confirmed")).
		op(1, 1.2, 1.3, getRes("a", "r1"), held("r1", "a", 10))
	wantIllegal(t, h, opts(voucher(1, 0, 10*time.Second)))
}

func TestIllegalExpiryOutOfBounds(t *testing.T) {
	for _, tc := range []struct {
		name string
		h    *hist
	}{
		{"confirmed after expires_at+skew", new(hist).
			op(0, 0, 0.1, reserve("a", ""), created("r1", "a", 10)).
			op(0, 10.2, 10.3, transition(OpConfirm, "a", "r1"), ok200("r1", "a", "confirmed"))},
		{"expired answer before expires_at-skew", new(hist).
			op(0, 0, 0.1, reserve("a", ""), created("r1", "a", 10)).
			op(0, 9.5, 9.8, transition(OpConfirm, "a", "r1"), problem(409, "expired"))},
		{"expired early", new(hist).
			op(0, 0, 0.1, reserve("a", ""), created("r1", "a", 10)).
			op(0, 9, 9.1, getRes("a", "r1"), ok200("r1", "a", "expired"))},
		{"stuck hold", new(hist).
			op(0, 0, 0.1, reserve("a", ""), created("r1", "a", 10)).
			op(0, 11.2, 11.3, getRes("a", "r1"), held("r1", "a", 10))},
		{"confirmed after a late confirm", new(hist).
			op(0, 0, 0.1, reserve("a", ""), created("r1", "a", 10)).
			op(0, 10.0, 10.01, transition(OpConfirm, "a", "r1"), problem(409, "expired")).
			op(0, 10.02, 10.03, transition(OpConfirm, "a", "r1"), ok200("r1", "a", "confirmed"))},
		{"expires_at not hold after the decision", new(hist).
			op(0, 0, 0.1, reserve("a", ""), created("r1", "a", 5))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantIllegal(t, tc.h, opts(voucher(1, 0, 10*time.Second)))
		})
	}
}

func TestIllegalStuckHoldOfAnUnknownReserve(t *testing.T) {
	// defect 4: the reserve had an unknown outcome, committed, and its
	// hold never expired
	h := new(hist).
		unknown(0, 0, reserve("a", "k1")).
		op(1, 1, 1.1, readRes(), counts(0, 1, 0)).
		op(1, 30, 30.1, readRes(), counts(0, 1, 0))
	wantIllegal(t, h, opts(voucher(1, 0, 10*time.Second)))
}

func TestIllegalReplayWithoutRecord(t *testing.T) {
	h := new(hist).
		op(0, 0, 0.1, reserve("a", "k1"), problem(422, "idempotency_key_reused"))
	wantIllegal(t, h, opts(voucher(1, 0, 10*time.Second)))
	h = new(hist).
		op(0, 0, 0.1, reserve("a", "k1"), replayed("r1", "a", 10))
	wantIllegal(t, h, opts(voucher(1, 0, 10*time.Second)))
}

func TestIllegalListMissesAnAcknowledgedReservation(t *testing.T) {
	h := new(hist).
		op(0, 0, 0.1, reserve("a", ""), created("r1", "a", 10)).
		op(1, 0.2, 0.3, reserve("b", ""), created("r2", "b", 10.2)).
		op(1, 1, 1.1, listAll(), listed(item("r2", "b", "held")))
	wantIllegal(t, h, opts(voucher(2, 0, 10*time.Second)))
}

func TestVisualizationWrittenOnFailure(t *testing.T) {
	h := new(hist).
		op(0, 0, 0.1, reserve("a", ""), created("r1", "a", 10)).
		op(1, 0.2, 0.3, readRes(), counts(1, 0, 0))
	o := opts(voucher(1, 0, 10*time.Second))
	o.VisualizationPath = t.TempDir() + "/viz.html"
	r := check(t, h, o)
	if r.Ok() || r.Visualization != o.VisualizationPath {
		t.Fatalf("result %s", r)
	}
	if fi, err := os.Stat(o.VisualizationPath); err != nil || fi.Size() == 0 {
		t.Fatalf("visualization: %v", err)
	}
}

func TestCheckRefusesBadHistories(t *testing.T) {
	h := new(hist).op(0, 0, 0.1, Input{Op: OpReadResource, Resource: "nope"}, counts(0, 0, 0))
	if _, err := Check(h.history(), opts(voucher(1, 0, 0))); err == nil {
		t.Fatal("resource without spec accepted")
	}
	specs := voucher(1, 0, 0)
	specs["other"] = Spec{Kind: "voucher", Capacity: 1}
	other := reserve("a", "k")
	other.Resource = "other"
	h = new(hist).
		op(0, 0, 0.1, reserve("a", "k"), problem(409, "sold_out")).
		op(0, 1, 1.1, other, problem(409, "sold_out"))
	if _, err := Check(h.history(), opts(specs)); err == nil {
		t.Fatal("key on two resources accepted")
	}
}

func TestRoomNights(t *testing.T) {
	specs := map[string]Spec{res: {Kind: "room", Hold: 10 * time.Second,
		Inventory: map[string]int64{"2026-12-01": 1, "2026-12-02": 2}}}
	stay := func(user, in, out string) Input {
		i := reserve(user, "")
		i.CheckIn, i.CheckOut = in, out
		return i
	}
	nights := func(a1, a2 int64) Output {
		return Output{Status: 200, Counts: &Counts{Nights: map[string]NightCount{
			"2026-12-01": {Rooms: 1, Available: a1}, "2026-12-02": {Rooms: 2, Available: a2}}}}
	}
	h := new(hist).
		op(0, 0, 0.1, stay("a", "2026-12-01", "2026-12-03"), created("r1", "a", 10)).
		op(1, 0.2, 0.3, stay("b", "2026-12-01", "2026-12-02"), problem(409, "sold_out")).
		op(1, 0.4, 0.5, stay("b", "2026-12-02", "2026-12-03"), created("r2", "b", 10.45)).
		op(2, 1, 1.1, readRes(), nights(0, 0))
	wantOk(t, h, opts(specs))
	h.op(2, 1.2, 1.3, stay("c", "2026-12-02", "2026-12-03"), created("r3", "c", 11.25))
	wantIllegal(t, h, opts(specs))
	h = new(hist).
		op(0, 0, 0.1, stay("a", "2026-12-01", "2026-12-03"), created("r1", "a", 10)).
		op(2, 1, 1.1, readRes(), nights(1, 1))
	wantIllegal(t, h, opts(specs))
}
