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

// maxClockStep is how far the wall clock may drift from the leader's
// monotonic extrapolation before the engine stops following it: beyond it,
// the wall clock is taken to have stepped and is ignored for the rest of
// the term.
const maxClockStep = time.Second

// leaderClock is leader time: the time stamped into every event. It never
// goes backwards, not across leaders (it starts at or after the latest
// time already committed) and not within a term (it follows the monotonic
// clock, pulled towards the wall clock only while the two agree within
// maxClockStep, so neither a step back nor a step forward of the wall
// clock moves it). Across leaders it relies on clocks agreeing within the
// skew the cluster is run with (see docs/DESIGN.md); allot measures that
// skew and alerts on it.
type leaderClock struct {
	wall   Clock
	origin time.Time // monotonic origin of this term

	mu       sync.Mutex
	last     int64         // leader time last returned, Unix ns
	lastMono time.Duration // monotonic reading when last was returned
	steps    uint64        // wall-clock steps ignored
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
	expected := c.last + int64(mono-c.lastMono)
	t := wall
	if d := wall - expected; d > int64(maxClockStep) || d < -int64(maxClockStep) {
		t = expected // the wall clock stepped: keep to the monotonic clock
		c.steps++
	}
	t = max(t, c.last)
	c.last, c.lastMono = t, mono
	return t
}

// ignoredSteps is how many readings of a stepped wall clock were replaced
// by the monotonic extrapolation.
func (c *leaderClock) ignoredSteps() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.steps
}
