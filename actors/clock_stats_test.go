package actors

import (
	"sync/atomic"
	"testing"
	"time"
)

// shiftedClock is the machine's clock shifted by offset (ns); the stats
// tests' own, so that they depend on no other test file's fake.
type shiftedClock struct{ offset atomic.Int64 }

func (c *shiftedClock) Now() time.Time { return time.Now().Add(time.Duration(c.offset.Load())) }

// near reports whether got is within tol of want.
func near(got, want, tol time.Duration) bool { return got > want-tol && got < want+tol }

// aheadOfWall agrees with what now returns, and reading it moves nothing:
// neither leader time nor the count of ignored steps.
func TestLeaderClockAheadOfWall(t *testing.T) {
	const tol = 200 * time.Millisecond // scheduling on a loaded machine
	wall := &shiftedClock{}
	c := newLeaderClock(wall, 0)
	if a := c.aheadOfWall(); !near(a, 0, tol) {
		t.Fatalf("following the wall clock: ahead %v, want about 0", a)
	}

	wall.offset.Store(int64(-time.Hour)) // the wall clock steps back an hour
	for range 3 {
		if a := c.aheadOfWall(); !near(a, time.Hour, tol) {
			t.Fatalf("after a step back: ahead %v, want about 1h", a)
		}
	}
	if n := c.ignoredSteps(); n != 0 {
		t.Fatalf("aheadOfWall counted %d ignored steps, want 0: it must only look", n)
	}
	before := c.aheadOfWall()
	got := time.Duration(c.now() - wall.Now().UnixNano())
	if !near(got, before, tol) || c.ignoredSteps() != 1 {
		t.Fatalf("now is %v ahead with %d steps ignored; aheadOfWall said %v", got, c.ignoredSteps(), before)
	}

	// A term that starts behind the committed time runs ahead of its wall
	// clock by the difference.
	c = newLeaderClock(&shiftedClock{}, time.Now().Add(10*time.Second).UnixNano())
	if a := c.aheadOfWall(); !near(a, 10*time.Second, tol) {
		t.Fatalf("term started 10s behind the committed time: ahead %v", a)
	}
}

// Engine.Stats reports the leader clock: zero on a follower, the ignored
// steps and how far ahead leader time runs on the leader.
func TestStatsLeaderClock(t *testing.T) {
	wall := &shiftedClock{}
	e := New(newMemLog(), Config{Clock: wall}, Hooks{})
	t.Cleanup(e.Close)
	if st := e.Stats(); st.ClockStepsIgnored != 0 || st.ClockAhead != 0 {
		t.Fatalf("follower: %+v", st)
	}
	e.SetLeader(true)
	putVoucher(t, e, "v1", 5, 900)
	if st := e.Stats(); st.ClockStepsIgnored != 0 || !near(st.ClockAhead, 0, 200*time.Millisecond) {
		t.Fatalf("leader with a steady clock: %+v", st)
	}
	wall.offset.Store(int64(-time.Hour))
	putVoucher(t, e, "v2", 5, 900) // stamps an event: one reading of the stepped clock
	st := e.Stats()
	if st.ClockStepsIgnored == 0 || !near(st.ClockAhead, time.Hour, 200*time.Millisecond) {
		t.Fatalf("leader after a step back of an hour: %+v", st)
	}
	e.SetLeader(false)
	if st := e.Stats(); st.ClockStepsIgnored != 0 || st.ClockAhead != 0 {
		t.Fatalf("after leading: %+v", st)
	}
}
