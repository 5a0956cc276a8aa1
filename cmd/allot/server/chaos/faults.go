package chaos

import (
	"math/rand/v2"
	"time"

	"allot/cmd/allot/server/servertest"
)

// Fault is one kind of failure the schedule injects into an in-process
// cluster. Inject starts it and returns what ends it.
type Fault struct {
	Name   string
	Inject func(c *servertest.Cluster, rng *rand.Rand) (heal func())
}

// Faults are the in-process kinds, one per name. Kill and pause of real
// processes are in cmd/allot's e2e suite.
var Faults = []Fault{
	{Name: "partition", Inject: partition},
	{Name: "oneway", Inject: oneWay},
	{Name: "kill", Inject: crash},
	{Name: "clockstep", Inject: clockStep},
	{Name: "unknown", Inject: unknownOutcomes},
	{Name: "wipe", Inject: wipe},
	{Name: "membership", Inject: membership},
	{Name: "snapshot", Inject: snapshotInstall},
}

func between(rng *rand.Rand, lo, hi time.Duration) time.Duration {
	return lo + time.Duration(rng.Int64N(int64(hi-lo)+1))
}

// victim is the leader half of the time, else a random running node.
func victim(c *servertest.Cluster, rng *rand.Rand) *servertest.Node {
	if rng.IntN(2) == 0 {
		return c.Leader()
	}
	run := c.Running()
	return run[rng.IntN(len(run))]
}

func follower(c *servertest.Cluster, rng *rand.Rand) *servertest.Node {
	fs := c.Followers()
	return fs[rng.IntN(len(fs))]
}

// partition cuts one node off from the others, both ways.
func partition(c *servertest.Cluster, rng *rand.Rand) func() {
	v := victim(c, rng)
	c.Net().Isolate(v.ID())
	time.Sleep(between(rng, time.Second, 3*time.Second))
	return c.Net().Heal
}

// oneWay loses the messages from the leader to a follower, or back.
func oneWay(c *servertest.Cluster, rng *rand.Rand) func() {
	l, f := c.Leader(), follower(c, rng)
	if rng.IntN(2) == 0 {
		c.Net().Block(l.ID(), f.ID())
	} else {
		c.Net().Block(f.ID(), l.ID())
	}
	time.Sleep(between(rng, 2*time.Second, 4*time.Second))
	return c.Net().Heal
}

// crash stops a node without a leadership transfer, then starts it again.
func crash(c *servertest.Cluster, rng *rand.Rand) func() {
	v := victim(c, rng)
	c.Stop(v.Index())
	time.Sleep(between(rng, 500*time.Millisecond, 2*time.Second))
	return func() { c.Restart(v.Index()) }
}

// clockStep steps the leader's wall clock by 1–5 s either way for a while
// and back (both steps fall within its term, where leader time ignores
// them), and keeps the other nodes' clocks within ±200 ms: the skew bound
// allot is run with (docs/DESIGN.md, "Time"), so that a later leader's
// clock agrees.
func clockStep(c *servertest.Cluster, rng *rand.Rand) func() {
	l := c.Leader()
	for _, nd := range c.Running() {
		if nd != l {
			nd.Clock().Skew(between(rng, -200*time.Millisecond, 200*time.Millisecond))
		}
	}
	step := between(rng, time.Second, 5*time.Second)
	if rng.IntN(2) == 0 {
		step = -step
	}
	l.Clock().Skew(step)
	time.Sleep(between(rng, 500*time.Millisecond, 2*time.Second))
	return func() { l.Clock().Skew(0) }
}

// unknownOutcomes tells the leader's engine "outcome unknown" for a third
// of its proposals (which still commit) for a while.
func unknownOutcomes(c *servertest.Cluster, rng *rand.Rand) func() {
	o := c.Leader().Outcomes()
	o.SetRate(0.3)
	time.Sleep(between(rng, time.Second, 3*time.Second))
	return func() { o.SetRate(0) }
}

// wipe loses a follower's data dir; it comes back empty and rejoins.
func wipe(c *servertest.Cluster, rng *rand.Rand) func() {
	c.Wipe(follower(c, rng).Index())
	return func() {}
}

// membership removes a follower and adds a new node in its place.
func membership(c *servertest.Cluster, rng *rand.Rand) func() {
	c.RemoveNode(follower(c, rng).Index())
	time.Sleep(between(rng, 200*time.Millisecond, time.Second))
	c.AddNode()
	return func() {}
}

// snapshotInstall makes a follower catch up from a snapshot.
func snapshotInstall(c *servertest.Cluster, rng *rand.Rand) func() {
	c.InstallSnapshot(follower(c, rng).Index())
	return func() {}
}
