package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"allot/actors/domain"
	"allot/storage"
)

// leadershipLog records OnLeadership calls.
type leadershipLog struct {
	mu    sync.Mutex
	calls []bool
}

func (l *leadershipLog) record(leader bool) {
	l.mu.Lock()
	l.calls = append(l.calls, leader)
	l.mu.Unlock()
}

func (l *leadershipLog) get() []bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]bool(nil), l.calls...)
}

// testConfig is a lone node on loopback with timeouts fit for tests and no
// automatic snapshots.
func testConfig(t *testing.T, dir string, calls *leadershipLog) Config {
	cfg := DefaultConfig()
	cfg.NodeID = "n1"
	cfg.RaftAddr = "127.0.0.1:0"
	cfg.HTTPAddr = "127.0.0.1:18080"
	cfg.DataDir = dir
	cfg.Secret = []byte(testSecret)
	cfg.Bootstrap = true
	cfg.Logger = slog.New(slog.NewTextHandler(testOutput(t), &slog.HandlerOptions{Level: slog.LevelWarn}))
	cfg.HeartbeatTimeout = 50 * time.Millisecond
	cfg.ElectionTimeout = 50 * time.Millisecond
	cfg.LeaderLeaseTimeout = 50 * time.Millisecond
	cfg.CommitTimeout = 5 * time.Millisecond
	cfg.SnapshotInterval = time.Hour
	cfg.SnapshotThreshold = 1 << 30
	cfg.TrailingLogs = 1
	cfg.BarrierTimeout = 2 * time.Second
	cfg.ApplyTimeout = 5 * time.Second
	cfg.ReadTimeout = 2 * time.Second
	cfg.ShutdownTimeout = 2 * time.Second
	if calls != nil {
		cfg.OnLeadership = calls.record
	}
	return cfg
}

func startNode(t *testing.T, cfg Config) *Node {
	t.Helper()
	n, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Shutdown() })
	return n
}

// waitFor polls cond until it returns nil or the deadline passes.
func waitFor(t *testing.T, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

type outcome struct {
	results []error
	err     error
}

// propose proposes events as one batch and waits for done.
func propose(t *testing.T, n *Node, events ...domain.Event) outcome {
	t.Helper()
	ch := make(chan outcome, 2)
	n.Propose(&domain.Batch{Events: events}, func(results []error, err error) { ch <- outcome{results, err} })
	select {
	case o := <-ch:
		return o
	case <-time.After(10 * time.Second):
		t.Fatal("done not called")
	}
	panic("unreachable")
}

// testSecret keys the handshake between test nodes.
const testSecret = "a cluster test secret of at least 32 bytes"

const t0 = int64(1_800_000_000) * 1e9

func putVoucher(id string, capacity int64) domain.Event {
	return domain.Event{Type: domain.EvPutResource, At: t0, ResourceID: id,
		Spec: domain.Spec{Kind: domain.KindVoucher, Capacity: capacity, HoldSeconds: 900}}
}

func reserve(resource, id, user string) domain.Event {
	at := t0 + 1e9
	return domain.Event{Type: domain.EvReserve, At: at, ResourceID: resource, Reservation: domain.Reservation{
		ID: id, ResourceID: resource, Kind: domain.KindVoucher, User: user, Quantity: 1,
		Status: domain.StatusHeld, CreatedAt: at, ExpiresAt: at + 900e9, UpdatedAt: at,
	}}
}

func wantApplied(t *testing.T, o outcome, n int) {
	t.Helper()
	if o.err != nil || len(o.results) != n {
		t.Fatalf("outcome %v, %d results; want %d applied", o.err, len(o.results), n)
	}
	for i, err := range o.results {
		if err != nil {
			t.Fatalf("event %d refused: %v", i, err)
		}
	}
}

// held reads how many units of resource are held at consistency c.
func held(n *Node, c domain.Consistency, resource string) (int64, error) {
	var h int64
	err := n.Read(context.Background(), c, func(st *domain.State) error {
		r, ok := st.Resource(resource)
		if !ok {
			return fmt.Errorf("resource %s: %w", resource, domain.ErrNotFound)
		}
		h = r.Held
		return nil
	})
	return h, err
}

func TestNodeLifecycle(t *testing.T) {
	dir := t.TempDir()
	var calls leadershipLog
	n := startNode(t, testConfig(t, dir, &calls))
	waitFor(t, "leader ready", n.Ready)
	if !n.IsLeader() {
		t.Fatal("ready lone node is not the leader")
	}
	if got := calls.get(); len(got) != 1 || !got[0] {
		t.Fatalf("OnLeadership calls %v, want [true]", got)
	}

	wantApplied(t, propose(t, n, putVoucher("v1", 10)), 1)
	wantApplied(t, propose(t, n, reserve("v1", "r1", "alice"), reserve("v1", "r2", "bob"), reserve("v1", "r3", "carol")), 3)
	// A duplicate id is refused by the rules, counted, and changes nothing.
	o := propose(t, n, reserve("v1", "r4", "dave"), reserve("v1", "r1", "erin"))
	if o.err != nil || len(o.results) != 2 || o.results[0] != nil || !errors.Is(o.results[1], domain.ErrAlreadyExists) {
		t.Fatalf("outcome %v %v, want [nil, ErrAlreadyExists]", o.results, o.err)
	}
	if v := n.FSM().Violations(); v != 1 {
		t.Fatalf("%d violations, want 1", v)
	}
	for _, c := range []domain.Consistency{domain.ReadStale, domain.ReadLeader, domain.ReadLinearizable} {
		if h, err := held(n, c, "v1"); err != nil || h != 4 {
			t.Fatalf("consistency %d: held %d, %v; want 4", c, h, err)
		}
	}
	if _, err := held(n, domain.ReadLinearizable, "nope"); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("read of an unknown resource: %v", err)
	}

	st := n.Status()
	if st.State != "leader" || st.LeaderID != "n1" || st.LeaderHTTPAddr != "127.0.0.1:18080" ||
		st.RaftAddr != n.RaftAddr() || st.Term == 0 || st.CommitIndex == 0 || st.Violations != 1 {
		t.Fatalf("status %+v", st)
	}
	if len(st.Nodes) != 1 || st.Nodes[0] != (NodeStatus{ID: "n1", RaftAddr: n.RaftAddr(), HTTPAddr: "127.0.0.1:18080", Voter: true, State: "leader"}) {
		t.Fatalf("nodes %+v", st.Nodes)
	}

	// Snapshot, then more entries after it: a restart needs both.
	if err := n.Raft().Snapshot().Error(); err != nil {
		t.Fatal(err)
	}
	wantApplied(t, propose(t, n, reserve("v1", "r5", "frank")), 1)
	wantApplied(t, propose(t, n, reserve("v1", "r6", "grace")), 1)
	before := hashOf(n.FSM())

	if err := n.Shutdown(); err != nil {
		t.Fatal(err)
	}
	if err := n.Shutdown(); err != nil {
		t.Fatalf("second Shutdown: %v", err)
	}
	if got := calls.get(); len(got) != 2 || got[1] {
		t.Fatalf("OnLeadership calls %v, want [true false]", got)
	}
	snaps, err := os.ReadDir(filepath.Join(dir, storage.SnapshotsDir))
	if err != nil || len(snaps) != 1 {
		t.Fatalf("snapshots dir: %v, %v", snaps, err)
	}

	cfg := testConfig(t, dir, &calls)
	cfg.Bootstrap = false
	cfg.RaftAddr = n.RaftAddr() // the same addresses: no new member record
	n = startNode(t, cfg)
	waitFor(t, "leader ready after restart", n.Ready)
	if got := calls.get(); len(got) != 3 || !got[2] {
		t.Fatalf("OnLeadership calls %v, want [true false true]", got)
	}
	if idx, _ := strconv.ParseUint(n.Raft().Stats()["last_snapshot_index"], 10, 64); idx == 0 {
		t.Fatal("restart did not restore the snapshot")
	}
	if hashOf(n.FSM()) != before {
		t.Fatal("state after restart differs")
	}
	if h, err := held(n, domain.ReadLinearizable, "v1"); err != nil || h != 6 {
		t.Fatalf("held %d, %v after restart; want 6", h, err)
	}
	wantApplied(t, propose(t, n, reserve("v1", "r7", "heidi")), 1)
	if h, err := held(n, domain.ReadLeader, "v1"); err != nil || h != 7 {
		t.Fatalf("held %d, %v; want 7", h, err)
	}
}

// A node that never leads (no bootstrap, no peers) refuses writes and
// reads without enqueuing anything: it has never caught up with a leader, so
// not even its stale state is an answer (see catchup.go).
func TestNodeNotReady(t *testing.T) {
	cfg := testConfig(t, t.TempDir(), nil)
	cfg.Bootstrap = false
	n := startNode(t, cfg)

	var calls atomic.Int32
	got := make(chan error, 2)
	n.Propose(&domain.Batch{Events: []domain.Event{putVoucher("v1", 1)}}, func(results []error, err error) {
		calls.Add(1)
		got <- err
	})
	if err := <-got; !errors.Is(err, domain.ErrUnavailable) {
		t.Fatalf("Propose without a leader: %v", err)
	}
	for _, c := range []domain.Consistency{domain.ReadLeader, domain.ReadLinearizable} {
		if err := n.Read(context.Background(), c, func(*domain.State) error { return nil }); !errors.Is(err, domain.ErrUnavailable) {
			t.Fatalf("consistency %d without a leader: %v", c, err)
		}
	}
	if _, err := held(n, domain.ReadStale, "v1"); !errors.Is(err, domain.ErrUnavailable) {
		t.Fatalf("stale read: %v", err)
	}
	if err := n.Ready(); !errors.Is(err, domain.ErrUnavailable) {
		t.Fatalf("Ready without a leader: %v", err)
	}
	if err := n.Shutdown(); err != nil {
		t.Fatal(err)
	}
	if calls.Load() != 1 {
		t.Fatalf("done called %d times", calls.Load())
	}
}

// Proposals racing with Shutdown all get exactly one answer, and none
// after Shutdown is enqueued.
func TestNodeShutdownWithProposals(t *testing.T) {
	n := startNode(t, testConfig(t, t.TempDir(), nil))
	waitFor(t, "leader ready", n.Ready)
	wantApplied(t, propose(t, n, putVoucher("v1", 1_000_000)), 1)

	const proposers, each = 4, 50
	var answered sync.WaitGroup
	var calls [proposers * each]atomic.Int32
	var outcomes sync.Map
	answered.Add(proposers * each)
	started := make(chan struct{})
	for p := range proposers {
		go func() {
			for i := range each {
				k := p*each + i
				if i == each/4 && p == 0 {
					close(started)
				}
				ev := reserve("v1", fmt.Sprintf("r%05d", k), "u"+strconv.Itoa(k))
				n.Propose(&domain.Batch{Events: []domain.Event{ev}}, func(results []error, err error) {
					if calls[k].Add(1) == 1 {
						outcomes.Store(k, outcome{results, err})
						answered.Done()
					}
				})
			}
		}()
	}
	<-started
	if err := n.Shutdown(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { answered.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("some proposals were never answered")
	}
	outcomes.Range(func(k, v any) bool {
		o := v.(outcome)
		switch {
		case o.err == nil:
			wantApplied(t, o, 1)
		case !errors.Is(o.err, domain.ErrUnavailable) && !errors.Is(o.err, domain.ErrOutcomeUnknown):
			t.Errorf("proposal %d: %v", k, o.err)
		}
		return true
	})
	for k := range calls {
		if c := calls[k].Load(); c != 1 {
			t.Fatalf("proposal %d: done called %d times", k, c)
		}
	}

	late := make(chan error, 1)
	n.Propose(&domain.Batch{Events: []domain.Event{reserve("v1", "late", "late")}}, func(_ []error, err error) { late <- err })
	if err := <-late; !errors.Is(err, domain.ErrUnavailable) {
		t.Fatalf("Propose after Shutdown: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	good := DefaultConfig()
	good.Secret = []byte(testSecret)
	if err := good.Validate(); err != nil {
		t.Fatalf("DefaultConfig: %v", err)
	}
	if d := good.leaseDuration(); d != good.HeartbeatTimeout*4/5 {
		t.Fatalf("default lease %v, want 4/5 of the heartbeat timeout", d)
	}
	good.LeaseDuration = good.HeartbeatTimeout * 9 / 10
	if err := good.Validate(); err != nil || good.leaseDuration() != good.LeaseDuration {
		t.Fatalf("lease of 9/10 of the heartbeat timeout: %v", err)
	}
	good.RaftAddr, good.RaftAdvertise = "0.0.0.0:7000", "allot-0.allot-peers:7000"
	if err := good.Validate(); err != nil {
		t.Fatalf("wildcard raft addr with a named advertise address: %v", err)
	}
	for name, mutate := range map[string]func(*Config){
		"no id":             func(c *Config) { c.NodeID = "" },
		"wildcard addr":     func(c *Config) { c.RaftAddr = "0.0.0.0:7000" },
		"hostname addr":     func(c *Config) { c.RaftAddr = "localhost:7000" },
		"no data dir":       func(c *Config) { c.DataDir = "" },
		"advertise port 0":  func(c *Config) { c.RaftAddr, c.RaftAdvertise = "0.0.0.0:0", "allot-0:0" },
		"advertise no host": func(c *Config) { c.RaftAdvertise = ":7000" },
		"lease too long":    func(c *Config) { c.LeaderLeaseTimeout = 2 * c.HeartbeatTimeout },
		"answer lease past 9/10 of the heartbeat timeout": func(c *Config) {
			c.LeaseDuration = c.HeartbeatTimeout*9/10 + time.Millisecond
		},
		"negative answer lease": func(c *Config) { c.LeaseDuration = -time.Second },
		"no apply limit":        func(c *Config) { c.ApplyTimeout = 0 },
		"no retries":            func(c *Config) { c.BarrierRetries = 0 },
		"no secret":             func(c *Config) { c.Secret = nil },
		"tls without a ca":      func(c *Config) { c.TLSCertFile, c.TLSKeyFile = "n.pem", "n.key" },
	} {
		c := DefaultConfig()
		c.Secret = []byte(testSecret)
		mutate(&c)
		if err := c.Validate(); !errors.Is(err, domain.ErrInvalidArgument) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// Reads racing with writes: a linearizable or leader read started after a
// write was acknowledged sees it.
func TestNodeReadsSeeAcknowledgedWrites(t *testing.T) {
	n := startNode(t, testConfig(t, t.TempDir(), nil))
	waitFor(t, "leader ready", n.Ready)
	wantApplied(t, propose(t, n, putVoucher("v1", 1_000_000)), 1)

	const writes, readers = 60, 6
	var acked atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var reads atomic.Int64
	errs := make(chan error, readers)
	for r := range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := domain.ReadLeader
			if r%2 == 1 {
				c = domain.ReadLinearizable
			}
			for {
				select {
				case <-stop:
					return
				default:
				}
				want := acked.Load()
				h, err := held(n, c, "v1")
				if err == nil && h < want {
					err = fmt.Errorf("consistency %d: held %d, but %d writes were acknowledged", c, h, want)
				}
				if err != nil {
					errs <- err
					return
				}
				reads.Add(1)
			}
		}()
	}
	for i := range writes {
		wantApplied(t, propose(t, n, reserve("v1", fmt.Sprintf("r%03d", i), fmt.Sprintf("u%03d", i))), 1)
		acked.Add(1)
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	t.Logf("%d reads, %d leadership checks", reads.Load(), n.verifier.rounds.Load())
}

// A leader is ready to the outside only once OnLeadership(true) has
// returned: before that the engine takes no writes, and a client told
// "ready" would be refused "not the leader" by the leader itself.
func TestReadyWaitsForOnLeadership(t *testing.T) {
	cfg := testConfig(t, t.TempDir(), nil)
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	cfg.OnLeadership = func(leader bool) {
		if leader {
			once.Do(func() { close(entered); <-release })
		}
	}
	n := startNode(t, cfg)
	var released sync.Once
	free := func() { released.Do(func() { close(release) }) }
	t.Cleanup(free) // before the node's shutdown, which waits for the call
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("OnLeadership(true) not called")
	}
	if err := n.Ready(); err == nil || !errors.Is(err, domain.ErrUnavailable) {
		t.Fatalf("Ready during OnLeadership(true): %v, want unavailable", err)
	}
	if n.IsLeader() {
		t.Fatal("IsLeader during OnLeadership(true)")
	}
	free()
	waitFor(t, "ready once OnLeadership returned", n.Ready)
	if !n.IsLeader() {
		t.Fatal("ready lone node is not the leader")
	}
}
