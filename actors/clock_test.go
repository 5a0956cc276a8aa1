package actors

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// stepClock is a wall clock the test sets by hand (Unix ns).
type stepClock struct{ wall atomic.Int64 }

func (c *stepClock) Now() time.Time { return time.Unix(0, c.wall.Load()) }

func TestLeaderClockStartsAtCommittedTime(t *testing.T) {
	wall := &stepClock{}
	wall.wall.Store(1_000)
	committed := int64(5 * time.Second)
	c := newLeaderClock(wall, committed)
	if got := c.now(); got < committed {
		t.Fatalf("first leader time %d before the committed %d", got, committed)
	}
	// A wall clock that was behind is not followed backwards either.
	if a, b := c.now(), c.now(); b < a {
		t.Fatalf("leader time went back: %d then %d", a, b)
	}
}

func TestLeaderClockIgnoresSteps(t *testing.T) {
	base := time.Now().UnixNano()
	wall := &stepClock{}
	wall.wall.Store(base)
	c := newLeaderClock(wall, 0)
	t0 := c.now()

	wall.wall.Store(base - int64(time.Hour)) // NTP steps the clock back an hour
	t1 := c.now()
	if t1 < t0 || t1-t0 > int64(time.Second) {
		t.Fatalf("after a step back: %v later, want a little later", time.Duration(t1-t0))
	}
	wall.wall.Store(base + int64(48*time.Hour)) // and forward two days
	t2 := c.now()
	if t2 < t1 || t2-t1 > int64(time.Second) {
		t.Fatalf("after a step forward: %v later, want a little later", time.Duration(t2-t1))
	}
	if c.ignoredSteps() != 1 { // one stretch of not following the wall clock
		t.Fatalf("%d steps ignored, want 1", c.ignoredSteps())
	}
	// Time keeps flowing with the monotonic clock.
	time.Sleep(20 * time.Millisecond)
	if t3 := c.now(); t3-t2 < int64(20*time.Millisecond) {
		t.Fatalf("leader time advanced %v over 20ms", time.Duration(t3-t2))
	}
}

func TestLeaderClockFollowsSmallCorrections(t *testing.T) {
	base := time.Now().UnixNano()
	wall := &stepClock{}
	wall.wall.Store(base)
	c := newLeaderClock(wall, 0)
	c.now()
	wall.wall.Store(base + int64(200*time.Millisecond)) // within maxClockStep: NTP slewing
	if got := c.now(); got < base+int64(200*time.Millisecond) {
		t.Fatalf("leader time %d did not follow a small correction to %d", got, base+int64(200*time.Millisecond))
	}
	if c.ignoredSteps() != 0 {
		t.Fatal("a small correction counted as a step")
	}
}

// A lead over the wall clock (a step back, or time inherited from a leader
// whose clock was ahead) shrinks: leader time runs 1% slow, never back.
func TestLeaderClockSlewsBackToTheWallClock(t *testing.T) {
	wall := &stepClock{}
	base := time.Now().UnixNano()
	wall.wall.Store(base)
	c := newLeaderClock(wall, base+int64(50*time.Millisecond)) // committed 50ms ahead
	start := c.now()
	s0 := time.Now()
	time.Sleep(100 * time.Millisecond)
	wall.wall.Store(base + int64(100*time.Millisecond))
	real := time.Since(s0)
	t1 := c.now()
	if adv := time.Duration(t1 - start); adv >= real || adv < real*97/100 {
		t.Fatalf("leader time advanced %v in %v while ahead, want 1%% less", adv, real)
	}
	// Once the wall clock has caught up, it is followed again.
	wall.wall.Store(base + int64(time.Second))
	if t2 := c.now(); t2 != base+int64(time.Second) {
		t.Fatalf("leader time %d, want the wall clock %d", t2, base+int64(time.Second))
	}
}

// Leader time never goes back between readings, however the callers
// interleave: a caller that read the clocks earlier but got the lock later
// must not return a time before one already handed out.
func TestLeaderClockMonotonicUnderConcurrency(t *testing.T) {
	c := newLeaderClock(systemClock{}, 0)
	var seen atomic.Int64 // the latest time handed out and noticed
	var back atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20000 {
				before := seen.Load()
				got := c.now()
				if got < before {
					back.Add(1)
				}
				for {
					cur := seen.Load()
					if got <= cur || seen.CompareAndSwap(cur, got) {
						break
					}
				}
			}
		}()
	}
	wg.Wait()
	if n := back.Load(); n != 0 {
		t.Fatalf("leader time went back %d times", n)
	}
}
