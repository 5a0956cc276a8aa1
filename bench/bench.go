package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"time"

	"allot/actors/domain"
	"allot/bench/admin"
	"allot/bench/baseline"
	"allot/bench/disk"
	"allot/bench/loadgen"
	"allot/bench/redislua"
	"allot/bench/report"
	"allot/bench/scenario"
	"allot/bench/verify"
	"allot/cmd/allot/server"
	"allot/httpapi"
)

// Time bounds of the phases around the load.
const (
	readyTimeout    = time.Minute
	setupTimeout    = 5 * time.Minute
	verifyTimeout   = 5 * time.Minute
	shutdownTimeout = 30 * time.Second
	setupParallel   = 16 // also the read-back's parallelism
	// expiryGrace is how late past expires_at a hold may still be held
	// when the state is read back ("at most a few seconds late under load").
	expiryGrace = 10 * time.Second
)

// bench is one invocation: the options, where to write, the report it fills.
type bench struct {
	opts   options
	out    io.Writer // report and live progress
	log    io.Writer // phase messages
	rep    *report.Report
	secret []byte
	ttl    time.Duration
	// noLimits says why the run's limit groups could not be created (the
	// target has none): resources are then made without them and the limit
	// checks are skipped.
	noLimits string
}

func newBench(opts options, args []string, stdout, stderr io.Writer) *bench {
	return &bench{
		opts: opts, out: stdout, log: stderr,
		rep: &report.Report{
			StartedAt: time.Now().UTC(), Command: strings.TrimSpace("go run ./bench " + strings.Join(args, " ")),
			CPUs: runtime.NumCPU(), Scenario: opts.scenario,
		},
		// Tokens outlive everything the run may do.
		ttl: opts.warmup + opts.duration + setupTimeout + verifyTimeout + time.Hour,
	}
}

func (b *bench) say(format string, args ...any) { fmt.Fprintf(b.log, "bench: "+format+"\n", args...) }

func (b *bench) mint(sub, role string) (string, error) {
	return httpapi.MintToken(b.secret, sub, role, b.ttl)
}

// diskSamples is how many durable page writes the disk probe times.
const diskSamples = 200

// execute runs the whole invocation; the report holds what was measured
// even when it returns an error.
func (b *bench) execute(ctx context.Context) error {
	if err := b.loadSecret(); err != nil {
		return err
	}
	if b.opts.redis {
		if _, err := exec.LookPath("redis-server"); err != nil {
			return fmt.Errorf("--redis: %w", redislua.ErrNoRedis)
		}
	}
	if len(b.opts.targets) == 0 {
		// The embedded nodes keep their logs in the temporary directory.
		probe, err := disk.Measure(os.TempDir(), diskSamples)
		if err != nil {
			return err
		}
		b.rep.Disk = &probe
	}
	if len(b.opts.sweep) == 0 {
		return b.measure(ctx, b.opts.concurrency, &b.rep.Measured)
	}
	for _, c := range b.opts.sweep {
		b.say("sweep: concurrency %d", c)
		st := report.Step{Concurrency: c}
		err := b.measure(ctx, c, &st.Measured)
		if err != nil {
			st.Error = err.Error()
		}
		b.rep.Sweep = append(b.rep.Sweep, st)
		if err != nil {
			return fmt.Errorf("concurrency %d: %w", c, err)
		}
	}
	return nil
}

// measure runs the comparisons asked for, then allot, with conc workers,
// each on fresh resources (a new run prefix, and a new embedded cluster
// and Redis), and records them in m.
func (b *bench) measure(ctx context.Context, conc int, m *report.Measured) error {
	prefix := runPrefix()
	b.noLimits = ""
	defer m.SetRatios()
	if b.opts.baseline {
		run, err := b.runBaseline(ctx, prefix, conc)
		if err != nil {
			return fmt.Errorf("baseline: %w", err)
		}
		m.Baseline = run
	}
	if b.opts.redis {
		if err := b.runRedis(ctx, prefix, conc, m); err != nil {
			return fmt.Errorf("redis-lua: %w", err)
		}
	}

	targets, label := b.opts.targets, strings.Join(b.opts.targets, ",")
	if len(targets) == 0 {
		urls, stop, err := startCluster(ctx, b.opts.nodes, b.secret)
		if err != nil {
			return fmt.Errorf("starting the embedded cluster: %w", err)
		}
		defer func() {
			if err := stop(); err != nil {
				b.say("stopping the embedded cluster: %v", err)
			}
		}()
		targets = urls
		if len(urls) == 1 {
			label = "embedded single node " + urls[0]
		} else {
			label = fmt.Sprintf("embedded %d-node cluster %s", len(urls), strings.Join(urls, ","))
		}
		b.say("%s", label)
	}
	client, err := b.adminClient(ctx, prefix, targets)
	if err != nil {
		return err
	}
	scn, err := b.newScenario(prefix)
	if err != nil {
		return err
	}
	took, err := b.setup(ctx, client, scn, conc, targets)
	b.rep.SetupS = took.Seconds()
	if err != nil {
		return err
	}
	res, err := b.load(ctx, targets, scn, conc)
	if res != nil {
		m.Allot = report.NewRun(res, b.shape(label, conc))
	}
	if err != nil {
		return err
	}
	if !b.opts.verify {
		return nil
	}
	return b.check(ctx, client, scn, m)
}

// adminClient is the admin client of targets, once they are ready: one
// admin identity per parallel setup call, as the server rate-limits each
// user.
func (b *bench) adminClient(ctx context.Context, prefix string, targets []string) (*admin.Admin, error) {
	admins := make([]string, setupParallel)
	var err error
	for i := range admins {
		if admins[i], err = b.mint(fmt.Sprintf("%s-setup-%d", prefix, i), httpapi.RoleAdmin); err != nil {
			return nil, fmt.Errorf("minting an admin token: %w", err)
		}
	}
	client, err := admin.New(targets, loadgen.NewClient(setupParallel, 30*time.Second), admins)
	if err != nil {
		return nil, err
	}
	rctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	return client, client.WaitReady(rctx)
}

// loadSecret is a fresh random secret for the embedded node, else the
// cluster's from ALLOT_AUTH_SECRET or --auth-secret-file.
func (b *bench) loadSecret() error {
	if len(b.opts.targets) == 0 {
		b.secret = make([]byte, 32)
		_, err := rand.Read(b.secret)
		return err
	}
	env := os.Getenv("ALLOT_AUTH_SECRET")
	if env == "" && b.opts.authSecretFile == "" {
		return errors.New("--target needs the cluster's secret: set ALLOT_AUTH_SECRET or --auth-secret-file")
	}
	s, err := server.LoadSecret(env, b.opts.authSecretFile, "", false)
	b.secret = s
	return err
}

// runPrefix names this run's resources and users, so that runs against the
// same cluster do not meet.
func runPrefix() string {
	var r [2]byte
	rand.Read(r[:])
	return "b" + strconv.FormatInt(time.Now().Unix(), 36) + strconv.FormatUint(uint64(r[0])<<8|uint64(r[1]), 36)
}

func (b *bench) newScenario(prefix string) (*scenario.Scenario, error) {
	seed := b.opts.seed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	return scenario.New(b.opts.scenario, b.opts.params, scenario.Env{
		Prefix: prefix, Mint: b.mint, Seed: seed, Today: time.Now(),
	})
}

// setup creates the scenario's limit groups, then its resources, then
// plays its presale against targets, and says how long it took. On a
// target without limit groups the resources are made without them: the
// load runs, the limit checks are skipped.
func (b *bench) setup(ctx context.Context, client *admin.Admin, scn *scenario.Scenario, conc int, targets []string) (time.Duration, error) {
	start := time.Now()
	err := b.create(ctx, client, scn)
	if err == nil {
		err = b.presell(ctx, targets, scn, conc)
	}
	return time.Since(start), err
}

// create makes the scenario's limit groups and resources.
func (b *bench) create(ctx context.Context, client *admin.Admin, scn *scenario.Scenario) error {
	defs := scn.Resources()
	limits := scn.Limits()
	b.rep.Resources, b.rep.Limits = len(defs), len(limits)
	sctx, cancel := context.WithTimeout(ctx, setupTimeout)
	defer cancel()
	if len(limits) > 0 {
		b.say("creating %d limit groups", len(limits))
		err := client.PutLimits(sctx, limits, setupParallel)
		switch {
		case errors.Is(err, admin.ErrNoLimits):
			b.noLimits = err.Error()
			b.rep.Limits = 0
			b.say("limit groups skipped: %v", err)
			for i := range defs {
				if defs[i].Plain != nil {
					defs[i].Body = defs[i].Plain
				}
			}
		case errors.Is(err, domain.ErrUnauthenticated):
			return fmt.Errorf("creating limit groups: %w (is the secret the cluster's?)", err)
		case err != nil:
			return fmt.Errorf("creating limit groups: %w", err)
		}
	}
	b.say("creating %d resources", len(defs))
	err := client.PutResources(sctx, defs, setupParallel)
	if errors.Is(err, domain.ErrUnauthenticated) {
		return fmt.Errorf("creating resources: %w (is the secret the cluster's?)", err)
	}
	if err != nil {
		return fmt.Errorf("creating resources: %w", err)
	}
	return nil
}

// presell plays the scenario's presale, if it has one, to its end: the
// measured phase starts from the state it leaves (soldout: every unit
// sold). It fails unless every reservation it needs was acknowledged.
func (b *bench) presell(ctx context.Context, targets []string, scn *scenario.Scenario, conc int) error {
	src, units := scn.Presale()
	if src == nil {
		return nil
	}
	b.say("presale: selling %d units", units)
	cfg := loadgen.Config{
		Targets: targets, Concurrency: conc, Duration: setupTimeout,
		Ops: scenario.OpNames(), Client: loadgen.NewClient(conc, b.opts.timeout),
	}
	defer cfg.Client.CloseIdleConnections()
	_, err := loadgen.Run(ctx, cfg, src)
	if err != nil {
		return fmt.Errorf("presale: %w", err)
	}
	if o := scn.Observed(); int64(len(o.Acks)) < units || o.Unexpected > 0 || o.Unknown > 0 {
		return fmt.Errorf("presale: %d of %d units sold, %d outcomes unknown, %d unexpected answers %q",
			len(o.Acks), units, o.Unknown, o.Unexpected, o.UnexpectedExamples)
	}
	return nil
}

func (b *bench) shape(target string, conc int) report.Shape {
	return report.Shape{Target: target, Concurrency: conc, Rate: b.opts.rate, Warmup: b.opts.warmup}
}

// load drives scn against targets with the configured loop and conc
// workers.
func (b *bench) load(ctx context.Context, targets []string, scn *scenario.Scenario, conc int) (*loadgen.Result, error) {
	cfg := loadgen.Config{
		Targets: targets, Concurrency: conc, Rate: b.opts.rate,
		Warmup: b.opts.warmup, Duration: b.opts.duration, Requests: b.opts.requests,
		Ops: scenario.OpNames(), Client: loadgen.NewClient(conc, b.opts.timeout),
	}
	defer cfg.Client.CloseIdleConnections()
	live := newProgressLine(b.out, b.log)
	cfg.Progress = live.update
	b.say("running %s against %s for %v", scn.Name(), strings.Join(targets, ","), b.opts.warmup+b.opts.duration)
	res, err := loadgen.Run(ctx, cfg, scn)
	live.done()
	return res, err
}

// runBaseline drives the same scenario against a bare in-process gin
// handler, before allot runs, so that both see the same idle machine.
func (b *bench) runBaseline(ctx context.Context, prefix string, conc int) (*report.Run, error) {
	srv, err := baseline.Start()
	if err != nil {
		return nil, err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	scn, err := b.newScenario(prefix + "-bl")
	if err != nil {
		return nil, err
	}
	b.say("baseline: bare gin JSON handler on %s", srv.URL())
	res, err := b.load(ctx, []string{srv.URL()}, scn, conc)
	if err != nil {
		return nil, err
	}
	return report.NewRun(res, b.shape("baseline "+srv.URL(), conc)), nil
}

// runRedis drives the same scenario, setup and presale included, against
// gin + go-redis + the seckill Lua script on a redis-server of its own
// (persistence off), then audits what Redis holds, into m.
func (b *bench) runRedis(ctx context.Context, prefix string, conc int, m *report.Measured) error {
	proc, err := redislua.StartRedis(ctx)
	if err != nil {
		return err
	}
	defer func() {
		if err := proc.Stop(); err != nil {
			b.say("stopping redis-server: %v", err)
		}
	}()
	srv, err := redislua.Start(redislua.Config{RedisAddr: proc.Addr(), Secret: b.secret, PoolSize: conc})
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	b.say("redis-lua: gin + go-redis on %s, redis-server on %s (persistence off)", srv.URL(), proc.Addr())
	urls := []string{srv.URL()}
	client, err := b.adminClient(ctx, prefix+"-rl", urls)
	if err != nil {
		return err
	}
	scn, err := b.newScenario(prefix + "-rl")
	if err != nil {
		return err
	}
	if _, err := b.setup(ctx, client, scn, conc, urls); err != nil {
		return err
	}
	res, err := b.load(ctx, urls, scn, conc)
	if res != nil {
		m.RedisLua = report.NewRun(res, b.shape("redis-lua "+srv.URL(), conc))
	}
	if err != nil {
		return err
	}
	obs := scn.Observed()
	acked := make(map[string]int64)
	for _, a := range obs.Acks {
		acked[a.ResourceID] += a.Quantity
	}
	actx, cancel := context.WithTimeout(ctx, verifyTimeout)
	defer cancel()
	audit, err := srv.Audit(actx, acked, obs.Unknown)
	if err != nil {
		return err
	}
	if obs.Unexpected > 0 {
		audit.Pass = false
		audit.Failures = append(audit.Failures, fmt.Sprintf("%d unexpected answers: %q", obs.Unexpected, obs.UnexpectedExamples))
	}
	m.RedisCheck = &audit
	return nil
}

// check reads the final state back and verifies it against what the run
// saw.
func (b *bench) check(ctx context.Context, client *admin.Admin, scn *scenario.Scenario, m *report.Measured) error {
	vctx, cancel := context.WithTimeout(ctx, verifyTimeout)
	defer cancel()
	start := time.Now()
	ids := scn.ResourceIDs()
	b.say("reading back %d resources", len(ids))
	reader, err := client.NewReader(vctx, ids[0])
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	var lids []string
	if b.noLimits == "" {
		lids = scn.LimitIDs()
	}
	var before []verify.Limit
	if len(lids) > 0 {
		b.say("reading back %d limit groups", len(lids))
		if before, err = reader.ReadLimits(vctx, lids, setupParallel); err != nil {
			return fmt.Errorf("verify: %w", err)
		}
	}
	resources, err := reader.ReadAll(vctx, ids, setupParallel)
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	limits, err := b.settleLimits(vctx, reader, lids, before, resources)
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	// The stream is read after the state, so that it holds every change
	// the state shows.
	b.say("reading the change stream")
	var skipped *verify.StreamSummary
	stream, err := client.ReadStream(vctx)
	switch {
	case errors.Is(err, admin.ErrNoStream):
		skipped = &verify.StreamSummary{Skipped: err.Error()}
		b.say("stream checks skipped: %v", err)
	case err != nil:
		return fmt.Errorf("verify: %w", err)
	}
	obs := scn.Observed()
	in := verify.Input{
		Resources: resources, Acks: obs.Acks, SoldOut: obs.SoldOut,
		Responses: obs.Responses, Unexpected: obs.Unexpected, UnexpectedExamples: obs.UnexpectedExamples,
		ExpiryGrace: expiryGrace, LimitsSkipped: b.noLimits,
	}
	in.Limits = limits
	if skipped == nil {
		in.Stream = &stream
	}
	result := verify.Verify(in)
	if skipped != nil {
		result.Stream = skipped
	}
	reservations := 0
	for _, r := range resources {
		reservations += len(r.Reservations)
	}
	m.Verify = &report.Verification{
		Pass: result.Pass, LinearizableReads: reader.Linearizable(), Resources: len(resources),
		Reservations: reservations, Acknowledged: len(obs.Acks), UnknownOutcomes: obs.Unknown,
		DurationS: time.Since(start).Seconds(), Checks: result.Checks, Stream: result.Stream,
	}
	return nil
}

// limitReadTries bounds the re-reads of limit groups whose count changed
// while their members were read; limitQuiet is how long their counts must
// hold still before the members are read again.
const (
	limitReadTries = 10
	limitQuiet     = 500 * time.Millisecond
)

// settleLimits reads the limits lids again after their members were read
// (before is what they were before) and returns them once their counts
// held still across a read of their members: only expiry moves them after
// the load, and a hold expiring between the reads would make a count and
// its members' reservations disagree. Members of a limit that moved are
// read again, into resources, once the counts have been quiet for
// limitQuiet (the expiries are over, or paused).
func (b *bench) settleLimits(ctx context.Context, reader *admin.Reader, lids []string, before []verify.Limit, resources []verify.Resource) ([]verify.Limit, error) {
	if len(lids) == 0 {
		return nil, nil
	}
	moved := func(a, b []verify.Limit) map[string]bool {
		m := make(map[string]bool)
		for i := range a {
			if a[i].Taken != b[i].Taken {
				m[a[i].ID] = true
			}
		}
		return m
	}
	for range limitReadTries {
		after, err := reader.ReadLimits(ctx, lids, setupParallel)
		if err != nil {
			return nil, err
		}
		changed := moved(before, after)
		if len(changed) == 0 {
			return after, nil
		}
		// Wait for the expiries to pass before reading the members again.
		for quiet := after; ; quiet = after {
			select {
			case <-ctx.Done():
				return nil, context.Cause(ctx)
			case <-time.After(limitQuiet):
			}
			if after, err = reader.ReadLimits(ctx, lids, setupParallel); err != nil {
				return nil, err
			}
			if len(moved(quiet, after)) == 0 {
				break
			}
			for id := range moved(quiet, after) {
				changed[id] = true
			}
		}
		var again []int
		var ids []string
		for i, r := range resources {
			for _, l := range r.Limits {
				if changed[l] {
					again, ids = append(again, i), append(ids, r.ID)
					break
				}
			}
		}
		b.say("%d limit groups moved while read (holds expiring): reading their %d members again", len(changed), len(ids))
		fresh, err := reader.ReadAll(ctx, ids, setupParallel)
		if err != nil {
			return nil, err
		}
		for j, i := range again {
			resources[i] = fresh[j]
		}
		before = after
	}
	return nil, fmt.Errorf("limit groups kept changing while read %d times", limitReadTries)
}

// maxNodes bounds --nodes: an embedded cluster shares this machine's CPUs
// with the load generator.
const maxNodes = 7

// startCluster starts n allot nodes in this process on 127.0.0.1, each with
// its data in a fresh temporary directory: the first bootstraps, the others
// join through it. It returns once every node is ready and knows all n as
// voters. stop shuts the nodes down in reverse order and removes their
// directories.
func startCluster(ctx context.Context, n int, secret []byte) (urls []string, stop func() error, err error) {
	var (
		srvs []*server.Server
		dirs []string
	)
	stop = func() error {
		sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		var errs []error
		for i := len(srvs) - 1; i >= 0; i-- {
			errs = append(errs, srvs[i].Shutdown(sctx))
		}
		for _, d := range dirs {
			errs = append(errs, os.RemoveAll(d))
		}
		return errors.Join(errs...)
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, stop())
			urls, stop = nil, nil
		}
	}()
	rctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	for i := range n {
		dir, err := os.MkdirTemp("", "allot-bench-")
		if err != nil {
			return nil, nil, err
		}
		dirs = append(dirs, dir)
		cfg := server.DefaultConfig()
		cfg.NodeID, cfg.DataDir = fmt.Sprintf("bench%d", i+1), dir
		cfg.HTTPAddr, cfg.RaftAddr = "127.0.0.1:0", "127.0.0.1:0"
		cfg.Bootstrap, cfg.AuthSecret = i == 0, secret
		// Every simulated user comes from 127.0.0.1: a per-address limit
		// would cap the whole crowd.
		cfg.HTTP.IPRateLimit.PerSecond = 0
		srv, err := server.Start(cfg)
		if err != nil {
			return nil, nil, fmt.Errorf("node %s: %w", cfg.NodeID, err)
		}
		srvs = append(srvs, srv)
		urls = append(urls, "http://"+srv.HTTPAddr())
		if i == 0 {
			// The others join through the first once it leads.
			if err := waitFor(rctx, func() error { return srv.Node().Ready() }); err != nil {
				return nil, nil, fmt.Errorf("node %s: %w", cfg.NodeID, err)
			}
		} else if err := srv.Join(rctx, urls[:1]); err != nil {
			return nil, nil, fmt.Errorf("node %s: %w", cfg.NodeID, err)
		}
	}
	err = waitFor(rctx, func() error {
		for _, s := range srvs {
			if err := s.Node().Ready(); err != nil {
				return fmt.Errorf("node %s: %w", s.Node().ID(), err)
			}
			voters := 0
			for _, ns := range s.Node().Status().Nodes {
				if ns.Voter && ns.HTTPAddr != "" {
					voters++
				}
			}
			if voters != n {
				return fmt.Errorf("node %s knows %d of %d voters", s.Node().ID(), voters, n)
			}
		}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("cluster not formed: %w", err)
	}
	return urls, stop, nil
}

// waitFor polls cond until it returns nil or ctx ends, then returns cond's
// last error.
func waitFor(ctx context.Context, cond func() error) error {
	for {
		err := cond()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(20 * time.Millisecond):
		}
	}
}
