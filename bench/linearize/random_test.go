package linearize

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

var seedFlag = flag.Uint64("seed", 0, "replay one seed of the randomized tests")

func simResources() map[string]Spec {
	return map[string]Spec{
		"v1": {Kind: "voucher", Capacity: 3, PerUserLimit: 1, Hold: simHold},
		"v2": {Kind: "voucher", Capacity: 5, PerUserLimit: 2, Hold: simHold},
		"s1": {Kind: "slot", Capacity: 2, PerUserLimit: 1, Hold: simHold},
		"v3": {Kind: "voucher", Capacity: 4, Hold: 0},
	}
}

func simOptions() Options {
	return Options{Resources: simResources(), Skew: simSkew, Lateness: simLate, Timeout: 30 * time.Second}
}

func seeds(n int) []uint64 {
	if *seedFlag != 0 {
		return []uint64{*seedFlag}
	}
	out := make([]uint64, n)
	for i := range out {
		out[i] = uint64(i + 1)
	}
	return out
}

func TestRandomHistoriesOfACorrectServerPass(t *testing.T) {
	for _, seed := range seeds(3) {
		h := simulate(simConfig{seed: seed, clients: 12, duration: 8 * time.Second, pUnknown: 0.06, resources: simResources()})
		o := simOptions()
		o.VisualizationPath = t.TempDir() + "/viz.html"
		r, err := Check(h, o)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("seed %d: %s", seed, r)
		if !r.Ok() {
			t.Fatalf("seed %d: a correct server's history is not linearizable: %s", seed, r)
		}
		fs := finalOf(h)
		if len(fs.Resources) != len(simResources()) {
			t.Fatalf("final state of %d resources", len(fs.Resources))
		}
		if err := CheckFinal(fs, Acks(h)); err != nil {
			t.Fatalf("seed %d: final state: %v", seed, err)
		}
	}
}

// finalOf takes the final state from the lists that end a simulated run.
func finalOf(h History) FinalState {
	var fs FinalState
	for _, op := range h.Operations {
		if ev := op.Input.(*Invocation); ev.Op == OpListReservations && ev.Client == simFinalClient {
			fs.Resources = append(fs.Resources, FinalResource{ID: ev.Resource, Spec: simResources()[ev.Resource],
				Reservations: op.Output.(Output).List})
		}
	}
	return fs
}

// mutate changes the output of one operation of h the way a broken server
// might, and says what it did; "" if it found nothing to change at i.
func mutate(h History, i int, rng *rand.Rand) (History, string) {
	op := h.Operations[i]
	ev, out := op.Input.(*Invocation), op.Output.(Output)
	if out.IsUnknown() || out.effectless() {
		return h, ""
	}
	m := out
	var what string
	switch {
	case ev.Op == OpReserve && out.Status == 201 && !out.Replayed:
		m = problem(409, "sold_out")
		what = "201 -> sold_out"
	case ev.Op == OpReserve && out.Status == 201:
		r := *out.Reservation
		r.ID += "-other"
		m.Reservation = &r
		what = "replay names another reservation"
	case ev.Op == OpReserve && out.Code == "sold_out":
		hold := simResources()[ev.Resource].Hold
		st := "held"
		if hold == 0 {
			st = "confirmed"
		}
		r := &Reservation{ID: "mutant", User: ev.User, Quantity: 1, Status: st}
		if hold > 0 {
			r.ExpiresAt = h.Epoch.Add(time.Duration(ev.Call) + hold)
		}
		m = Output{Status: 201, Reservation: r}
		what = "sold_out -> 201"
	case ev.Op.transition() && out.Status == 200:
		m = problem(409, "invalid_state")
		what = "200 -> invalid_state"
	case ev.Op.transition() && out.Status == 409:
		m = Output{Status: 200, Reservation: &Reservation{ID: ev.ID, Status: target(ev.Op).String()}}
		what = "409 -> 200"
	case ev.Op == OpReadResource && out.Counts != nil:
		c := *out.Counts
		switch {
		case c.Available > 0 && rng.IntN(2) == 0:
			c.Available--
			c.Held++
			what = "read: one more held"
		case c.Held > 0:
			c.Held--
			c.Available++
			what = "read: one less held"
		case c.Confirmed > 0:
			c.Confirmed--
			c.Available++
			what = "read: one less confirmed"
		default:
			c.Available--
			c.Confirmed++
			what = "read: one more confirmed"
		}
		m.Counts = &c
	case ev.Op == OpReadReservation && out.Reservation != nil:
		r := *out.Reservation
		r.Status = map[string]string{"held": "confirmed", "confirmed": "cancelled", "cancelled": "expired",
			"expired": "cancelled", "checked_in": "completed", "completed": "confirmed"}[r.Status]
		r.ExpiresAt = time.Time{}
		m.Reservation = &r
		what = "get: another status"
	case ev.Op == OpListReservations && len(out.List) > 0:
		l := slices.Clone(out.List)
		k := rng.IntN(len(l))
		l = slices.Delete(l, k, k+1)
		m.List = l
		what = "list: one missing"
	default:
		return h, ""
	}
	ops := slices.Clone(h.Operations)
	ops[i].Output = m
	return History{Epoch: h.Epoch, Operations: ops}, fmt.Sprintf("op %d %s: %s", i, ev.Input, what)
}

func TestRandomMutationsAreCaught(t *testing.T) {
	mutations := 45
	if raceEnabled {
		mutations = 15
	}
	rng := rand.New(rand.NewPCG(*seedFlag+99, 1))
	var caught, tried int
	var total time.Duration
	for _, seed := range seeds(3) {
		h := simulate(simConfig{seed: seed, clients: 8, duration: 3 * time.Second, pUnknown: 0.06, resources: simResources()})
		for n := 0; n < mutations/3; {
			mh, what := mutate(h, rng.IntN(len(h.Operations)), rng)
			if what == "" {
				continue
			}
			n++
			o := simOptions()
			o.UnknownHorizon = time.Second // the simulation applies a lost write within 0.5 s
			o.Timeout = 5 * time.Second
			r, err := Check(mh, o)
			if err != nil {
				t.Fatal(err)
			}
			tried++
			total += r.Elapsed
			if r.Outcome == porcupine.Illegal {
				caught++
			} else {
				t.Logf("seed %d: not caught (%s): %s", seed, r.Outcome, what)
			}
		}
	}
	rate := float64(caught) / float64(tried)
	t.Logf("caught %d of %d mutations (%.0f%%), %s per check", caught, tried, 100*rate, total/time.Duration(tried))
	if rate < 0.8 {
		t.Fatalf("detection rate %.2f, want at least 0.8", rate)
	}
}
