package domain_test

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"allot/actors/domain"
)

func putLimit(id string, perUser, capacity int64) domain.Event {
	return domain.Event{Type: domain.EvPutLimit, At: t0, Limit: &domain.LimitOp{ID: id, Spec: domain.LimitSpec{PerUser: perUser, Capacity: capacity}}}
}

func slot(limits ...string) domain.Spec {
	return domain.Spec{Kind: domain.KindSlot, Capacity: 10, PerUserLimit: 0, HoldSeconds: 600, Limits: limits}
}

// limitedReserve decides a reservation as the leader does with limits — the
// resource's rules, then every limit's share — and checks that Apply
// agrees: it applies what the leader accepts and refuses, changing nothing,
// what the leader refuses.
func limitedReserve(t *testing.T, st *domain.State, resource, user, rid string, q int64) error {
	t.Helper()
	r, _ := st.Resource(resource)
	res, err := r.Clone().DecideReserve(domain.ReserveRequest{User: user, Quantity: q}, rid, at(time.Minute))
	if err == nil {
		err = st.CheckShares(r, &res)
	}
	ev := domain.Event{Type: domain.EvReserve, At: at(time.Minute), ResourceID: resource, Reservation: res}
	if err != nil {
		mustRefuse(t, st, ev, sentinel(err))
		return err
	}
	mustApply(t, st, ev)
	return nil
}

func limitOf(t *testing.T, st *domain.State, id string) *domain.Limit {
	t.Helper()
	l, ok := st.Limit(id)
	if !ok {
		t.Fatalf("no limit %s", id)
	}
	return l
}

// The hospital day: one booking per patient across the day's slots; the
// refusal names the limit; cancel and expiry give the share back.
func TestLimitPerUserAcrossResources(t *testing.T) {
	st := domain.NewState()
	mustApply(t, st, putLimit("day", 1, 0))
	for _, id := range []string{"dr-a-0800", "dr-a-0830", "dr-b-0800"} {
		mustApply(t, st, domain.Event{Type: domain.EvPutResource, At: t0, ResourceID: id, Spec: slot("day")})
	}
	if got := limitOf(t, st, "day").Members(); len(got) != 3 || got[0] != "dr-a-0800" {
		t.Fatalf("members %v", got)
	}
	if err := limitedReserve(t, st, "dr-a-0800", "ann", "r1", 1); err != nil {
		t.Fatal(err)
	}
	err := limitedReserve(t, st, "dr-b-0800", "ann", "r2", 1)
	if id, rule, ok := domain.LimitRefusal(err); !errors.Is(err, domain.ErrLimitExceeded) || !ok || id != "day" || rule != domain.LimitRulePerUser {
		t.Fatalf("second booking of the day: %v (limit %q, rule %q)", err, id, rule)
	}
	if err := limitedReserve(t, st, "dr-b-0800", "bob", "r3", 1); err != nil {
		t.Fatalf("another patient: %v", err)
	}
	mustTransition(t, st, "r1", domain.StatusCancelled, at(2*time.Minute))
	if l := limitOf(t, st, "day"); l.Taken != 1 || l.UserTaken["ann"] != 0 {
		t.Fatalf("after cancel: taken %d, ann %d", l.Taken, l.UserTaken["ann"])
	}
	if err := limitedReserve(t, st, "dr-a-0830", "ann", "r4", 1); err != nil {
		t.Fatalf("after her cancel: %v", err)
	}
	mustTransition(t, st, "r4", domain.StatusExpired, at(time.Minute+600*time.Second))
	if l := limitOf(t, st, "day"); l.UserTaken["ann"] != 0 {
		t.Fatalf("after expiry: ann %d", l.UserTaken["ann"])
	}
}

// A shared quota: three vouchers, 5 units in all, whoever takes them.
func TestLimitSharedCapacity(t *testing.T) {
	st := domain.NewState()
	mustApply(t, st, putLimit("campaign", 0, 5))
	for _, id := range []string{"v1", "v2", "v3"} {
		mustApply(t, st, domain.Event{Type: domain.EvPutResource, At: t0, ResourceID: id,
			Spec: domain.Spec{Kind: domain.KindVoucher, Capacity: 4, Limits: []string{"campaign"}}})
	}
	for i, id := range []string{"v1", "v1", "v2", "v3"} {
		if err := limitedReserve(t, st, id, "u"+string(rune('a'+i)), "r"+string(rune('a'+i)), 1); err != nil {
			t.Fatal(err)
		}
	}
	if err := limitedReserve(t, st, "v3", "ux", "rx", 2); !errors.Is(err, domain.ErrLimitExceeded) {
		t.Fatalf("2 more of 1 left: %v", err)
	}
	if err := limitedReserve(t, st, "v3", "ux", "rx", 1); err != nil {
		t.Fatal(err)
	}
	err := limitedReserve(t, st, "v2", "uy", "ry", 1)
	if id, rule, ok := domain.LimitRefusal(err); !errors.Is(err, domain.ErrLimitExceeded) || !ok || id != "campaign" || rule != domain.LimitRuleCapacity {
		t.Fatalf("over the quota: %v (limit %q, rule %q)", err, id, rule)
	}
	// Stock still refuses first on its own: the resource's rules run before the limits.
	wantCounts(t, st, "v1", 2, 0, 2)
	if l := limitOf(t, st, "campaign"); l.Taken != 5 {
		t.Fatalf("taken %d", l.Taken)
	}
}

// A reservation that takes stock but not every limit share is refused whole:
// the first limit's share is not taken either.
func TestLimitAllOrNothing(t *testing.T) {
	st := domain.NewState()
	mustApply(t, st, putLimit("a", 5, 0))
	mustApply(t, st, putLimit("b", 0, 1))
	mustApply(t, st, domain.Event{Type: domain.EvPutResource, At: t0, ResourceID: "s", Spec: slot("a", "b")})
	if err := limitedReserve(t, st, "s", "ann", "r1", 1); err != nil {
		t.Fatal(err)
	}
	err := limitedReserve(t, st, "s", "bob", "r2", 1)
	if id, _ := domain.LimitExceededID(err); id != "b" {
		t.Fatalf("refused by %q (%v), want b", id, err)
	}
	if l := limitOf(t, st, "a"); l.Taken != 1 || l.UserTaken["bob"] != 0 {
		t.Fatalf("limit a after the refusal: taken %d, bob %d", l.Taken, l.UserTaken["bob"])
	}
	wantCounts(t, st, "s", 9, 1, 0)
	// The resource's own per-user limit is reported as limit "".
	mustApply(t, st, domain.Event{Type: domain.EvPutResource, At: t0, ResourceID: "own",
		Spec: domain.Spec{Kind: domain.KindVoucher, Capacity: 9, PerUserLimit: 1}})
	if err := limitedReserve(t, st, "own", "ann", "r3", 1); err != nil {
		t.Fatal(err)
	}
	err = limitedReserve(t, st, "own", "ann", "r4", 1)
	if id, rule, ok := domain.LimitRefusal(err); !ok || id != "" || rule != domain.LimitRulePerUser {
		t.Fatalf("own limit: %q %q %v %v", id, rule, ok, err)
	}
	if _, _, ok := domain.LimitRefusal(domain.ErrSoldOut); ok {
		t.Fatal("sold_out read as a limit refusal")
	}
}

// The rules of limits and of the resources that name them.
func TestLimitRules(t *testing.T) {
	st := domain.NewState()
	mustApply(t, st, putLimit("day", 1, 2))
	for _, c := range []struct {
		name string
		ev   domain.Event
		want error
	}{
		{"negative per_user", putLimit("x", -1, 0), domain.ErrInvalidArgument},
		{"negative capacity", putLimit("x", 0, -1), domain.ErrInvalidArgument},
		{"bad id", putLimit("a b", 1, 0), domain.ErrInvalidArgument},
		{"no op", domain.Event{Type: domain.EvPutLimit, At: t0}, domain.ErrInvalidArgument},
		{"NUL attribute key", domain.Event{Type: domain.EvPutLimit, At: t0, Limit: &domain.LimitOp{ID: "x",
			Spec: domain.LimitSpec{Attributes: map[string]string{"\x00limits": "a"}}}}, domain.ErrInvalidArgument},
		{"unknown limit named", domain.Event{Type: domain.EvPutResource, At: t0, ResourceID: "s", Spec: slot("nope")}, domain.ErrInvalidArgument},
		{"unsorted limits", domain.Event{Type: domain.EvPutResource, At: t0, ResourceID: "s", Spec: slot("day", "abc")}, domain.ErrInvalidArgument},
		{"duplicate limits", domain.Event{Type: domain.EvPutResource, At: t0, ResourceID: "s", Spec: slot("day", "day")}, domain.ErrInvalidArgument},
		{"too many limits", domain.Event{Type: domain.EvPutResource, At: t0, ResourceID: "s", Spec: slot("a", "b", "c", "d", "e", "f", "g", "h", "i")}, domain.ErrInvalidArgument},
		{"delete unknown", domain.Event{Type: domain.EvDeleteLimit, At: t0, Limit: &domain.LimitOp{ID: "nope"}}, domain.ErrNotFound},
	} {
		t.Run(c.name, func(t *testing.T) { mustRefuse(t, st, c.ev, c.want) })
	}

	mustApply(t, st, domain.Event{Type: domain.EvPutResource, At: t0, ResourceID: "s", Spec: slot("day")})
	delDay := domain.Event{Type: domain.EvDeleteLimit, At: t0, Limit: &domain.LimitOp{ID: "day"}}
	mustRefuse(t, st, delDay, domain.ErrInvalidState) // a resource names it
	if err := limitedReserve(t, st, "s", "ann", "r1", 1); err != nil {
		t.Fatal(err)
	}
	if err := limitedReserve(t, st, "s", "bob", "r2", 1); err != nil {
		t.Fatal(err)
	}
	mustRefuse(t, st, domain.Event{Type: domain.EvPutResource, At: t0, ResourceID: "s", Spec: slot()}, domain.ErrInvalidState) // taken units: limits stay
	mustRefuse(t, st, putLimit("day", 1, 1), domain.ErrInvalidState)                                                           // capacity below taken
	mustApply(t, st, putLimit("day", 1, 3))                                                                                    // raising is fine
	mustApply(t, st, domain.Event{Type: domain.EvPutResource, At: t0, ResourceID: "s", Spec: func() domain.Spec { s := slot("day"); s.Capacity = 20; return s }()})

	mustTransition(t, st, "r1", domain.StatusCancelled, at(time.Minute))
	mustTransition(t, st, "r2", domain.StatusCancelled, at(time.Minute))
	mustApply(t, st, domain.Event{Type: domain.EvPutResource, At: t0, ResourceID: "s", Spec: slot()}) // nothing taken: may leave
	if m := limitOf(t, st, "day").Members(); len(m) != 0 {
		t.Fatalf("members after leaving %v", m)
	}
	mustApply(t, st, delDay)
}

// Retention gives a completed reservation's share back when it prunes it;
// the resource keeps its units.
func TestLimitShareGoesWithRetention(t *testing.T) {
	st := domain.NewState()
	mustApply(t, st, putLimit("day", 1, 0))
	mustApply(t, st, domain.Event{Type: domain.EvPutResource, At: t0, ResourceID: "s", Spec: slot("day")})
	if err := limitedReserve(t, st, "s", "ann", "r1", 1); err != nil {
		t.Fatal(err)
	}
	mustTransition(t, st, "r1", domain.StatusConfirmed, at(2*time.Minute))
	mustTransition(t, st, "r1", domain.StatusCompleted, at(3*time.Minute))
	if l := limitOf(t, st, "day"); l.UserTaken["ann"] != 1 {
		t.Fatalf("a completed booking still counts: %d", l.UserTaken["ann"])
	}
	mustApply(t, st, domain.Event{Type: domain.EvPrune, At: at(time.Hour), PruneBefore: at(time.Hour), PruneMax: 10})
	if l := limitOf(t, st, "day"); l.Taken != 0 || l.UserTaken["ann"] != 0 {
		t.Fatalf("after the prune: taken %d", l.Taken)
	}
	wantCounts(t, st, "s", 9, 0, 1)
}

// Limit events round-trip the codec (as log format 4 only), and a state
// with limits round-trips a clone and its hash.
func TestLimitCodecAndClone(t *testing.T) {
	evs := []domain.Event{
		{Type: domain.EvPutLimit, At: t0, Limit: &domain.LimitOp{ID: "day", Spec: domain.LimitSpec{PerUser: 1, Capacity: 7, Attributes: map[string]string{"k": "v"}}}},
		{Type: domain.EvPutResource, At: t0, ResourceID: "s", Spec: slot("day")},
		{Type: domain.EvDeleteLimit, At: t0, Limit: &domain.LimitOp{ID: "gone"}},
	}
	data := domain.EncodeBatch(nil, &domain.Batch{Term: 3, Events: evs})
	if data[0] != domain.BatchV4 {
		t.Fatalf("written as version %d", data[0])
	}
	b, err := domain.DecodeBatch(data)
	if err != nil {
		t.Fatal(err)
	}
	if b.Events[0].Limit.Spec.Capacity != 7 || b.Events[0].Limit.Spec.Attributes["k"] != "v" ||
		len(b.Events[1].Spec.Limits) != 1 || b.Events[1].Spec.Limits[0] != "day" || b.Events[1].Spec.Attributes != nil || b.Events[2].Limit.ID != "gone" {
		t.Fatalf("decoded %+v %+v %+v", b.Events[0].Limit, b.Events[1].Spec, b.Events[2].Limit)
	}
	// Unstamped (format 1), a resource naming limits is refused on decode:
	// an old node must stop, not take the limits for an attribute.
	old := domain.EncodeBatch(nil, &domain.Batch{Events: evs[1:2]})
	if _, err := domain.DecodeBatch(old); !errors.Is(err, domain.ErrCorrupt) {
		t.Fatalf("resource limits in a version %d batch: %v", old[0], err)
	}

	st := domain.NewState()
	for i := range b.Events[:2] {
		mustApply(t, st, b.Events[i])
	}
	if err := limitedReserve(t, st, "s", "ann", "r1", 1); err != nil {
		t.Fatal(err)
	}
	c := st.Clone()
	if c.Hash() != st.Hash() {
		t.Fatal("clone hashes differently")
	}
	mustTransition(t, st, "r1", domain.StatusCancelled, at(2*time.Minute))
	if c.Hash() == st.Hash() || limitOf(t, c, "day").Taken != 1 {
		t.Fatal("a clone moved with its original")
	}
	rec := domain.AppendLimit(nil, limitOf(t, st, "day"))
	l, err := domain.DecodeLimit(rec)
	if err != nil || l.ID != "day" || l.Spec.PerUser != 1 || !bytes.Equal(domain.AppendLimit(nil, l), rec) {
		t.Fatalf("limit record: %+v %v", l, err)
	}
}
