package server

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	"allot/actors/domain"
)

// testNode is one node of an in-process cluster: its identity and
// addresses survive a stop, so that it restarts as the same member.
type testNode struct {
	id, dir            string
	httpAddr, raftAddr string // host:port; port 0 until the first start
	srv                *Server
	c                  *client
}

// testCluster is n nodes in this process on loopback TCP, each with its own
// data dir, formed as the README says: the first bootstraps, the others join.
type testCluster struct {
	t     *testing.T
	nodes []*testNode
	tune  func(*Config) // optional, applied to every node's config
	log   *testLog
}

// testLog passes the nodes' logs to the test's output until the test ends.
// Raft's transport may still log from a connection goroutine after its
// node has shut down, and writing to a finished test's output panics.
type testLog struct {
	mu     sync.Mutex
	w      io.Writer
	closed bool
}

func (l *testLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return len(p), nil
	}
	return l.w.Write(p)
}

func (l *testLog) close() {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
}

func newTestCluster(t *testing.T, n int, tune func(*Config)) *testCluster {
	t.Helper()
	tc := &testCluster{t: t, tune: tune, log: &testLog{w: t.Output()}}
	t.Cleanup(tc.log.close) // registered first, so it runs after the nodes stop
	for i := range n {
		tc.nodes = append(tc.nodes, &testNode{
			id: fmt.Sprintf("n%d", i+1), dir: t.TempDir(), httpAddr: "127.0.0.1:0", raftAddr: "127.0.0.1:0",
		})
	}
	tc.start(tc.nodes[0], true, nil)
	waitFor(t, 10*time.Second, func() bool { return tc.nodes[0].srv.Node().IsLeader() })
	for _, nd := range tc.nodes[1:] {
		tc.start(nd, false, []string{"http://" + tc.nodes[0].httpAddr})
	}
	tc.waitConverged()
	return tc
}

// config is a node's configuration with timeouts fit for tests on a busy
// machine: elections in a few hundred milliseconds, writes that give up
// after a few seconds.
func (tc *testCluster) config(nd *testNode, bootstrap bool) Config {
	cfg := DefaultConfig()
	cfg.NodeID, cfg.DataDir, cfg.HTTPAddr, cfg.RaftAddr = nd.id, nd.dir, nd.httpAddr, nd.raftAddr
	cfg.Bootstrap = bootstrap
	cfg.AuthSecret = testSecret
	cfg.JoinTimeout = 20 * time.Second
	cfg.Logger = slog.New(slog.NewTextHandler(tc.log, &slog.HandlerOptions{Level: slog.LevelError})).With("node", nd.id)
	cfg.HTTP.RequestTimeout = 3 * time.Second
	cfg.HTTP.RateLimit.PerSecond = 0
	cfg.HTTP.IPRateLimit.PerSecond = 0 // every test client is 127.0.0.1
	cc := &cfg.Cluster
	cc.HeartbeatTimeout = 300 * time.Millisecond
	cc.ElectionTimeout = 300 * time.Millisecond
	cc.LeaderLeaseTimeout = 200 * time.Millisecond
	cc.CommitTimeout = 10 * time.Millisecond
	cc.BarrierTimeout = 2 * time.Second
	cc.ApplyTimeout = 3 * time.Second
	cc.ReadTimeout = 2 * time.Second
	cc.ShutdownTimeout = 2 * time.Second
	if tc.tune != nil {
		tc.tune(&cfg)
	}
	return cfg
}

// start starts nd (again) and, with join set, asks those nodes to add it.
// It keeps the ports the node got the first time.
func (tc *testCluster) start(nd *testNode, bootstrap bool, join []string) {
	tc.t.Helper()
	s, err := Start(tc.config(nd, bootstrap))
	if err != nil {
		tc.t.Fatalf("start %s: %v", nd.id, err)
	}
	tc.t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	nd.srv = s
	nd.httpAddr, nd.raftAddr = s.HTTPAddr(), s.Node().RaftAddr()
	nd.c = newClient(tc.t, nd.httpAddr)
	if len(join) > 0 {
		if err := s.Join(context.Background(), join); err != nil {
			tc.t.Fatalf("join %s: %v", nd.id, err)
		}
	}
}

// restart starts a stopped node on its old data dir and addresses.
func (tc *testCluster) restart(nd *testNode) {
	tc.t.Helper()
	if nd.srv != nil {
		tc.t.Fatalf("%s is running", nd.id)
	}
	tc.start(nd, false, nil)
}

// stop shuts nd down gracefully.
func (tc *testCluster) stop(nd *testNode) {
	tc.t.Helper()
	if err := nd.srv.Shutdown(context.Background()); err != nil {
		tc.t.Fatalf("stop %s: %v", nd.id, err)
	}
	nd.srv = nil
}

// wipe removes a stopped node's data dir: it comes back with nothing.
func (tc *testCluster) wipe(nd *testNode) {
	tc.t.Helper()
	if err := os.RemoveAll(nd.dir); err != nil {
		tc.t.Fatal(err)
	}
	nd.dir = tc.t.TempDir()
}

func (tc *testCluster) running() []*testNode {
	var out []*testNode
	for _, nd := range tc.nodes {
		if nd.srv != nil {
			out = append(out, nd)
		}
	}
	return out
}

// leader waits for a running node to lead (past its barrier) and returns it.
func (tc *testCluster) leader() *testNode {
	tc.t.Helper()
	var l *testNode
	waitFor(tc.t, 15*time.Second, func() bool {
		for _, nd := range tc.running() {
			if nd.srv.Node().IsLeader() {
				l = nd
				return true
			}
		}
		return false
	})
	return l
}

// followers returns the running nodes other than the leader.
func (tc *testCluster) followers() []*testNode {
	l := tc.leader()
	var out []*testNode
	for _, nd := range tc.running() {
		if nd != l {
			out = append(out, nd)
		}
	}
	return out
}

// waitConverged waits until every running node is ready, knows every
// running node as a voter with its HTTP address, and holds the same
// committed state.
func (tc *testCluster) waitConverged() {
	tc.t.Helper()
	var last string
	ok := poll(20*time.Second, func() bool {
		nodes := tc.running()
		hashes := map[[32]byte]bool{}
		for _, nd := range nodes {
			if err := nd.srv.Node().Ready(); err != nil {
				last = fmt.Sprintf("%s: %v", nd.id, err)
				return false
			}
			st := nd.srv.Node().Status()
			known := 0
			for _, ns := range st.Nodes {
				if ns.Voter && ns.HTTPAddr != "" {
					known++
				}
			}
			if known < len(nodes) {
				last = fmt.Sprintf("%s knows %d voters with addresses: %+v", nd.id, known, st.Nodes)
				return false
			}
			hashes[nd.srv.Node().StateHash()] = true
		}
		if len(hashes) != 1 {
			last = fmt.Sprintf("%d different states", len(hashes))
			return false
		}
		return true
	})
	if !ok {
		tc.t.Fatalf("cluster did not converge: %s", last)
	}
	for _, nd := range tc.running() {
		checkInvariants(tc.t, nd.srv)
	}
}

// poll reports whether cond held within d.
func poll(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}

// countReservations counts user's reservations of resource in nd's
// committed state.
func countReservations(nd *testNode, resource, user string) int {
	n := 0
	_ = nd.srv.Node().Read(context.Background(), domain.ReadStale, func(st *domain.State) error {
		st.ListReservations(user, "", "", func(r domain.Reservation) bool {
			if r.ResourceID == resource {
				n++
			}
			return true
		})
		return nil
	})
	return n
}

// mustStatus fails unless the response has the status (and, when code is
// set, the problem code).
func mustStatus(t *testing.T, r response, err error, status int, code string) {
	t.Helper()
	if err != nil || r.Code != status || (code != "" && !bytes.Contains(r.Body, []byte(`"code":"`+code+`"`))) {
		t.Fatalf("got %d %s (%v), want %d %s", r.Code, r.Body, err, status, code)
	}
}

// retry sends a request until its answer is not a 503 (as a client that
// honours Retry-After would, only faster) and returns that answer.
func (c *client) retry(method, path, user string, body any, header ...string) response {
	c.t.Helper()
	var r response
	var err error
	ok := poll(15*time.Second, func() bool {
		r, err = c.do(method, path, user, body, header...)
		return err == nil && r.Code != http.StatusServiceUnavailable
	})
	if !ok {
		c.t.Fatalf("%s %s still failing: %d %s %v", method, path, r.Code, r.Body, err)
	}
	return r
}
