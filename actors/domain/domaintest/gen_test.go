package domaintest_test

import (
	"errors"
	"reflect"
	"testing"

	"allot/actors/domain"
	"allot/actors/domain/domaintest"
)

// sentinels are the errors a decision or State.Apply may end in.
func sentinels() []error {
	return []error{
		domain.ErrInvalidArgument, domain.ErrNotFound, domain.ErrAlreadyExists, domain.ErrSoldOut,
		domain.ErrLimitExceeded, domain.ErrNotOpen, domain.ErrClosed, domain.ErrInvalidState, domain.ErrExpired,
	}
}

// sentinel returns the sentinel err wraps, or err itself when none.
func sentinel(err error) error {
	for _, s := range sentinels() {
		if errors.Is(err, s) {
			return s
		}
	}
	return err
}

// step is one generated event with the leader's verdict on it.
type step struct {
	ev  domain.Event
	err error
}

// run drives a fresh State with n events of g, applying the accepted ones.
func run(t *testing.T, g *domaintest.Gen, n int) ([]step, *domain.State) {
	t.Helper()
	st := domain.NewState()
	steps := make([]step, 0, n)
	for range n {
		ev, err := g.Next(st)
		steps = append(steps, step{ev, err})
		if err == nil {
			if aerr := st.Apply(&ev); aerr != nil {
				t.Fatalf("step %d: accepted %+v but Apply says %v", len(steps), ev, aerr)
			}
		}
	}
	return steps, st
}

func TestSeededIsDeterministic(t *testing.T) {
	a, sa := run(t, domaintest.NewSeeded(7), 1500)
	b, sb := run(t, domaintest.NewSeeded(7), 1500)
	for i := range a {
		if !reflect.DeepEqual(a[i].ev, b[i].ev) || (a[i].err == nil) != (b[i].err == nil) {
			t.Fatalf("step %d differs:\n%+v %v\n%+v %v", i, a[i].ev, a[i].err, b[i].ev, b[i].err)
		}
	}
	if sa.Hash() != sb.Hash() {
		t.Fatal("same seed, same events, different states")
	}
	c, _ := run(t, domaintest.NewSeeded(8), 1500)
	same := 0
	for i := range a {
		if reflect.DeepEqual(a[i].ev, c[i].ev) {
			same++
		}
	}
	if same == len(a) {
		t.Fatal("seeds 7 and 8 made the same stream")
	}
}

func TestFromBytesIsDeterministicAndRunsOut(t *testing.T) {
	data := make([]byte, 4096)
	for i := range data {
		data[i] = byte(i*131 + i>>3)
	}
	stream := func() ([]step, *domaintest.Gen) {
		g := domaintest.NewFromBytes(data)
		st := domain.NewState()
		var steps []step
		for !g.Done() {
			if len(steps) > len(data) {
				t.Fatal("a byte-driven generator made more events than it has bytes")
			}
			ev, err := g.Next(st)
			steps = append(steps, step{ev, err})
			if err == nil {
				if aerr := st.Apply(&ev); aerr != nil {
					t.Fatalf("accepted %+v but Apply says %v", ev, aerr)
				}
			}
		}
		return steps, g
	}
	a, g := stream()
	b, _ := stream()
	if !reflect.DeepEqual(a, b) {
		t.Fatal("the same bytes made different streams")
	}
	if len(a) < 50 {
		t.Fatalf("4 KiB of choices made only %d events", len(a))
	}
	// Once done, it keeps answering without reading past the end.
	if ev, _ := g.Next(domain.NewState()); ev.Type != domain.EvPutResource {
		t.Fatalf("an exhausted generator on an empty state should create a resource, got %+v", ev)
	}

	empty := domaintest.NewFromBytes(nil)
	if empty.Done() {
		t.Fatal("done before the first choice")
	}
	empty.Next(domain.NewState())
	if !empty.Done() {
		t.Fatal("not done after choosing from no bytes")
	}
}

// TestNextDecidesLikeApply checks the contract of Next: it leaves st alone,
// accepted events apply, and a rejected one is refused by Apply for the same
// reason.
func TestNextDecidesLikeApply(t *testing.T) {
	for seed := uint64(1); seed <= 3; seed++ {
		g := domaintest.NewSeeded(seed)
		st := domain.NewState()
		last := g.Now()
		for i := range 1000 {
			before := st.Hash()
			ev, err := g.Next(st)
			if st.Hash() != before {
				t.Fatalf("seed %d step %d: Next changed the state", seed, i)
			}
			if ev.At != g.Now() || ev.At < last {
				t.Fatalf("seed %d step %d: event at %d, clock %d, previous %d", seed, i, ev.At, g.Now(), last)
			}
			last = ev.At
			aerr := st.Apply(&ev)
			if sentinel(aerr) != sentinel(err) {
				t.Fatalf("seed %d step %d: %+v\ndecided: %v\napplied: %v", seed, i, ev, err, aerr)
			}
		}
	}
}

func eventName(ev *domain.Event) string {
	switch ev.Type {
	case domain.EvPutResource:
		return "put"
	case domain.EvDeleteResource:
		return "delete"
	case domain.EvReserve:
		return "reserve"
	case domain.EvTransition:
		return ev.To.String()
	case domain.EvPrune:
		return "prune"
	}
	return "unknown"
}

// TestStreamCoverage checks that a stream of moderate length exercises every
// operation, accepted and refused, every reason for a refusal, and the
// boundaries of time the rules care about. Whether a fixed-length stream
// covers everything depends on its seed (the other tests vary theirs): this
// one does.
func TestStreamCoverage(t *testing.T) {
	g := domaintest.NewSeeded(4)
	st := domain.NewState()
	accepted := map[string]int{}
	refused := map[error]int{}
	kinds := map[domain.Kind]int{}
	idem, expiredOnTime, expiredLate := 0, 0, 0
	for range 3000 {
		ev, err := g.Next(st)
		if err != nil {
			refused[sentinel(err)]++
			continue
		}
		accepted[eventName(&ev)]++
		if ev.Idem != nil {
			idem++
		}
		switch {
		case ev.Type == domain.EvReserve:
			kinds[ev.Reservation.Kind]++
		case ev.Type == domain.EvTransition && ev.To == domain.StatusExpired:
			res, _ := st.Reservation(ev.ReservationID)
			if ev.At == res.ExpiresAt {
				expiredOnTime++
			} else {
				expiredLate++
			}
		}
		if err := st.Apply(&ev); err != nil {
			t.Fatalf("accepted %+v but Apply says %v", ev, err)
		}
	}
	for _, name := range []string{"put", "delete", "reserve", "confirmed", "cancelled", "expired", "checked_in", "completed", "prune"} {
		if accepted[name] == 0 {
			t.Errorf("no accepted %s in %v", name, accepted)
		}
	}
	for _, err := range sentinels() {
		if refused[err] == 0 {
			t.Errorf("no refusal with %v in %v", err, refused)
		}
	}
	for k := domain.KindVoucher; k <= domain.KindRoom; k++ {
		if kinds[k] == 0 {
			t.Errorf("no %s reserved", k)
		}
	}
	if idem == 0 {
		t.Error("no idempotency record attached")
	}
	if expiredOnTime == 0 || expiredLate == 0 {
		t.Errorf("expiries exactly at expires_at: %d, later: %d; want both", expiredOnTime, expiredLate)
	}
	t.Logf("accepted %v; refused %v; idem %d", accepted, refused, idem)
}
