package domain_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"allot/actors/domain"
	"allot/actors/domain/domaintest"
)

// streamResult is what checkStream saw.
type streamResult struct {
	st       *domain.State
	accepted []domain.Event
	refused  int
}

// checkStream drives a fresh State with up to steps events of g (fewer when
// g runs out). After every step the invariants must hold; an accepted event
// must apply; a refused one, applied anyway, must be refused by Apply for the
// same reason and change nothing. An accepted event applied a second time
// (a replayed entry) must change nothing either. Halfway through, a Clone
// is taken: it must stay as it was while the original moves on, and end equal
// to it once given the same events.
func checkStream(t testing.TB, g *domaintest.Gen, steps int) streamResult {
	st := domain.NewState()
	var out streamResult
	var clone *domain.State
	var cloneHash [32]byte
	cloneAt := 0
	cur := st.Hash() // the hash after the last step
	for i := 0; i < steps && !g.Done(); i++ {
		if i == steps/2 {
			clone, cloneHash, cloneAt = st.Clone(), cur, len(out.accepted)
			if clone.Hash() != cloneHash {
				t.Fatalf("step %d: a clone hashes differently", i)
			}
		}
		ev, decideErr := g.Next(st)
		err := st.Apply(&ev)
		switch {
		case decideErr != nil && err == nil:
			t.Fatalf("step %d: the leader refuses %+v (%v) but Apply accepted it", i, ev, decideErr)
		case decideErr != nil:
			if sentinel(err) != sentinel(decideErr) {
				t.Fatalf("step %d: %+v\nleader: %v\napply:  %v", i, ev, decideErr, err)
			}
			if st.Hash() != cur {
				t.Fatalf("step %d: refused %+v (%v) but the state changed", i, ev, err)
			}
			out.refused++
		case err != nil:
			t.Fatalf("step %d: the leader accepts %+v but Apply says %v", i, ev, err)
		default:
			out.accepted = append(out.accepted, ev)
			cur = st.Hash()
			again := ev
			err := st.Apply(&again)
			if (err == nil) != (ev.Type == domain.EvPutResource || ev.Type == domain.EvPrune || ev.Type == domain.EvPutLimit) {
				t.Fatalf("step %d: %+v applied twice: %v", i, ev, err)
			}
			if st.Hash() != cur {
				t.Fatalf("step %d: %+v applied twice changed the state (%v)", i, ev, err)
			}
		}
		if err := st.CheckInvariants(); err != nil {
			t.Fatalf("step %d, after %+v: %v", i, ev, err)
		}
	}
	if clone != nil {
		if clone.Hash() != cloneHash {
			t.Fatal("a clone changed with its original")
		}
		for i := cloneAt; i < len(out.accepted); i++ {
			if err := clone.Apply(&out.accepted[i]); err != nil {
				t.Fatalf("clone: %+v: %v", out.accepted[i], err)
			}
		}
		if clone.Hash() != st.Hash() {
			t.Fatal("a clone given the same events ends elsewhere")
		}
	}
	out.st = st
	return out
}

// TestStateInvariants drives seeded streams through the State, and a
// replica through the codec: the replica must end in the same state.
func TestStateInvariants(t *testing.T) {
	for seed := uint64(1); seed <= 8; seed++ {
		g := domaintest.NewSeeded(seed)
		if seed > 4 {
			g.WithLimits() // CheckInvariants recounts every limit after every step
		}
		res := checkStream(t, g, 1200)
		replica := domain.NewState()
		var buf []byte
		for i := 0; i < len(res.accepted); {
			n := min(len(res.accepted)-i, 1+int(seed*uint64(i))%17)
			buf = domain.EncodeBatch(buf[:0], &domain.Batch{Term: 1, Events: res.accepted[i : i+n]})
			b, err := domain.DecodeBatch(buf)
			if err != nil {
				t.Fatal(err)
			}
			for j := range b.Events {
				if err := replica.Apply(&b.Events[j]); err != nil {
					t.Fatalf("replica: %+v: %v", b.Events[j], err)
				}
			}
			i += n
		}
		if replica.Hash() != res.st.Hash() {
			t.Fatalf("seed %d: the replica differs", seed)
		}
		resources, reservations, idem, held := res.st.Counts()
		t.Logf("seed %d: %d accepted, %d refused; %d resources, %d reservations, %d idem, %d held, %d limits",
			seed, len(res.accepted), res.refused, resources, reservations, idem, held, res.st.LimitCount())
		if seed > 4 && res.st.LimitCount() == 0 {
			t.Fatalf("seed %d: a history with limits ends without any", seed)
		}
	}
}

// FuzzStateInvariants is checkStream with the fuzzer choosing the history;
// short histories keep each run cheap, so the fuzzer tries many.
func FuzzStateInvariants(f *testing.F) {
	rnd := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{0, 1, 64, 1024, 8192} {
		data := make([]byte, n)
		for i := range data {
			data[i] = byte(rnd.Uint32())
		}
		f.Add(data)
	}
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 1<<13 {
			// 300 events use far fewer choices; longer inputs only slow the
			// fuzzer down (minimizing them takes minutes).
			t.Skip()
		}
		g := domaintest.NewFromBytes(data)
		if len(data) > 0 && data[0]&1 == 1 {
			g.WithLimits()
		}
		checkStream(t, g, 300)
	})
}

func TestIdempotencyRecords(t *testing.T) {
	const day = int64(24 * time.Hour)
	st := newState(t, "v", domain.Spec{Kind: domain.KindVoucher, Capacity: 100, HoldSeconds: 900})
	r, _ := st.Resource("v")
	reserveWithKey := func(rid, user, key string, when int64) domain.Event {
		res, err := r.Clone().DecideReserve(domain.ReserveRequest{User: user, Quantity: 1}, rid, when)
		if err != nil {
			t.Fatal(err)
		}
		return domain.Event{Type: domain.EvReserve, At: when, ResourceID: "v", Reservation: res,
			Idem: &domain.IdemRecord{User: user, Key: key, Code: 201, Reservation: res, CreatedAt: when}}
	}
	wantIdem := func(user, key, rid string) {
		t.Helper()
		rec, ok := st.Idem(user, key)
		switch {
		case rid == "" && ok:
			t.Fatalf("%s/%s: record %+v, want none", user, key, rec)
		case rid != "" && (!ok || rec.Reservation.ID != rid):
			t.Fatalf("%s/%s: record %+v (%v), want one for %s", user, key, rec, ok, rid)
		}
	}

	mustApply(t, st, reserveWithKey("r1", "alice", "k", t0))
	mustApply(t, st, reserveWithKey("r2", "bob", "k", t0+1))
	wantIdem("alice", "k", "r1")
	wantIdem("bob", "k", "r2")
	// The first answer stays, and the key takes effect once: a second event
	// with it changes nothing and gets the answer on record.
	before := st.Hash()
	err := st.Apply(ptr(reserveWithKey("r3", "alice", "k", t0+2)))
	var dup *domain.DuplicateKeyError
	if !errors.As(err, &dup) || !errors.Is(err, domain.ErrDuplicateKey) || dup.Record.Reservation.ID != "r1" {
		t.Fatalf("second event with alice's key: %v, want the duplicate answer for r1", err)
	}
	if st.Hash() != before {
		t.Fatal("a duplicate-key event changed the state")
	}
	if _, ok := st.Reservation("r3"); ok {
		t.Fatal("a duplicate-key event made a reservation")
	}
	wantIdem("alice", "k", "r1")
	// A refused event stores nothing and prunes nothing, however late.
	refused := reserveWithKey("r4", "carol", "k", t0+3*day)
	refused.Reservation.ResourceID, refused.ResourceID = "nope", "nope"
	mustRefuse(t, st, refused, domain.ErrNotFound)
	wantIdem("alice", "k", "r1")
	wantIdem("carol", "k", "")
	// Records live IdemTTL from their creation, then go with the next event.
	mustApply(t, st, domain.Event{Type: domain.EvPutResource, At: t0 + domain.IdemTTL, ResourceID: "w", Spec: domain.Spec{Kind: domain.KindSlot}})
	wantIdem("alice", "k", "r1")
	mustApply(t, st, domain.Event{Type: domain.EvPutResource, At: t0 + domain.IdemTTL + 1, ResourceID: "w", Spec: domain.Spec{Kind: domain.KindSlot}})
	wantIdem("alice", "k", "")
	wantIdem("bob", "k", "r2")
	// An expired key may be used again, by the event that prunes it.
	mustApply(t, st, reserveWithKey("r5", "bob", "k", t0+1+domain.IdemTTL+1))
	wantIdem("bob", "k", "r5")
	mustApply(t, st, reserveWithKey("r6", "alice", "k", t0+1+domain.IdemTTL+1))
	var order []string
	_ = st.EachIdem(func(rec domain.IdemRecord) error {
		order = append(order, rec.User+"/"+rec.Reservation.ID)
		return nil
	})
	if !slices.Equal(order, []string{"bob/r5", "alice/r6"}) {
		t.Fatalf("records in apply order: %v", order)
	}
	if _, _, idem, _ := st.Counts(); idem != 2 {
		t.Fatalf("%d records, want 2", idem)
	}
}

func TestListing(t *testing.T) {
	st := domain.NewState()
	for _, id := range []string{"b-2", "a-1", "b-1", "c", "b-10"} {
		mustApply(t, st, domain.Event{Type: domain.EvPutResource, At: t0, ResourceID: id, Spec: domain.Spec{Kind: domain.KindVoucher, Capacity: 10, HoldSeconds: 900}})
	}
	list := func(prefix, after string, limit int) []string {
		var ids []string
		st.ListResources(prefix, after, func(r *domain.Resource) bool {
			ids = append(ids, r.ID)
			return len(ids) < limit
		})
		return ids
	}
	for _, tc := range []struct {
		prefix, after string
		limit         int
		want          []string
	}{
		{"", "", 100, []string{"a-1", "b-1", "b-10", "b-2", "c"}},
		{"", "", 2, []string{"a-1", "b-1"}},
		{"", "b-1", 2, []string{"b-10", "b-2"}},
		{"", "b-0", 1, []string{"b-1"}},
		{"", "c", 10, nil},
		{"b-", "", 10, []string{"b-1", "b-10", "b-2"}},
		{"b-", "b-10", 10, []string{"b-2"}},
		{"b-", "a", 10, []string{"b-1", "b-10", "b-2"}},
		{"b-", "c", 10, nil},
		{"x", "", 10, nil},
	} {
		if got := list(tc.prefix, tc.after, tc.limit); !slices.Equal(got, tc.want) {
			t.Errorf("prefix %q after %q: %v, want %v", tc.prefix, tc.after, got, tc.want)
		}
	}

	for i, u := range []string{"u2", "u1", "u2", "u1", "u2"} {
		mustReserve(t, st, []string{"a-1", "b-1"}[i%2], domain.ReserveRequest{User: u, Quantity: 1}, fmt.Sprintf("r%d", 5-i), t0)
	}
	reservations := func(user, resource, after string) []string {
		var ids []string
		st.ListReservations(user, resource, after, func(res domain.Reservation) bool {
			ids = append(ids, res.ID)
			return true
		})
		return ids
	}
	for _, tc := range []struct {
		user, resource, after string
		want                  []string
	}{
		{"", "", "", []string{"r1", "r2", "r3", "r4", "r5"}},
		{"", "", "r2", []string{"r3", "r4", "r5"}},
		{"u2", "", "", []string{"r1", "r3", "r5"}},
		{"u2", "", "r3", []string{"r5"}},
		{"u1", "", "", []string{"r2", "r4"}},
		{"", "a-1", "", []string{"r1", "r3", "r5"}},
		{"", "b-1", "r2", []string{"r4"}},
		{"u3", "", "", nil},
		{"", "c", "", nil},
	} {
		if got := reservations(tc.user, tc.resource, tc.after); !slices.Equal(got, tc.want) {
			t.Errorf("user %q resource %q after %q: %v, want %v", tc.user, tc.resource, tc.after, got, tc.want)
		}
	}
	var heldIDs []string
	st.EachHeld(func(res domain.Reservation) { heldIDs = append(heldIDs, res.ID) })
	slices.Sort(heldIDs)
	mustTransition(t, st, "r2", confirmed, t0)
	var stillHeld []string
	st.EachHeld(func(res domain.Reservation) { stillHeld = append(stillHeld, res.ID) })
	slices.Sort(stillHeld)
	if !slices.Equal(heldIDs, []string{"r1", "r2", "r3", "r4", "r5"}) || !slices.Equal(stillHeld, []string{"r1", "r3", "r4", "r5"}) {
		t.Fatalf("held %v, then %v", heldIDs, stillHeld)
	}
}

// TestClone checks that a cloned State and a cloned Resource share nothing
// with their originals.
func TestClone(t *testing.T) {
	g := domaintest.NewSeeded(11)
	st := domain.NewState()
	for range 600 {
		if ev, err := g.Next(st); err == nil {
			mustApply(t, st, ev)
		}
	}
	c := st.Clone()
	h := st.Hash()
	if c.Hash() != h {
		t.Fatal("clone hashes differently")
	}
	if err := c.CheckInvariants(); err != nil {
		t.Fatal(err)
	}
	a, b, i, k := st.Counts()
	if ca, cb, ci, ck := c.Counts(); ca != a || cb != b || ci != i || ck != k {
		t.Fatalf("counts %d %d %d %d, clone %d %d %d %d", a, b, i, k, ca, cb, ci, ck)
	}
	// Changing the clone leaves the original alone.
	for range 300 {
		if ev, err := g.Next(c); err == nil {
			mustApply(t, c, ev)
		}
	}
	if st.Hash() != h {
		t.Fatal("changing a clone changed the original")
	}
	if c.Hash() == h {
		t.Fatal("300 events changed nothing")
	}

	r := &domain.Resource{ID: "h", Spec: domain.Spec{Kind: domain.KindRoom, Attributes: map[string]string{"a": "1"},
		Inventory: []domain.InventoryRow{{From: dec1, To: dec1 + 2, Rooms: 2}}},
		NightBase: dec1, Nights: []domain.Night{{Rooms: 2, Held: 1}, {Rooms: 2}}, UserUnits: map[string]int64{"u": 1}}
	rc := r.Clone()
	if !reflect.DeepEqual(r, rc) {
		t.Fatalf("clone %+v of %+v", rc, r)
	}
	rc.Spec.Attributes["a"] = "2"
	rc.Spec.Inventory[0].Rooms = 3
	rc.Nights[0].Held = 2
	rc.UserUnits["u"] = 2
	if r.Spec.Attributes["a"] != "1" || r.Spec.Inventory[0].Rooms != 2 || r.Nights[0].Held != 1 || r.UserUnits["u"] != 1 {
		t.Fatalf("changing a clone changed the original: %+v", r)
	}
}

// TestCloneConcurrently: Clone only reads, so snapshots may be taken while
// other readers (and other snapshots) go on.
func TestCloneConcurrently(t *testing.T) {
	g := domaintest.NewSeeded(12)
	st := domain.NewState()
	for range 300 {
		if ev, err := g.Next(st); err == nil {
			mustApply(t, st, ev)
		}
	}
	h := st.Hash()
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			if c := st.Clone(); c.Hash() != h {
				t.Error("a clone differs")
			}
			st.ListResources("", "", func(*domain.Resource) bool { return true })
		})
	}
	wg.Wait()
}

func ptr(ev domain.Event) *domain.Event { return &ev }
