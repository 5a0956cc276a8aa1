package actors

import (
	"sync"
	"time"
)

// Clock is where the engine reads wall time. Only the wall reading of the
// returned time is used: the engine measures elapsed time with the
// monotonic clock of its own process, which no NTP step moves. Tests and
// the fault kit pass clocks that are skewed or step.
type Clock interface {
	Now() time.Time
}

// systemClock is the machine's wall clock.
type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

// maxClockStep is how far the wall clock may jump ahead of the leader's
// monotonic extrapolation and still be followed: beyond it, the wall clock
// is taken to have stepped and is ignored.
const maxClockStep = time.Second

// slewDivisor sets how much slower than the monotonic clock leader time runs
// while it is ahead of the wall clock (after a step back of the wall clock,
// or a lead inherited from a leader whose clock was ahead): 1/100, so it
// never goes back and catches up gradually, the way NTP slews.
const slewDivisor = 100

// leaderClock is leader time: the time stamped into every event. It never
// goes backwards, not across leaders (it starts at or after the latest
// time already committed) and not within a term (it follows the monotonic
// clock; it follows the wall clock forward only by less than maxClockStep at
// a time, and while the wall clock is behind it runs 1% slow until they
// meet). So neither a step back nor a step forward of the wall clock moves
// it abruptly. Across leaders it relies on clocks agreeing within the skew
// the cluster is run with (see docs/DESIGN.md, "Time"); allot measures that
// skew and alerts on it.
type leaderClock struct {
	wall   Clock
	origin time.Time // monotonic origin of this term

	mu       sync.Mutex
	last     int64         // leader time last returned, Unix ns
	lastMono time.Duration // monotonic reading when last was returned
	stepped  bool          // the last reading did not follow the wall clock
	steps    uint64        // times the wall clock stopped being followed
}

// newLeaderClock starts leader time for a term at the later of the wall
// clock and committed, the latest time in the log.
func newLeaderClock(wall Clock, committed int64) *leaderClock {
	c := &leaderClock{wall: wall, origin: time.Now()}
	c.last = max(wall.Now().UnixNano(), committed)
	return c
}

// now returns the current leader time in Unix nanoseconds.
func (c *leaderClock) now() int64 {
	wall := c.wall.Now().UnixNano()
	mono := time.Since(c.origin)
	c.mu.Lock()
	defer c.mu.Unlock()
	// A caller that read the clocks earlier but got the lock later must not
	// move time back.
	mono = max(mono, c.lastMono)
	t, stepped := c.next(wall, mono)
	if stepped && !c.stepped {
		c.steps++
	}
	c.last, c.lastMono, c.stepped = t, mono, stepped
	return t
}

// next is the leader time for a wall reading and a monotonic reading, and
// whether the wall clock was not followed; c.mu is held.
func (c *leaderClock) next(wall int64, mono time.Duration) (int64, bool) {
	elapsed := int64(mono - c.lastMono)
	expected := c.last + elapsed
	if wall > expected+int64(maxClockStep) {
		return expected, true // the wall clock jumped ahead
	}
	if slow := c.last + elapsed - elapsed/slewDivisor; wall < slow {
		return slow, wall < expected-int64(maxClockStep) // ahead of the wall clock: slew
	}
	return wall, false
}

// ignoredSteps is how many times this term the wall clock stepped (or was
// found behind leader time) by more than maxClockStep and stopped being
// followed.
func (c *leaderClock) ignoredSteps() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.steps
}
