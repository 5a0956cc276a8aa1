package actors

import "time"

// aheadOfWall is how far leader time is ahead of the wall clock right now
// (negative when behind): about 0 while the wall clock is followed, the size
// of the step once a step is being ignored, and how far the committed time
// was ahead of this node's clock when the term started, until the wall clock
// catches up. It computes what now would return without recording it, so a
// metrics scrape neither advances leader time nor counts an ignored step.
func (c *leaderClock) aheadOfWall() time.Duration {
	wall := c.wall.Now().UnixNano()
	mono := time.Since(c.origin)
	c.mu.Lock()
	defer c.mu.Unlock()
	t, _ := c.next(wall, mono)
	return time.Duration(t - wall)
}
