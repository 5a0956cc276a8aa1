package domain_test

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"allot/actors/domain"
	"allot/actors/domain/domaintest"
	"allot/storage"
)

// frozenAt is a frozen view and a deep copy taken at the same point, and a
// history of its own that both are driven through afterwards (when gen is
// set): a view may be applied to, like a Clone, without touching the state
// it was frozen from.
type frozenAt struct {
	step         int
	frozen, deep *domain.State
	gen          *domaintest.Gen
}

func snapshotBytes(t *testing.T, st *domain.State) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := storage.WriteSnapshot(&b, st); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// applyNext applies the generator's next event to st and returns it, with
// ok false when the generator refused to make one.
func applyNext(t *testing.T, g *domaintest.Gen, st *domain.State) (domain.Event, bool) {
	t.Helper()
	ev, err := g.Next(st)
	if err != nil {
		return ev, false
	}
	var ch domain.Change
	if _, err := st.ApplyChange(&ev, &ch); err != nil {
		t.Fatalf("apply %+v: %v", ev, err)
	}
	return ev, true
}

// TestFreezeIsASnapshot: a frozen view taken at any point of a history
// serialises to exactly the bytes of a deep Clone taken at the same point,
// however much the state is applied to after it, while other views are
// taken and some views are applied to themselves.
func TestFreezeIsASnapshot(t *testing.T) {
	seeds, steps := 20, 2000
	if testing.Short() {
		seeds = 4
	}
	for seed := range uint64(seeds) {
		rnd := rand.New(rand.NewPCG(seed, 7))
		g := domaintest.NewSeeded(seed)
		if seed%2 == 0 {
			g = g.WithLimits()
		}
		st := domain.NewState()
		st.RaiseLogFormat(domain.BatchV4)
		var views []frozenAt
		for step := 0; step < steps && !g.Done(); step++ {
			if rnd.IntN(100) < 3 {
				v := frozenAt{step: step, deep: st.Clone(), frozen: st.Freeze()}
				if rnd.IntN(3) == 0 {
					v.gen = domaintest.NewSeeded(seed*1000 + uint64(step))
				}
				views = append(views, v)
			}
			applyNext(t, g, st)
			for i := range views {
				v := &views[i]
				if v.gen == nil || rnd.IntN(4) != 0 {
					continue
				}
				// The same event on both: the deep copy decides it, the
				// view must take it as the copy does.
				ev, err := v.gen.Next(v.deep)
				if err != nil {
					continue
				}
				var ch domain.Change
				errDeep := func() error { _, err := v.deep.ApplyChange(&ev, &ch); return err }()
				errFrozen := func() error { _, err := v.frozen.ApplyChange(&ev, &ch); return err }()
				if (errDeep == nil) != (errFrozen == nil) {
					t.Fatalf("seed %d view of step %d: deep copy says %v, frozen view %v", seed, v.step, errDeep, errFrozen)
				}
			}
			if rnd.IntN(200) == 0 && len(views) > 0 { // views are checked, and dropped, at any time
				i := rnd.IntN(len(views))
				checkView(t, seed, &views[i])
				views = append(views[:i], views[i+1:]...)
			}
		}
		for i := range views {
			checkView(t, seed, &views[i])
		}
		if err := st.CheckInvariants(); err != nil {
			t.Fatalf("seed %d: live state: %v", seed, err)
		}
	}
}

func checkView(t *testing.T, seed uint64, v *frozenAt) {
	t.Helper()
	want, got := snapshotBytes(t, v.deep), snapshotBytes(t, v.frozen)
	if !bytes.Equal(want, got) {
		t.Fatalf("seed %d: the view frozen at step %d serialises to %d bytes unlike its deep copy's %d", seed, v.step, len(got), len(want))
	}
	if v.frozen.Hash() != v.deep.Hash() {
		t.Fatalf("seed %d: the view frozen at step %d hashes unlike its deep copy", seed, v.step)
	}
	if err := v.frozen.CheckInvariants(); err != nil {
		t.Fatalf("seed %d: view frozen at step %d: %v", seed, v.step, err)
	}
}
