// Package scale is the bench's scale mode: it loads one embedded node
// (real Raft, bbolt, fsync: the production path) with many resources and
// reservations through the engine the HTTP layer calls, then measures what
// a large state costs: memory per node, the pause a snapshot puts on
// commits, the time to restart and be ready, and the time a new follower
// takes to install the snapshot.
package scale

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"allot/actors/domain"
	"allot/cmd/allot/server"
)

// Config is one scale run.
type Config struct {
	Resources, Reservations int64
	// Concurrency is the loader's goroutines, each with one call in flight.
	Concurrency int
	// Timeout bounds the whole run.
	Timeout time.Duration
	// Progress is how often a loading phase writes a progress line.
	Progress time.Duration
	// ProbeWindow is how long the probe commits before the snapshot (its
	// baseline), and again around the direct FSM.Snapshot() call.
	ProbeWindow time.Duration
	// StateHash compares the follower's state hash with the leader's (each
	// hash copies the state once more); off, the counts and log digests
	// are compared.
	StateHash bool
	// Dir holds the nodes' data dirs; empty: a temporary directory,
	// removed at the end.
	Dir string
	// HeapProfile, when set, is where the heap profile taken once the
	// load is over (after the forced GC) is written, to see what holds
	// the memory (go tool pprof).
	HeapProfile string
	// Command is the command line, for the report.
	Command string
	// Log receives progress and phase lines, and the nodes' warnings.
	Log io.Writer
}

// DefaultConfig is the size: a million resources, ten million
// reservations.
func DefaultConfig() Config {
	return Config{
		Resources: 1_000_000, Reservations: 10_000_000, Concurrency: 4096,
		Timeout: 30 * time.Minute, Progress: 5 * time.Second, ProbeWindow: 3 * time.Second,
		StateHash: true, Log: io.Discard,
	}
}

// Validate checks the sizes.
func (c *Config) Validate() error {
	switch {
	case c.Resources < 1:
		return errors.New("--scale-resources must be at least 1")
	case c.Reservations < 0:
		return errors.New("--scale-reservations must not be negative")
	case c.Concurrency < 1:
		return errors.New("--scale-concurrency must be at least 1")
	case c.Timeout <= 0:
		return errors.New("--scale-timeout must be positive")
	case c.Progress <= 0 || c.ProbeWindow <= 0:
		return errors.New("the progress period and probe window must be positive")
	case perResource(c.Resources, c.Reservations) > domain.MaxCapacity:
		return errors.New("too many reservations per resource")
	}
	return nil
}

// perResource is the capacity of each loaded resource: its share of the
// reservations, rounded up.
func perResource(resources, reservations int64) int64 {
	return max(1, (reservations+resources-1)/resources)
}

// run is one invocation's state.
type run struct {
	cfg    Config
	rep    *Report
	secret []byte
	dir    string
	leader *server.Server
	lcfg   server.Config // the leader's, with its bound addresses after the first start
	follow *server.Server
	// completed names the steps that finished: only their figures are
	// set against the goals.
	completed map[string]bool
}

// lockedWriter serializes writes to w.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (r *run) say(format string, args ...any) {
	fmt.Fprintf(r.cfg.Log, "bench: scale: "+format+"\n", args...)
}

// Run makes the scale run. The report holds what was measured even when
// it returns an error; the nodes are stopped and a temporary directory
// removed before it returns.
func Run(ctx context.Context, cfg Config) (rep *Report, err error) {
	rep = &Report{
		StartedAt: time.Now().UTC(), Command: cfg.Command, CPUs: runtime.NumCPU(), Note: sharedNotice,
		RequestedResources: cfg.Resources, RequestedReservations: cfg.Reservations, Concurrency: cfg.Concurrency,
	}
	start := time.Now()
	defer func() {
		rep.TotalS = time.Since(start).Seconds()
		if err != nil {
			rep.Error = err.Error()
		}
	}()
	if err := cfg.Validate(); err != nil {
		return rep, err
	}
	// The nodes log from their own goroutines.
	cfg.Log = &lockedWriter{w: cfg.Log}
	r := &run{cfg: cfg, rep: rep, secret: make([]byte, 32), completed: make(map[string]bool)}
	if _, err := rand.Read(r.secret); err != nil {
		return rep, err
	}
	r.dir = cfg.Dir
	if r.dir == "" {
		if r.dir, err = os.MkdirTemp("", "allot-scale-"); err != nil {
			return rep, err
		}
		defer func() { err = errors.Join(err, os.RemoveAll(r.dir)) }()
	}
	defer func() { err = errors.Join(err, r.stop()) }()
	ctx, cancel := context.WithTimeoutCause(ctx, cfg.Timeout, fmt.Errorf("the scale run exceeded --scale-timeout %v", cfg.Timeout))
	defer cancel()

	steps := []struct {
		name string
		fn   func(context.Context) error
	}{
		{"start", r.start},
		{"load", r.load},
		{"snapshot", r.snapshot},
		{"restart", r.restart},
		{"install", r.install},
	}
	defer r.goals()
	for _, s := range steps {
		if err := s.fn(ctx); err != nil {
			if cause := context.Cause(ctx); cause != nil && ctx.Err() != nil {
				err = fmt.Errorf("%w: %w", cause, err)
			}
			return rep, fmt.Errorf("%s: %w", s.name, err)
		}
		r.completed[s.name] = true
	}
	return rep, nil
}

// stop shuts down whatever node runs, the follower first.
func (r *run) stop() error {
	var errs []error
	if r.follow != nil {
		errs = append(errs, shutdown(r.follow))
		r.follow = nil
	}
	if r.leader != nil {
		errs = append(errs, shutdown(r.leader))
		r.leader = nil
	}
	return errors.Join(errs...)
}

func (r *run) start(ctx context.Context) error {
	r.lcfg = nodeConfig("scale1", filepath.Join(r.dir, "scale1"), true, r.secret, r.cfg.Log)
	srv, err := server.Start(r.lcfg)
	if err != nil {
		return err
	}
	r.leader = srv
	// A restart comes back at the same addresses, as a real node does.
	r.lcfg.HTTPAddr, r.lcfg.RaftAddr = srv.HTTPAddr(), srv.Node().RaftAddr()
	if err := waitReady(ctx, srv, nil); err != nil {
		return fmt.Errorf("node not ready: %w", err)
	}
	r.rep.Memory.BeforeLoad = memJSON(settledMem())
	return nil
}

// resourceID names loaded resource i.
func resourceID(i int64) string { return fmt.Sprintf("s-%07d", i) }

// load creates the resources, then the reservations: reservation i is on
// resource i mod R, by user i mod (R+1), so that each user's reservations
// fall on different resources. They are confirmed at once (no hold): the
// state keeps them, and no expiry runs during the measurements.
func (r *run) load(ctx context.Context) error {
	eng := r.leader.Engine()
	res, n := r.cfg.Resources, r.cfg.Reservations
	spec := domain.Spec{Kind: domain.KindVoucher, Capacity: perResource(res, n)}
	r.say("creating %d resources (capacity %d each), %d goroutines", res, spec.Capacity, r.cfg.Concurrency)
	var err error
	r.rep.LoadResources, err = runPhase(ctx, "resources", res, r.cfg.Concurrency, r.cfg.Progress, r.cfg.Log,
		func(ctx context.Context, i int64) error {
			_, _, err := eng.PutResource(ctx, resourceID(i), spec)
			return classify(err, true)
		})
	if err != nil {
		return err
	}
	users := res + 1
	r.say("creating %d reservations", n)
	r.rep.LoadReservations, err = runPhase(ctx, "reservations", n, r.cfg.Concurrency, r.cfg.Progress, r.cfg.Log,
		func(ctx context.Context, i int64) error {
			user := fmt.Sprintf("u%d", i%users)
			_, err := eng.Reserve(ctx, domain.ReserveCommand{
				ResourceID: resourceID(i % res), Caller: domain.Principal{User: user},
				Request: domain.ReserveRequest{User: user, Quantity: 1},
			})
			return classify(err, false)
		})
	if err != nil {
		return err
	}
	r.rep.Memory.AfterLoad = memJSON(readMem())
	settled := settledMem()
	r.rep.Memory.Settled = memJSON(settled)
	if r.cfg.HeapProfile != "" {
		if err := writeHeapProfile(r.cfg.HeapProfile); err != nil {
			return fmt.Errorf("heap profile: %w", err)
		}
	}
	r.leader.Node().View(func(st *domain.State) {
		r.rep.Resources, r.rep.Reservations, _, _ = st.Counts()
	})
	r.perReservation(settled)
	want := r.rep.LoadReservations.Done
	r.rep.check("load_counts", int64(r.rep.Resources) == res && int64(r.rep.Reservations) >= want &&
		int64(r.rep.Reservations) <= want+r.rep.LoadReservations.Unknown,
		"%d resources (want %d), %d reservations (%d acknowledged, %d unknown)", r.rep.Resources, res, r.rep.Reservations, want, r.rep.LoadReservations.Unknown)
	r.say("loaded: %d resources, %d reservations; rss %s, settled %s", r.rep.Resources, r.rep.Reservations, human(r.rep.Memory.AfterLoad.RSS), human(settled.RSS))
	return nil
}

// readyTimeout bounds the wait for a restarted node to be ready with its
// state: a state that differs never will be.
const readyTimeout = 5 * time.Minute

// perReservation sets the memory per loaded reservation from m, the
// latest settled reading.
func (r *run) perReservation(m Mem) {
	mr := &r.rep.Memory
	loaded := float64(r.rep.Reservations)
	if loaded == 0 {
		return
	}
	if m.RSS >= 0 {
		mr.RSSPerReservation = float64(m.RSS-mr.BeforeLoad.RSS) / loaded
		mr.AnonPerReservation = float64(m.RSSAnon-mr.BeforeLoad.RSSAnon) / loaded
	}
	mr.HeapPerReservation = float64(m.HeapLive-mr.BeforeLoad.HeapLive) / loaded
}

// probeResource takes the probe's reservations.
const probeResource = "scale-probe"

// snapshot measures the pause a snapshot causes: a probe commits one
// reservation at a time while Raft takes a user snapshot; its latency
// then is compared with its latency before. FSM.Snapshot() is then timed
// directly (the part Apply waits for) and persisted to a discarding sink.
func (r *run) snapshot(ctx context.Context) error {
	eng := r.leader.Engine()
	if _, _, err := eng.PutResource(ctx, probeResource, domain.Spec{Kind: domain.KindVoucher, Capacity: domain.MaxCapacity}); err != nil {
		return fmt.Errorf("probe resource: %w", err)
	}
	p := startProbe(ctx, func(ctx context.Context) error {
		_, err := eng.Reserve(ctx, domain.ReserveCommand{
			ResourceID: probeResource, Caller: domain.Principal{User: "probe"},
			Request: domain.ReserveRequest{User: "probe", Quantity: 1},
		})
		return err
	})
	defer p.stop()
	w := r.cfg.ProbeWindow
	sleep := func(d time.Duration) error {
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-time.After(d):
			return nil
		}
	}
	t0 := time.Now()
	if err := sleep(w); err != nil {
		return err
	}
	s := &r.rep.Snapshot
	t1 := time.Now()
	s.ProbeBefore = p.window(t0, t1)
	r.say("raft snapshot of %d reservations, probe p99 before %.2f ms", r.rep.Reservations, s.ProbeBefore.P99Ms)
	err := r.leader.Node().Raft().Snapshot().Error()
	t2 := time.Now()
	if err != nil && !errors.Is(err, raft.ErrNothingNewToSnapshot) {
		return fmt.Errorf("raft snapshot: %w", err)
	}
	s.RaftSnapshotS = t2.Sub(t1).Seconds()
	if err := sleep(w / 4); err != nil {
		return err
	}
	s.ProbeDuring = p.window(t1, t2)

	fsm := r.leader.Node().FSM()
	t3 := time.Now()
	snap, err := fsm.Snapshot()
	t4 := time.Now()
	if err != nil {
		return fmt.Errorf("fsm snapshot: %w", err)
	}
	s.FSMSnapshotMs = ms(t4.Sub(t3))
	sink := &discardSink{}
	err = snap.Persist(sink)
	s.PersistS, s.Bytes = time.Since(t4).Seconds(), sink.n
	snap.Release()
	if err != nil {
		return fmt.Errorf("fsm snapshot persist: %w", err)
	}
	if err := sleep(w / 4); err != nil {
		return err
	}
	s.ProbeDuringFSM = p.window(t3, t4)
	p.stop()
	r.say("raft snapshot %.2f s, probe max %.2f ms; FSM.Snapshot() %.1f ms", s.RaftSnapshotS, s.ProbeDuring.MaxMs, s.FSMSnapshotMs)
	r.rep.Memory.PeakSingleNode = readMem().HWM
	quiet := settledMem()
	r.rep.Memory.Quiet = memJSON(quiet)
	r.perReservation(quiet)
	return nil
}

// discardSink is a raft.SnapshotSink that counts and drops the bytes.
type discardSink struct{ n int64 }

func (s *discardSink) Write(p []byte) (int, error) { s.n += int64(len(p)); return len(p), nil }
func (s *discardSink) Close() error                { return nil }
func (s *discardSink) ID() string                  { return "discard" }
func (s *discardSink) Cancel() error               { return nil }

// stateFacts is what must survive a restart: the counts and the first
// loaded resource's.
type stateFacts struct {
	resources, reservations int
	confirmed               int64
}

func facts(st *domain.State) stateFacts {
	var f stateFacts
	f.resources, f.reservations, _, _ = st.Counts()
	if res, ok := st.Resource(resourceID(0)); ok {
		f.confirmed = res.Confirmed
	}
	return f
}

// restart stops the node cleanly and starts it again on the same data
// dir and addresses, timing until it is ready and a leader read answers
// the state it had.
func (r *run) restart(ctx context.Context) error {
	// Every entry proposed so far applied first (an unknown outcome may
	// still be on its way).
	if err := r.leader.Node().Raft().Barrier(time.Minute).Error(); err != nil {
		return fmt.Errorf("barrier: %w", err)
	}
	var before stateFacts
	r.leader.Node().View(func(st *domain.State) { before = facts(st) })
	t0 := time.Now()
	err := shutdown(r.leader)
	r.leader = nil
	r.rep.Restart.ShutdownS = time.Since(t0).Seconds()
	if err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	r.say("restarting on the same data dir")
	t1 := time.Now()
	srv, err := server.Start(r.lcfg)
	if err != nil {
		return err
	}
	r.leader = srv
	r.rep.Restart.StartS = time.Since(t1).Seconds()
	var after stateFacts
	rctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	// Ready, then a leader read: on the ready leader it reflects every
	// committed entry, so one answer settles the comparison.
	err = waitReady(rctx, srv, func() error {
		return srv.Node().Read(rctx, domain.ReadLeader, func(st *domain.State) error {
			after = facts(st)
			return nil
		})
	})
	r.rep.Restart.ReadyS = time.Since(t1).Seconds()
	if err != nil {
		return fmt.Errorf("restarted node: %w", err)
	}
	// A node ready with another state is a failed check; the run goes on.
	r.rep.check("restart_state", after == before, "%d resources, %d reservations, %s confirmed %d; before: %d, %d, %d",
		after.resources, after.reservations, resourceID(0), after.confirmed, before.resources, before.reservations, before.confirmed)
	r.say("restarted: ready %.2f s", r.rep.Restart.ReadyS)
	return nil
}

// install starts a fresh node and joins it. The leader has just taken a
// snapshot and kept trailingLogs entries of its log, so the new node cannot
// replay the log from its start and must install the snapshot. Timed until
// it restored it and applied up to the leader's last index.
func (r *run) install(ctx context.Context) error {
	lr := r.leader.Node().Raft()
	// Pad a log shorter than what compaction keeps, so that compaction
	// removes its start (only tiny runs need it).
	var pads []raft.Future
	for i := lr.LastIndex(); i < 2*trailingLogs; i++ {
		pads = append(pads, lr.Barrier(time.Minute))
	}
	for _, f := range pads {
		if err := f.Error(); err != nil {
			return fmt.Errorf("pad the log: %w", err)
		}
	}
	if err := lr.Snapshot().Error(); err != nil && !errors.Is(err, raft.ErrNothingNewToSnapshot) {
		return fmt.Errorf("leader snapshot: %w", err)
	}
	in := &r.rep.Install
	in.LeaderIndex = lr.LastIndex()
	var snapIndex uint64
	fmt.Sscan(lr.Stats()["last_snapshot_index"], &snapIndex)
	if snapIndex > trailingLogs {
		in.FirstIndex = snapIndex - trailingLogs + 1
	} else {
		in.FirstIndex = 1
	}
	fcfg := nodeConfig("scale2", filepath.Join(r.dir, "scale2"), false, r.secret, r.cfg.Log)
	if dl, ok := ctx.Deadline(); ok {
		fcfg.JoinTimeout = time.Until(dl)
	}
	r.say("starting a new follower; leader at index %d, log from about %d", in.LeaderIndex, in.FirstIndex)
	t0 := time.Now()
	srv, err := server.Start(fcfg)
	if err != nil {
		return err
	}
	r.follow = srv
	joined := make(chan error, 1)
	go func() {
		err := srv.Join(ctx, []string{"http://" + r.leader.HTTPAddr()})
		in.JoinS = time.Since(t0).Seconds()
		joined <- err
	}()
	fn := srv.Node()
	err = poll(ctx, func() error {
		if got := fn.FSM().Restores(); got < 1 {
			return fmt.Errorf("no snapshot restored yet")
		}
		if got := fn.Raft().AppliedIndex(); got < in.LeaderIndex {
			return fmt.Errorf("applied %d of %d", got, in.LeaderIndex)
		}
		return nil
	})
	in.InstallS = time.Since(t0).Seconds()
	in.Restores = fn.FSM().Restores()
	if err != nil {
		<-joined
		return fmt.Errorf("follower: %w", err)
	}
	if err := <-joined; err != nil {
		return fmt.Errorf("join: %w", err)
	}
	if err := waitReady(ctx, srv, nil); err != nil {
		return fmt.Errorf("follower not ready: %w", err)
	}
	in.ReadyS = time.Since(t0).Seconds()
	r.rep.Memory.TwoNodes = memJSON(readMem())
	r.say("follower installed the snapshot in %.2f s", in.InstallS)
	return r.sameState(ctx)
}

// sameState waits until the follower has applied all the leader has, and
// compares their states.
func (r *run) sameState(ctx context.Context) error {
	ln, fn := r.leader.Node(), r.follow.Node()
	err := poll(ctx, func() error {
		if l, f := ln.Raft().AppliedIndex(), fn.Raft().AppliedIndex(); l != f || ln.Raft().CommitIndex() != l {
			return fmt.Errorf("leader applied %d, follower %d", l, f)
		}
		return nil
	})
	if err != nil {
		return err
	}
	var lf, ff stateFacts
	var ld, fd domain.LogDigest
	ln.View(func(st *domain.State) { lf, ld = facts(st), st.LogDigest() })
	fn.View(func(st *domain.State) { ff, fd = facts(st), st.LogDigest() })
	same := lf == ff && ld == fd
	detail := fmt.Sprintf("follower %d resources, %d reservations, digest at %d; leader %d, %d, at %d",
		ff.resources, ff.reservations, fd.Index, lf.resources, lf.reservations, ld.Index)
	if r.cfg.StateHash {
		lh := ln.StateHash()
		fh := fn.StateHash()
		same = same && lh == fh
		detail += fmt.Sprintf("; state hash %x, leader %x", fh[:6], lh[:6])
	}
	r.rep.check("follower_state", same, "%s", detail)
	return nil
}

// goals sets each figure of a completed step next to the goal
// for it.
func (r *run) goals() {
	m := r.rep.Memory
	gb := func(n int64) float64 { return float64(n) / 1e9 }
	if r.completed["load"] {
		r.rep.goal("rss_per_node_after_load", gb(m.AfterLoad.RSS), gb(goalRSS), "GB", m.AfterLoad.RSS >= 0)
	}
	if r.completed["snapshot"] {
		r.rep.goal("rss_per_node_peak", gb(m.PeakSingleNode), gb(goalRSS), "GB", m.PeakSingleNode >= 0)
		r.rep.goal("snapshot_pause_probe_max", r.rep.Snapshot.ProbeDuring.MaxMs, ms(goalPause), "ms", r.rep.Snapshot.ProbeDuring.Commits > 0)
		r.rep.goal("fsm_snapshot_apply_block", r.rep.Snapshot.FSMSnapshotMs, ms(goalPause), "ms", true)
	}
	if r.completed["restart"] {
		r.rep.goal("restart_to_ready", r.rep.Restart.ReadyS, goalRestart.Seconds(), "s", true)
	}
	if r.completed["install"] {
		r.rep.goal("snapshot_install", r.rep.Install.InstallS, goalInstall.Seconds(), "s", true)
	}
}
