// Package servertest runs a cluster of full allot nodes (server.Start: Raft,
// engine, HTTP API) inside one test process, on loopback TCP, with every
// seam of package faultkit wired in: a fault-injecting Raft network, a clock
// per node, a slow log store and a log wrapper that hides commit outcomes.
// It follows hashicorp/raft's MakeCluster: one value holding the nodes,
// helpers that wait for conditions (never sleep for them), t.Helper
// everywhere, and t.Cleanup to stop it all.
//
//	c := servertest.MakeCluster(t, 3, servertest.Options{})
//	l := c.Leader()
//	c.Net().Isolate(l.ID())
//	nl := c.Leader() // waits for the majority to elect a new one
//	c.Net().Heal()
//	c.WaitConverged()
//
// The Cluster's methods fail the test (t.Fatal) when they cannot do what
// they say within Options.Timeout, so call them from the test's goroutine
// only. Node accessors, Net, Clock and Client.Do are safe from any
// goroutine. docs/TESTING.md describes each fault and what it models.
package servertest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"allot/actors"
	"allot/actors/domain"
	"allot/cluster/faultkit"
	"allot/cmd/allot/server"
)

// Options tunes a test cluster; the zero value is a good start.
type Options struct {
	// Seed seeds every random fault: the Network's drops and each node's
	// UnknownOutcomes. Log it, so that a failing run can be replayed.
	Seed uint64
	// Timeout bounds every wait of the kit (a leader, convergence, a join,
	// a shutdown). Zero means 30s, generous for a loaded 2-core machine.
	Timeout time.Duration
	// LogLevel is the lowest level of the nodes' own logs that reaches the
	// test's output; nil means warnings and errors.
	LogLevel slog.Leveler
	// Tune, when set, changes a node's configuration after the kit has
	// filled it in, on every start of node index. It may replace the kit's
	// seams; the Node then reports nil for the injector it replaced.
	Tune func(index int, cfg *server.Config)
}

func (o *Options) fill() {
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	if o.LogLevel == nil {
		o.LogLevel = slog.LevelWarn
	}
}

// Secret is the auth secret of every test cluster: tokens minted with it
// (Cluster.Token, httpapi.MintToken) are accepted by every node.
var Secret = []byte("servertest-secret-0123456789abcdef")

// Cluster is a set of allot nodes in this process. Node indexes count from
// 0 in the order nodes were made and stay valid after a node is stopped or
// removed; node ids are "n1", "n2", ...
type Cluster struct {
	t    testing.TB
	opts Options
	net  *faultkit.Network
	logs *testLog
	hc   *http.Client

	mu     sync.Mutex
	nodes  []*Node
	tokens map[[2]string]string
}

// MakeCluster starts n nodes, each with a data dir of its own (t.TempDir)
// and ports picked by the system: node 0 bootstraps, the others join it,
// and MakeCluster returns once all have converged. Everything is stopped
// when the test ends.
func MakeCluster(t testing.TB, n int, opts Options) *Cluster {
	t.Helper()
	if n < 1 {
		t.Fatalf("servertest: a cluster of %d nodes", n)
	}
	opts.fill()
	tr := &http.Transport{MaxIdleConnsPerHost: 64, IdleConnTimeout: 30 * time.Second}
	c := &Cluster{
		t: t, opts: opts, net: faultkit.NewNetwork(opts.Seed),
		logs:   &testLog{w: t.Output()},
		hc:     &http.Client{Transport: tr, Timeout: 15 * time.Second},
		tokens: make(map[[2]string]string),
	}
	// Cleanups run last first: the log closes after the nodes stopped.
	t.Cleanup(c.logs.close)
	t.Cleanup(tr.CloseIdleConnections)
	t.Cleanup(c.stopAll)
	for range n {
		c.newNode()
	}
	first := c.Node(0)
	c.start(first, true, nil)
	c.WaitFor(first.id+" leads", func() error {
		if !first.RaftNode().IsLeader() {
			return errors.New("not yet")
		}
		return nil
	})
	for _, nd := range c.Nodes()[1:] {
		c.start(nd, false, []string{first.URL()})
	}
	c.WaitConverged()
	return c
}

// config is node nd's configuration: the seams wired, Raft timeouts fit
// for tests on a busy machine (elections in a few hundred milliseconds,
// writes that give up after a few seconds), few trailing log entries so
// that a snapshot install is cheap to cause.
func (c *Cluster) config(nd *Node, bootstrap bool) server.Config {
	cfg := server.DefaultConfig()
	c.mu.Lock()
	cfg.NodeID, cfg.DataDir, cfg.HTTPAddr, cfg.RaftAddr = nd.id, nd.dir, nd.httpAddr, nd.raftAddr
	c.mu.Unlock()
	cfg.Bootstrap = bootstrap
	cfg.AuthSecret = Secret
	cfg.JoinTimeout = c.opts.Timeout
	cfg.Logger = slog.New(slog.NewTextHandler(c.logs, &slog.HandlerOptions{Level: c.opts.LogLevel})).With("node", nd.id)
	cfg.HTTP.RequestTimeout = 3 * time.Second
	cfg.HTTP.RateLimit.PerSecond = 0
	cfg.HTTP.IPRateLimit.PerSecond = 0 // every test client is 127.0.0.1
	cfg.Engine.Clock = nd.clock
	cc := &cfg.Cluster
	cc.HeartbeatTimeout = 300 * time.Millisecond
	cc.ElectionTimeout = 300 * time.Millisecond
	cc.LeaderLeaseTimeout = 200 * time.Millisecond
	cc.CommitTimeout = 10 * time.Millisecond
	cc.TransportTimeout = 2 * time.Second
	cc.TrailingLogs = 64
	cc.BarrierTimeout = 2 * time.Second
	cc.ApplyTimeout = 3 * time.Second
	cc.ReadTimeout = 2 * time.Second
	cc.ShutdownTimeout = 2 * time.Second
	cc.WrapStream = c.net.Wrap(nd.id)
	return cfg
}

func (c *Cluster) newNode() *Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	i := len(c.nodes)
	nd := &Node{c: c, index: i, id: fmt.Sprintf("n%d", i+1), dir: c.t.TempDir(),
		clock: faultkit.NewClock(), httpAddr: "127.0.0.1:0", raftAddr: "127.0.0.1:0"}
	c.nodes = append(c.nodes, nd)
	return nd
}

// start starts nd on its data dir and, with join set, asks those nodes to
// add it. A node keeps the ports it got the first time.
func (c *Cluster) start(nd *Node, bootstrap bool, join []string) {
	c.t.Helper()
	cfg := c.config(nd, bootstrap)
	c.mu.Lock()
	seed := c.opts.Seed ^ uint64(nd.index)<<32 ^ uint64(nd.runs)
	nd.runs++
	c.mu.Unlock()
	var store *faultkit.SlowLogStore
	var outcomes *faultkit.UnknownOutcomes
	cfg.Cluster.WrapLogStore = func(s raft.LogStore) raft.LogStore {
		store = faultkit.NewSlowLogStore(s)
		return store
	}
	cfg.WrapLog = func(l actors.Log) actors.Log {
		outcomes = faultkit.NewUnknownOutcomes(l, seed)
		return outcomes
	}
	if c.opts.Tune != nil {
		c.opts.Tune(nd.index, &cfg)
	}
	srv, err := server.Start(cfg)
	// A restarted node wants its old ports back; another process may hold
	// one for a moment (an outgoing connection's ephemeral port).
	for deadline := time.Now().Add(c.opts.Timeout); errors.Is(err, syscall.EADDRINUSE) && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
		srv, err = server.Start(cfg)
	}
	if err != nil {
		c.t.Fatalf("servertest: start %s: %v", nd.id, err)
	}
	c.mu.Lock()
	nd.srv, nd.cfg, nd.store, nd.outcomes = srv, cfg, store, outcomes
	nd.httpAddr, nd.raftAddr = srv.HTTPAddr(), srv.Node().RaftAddr()
	c.mu.Unlock()
	if len(join) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.opts.Timeout)
	defer cancel()
	if err := srv.Join(ctx, join); err != nil {
		c.t.Fatalf("servertest: join %s via %v: %v", nd.id, join, err)
	}
}

// detach marks nd stopped and returns its server; it fails the test if nd
// is not running.
func (c *Cluster) detach(nd *Node) *server.Server {
	c.t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if nd.srv == nil {
		c.t.Fatalf("servertest: %s is not running", nd.id)
	}
	srv := nd.srv
	nd.srv = nil
	return srv
}

// crash stops srv as a crash would, as far as one process allows: Raft
// stops first, so that a leader hands nothing over and answers nothing
// more, and its connections close; then HTTP and storage shut down.
func (c *Cluster) crash(srv *server.Server) error {
	ctx, cancel := context.WithTimeout(context.Background(), c.opts.Timeout)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- srv.Node().Raft().Shutdown().Error() }()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		err = fmt.Errorf("raft shutdown: %w", ctx.Err())
	}
	return errors.Join(err, srv.Shutdown(ctx))
}

func (c *Cluster) stopAll() {
	var wg sync.WaitGroup
	for _, nd := range c.Running() {
		c.mu.Lock()
		srv := nd.srv
		nd.srv = nil
		c.mu.Unlock()
		wg.Go(func() {
			if err := c.crash(srv); err != nil {
				c.t.Errorf("servertest: stop %s: %v", nd.id, err)
			}
		})
	}
	wg.Wait()
}

// Net is the Raft network between the nodes.
func (c *Cluster) Net() *faultkit.Network { return c.net }

// Node is node i (0-based).
func (c *Cluster) Node(i int) *Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	if i < 0 || i >= len(c.nodes) {
		c.t.Fatalf("servertest: no node %d in a cluster of %d", i, len(c.nodes))
	}
	return c.nodes[i]
}

// Nodes is every node ever made, running or not, removed or not.
func (c *Cluster) Nodes() []*Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*Node(nil), c.nodes...)
}

// Running is the nodes that run now.
func (c *Cluster) Running() []*Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*Node
	for _, nd := range c.nodes {
		if nd.srv != nil {
			out = append(out, nd)
		}
	}
	return out
}

// Clock is node i's wall clock; it keeps its offset across restarts, as a
// machine's clock does.
func (c *Cluster) Clock(i int) *faultkit.Clock { return c.Node(i).clock }

// WaitFor polls cond until it returns nil and fails the test if it has not
// within Options.Timeout, with what and cond's last error.
func (c *Cluster) WaitFor(what string, cond func() error) {
	c.t.Helper()
	deadline := time.Now().Add(c.opts.Timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("servertest: %s: not within %v: %v", what, c.opts.Timeout, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// readyLeader is the one running node that leads and has passed its
// barrier, or nil (none, or more than one for a moment).
func (c *Cluster) readyLeader() *Node {
	var l *Node
	for _, nd := range c.Running() {
		if srv := nd.Server(); srv != nil && srv.Node().IsLeader() {
			if l != nil {
				return nil
			}
			l = nd
		}
	}
	return l
}

// Leader waits until exactly one running node is a ready leader (an old
// leader cut off from the rest may think it leads until its lease runs
// out) and returns it.
func (c *Cluster) Leader() *Node {
	c.t.Helper()
	var l *Node
	c.WaitFor("a single ready leader", func() error {
		if l = c.readyLeader(); l == nil {
			return errors.New("no leader, or more than one")
		}
		return nil
	})
	return l
}

// Followers is the running nodes other than the Leader.
func (c *Cluster) Followers() []*Node {
	c.t.Helper()
	l := c.Leader()
	var out []*Node
	for _, nd := range c.Running() {
		if nd != l {
			out = append(out, nd)
		}
	}
	return out
}

// Stop stops node i the way a crash would: no leadership transfer, Raft
// gone before anything else, its connections closed. Its data dir stays.
func (c *Cluster) Stop(i int) {
	c.t.Helper()
	nd := c.Node(i)
	if err := c.crash(c.detach(nd)); err != nil {
		c.t.Fatalf("servertest: stop %s: %v", nd.id, err)
	}
}

// Restart starts stopped node i again on its data dir and addresses. It
// does not wait for the node to catch up: use Leader or WaitConverged.
func (c *Cluster) Restart(i int) {
	c.t.Helper()
	nd := c.Node(i)
	if nd.Running() {
		c.t.Fatalf("servertest: restart %s: it is running", nd.id)
	}
	c.start(nd, false, nil)
}

// Wipe stops node i (if it runs), deletes its data dir and starts it
// again, empty, on the same addresses, asking the other running nodes to
// let it join: an operator replacing a lost disk. What the cluster makes
// of a node that lost its data is the cluster's business; Wipe does what
// an operator would.
func (c *Cluster) Wipe(i int) {
	c.t.Helper()
	nd := c.Node(i)
	if nd.Running() {
		if err := c.crash(c.detach(nd)); err != nil {
			c.t.Fatalf("servertest: stop %s: %v", nd.id, err)
		}
	}
	if err := os.RemoveAll(nd.dir); err != nil {
		c.t.Fatalf("servertest: wipe %s: %v", nd.id, err)
	}
	c.start(nd, false, c.urlsExcept(nd))
}

// AddNode starts a new, empty node and has it join the cluster through the
// running nodes; it returns once the node is a member.
func (c *Cluster) AddNode() *Node {
	c.t.Helper()
	nd := c.newNode()
	c.start(nd, false, c.urlsExcept(nd))
	return nd
}

func (c *Cluster) urlsExcept(nd *Node) []string {
	c.t.Helper()
	var urls []string
	for _, o := range c.Running() {
		if o != nd {
			urls = append(urls, o.URL())
		}
	}
	if len(urls) == 0 {
		c.t.Fatalf("servertest: no running node for %s to join", nd.id)
	}
	return urls
}

// RemoveNode takes node i out of the cluster (the leader's RemoveServer,
// retried as leadership moves; a leader being removed hands over first)
// and then stops it if it runs.
func (c *Cluster) RemoveNode(i int) {
	c.t.Helper()
	nd := c.Node(i)
	c.WaitFor("remove "+nd.id, func() error {
		l := c.readyLeader()
		if l == nil {
			return errors.New("no ready leader")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err := l.RaftNode().RemoveServer(ctx, nd.id)
		switch {
		case err == nil, errors.Is(err, domain.ErrNotFound):
			return nil
		case errors.Is(err, domain.ErrUnavailable), errors.Is(err, domain.ErrNotLeader), errors.Is(err, domain.ErrOutcomeUnknown),
			errors.Is(err, domain.ErrInvalidState): // a voter not heard from (yet): the removal would lose the quorum
			return err
		}
		c.t.Fatalf("servertest: remove %s via %s: %v", nd.id, l.id, err)
		return nil
	})
	c.mu.Lock()
	nd.removed = true
	c.mu.Unlock()
	if nd.Running() {
		if err := c.crash(c.detach(nd)); err != nil {
			c.t.Fatalf("servertest: stop removed %s: %v", nd.id, err)
		}
	}
}

// TransferLeadership asks the leader to hand over to another voter until
// one leads, and returns the new leader.
func (c *Cluster) TransferLeadership() *Node {
	c.t.Helper()
	old := c.Leader()
	var nl *Node
	c.WaitFor("leadership away from "+old.id, func() error {
		if nl = c.readyLeader(); nl != nil && nl != old {
			return nil
		}
		if srv := old.Server(); srv != nil && srv.Node().Raft().State() == raft.Leader {
			if err := awaitFuture(srv.Node().Raft().LeadershipTransfer(), 5*time.Second); err != nil {
				return fmt.Errorf("transfer: %w", err)
			}
		}
		return errors.New("no new ready leader yet")
	})
	return nl
}

// awaitFuture waits for f at most d.
func awaitFuture(f raft.Future, d time.Duration) error {
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		return fmt.Errorf("no answer within %v", d)
	}
}
