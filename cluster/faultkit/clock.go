package faultkit

import (
	"sync"
	"sync/atomic"
	"time"

	"allot/actors"
)

// Clock is one node's wall clock (actors.Config.Clock): the machine's clock
// plus an offset the test sets. Skew models a clock that runs ahead of or
// behind the others; Step models an NTP step, a jump of the wall reading
// while the process runs. The monotonic clock is left alone, as no NTP step
// moves it either: the times Now returns carry no monotonic reading, so
// that comparing them with other times uses the (faulty) wall reading.
type Clock struct {
	mu     sync.Mutex
	offset time.Duration
	reads  atomic.Uint64
}

var _ actors.Clock = (*Clock)(nil)

// NewClock returns a clock that agrees with the machine's.
func NewClock() *Clock { return &Clock{} }

// Now is the machine's wall clock plus the offset.
func (c *Clock) Now() time.Time {
	c.reads.Add(1)
	c.mu.Lock()
	off := c.offset
	c.mu.Unlock()
	return time.Now().Round(0).Add(off)
}

// Skew sets the clock d ahead of the machine's (behind for a negative d),
// whatever it was before.
func (c *Clock) Skew(d time.Duration) {
	c.mu.Lock()
	c.offset = d
	c.mu.Unlock()
}

// Step jumps the clock by d (back for a negative d) from where it is.
func (c *Clock) Step(d time.Duration) {
	c.mu.Lock()
	c.offset += d
	c.mu.Unlock()
}

// Offset is how far the clock is ahead of the machine's.
func (c *Clock) Offset() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.offset
}

// Reads counts the calls of Now: a test can check that the code under test
// reads this clock at all.
func (c *Clock) Reads() uint64 { return c.reads.Load() }
