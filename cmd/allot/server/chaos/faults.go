package chaos

import (
	"math/rand/v2"
	"time"

	"allot/cmd/allot/server/servertest"
)

// Fault is one kind of failure the schedule injects into an in-process
// cluster. Inject starts it and returns what ends it.
type Fault struct {
	Name string
	// Skew is the clock skew the fault may cause between nodes; the checker
	// allows this much (plus its margin) between leader time and real time.
	Skew   time.Duration
	Inject func(c *servertest.Cluster, rng *rand.Rand) (heal func())
}

// Faults are the in-process kinds, one per name. Kill and pause of real
// processes are in cmd/allot's e2e suite.
var Faults = []Fault{
	{Name: "partition", Inject: partition},
	{Name: "oneway", Inject: oneWay},
	{Name: "kill", Inject: crash},
	{Name: "clockstep", Skew: 2 * time.Second, Inject: clockStep},
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

// clockStep moves one node's wall clock by up to 2 s either way (where it
// stays: a machine whose clock is off), and sometimes hands it leadership.
func clockStep(c *servertest.Cluster, rng *rand.Rand) func() {
	v := victim(c, rng)
	v.Clock().Skew(between(rng, -2*time.Second, 2*time.Second))
	if rng.IntN(2) == 0 {
		c.TransferLeadership()
	}
	time.Sleep(between(rng, 500*time.Millisecond, 2*time.Second))
	return func() {}
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
