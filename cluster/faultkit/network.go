package faultkit

import (
	"math/rand/v2"
	"sync"
	"time"
)

// Network is the Raft network between a set of nodes, with faults a test
// switches on and off. Give each node's cluster.Config.WrapStream the
// function Wrap(nodeID) returns; from then on every byte one node sends to
// another passes through the Network, which decides whether it arrives, and
// when.
//
// Faults are about messages in one direction: Block(a, b) loses what a
// sends to b (requests on connections a dialled, responses on connections b
// dialled) while b's messages still reach a. A lost message is black-holed,
// not refused: the sender's write succeeds and its RPC waits for an answer
// until its own timeout, as behind a real partition. Faults apply to
// connections already open (Raft keeps a pool of them) as well as to new
// ones, and they accumulate until Heal.
//
// A TCP stream cannot skip bytes, so once a message on a connection is lost
// everything after it on that connection is lost too: the connection is
// broken, and Heal closes it, so that Raft dials afresh.
type Network struct {
	mu         sync.Mutex
	addrs      map[string]string // advertised Raft address -> node id
	partitions []map[string]int  // node id -> group; a node not listed is in group -1
	links      map[link]*linkFault
	stats      map[link]*LinkStats
	conns      map[*conn]struct{}
	rng        *rand.Rand
}

// link is one direction between two nodes.
type link struct{ from, to string }

// linkFault is what happens to messages on one link besides partitions.
type linkFault struct {
	blocked bool
	delay   time.Duration
	drop    float64
}

// LinkStats counts what the Network did with the messages (writes) of one
// direction between two nodes.
type LinkStats struct {
	// Sent is how many writes were passed on, Bytes their size.
	Sent, Bytes uint64
	// Delayed is how many of the writes passed on waited for a Delay.
	Delayed uint64
	// Lost is how many writes were black-holed: cut by a partition or a
	// Block, chosen by Drop, or written after an earlier loss on the same
	// connection.
	Lost uint64
	// Dropped is how many writes Drop's random draw chose (counted in Lost
	// too).
	Dropped uint64
}

// NewNetwork returns a network without faults. seed seeds the random
// source Drop draws from, so that a failing run can be replayed (as far as
// goroutine scheduling allows).
func NewNetwork(seed uint64) *Network {
	return &Network{
		addrs: make(map[string]string),
		links: make(map[link]*linkFault),
		stats: make(map[link]*LinkStats),
		conns: make(map[*conn]struct{}),
		rng:   rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
	}
}

// Partition cuts the network into groups: no message passes between two
// nodes of different groups, in either direction. Nodes named in no group
// form one more group, the rest (a node added later joins it). Earlier
// partitions stay in force; Heal lifts them all.
func (n *Network) Partition(groups ...[]string) {
	p := make(map[string]int)
	for g, ids := range groups {
		for _, id := range ids {
			p[id] = g
		}
	}
	n.mu.Lock()
	n.partitions = append(n.partitions, p)
	n.mu.Unlock()
}

// Isolate cuts each named node off from every other node: a partition in
// which each of them is a group of its own.
func (n *Network) Isolate(ids ...string) {
	groups := make([][]string, len(ids))
	for i, id := range ids {
		groups[i] = []string{id}
	}
	n.Partition(groups...)
}

// Block loses every message from node from to node to, while to's
// messages to from still arrive: a one-way partition.
func (n *Network) Block(from, to string) {
	n.mu.Lock()
	n.faultLocked(from, to).blocked = true
	n.mu.Unlock()
}

// Delay holds every message from node from to node to for d before it is
// sent on (latency; messages keep their order and are not spaced out, so
// throughput stays as it was). d replaces an earlier delay of the link.
func (n *Network) Delay(from, to string, d time.Duration) {
	n.mu.Lock()
	n.faultLocked(from, to).delay = d
	n.mu.Unlock()
}

// Drop loses each message from node from to node to with probability p
// (0 to 1), drawn from the Network's seeded source. As for any loss, the
// connection carrying it is broken from then on: the sender's RPC times
// out and Raft dials again, which is what message loss looks like to an
// RPC over TCP. p replaces an earlier rate of the link.
func (n *Network) Drop(from, to string, p float64) {
	n.mu.Lock()
	n.faultLocked(from, to).drop = p
	n.mu.Unlock()
}

// Heal lifts every fault, partitions and blocks as well as delays and
// drops, and closes every connection that lost a message, so that Raft
// reconnects at once instead of waiting for its timeouts.
func (n *Network) Heal() {
	n.mu.Lock()
	n.partitions = nil
	n.links = make(map[link]*linkFault)
	var broken []*conn
	for c := range n.conns {
		if c.broken.Load() {
			broken = append(broken, c)
		}
	}
	n.mu.Unlock()
	for _, c := range broken {
		_ = c.Close()
	}
}

// Stats reports what happened so far to the messages from node from to
// node to.
func (n *Network) Stats(from, to string) LinkStats {
	n.mu.Lock()
	defer n.mu.Unlock()
	if st := n.stats[link{from, to}]; st != nil {
		return *st
	}
	return LinkStats{}
}

func (n *Network) faultLocked(from, to string) *linkFault {
	l := link{from, to}
	f := n.links[l]
	if f == nil {
		f = &linkFault{}
		n.links[l] = f
	}
	return f
}

func (n *Network) statsLocked(l link) *LinkStats {
	st := n.stats[l]
	if st == nil {
		st = &LinkStats{}
		n.stats[l] = st
	}
	return st
}

// cutLocked reports whether a partition or a block separates from from to.
// A peer the Network does not know ("") is never cut.
func (n *Network) cutLocked(from, to string) bool {
	if from == "" || to == "" {
		return false
	}
	for _, p := range n.partitions {
		gf, ok := p[from]
		if !ok {
			gf = -1
		}
		gt, ok := p[to]
		if !ok {
			gt = -1
		}
		if gf != gt {
			return true
		}
	}
	f := n.links[link{from, to}]
	return f != nil && f.blocked
}

// verdict is what becomes of one write.
type verdict struct {
	lost  bool
	delay time.Duration
}

// judge decides the fate of a write of size bytes from from to to, and
// counts it, unless it is to wait for a delay: deliver counts it then.
func (n *Network) judge(from, to string, size int) verdict {
	n.mu.Lock()
	defer n.mu.Unlock()
	l := link{from, to}
	st := n.statsLocked(l)
	if n.cutLocked(from, to) {
		st.Lost++
		return verdict{lost: true}
	}
	var delay time.Duration
	if f := n.links[l]; f != nil {
		if f.drop > 0 && n.rng.Float64() < f.drop {
			st.Lost++
			st.Dropped++
			return verdict{lost: true}
		}
		delay = f.delay
	}
	if delay == 0 {
		st.Sent++
		st.Bytes += uint64(size)
	}
	return verdict{delay: delay}
}

// deliver reports whether a delayed write, due now, is sent on, and counts
// it: a partition or block that began while it waited loses it.
func (n *Network) deliver(from, to string, size int) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	st := n.statsLocked(link{from, to})
	if n.cutLocked(from, to) {
		st.Lost++
		return false
	}
	st.Sent++
	st.Delayed++
	st.Bytes += uint64(size)
	return true
}

// countLost counts a write on a broken connection.
func (n *Network) countLost(from, to string) {
	n.mu.Lock()
	n.statsLocked(link{from, to}).Lost++
	n.mu.Unlock()
}

func (n *Network) register(addr, id string) {
	n.mu.Lock()
	n.addrs[addr] = id
	n.mu.Unlock()
}

// nodeAt is the id of the node advertising addr, "" if none.
func (n *Network) nodeAt(addr string) string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.addrs[addr]
}

func (n *Network) track(c *conn) {
	n.mu.Lock()
	n.conns[c] = struct{}{}
	n.mu.Unlock()
}

func (n *Network) forget(c *conn) {
	n.mu.Lock()
	delete(n.conns, c)
	n.mu.Unlock()
}
