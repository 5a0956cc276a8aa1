package actors

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"allot/actors/domain"
)

// newLimitEngine is newTestEngine on a log whose format allows limits.
func newLimitEngine(t *testing.T) (*Engine, *memLog) {
	t.Helper()
	log := newMemLog()
	log.st.RaiseLogFormat(domain.BatchV4)
	e := New(log, Config{}, Hooks{})
	e.SetLeader(true)
	t.Cleanup(e.Close)
	return e, log
}

func mustPutLimit(t *testing.T, e *Engine, id string, perUser, capacity int64) {
	t.Helper()
	if _, _, err := e.PutLimit(context.Background(), id, domain.LimitSpec{PerUser: perUser, Capacity: capacity}); err != nil {
		t.Fatalf("put limit %s: %v", id, err)
	}
}

// The hospital day: 2,000 patients each try all 4 slots of the day at once;
// nobody gets two, everybody gets one (there is room for all).
func TestLimitCrowdOneBookingPerDay(t *testing.T) {
	e, log := newLimitEngine(t)
	mustPutLimit(t, e, "hospital-day", 1, 0)
	const users = 2000
	slots := []string{"s-0800", "s-0830", "s-0900", "s-0930"}
	for _, id := range slots { // room for everybody on each: no answer is sold out
		putSpec(t, e, id, domain.Spec{Kind: domain.KindSlot, Capacity: users, HoldSeconds: 600, Limits: []string{"hospital-day"}})
	}
	var got [users]atomic.Int32
	var wg sync.WaitGroup
	for u := range users {
		for _, s := range slots {
			wg.Go(func() {
				user := fmt.Sprintf("p%04d", u)
				out, err := reserve(e, s, user, nil)
				switch {
				case err == nil && out.Code == http.StatusCreated:
					got[u].Add(1)
				case errors.Is(err, domain.ErrLimitExceeded):
					if id, _ := domain.LimitExceededID(err); id != "hospital-day" {
						t.Errorf("%s: refused by limit %q", user, id)
					}
				default:
					t.Errorf("%s at %s: %+v %v", user, s, out, err)
				}
			})
		}
	}
	wg.Wait()
	for u := range users {
		if n := got[u].Load(); n != 1 {
			t.Fatalf("patient %d got %d bookings", u, n)
		}
	}
	log.check(t)
	log.View(func(st *domain.State) {
		if l, _ := st.Limit("hospital-day"); l.Taken != users {
			t.Fatalf("limit taken %d", l.Taken)
		}
	})
}

// A campaign: 3 vouchers share a quota of 100; 2,000 users each try one.
func TestLimitCrowdSharedQuota(t *testing.T) {
	e, log := newLimitEngine(t)
	mustPutLimit(t, e, "campaign", 0, 100)
	vouchers := []string{"v-a", "v-b", "v-c"}
	for _, id := range vouchers {
		putSpec(t, e, id, domain.Spec{Kind: domain.KindVoucher, Capacity: 1000, PerUserLimit: 1, Limits: []string{"campaign"}})
	}
	var ok, refused atomic.Int64
	var wg sync.WaitGroup
	for u := range 2000 {
		wg.Go(func() {
			_, err := reserve(e, vouchers[u%3], fmt.Sprintf("u%04d", u), nil)
			switch {
			case err == nil:
				ok.Add(1)
			case errors.Is(err, domain.ErrLimitExceeded):
				refused.Add(1)
			default:
				t.Errorf("u%d: %v", u, err)
			}
		})
	}
	wg.Wait()
	if ok.Load() != 100 || refused.Load() != 1900 {
		t.Fatalf("%d accepted, %d refused; want 100 and 1900", ok.Load(), refused.Load())
	}
	log.check(t)
}

// A reservation that names two limits takes both or neither, and the
// refusal names the limit that refused.
func TestLimitTwoLimitsAllOrNothing(t *testing.T) {
	e, log := newLimitEngine(t)
	mustPutLimit(t, e, "a-day", 1, 0)
	mustPutLimit(t, e, "b-quota", 0, 1)
	putSpec(t, e, "s", domain.Spec{Kind: domain.KindSlot, Capacity: 10, Limits: []string{"a-day", "b-quota"}})
	if _, err := reserve(e, "s", "ann", nil); err != nil {
		t.Fatal(err)
	}
	_, err := reserve(e, "s", "bob", nil)
	if id, _ := domain.LimitExceededID(err); id != "b-quota" {
		t.Fatalf("bob: %v (limit %q)", err, id)
	}
	// bob's claim on a-day was released: another slot naming only a-day takes him.
	putSpec(t, e, "t", domain.Spec{Kind: domain.KindSlot, Capacity: 10, Limits: []string{"a-day"}})
	if _, err := reserve(e, "t", "bob", nil); err != nil {
		t.Fatalf("bob's released share: %v", err)
	}
	log.check(t)
}

// Changes of limits: refused below what is taken, refused for a resource
// with taken units, delete refused while named; a limit change waits for
// the grants in flight and then applies.
func TestLimitChanges(t *testing.T) {
	e, log := newLimitEngine(t)
	mustPutLimit(t, e, "q", 0, 3)
	putSpec(t, e, "v", domain.Spec{Kind: domain.KindVoucher, Capacity: 10, Limits: []string{"q"}})
	for _, u := range []string{"a", "b"} {
		if _, err := reserve(e, "v", u, nil); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	if _, _, err := e.PutLimit(ctx, "q", domain.LimitSpec{Capacity: 1}); !errors.Is(err, domain.ErrInvalidState) {
		t.Fatalf("capacity below taken: %v", err)
	}
	if err := e.DeleteLimit(ctx, "q"); !errors.Is(err, domain.ErrInvalidState) {
		t.Fatalf("delete while named: %v", err)
	}
	if _, _, err := e.PutResource(ctx, "v", domain.Spec{Kind: domain.KindVoucher, Capacity: 10}); !errors.Is(err, domain.ErrInvalidState) {
		t.Fatalf("leave the limit with units taken: %v", err)
	}
	if _, _, err := e.PutResource(ctx, "w", domain.Spec{Kind: domain.KindVoucher, Capacity: 10, Limits: []string{"nope"}}); !errors.Is(err, domain.ErrInvalidArgument) {
		t.Fatalf("unknown limit: %v", err)
	}
	l, _, err := e.PutLimit(ctx, "q", domain.LimitSpec{Capacity: 5})
	if err != nil || l.Spec.Capacity != 5 || l.Taken != 2 {
		t.Fatalf("raise: %+v %v", l, err)
	}
	// A crowd while the limit changes: every answer is definite, none passes a bound.
	var wg sync.WaitGroup
	for u := range 50 {
		wg.Go(func() { _, _ = reserve(e, "v", fmt.Sprintf("c%d", u), nil) })
		if u == 25 {
			wg.Go(func() { _, _, _ = e.PutLimit(ctx, "q", domain.LimitSpec{Capacity: 6}) })
		}
	}
	wg.Wait()
	log.check(t)
	log.View(func(st *domain.State) {
		if l, _ := st.Limit("q"); l.Taken > l.Spec.Capacity {
			t.Fatalf("taken %d above capacity %d", l.Taken, l.Spec.Capacity)
		}
	})
}

// A reservation whose outcome was unknown keeps its grant until a barrier
// shows what committed; then the limit counts only committed state.
func TestLimitGrantAfterUnknownOutcome(t *testing.T) {
	e, log := newLimitEngine(t)
	mustPutLimit(t, e, "one", 1, 0)
	putSpec(t, e, "s", domain.Spec{Kind: domain.KindSlot, Capacity: 10, Limits: []string{"one"}})
	log.lateOnce.Store(true)
	if _, err := reserve(e, "s", "ann", nil); !errors.Is(err, domain.ErrOutcomeUnknown) {
		t.Fatalf("late commit: %v", err)
	}
	// It committed after all: a second one is refused, not granted.
	waitFor(t, 5*time.Second, func() bool {
		n := 0
		log.View(func(st *domain.State) {
			if l, ok := st.Limit("one"); ok {
				n = int(l.Taken)
			}
		})
		return n == 1
	})
	_, err := retryUntil(t, func() (domain.Outcome, error) { return reserve(e, "s", "ann", nil) })
	if !errors.Is(err, domain.ErrLimitExceeded) {
		t.Fatalf("after the late commit: %v", err)
	}
	if _, err := reserve(e, "s", "bob", nil); err != nil {
		t.Fatalf("another user: %v", err)
	}
	log.check(t)
}

// A term that ends while reservations wait for their limits answers them
// "unavailable"; none hangs.
func TestLimitClaimsEndWithTheTerm(t *testing.T) {
	e, _ := newLimitEngine(t)
	mustPutLimit(t, e, "q", 0, 1000)
	putSpec(t, e, "v", domain.Spec{Kind: domain.KindVoucher, Capacity: 1000, Limits: []string{"q"}})
	var wg sync.WaitGroup
	for u := range 200 {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_, err := e.Reserve(ctx, domain.ReserveCommand{ResourceID: "v", Caller: domain.Principal{User: fmt.Sprint(u)},
				Request: domain.ReserveRequest{User: fmt.Sprint(u), Quantity: 1}})
			if err != nil && !errors.Is(err, domain.ErrUnavailable) && !errors.Is(err, domain.ErrNotLeader) && !errors.Is(err, domain.ErrOutcomeUnknown) {
				t.Errorf("%d: %v", u, err)
			}
			if errors.Is(err, domain.ErrOutcomeUnknown) && ctx.Err() != nil {
				t.Errorf("%d waited out its deadline", u)
			}
		})
	}
	time.Sleep(2 * time.Millisecond)
	e.SetLeader(false)
	wg.Wait()
}
