package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"

	"allot/actors/domain"
	"allot/storage"
)

// Node is one member of an allot Raft group: hashicorp/raft over the stores
// of package storage, with the FSM holding the committed state. It is the
// replicated log the engine proposes to (Propose, View), the reader of
// committed state (Read) and the source of readiness and status.
type Node struct {
	cfg      Config
	logger   *slog.Logger
	stores   *storage.Stores
	raft     *raft.Raft
	fsm      *FSM
	verifier *verifier
	auditor  *auditor
	raftAddr string
	trans    *guardedTransport // Raft's transport, behind the vote guard
	stream   raft.StreamLayer  // Raft's, for hellos (log format, audit)
	// clusterID is the id every connection's handshake proves.
	clusterID *clusterID
	handshake *handshaker
	// logFormatRefusals counts the times this leader found a server that
	// does not understand the newer log format (logformat.go), for tests.
	logFormatRefusals atomic.Uint64

	// readyTerm is the term in which this node became leader and passed its
	// barrier, 0 when it is not a ready leader. One word, so that a reader
	// never sees "ready" paired with another term's barrier.
	readyTerm atomic.Uint64
	// servingTerm is readyTerm once OnLeadership(true) has returned for it:
	// only then does the engine take writes, so only then is a leader
	// ready to the outside (Ready, IsLeader).
	servingTerm atomic.Uint64
	closing     atomic.Bool

	// The leader lease (lease.go). epoch is the node's start, the zero of
	// its monotonic clock; leaseUntil is when the lease of readyTerm runs
	// out on that clock (0: no lease); transfers counts leadership
	// transfers under way. leaseMu orders renewals with changes of
	// readyTerm and transfers, and guards leaseFloor, the clock reading
	// before which no renewal counts.
	epoch      time.Time
	leaseMu    sync.Mutex
	leaseUntil atomic.Int64
	leaseFloor int64
	transfers  atomic.Int32

	metrics *nodeMetrics // nil without Config.Metrics
	// hadState records whether the data dir held Raft state at Start: a
	// restarted node, which needs no bootstrap or join.
	hadState bool
	// founding is the set this node committed to found a cluster with
	// (founding.go), nil until it does.
	founding founding
	// startIndex is the last index of the log (or snapshot) at Start, and
	// caughtUpOnce whether the node has applied that far since (catchup.go).
	startIndex   uint64
	caughtUpOnce atomic.Bool
	logStore     raft.LogStore // the one Raft uses

	pendingMu     sync.Mutex
	pending       map[*proposal]struct{}
	pendingClosed bool

	raftStarted chan struct{} // closed once n.raft is set
	raftStop    sync.Once     // see stopRaft
	raftStopErr error
	// removeMu serializes removals (RemoveServer): see its quorum check.
	removeMu sync.Mutex
	// raftStopped is set once Raft has shut down; Raft's own state can go
	// back from Shutdown to Follower when an RPC was being handled at that
	// moment (hashicorp/raft sets Follower on any AppendEntries while not a
	// follower), so status reads this instead.
	raftStopped atomic.Bool

	stop         chan struct{} // closed once Raft has shut down
	wg           sync.WaitGroup
	shutdownOnce sync.Once
	shutdownErr  error
}

// Start opens the stores in cfg.DataDir, starts Raft on cfg.RaftAddr behind
// the vote guard and, for a node without state and with cfg.Bootstrap,
// bootstraps a cluster of this one voter unless a running cluster makes
// contact within cfg.BootstrapGrace (bootstrap.go). It returns once Raft
// runs; leadership comes later (OnLeadership, Ready). A node with Raft
// state waits one LeaseDuration before it starts Raft, so that it cannot
// vote against a leader lease it acknowledged before it stopped (lease.go).
func Start(cfg Config) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.Default()
	}
	logger = logger.With("node", cfg.NodeID)
	raftLog := newSlogHCLog(logger, "raft", cfg.RaftLogLevel)

	stores, err := storage.Open(cfg.DataDir, raftLog.Named("snapshot").StandardWriter(nil))
	if err != nil {
		return nil, err
	}
	hasState, err := stores.HasExistingState()
	if err != nil {
		stores.Close()
		return nil, fmt.Errorf("cluster: read raft state: %w", err)
	}
	maxFormat := byte(domain.BatchVersion)
	if cfg.maxLogFormat != 0 {
		maxFormat = cfg.maxLogFormat
	}
	diverged, err := recordedDivergence(stores.StableStore())
	if err != nil {
		stores.Close()
		return nil, err
	}
	fsm := NewFSM(logger)
	fsm.audit.every, fsm.alter = cfg.AuditInterval, cfg.alterEntry
	stores.Events().SetRetention(cfg.EventRetention)
	fsm.SetEventLog(stores.Events())
	ids, err := loadClusterID(cfg.DataDir)
	if err != nil {
		stores.Close()
		return nil, err
	}
	hs, err := newHandshaker(cfg.Secret, ids, cfg.TransportTimeout)
	if err != nil {
		stores.Close()
		return nil, err
	}
	trans, stream, err := newGuardedTransport(&cfg, raftLog, stores, hasState, hs, maxFormat, auditReplier(cfg.NodeID, fsm))
	if err != nil {
		stores.Close()
		return nil, fmt.Errorf("cluster: raft transport on %s: %w", cfg.RaftAddr, err)
	}

	n := &Node{
		epoch:    time.Now(),
		cfg:      cfg,
		logger:   logger,
		stores:   stores,
		fsm:      fsm,
		metrics:  newNodeMetrics(cfg.Metrics),
		raftAddr: string(trans.LocalAddr()),
		trans:    trans,
		hadState: hasState,
		pending:  make(map[*proposal]struct{}),
		stop:     make(chan struct{}),

		raftStarted: make(chan struct{}),
		stream:      stream,
		clusterID:   ids,
		handshake:   hs,
	}
	n.fsm.onHalt = n.fsmHalted
	n.auditor = newAuditor(n)
	n.fsm.maxFormat = maxFormat
	// Raft blocks on this channel; the watcher drains it promptly.
	notify := make(chan bool, 16)
	rc := n.raftConfig(raftLog, notify)
	if err := raft.ValidateConfig(rc); err != nil {
		trans.Close()
		stores.Close()
		return nil, fmt.Errorf("cluster: raft config: %w: %w", domain.ErrInvalidArgument, err)
	}
	n.logStore = stores.LogStore()
	if cfg.WrapLogStore != nil {
		n.logStore = cfg.WrapLogStore(n.logStore)
	}
	snapshots := indexedSnapshots{stores.SnapshotStore()}
	if hasState {
		// Before it stopped, this node may have acknowledged a leader whose
		// lease still runs; a fresh Raft has heard from no one and would
		// vote for another candidate at once. Wait the lease out first.
		logger.Info("waiting one leader lease before starting raft", "lease", cfg.leaseDuration())
		time.Sleep(cfg.leaseDuration())
	}
	if hasState {
		recovered, err := recoverFromPeersFile(cfg.DataDir, rc, func() raft.FSM {
			// The scratch FSM writes the stream too, so that the snapshot the
			// recovery leaves carries it (the records are the same bytes).
			scratch := NewFSM(logger)
			scratch.SetEventLog(stores.Events())
			return scratch
		}, n.logStore, stores.StableStore(), snapshots, trans)
		if err != nil {
			trans.Close()
			stores.Close()
			return nil, err
		}
		if recovered {
			logger.Warn("raft configuration replaced from the recovery file", "file", PeersFile)
		}
	}
	n.raft, err = raft.NewRaft(rc, n.metrics.fsm(n.fsm), n.logStore, stores.StableStore(), snapshots, trans)
	if err != nil {
		trans.Close()
		stores.Close()
		return nil, fmt.Errorf("cluster: start raft: %w", err)
	}
	if diverged != nil {
		// The audit found this node's log differs from the cluster's
		// before it stopped: it halts again before it applies anything
		// (Raft applies nothing before a leader has told it what is
		// committed) and stops Raft.
		n.fsm.stop(diverged)
	}
	trans.attach(n.raft, stores)
	n.startIndex = n.raft.LastIndex()
	close(n.raftStarted)
	n.verifier = &verifier{raft: n.raft, timeout: cfg.ReadTimeout, barrier: func(ctx context.Context) error {
		_, err := n.barrier(ctx)
		return err
	}}
	if err := n.metrics.register(n); err != nil {
		n.Shutdown()
		return nil, err
	}
	n.wg.Add(1)
	go n.watchLeadership(notify)
	n.wg.Add(1)
	go n.promoteCaughtUp()
	n.wg.Add(1)
	go n.auditor.run()

	if cfg.Bootstrap && !hasState {
		if err := n.bootstrap(); err != nil {
			n.Shutdown()
			return nil, err
		}
	}
	logger.Info("raft started", "raft_addr", n.raftAddr, "existing_state", hasState)
	return n, nil
}

func (n *Node) raftConfig(logger *slogHCLog, notify chan<- bool) *raft.Config {
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(n.cfg.NodeID)
	rc.Logger = logger
	rc.NotifyCh = notify
	rc.HeartbeatTimeout = n.cfg.HeartbeatTimeout
	rc.ElectionTimeout = n.cfg.ElectionTimeout
	rc.LeaderLeaseTimeout = n.cfg.LeaderLeaseTimeout
	rc.CommitTimeout = n.cfg.CommitTimeout
	rc.MaxAppendEntries = n.cfg.MaxAppendEntries
	rc.SnapshotInterval = n.cfg.SnapshotInterval
	rc.SnapshotThreshold = n.cfg.SnapshotThreshold
	rc.TrailingLogs = n.cfg.TrailingLogs
	rc.NoLegacyTelemetry = true
	return rc
}

// ID is this node's Raft server id.
func (n *Node) ID() string { return n.cfg.NodeID }

// RaftAddr is the address Raft listens on (the bound port when the
// configured one was 0).
func (n *Node) RaftAddr() string { return n.raftAddr }

// HTTPAddr is the configured HTTP address of this node.
func (n *Node) HTTPAddr() string { return n.cfg.HTTPAddr }

// HadState reports whether the data dir held Raft state when the node
// started: it was a member before and finds its cluster by itself.
func (n *Node) HadState() bool { return n.hadState }

// Raft is the underlying Raft instance, for tests and diagnostics.
func (n *Node) Raft() *raft.Raft { return n.raft }

// FSM is the node's committed state machine.
func (n *Node) FSM() *FSM { return n.fsm }

// View runs fn with read access to this node's committed state (no leader
// check). fn must not block or keep references into the state.
func (n *Node) View(fn func(*domain.State)) { n.fsm.View(fn) }

// raftState is Raft's state, Shutdown once stopRaft has stopped it.
func (n *Node) raftState() raft.RaftState {
	if n.raftStopped.Load() {
		return raft.Shutdown
	}
	return n.raft.State()
}

// IsLeader reports whether this node leads and has passed its barrier, so
// that writes may be served.
func (n *Node) IsLeader() bool { return n.serving() }

// serving reports whether this node is the ready leader and the engine has
// been told so (watchLeadership).
func (n *Node) serving() bool {
	term := n.readyTerm.Load()
	return term == n.servingTerm.Load() && n.readyIn(term)
}

func (n *Node) leaderReady() bool { return n.readyIn(n.readyTerm.Load()) }

// readyIn reports whether this node leads in term and passed its barrier
// in it (term is a value of readyTerm).
func (n *Node) readyIn(term uint64) bool {
	return term != 0 && n.raft.State() == raft.Leader && n.raft.CurrentTerm() == term && n.fsm.Halted() == nil
}

// notReady explains why this node cannot serve a leader's request now:
// domain.ErrNotLeader when another node leads (forward there), else
// domain.ErrUnavailable.
func (n *Node) notReady() error {
	if n.closing.Load() {
		return fmt.Errorf("node %s is shutting down: %w", n.cfg.NodeID, domain.ErrUnavailable)
	}
	if h := n.fsm.Halted(); h != nil {
		return fmt.Errorf("node %s: %w: %w", n.cfg.NodeID, h, domain.ErrUnavailable)
	}
	if n.raft.State() == raft.Leader {
		return fmt.Errorf("node %s leads but has not passed its barrier yet: %w", n.cfg.NodeID, domain.ErrUnavailable)
	}
	if _, id := n.raft.LeaderWithID(); id != "" && string(id) != n.cfg.NodeID {
		return fmt.Errorf("leader is %s: %w", id, domain.ErrNotLeader)
	}
	return fmt.Errorf("no leader known: %w", domain.ErrUnavailable)
}

// Shutdown stops the node: new writes and reads are refused at once, a
// leader with other voters hands leadership over, Raft shuts down, waiting
// proposals are failed as outcome unknown, OnLeadership(false) is called if
// true was, and the stores are closed. It is safe to call more than once.
// If Raft does not stop within ShutdownTimeout, the stores are left open
// (Raft may still write to them) and an error is returned.
func (n *Node) Shutdown() error {
	n.shutdownOnce.Do(func() { n.shutdownErr = n.shutdown() })
	return n.shutdownErr
}

func (n *Node) shutdown() error {
	n.closing.Store(true)
	n.clearReady()
	if n.raft.State() == raft.Leader && n.hasOtherVoters() {
		ctx, cancel := context.WithTimeout(context.Background(), n.cfg.ShutdownTimeout)
		err := n.transferLeadership(ctx)
		cancel()
		if err != nil {
			n.logger.Warn("leadership transfer before shutdown failed", "error", err)
		} else {
			n.logger.Info("leadership transferred before shutdown")
		}
	}
	err := n.stopRaft()
	close(n.stop)
	n.wg.Wait()
	n.metrics.unregister(n)
	n.failPending()
	if err != nil {
		return fmt.Errorf("cluster: raft shutdown: %w", err)
	}
	if err := n.stores.Close(); err != nil {
		return err
	}
	n.logger.Info("raft stopped")
	return nil
}

// hasOtherVoters reports whether the latest configuration has a voter
// besides this node.
func (n *Node) hasOtherVoters() bool {
	servers, err := n.servers()
	if err != nil {
		return false
	}
	for _, s := range servers {
		if s.Suffrage == raft.Voter && string(s.ID) != n.cfg.NodeID {
			return true
		}
	}
	return false
}

func (n *Node) servers() ([]raft.Server, error) {
	ctx, cancel := context.WithTimeout(context.Background(), n.cfg.ReadTimeout)
	defer cancel()
	f := n.raft.GetConfiguration()
	if err := awaitFuture(ctx, f); err != nil {
		return nil, err
	}
	return f.Configuration().Servers, nil
}

// awaitFuture waits for f until ctx is done. Raft resolves every future
// eventually (on commit, step-down or shutdown), so the helper goroutine
// left behind on timeout does not live long.
func awaitFuture(ctx context.Context, f raft.Future) error {
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// proposal is one batch handed to Raft, waiting for its outcome.
type proposal struct {
	n        *Node
	events   int
	term     uint64 // the ready term it was proposed in
	start    int64  // n.now() before it went to Raft: a commit renews the lease from here
	done     func([]error, error)
	timer    *time.Timer
	finished atomic.Bool
}

// Propose hands b to Raft as one entry and returns without waiting for it to
// commit (it may wait while Raft's leader loop takes the entry:
// backpressure). Entries are appended in call order. done is called exactly
// once, from another goroutine:
//   - with one result per event once the entry is applied on this node;
//   - with domain.ErrNotLeader when another node leads, or
//     domain.ErrUnavailable when this node is not a leader past its barrier
//     (no leader, election, shutting down): nothing was enqueued;
//   - with domain.ErrOutcomeUnknown when the entry was handed to Raft but
//     its fate is unknown (leadership lost, shutdown, ApplyTimeout passed).
//
// The entry carries the term this node is the ready leader in (once the
// cluster's log format allows it, see stamp), which every FSM checks against
// the term Raft stores the entry under.
func (n *Node) Propose(b *domain.Batch, done func(results []error, err error)) {
	term := n.readyTerm.Load()
	if n.closing.Load() || !n.readyIn(term) {
		err := n.notReady()
		go done(nil, err)
		return
	}
	data := domain.EncodeBatch(make([]byte, 0, 24+96*len(b.Events)), n.stamp(b, term))
	p := &proposal{n: n, events: len(b.Events), done: done, term: term, start: n.now()}
	p.timer = time.AfterFunc(n.cfg.ApplyTimeout, func() {
		p.finish(nil, fmt.Errorf("no outcome after %v: %w", n.cfg.ApplyTimeout, domain.ErrOutcomeUnknown))
	})
	n.track(p)
	if n.cfg.beforeApply != nil {
		n.cfg.beforeApply()
	}
	f := n.raft.Apply(data, 0) // no enqueue timeout: it would make the outcome ambiguous for nothing
	go p.wait(f)
}

// stamp returns b stamped with term, the term its proposer leads in, when
// the committed log format has term stamps (BatchV2); else b as it is, which
// encodes as BatchV1. b itself is not changed.
//
// Raft appends an entry under the term its leader loop is in. The stamp is
// read here, before Raft takes the entry, so the two differ without a Raft
// bug only if this goroutine stalls for a whole election between the ready
// check and raft.Apply while this node loses and wins leadership again; the
// FSM then halts (fail-stop), which is safe but loud.
func (n *Node) stamp(b *domain.Batch, term uint64) *domain.Batch {
	if n.fsm.LogFormat() < domain.BatchV2 {
		return b
	}
	stamped := *b
	stamped.Term = term
	return &stamped
}

func (p *proposal) wait(f raft.ApplyFuture) {
	err := f.Error()
	p.timer.Stop()
	if err != nil {
		p.finish(nil, applyError(err))
		return
	}
	p.n.renewLease(p.term, p.start) // committed: a quorum took it
	p.finish(p.results(f.Response()))
}

// results checks the FSM's response: one error per event. A halted FSM
// answers with an error: the entry is committed but not applied here, and
// whether it takes effect on the other nodes is unknown to this one.
func (p *proposal) results(resp any) ([]error, error) {
	if err, ok := resp.(error); ok {
		return nil, fmt.Errorf("%w: %w", domain.ErrOutcomeUnknown, err)
	}
	errs, ok := resp.([]error)
	if !ok {
		return nil, fmt.Errorf("fsm response of type %T: %w", resp, domain.ErrOutcomeUnknown)
	}
	if len(errs) != p.events {
		return nil, fmt.Errorf("fsm answered %d results for %d events: %w", len(errs), p.events, domain.ErrOutcomeUnknown)
	}
	return errs, nil
}

// applyError maps a failed Apply: only ErrNotLeader (and a transfer in
// progress) come before the entry is appended; anything else may commit.
func applyError(err error) error {
	switch {
	case errors.Is(err, raft.ErrNotLeader):
		return fmt.Errorf("propose: %w", domain.ErrNotLeader)
	case errors.Is(err, raft.ErrLeadershipTransferInProgress):
		return fmt.Errorf("propose: leadership transfer in progress: %w", domain.ErrUnavailable)
	}
	return fmt.Errorf("propose: %w: %w", domain.ErrOutcomeUnknown, err)
}

func (p *proposal) finish(results []error, err error) {
	if !p.finished.CompareAndSwap(false, true) {
		return
	}
	p.n.untrack(p)
	p.done(results, err)
}

func (n *Node) track(p *proposal) {
	n.pendingMu.Lock()
	if !n.pendingClosed {
		n.pending[p] = struct{}{}
	}
	n.pendingMu.Unlock()
}

func (n *Node) untrack(p *proposal) {
	n.pendingMu.Lock()
	delete(n.pending, p)
	n.pendingMu.Unlock()
}

// failPending reports every proposal still waiting after Raft stopped as
// outcome unknown: Raft drops entries it had not handed to the FSM yet
// without resolving their futures.
func (n *Node) failPending() {
	n.pendingMu.Lock()
	n.pendingClosed = true
	ps := make([]*proposal, 0, len(n.pending))
	for p := range n.pending {
		ps = append(ps, p)
	}
	n.pendingMu.Unlock()
	for _, p := range ps {
		p.timer.Stop()
		p.finish(nil, fmt.Errorf("node %s shut down: %w", n.cfg.NodeID, domain.ErrOutcomeUnknown))
	}
}
