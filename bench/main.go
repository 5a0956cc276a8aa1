// Command bench is allot's load generator. With no flags it starts an
// embedded single-node allot in a temporary directory (--nodes N: an
// in-process cluster of N nodes on loopback, the workers spread over them),
// plays the seckill scenario against it for 20 seconds, prints latency
// (HdrHistogram, free of coordinated omission in the open loop), throughput
// and answer counts, then reads the final state back and verifies it: no
// oversell, counts that add up, no user over its limit (per resource and
// per limit group), every acknowledged reservation present.
// It exits 1 when verification fails, 2 when the run could not be made.
//
//	go run ./bench [--nodes N] [--scenario seckill|hospital|hotel|campaign|mixed|soldout|accept]
//	               [--concurrency 64 | --rate 5000 | --sweep 64,256,1024]
//	               [--duration 20s] [--warmup 0s] [--requests N] [--baseline] [--redis] [--json FILE]
//	go run ./bench --target http://host:8080[,http://...]   (secret in ALLOT_AUTH_SECRET)
//	go run ./bench --verify-only --target http://host:8080[,http://...]
//	go run ./bench --scale [--scale-resources 1000000] [--scale-reservations 10000000] [--scale-timeout 30m] [--json FILE]
//
// --verify-only runs no load: it verifies the whole state a running cluster
// holds (after a load test made with any tool), prints PASS or FAIL and
// exits 1 on FAIL.
//
// --scale is another mode (package bench/scale): it loads one embedded node
// with a large state and measures memory, the snapshot's pause, restart
// and snapshot install.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"allot/bench/scale"
	"allot/bench/scenario"
)

// Exit codes.
const (
	exitPass  = 0
	exitFail  = 1 // verification failed
	exitError = 2 // bad flags, or the run could not be made
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// options are the command line.
type options struct {
	scenario    string
	targets     []string // empty: embedded
	nodes       int
	concurrency int
	rate        float64
	duration    time.Duration
	warmup      time.Duration
	requests    int64
	timeout     time.Duration
	jsonPath    string
	htmlPath    string // --html: the report as a self-contained page
	baseline    bool
	redis       bool
	sweep       []int // concurrencies, one run each; empty: --concurrency alone
	verify      bool
	// verifyOnly runs the verifier alone against --target's current state.
	verifyOnly     bool
	authSecretFile string
	seed           uint64
	params         scenario.Params
	// scaleMode runs bench/scale with scale instead of a scenario.
	scaleMode bool
	scale     scale.Config
}

func parseOptions(args []string, stderr io.Writer) (options, error) {
	o := options{params: scenario.DefaultParams(), scale: scale.DefaultConfig()}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: go run ./bench [flags]\n\nallot's load generator: runs a scenario, reports latency and throughput, verifies the final state.\n\n")
		fs.PrintDefaults()
	}
	var target string
	fs.StringVar(&o.scenario, "scenario", "seckill", "workload: "+strings.Join(scenario.Names(), ", "))
	fs.StringVar(&target, "target", "", "comma-separated base URLs of a running cluster (default: an embedded single node); the secret comes from ALLOT_AUTH_SECRET or --auth-secret-file")
	fs.IntVar(&o.nodes, "nodes", 1, "nodes of the embedded cluster, 1 to 7, on loopback; workers are spread over them")
	fs.IntVar(&o.concurrency, "concurrency", 64, "workers: requests in flight (closed loop), or at most in flight (open loop)")
	fs.Float64Var(&o.rate, "rate", 0, "open loop: requests per second, latency measured from the intended send time (0: closed loop)")
	fs.DurationVar(&o.duration, "duration", 20*time.Second, "measured phase")
	fs.DurationVar(&o.warmup, "warmup", 0, "load before the measured phase, not recorded")
	fs.Int64Var(&o.requests, "requests", 0, "end the measured phase after this many requests (0: --duration only)")
	fs.DurationVar(&o.timeout, "timeout", 10*time.Second, "per-request timeout")
	fs.StringVar(&o.jsonPath, "json", "", "also write the report as JSON to this file")
	fs.StringVar(&o.htmlPath, "html", "", "also write the report as one self-contained HTML file (charts over time, outcome mix, checks, settings) to this file")
	fs.BoolVar(&o.baseline, "baseline", false, "first run the same load against a bare in-process gin JSON handler and state allot's throughput as a ratio of it")
	fs.BoolVar(&o.redis, "redis", false, "also run the same load against gin + go-redis + the classic seckill Lua script on a redis-server of the bench's own (persistence off; needs redis-server on PATH) and state allot's throughput as a ratio of it; seckill, soldout and accept only")
	var sweep string
	fs.StringVar(&sweep, "sweep", "", "comma-separated concurrencies, e.g. 64,256,1024: run everything once per concurrency, each on fresh resources, and report a table (closed loop only; replaces --concurrency)")
	fs.BoolVar(&o.verify, "verify", true, "read the final state back and verify it")
	fs.BoolVar(&o.verifyOnly, "verify-only", false, "run no load: verify the whole current state of the cluster at --target (every resource, reservation and limit group, and the change stream), print PASS or FAIL, exit 1 on FAIL")
	fs.StringVar(&o.authSecretFile, "auth-secret-file", "", "with --target: file holding the cluster's JWT secret")
	fs.Uint64Var(&o.seed, "seed", 0, "seed of the workers' random choices (0: from the clock)")
	fs.IntVar(&o.params.Vouchers, "vouchers", o.params.Vouchers, "seckill: vouchers on sale")
	fs.Int64Var(&o.params.Stock, "stock", o.params.Stock, "seckill: units per voucher")
	fs.Int64Var(&o.params.Users, "users", o.params.Users, "seckill: users, each trying once (the run ends early when all have)")
	fs.IntVar(&o.params.Doctors, "doctors", o.params.Doctors, "hospital: doctors, each with a week of 16 slots a day")
	fs.Int64Var(&o.params.SlotCapacity, "slot-capacity", o.params.SlotCapacity, "hospital: patients per slot")
	fs.IntVar(&o.params.RoomTypes, "room-types", o.params.RoomTypes, "hotel: room types, each with 60 nights of inventory")
	fs.Int64Var(&o.params.Rooms, "rooms", o.params.Rooms, "hotel: rooms per night of a room type")
	fs.IntVar(&o.params.CampaignVouchers, "campaign-vouchers", o.params.CampaignVouchers, "campaign: vouchers sharing the campaign's limit group")
	fs.Int64Var(&o.params.CampaignStock, "campaign-stock", o.params.CampaignStock, "campaign: units per voucher")
	fs.Int64Var(&o.params.CampaignQuota, "campaign-quota", o.params.CampaignQuota, "campaign: coupons in all (the limit's capacity), one per user")
	fs.BoolVar(&o.scaleMode, "scale", false, "scale mode: load one embedded node with --scale-resources and --scale-reservations, then measure memory, the snapshot's pause, restart and snapshot install (no scenario)")
	fs.Int64Var(&o.scale.Resources, "scale-resources", o.scale.Resources, "scale: resources to create")
	fs.Int64Var(&o.scale.Reservations, "scale-reservations", o.scale.Reservations, "scale: reservations to create, spread evenly over the resources")
	fs.IntVar(&o.scale.Concurrency, "scale-concurrency", o.scale.Concurrency, "scale: loader goroutines, one call in flight each")
	fs.DurationVar(&o.scale.Timeout, "scale-timeout", o.scale.Timeout, "scale: bound of the whole run")
	fs.BoolVar(&o.scale.StateHash, "scale-state-hash", o.scale.StateHash, "scale: compare the new follower's state hash with the leader's (each hash copies the state); off: counts and log digests")
	fs.StringVar(&o.scale.HeapProfile, "scale-heap-profile", "", "scale: write the heap profile taken after the load (and a forced GC) to this file")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if o.scaleMode {
		switch {
		case target != "":
			return o, errors.New("--scale runs its own embedded node: not with --target")
		case sweep != "":
			return o, errors.New("--scale runs no scenario: not with --sweep")
		case o.htmlPath != "":
			return o, errors.New("--scale has no HTML report: use --json")
		}
		return o, o.validateScale()
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if sweep != "" {
		for _, f := range strings.Split(sweep, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n < 1 {
				return o, fmt.Errorf("--sweep: %q is not a concurrency of at least 1", f)
			}
			o.sweep = append(o.sweep, n)
		}
	}
	if o.verifyOnly {
		if err := o.validateVerifyOnly(target, sweep); err != nil {
			return o, err
		}
	}
	if target != "" {
		for _, t := range strings.Split(target, ",") {
			t = strings.TrimRight(strings.TrimSpace(t), "/")
			u, err := url.Parse(t)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
				return o, fmt.Errorf("--target: %q is not a base URL like http://host:8080", t)
			}
			o.targets = append(o.targets, t)
		}
	}
	return o, o.validate()
}

// validateScale refuses the flags scale mode has no use for: it runs its
// own embedded node, no scenario.
func (o *options) validateScale() error {
	switch {
	case o.authSecretFile != "":
		return errors.New("--scale runs its own embedded node: not with --auth-secret-file")
	case o.nodes != 1:
		return errors.New("--scale starts its nodes itself: not with --nodes")
	case o.baseline || o.redis:
		return errors.New("--scale has no baseline: not with --baseline or --redis")
	case o.verifyOnly:
		return errors.New("--scale runs its own embedded node: not with --verify-only")
	}
	return o.scale.Validate()
}

// validateVerifyOnly refuses what --verify-only has no use for: it loads
// nothing and starts no node.
func (o *options) validateVerifyOnly(target, sweep string) error {
	switch {
	case target == "":
		return errors.New("--verify-only checks a running cluster: give its nodes with --target (and its secret in ALLOT_AUTH_SECRET or --auth-secret-file)")
	case sweep != "" || o.baseline || o.redis:
		return errors.New("--verify-only runs no load: not with --sweep, --baseline or --redis")
	case !o.verify:
		return errors.New("--verify-only with --verify=false would do nothing")
	}
	return nil
}

func (o *options) validate() error {
	switch {
	case o.nodes < 1:
		return errors.New("--nodes must be at least 1")
	case o.nodes > maxNodes:
		return fmt.Errorf("--nodes %d: an embedded cluster has at most %d nodes; for more, start a cluster and pass --target", o.nodes, maxNodes)
	case o.nodes > 1 && len(o.targets) > 0:
		return errors.New("--nodes applies to the embedded cluster, not to --target")
	case len(o.targets) == 0 && o.authSecretFile != "":
		return errors.New("--auth-secret-file needs --target; the embedded node gets a fresh secret")
	case o.concurrency < 1:
		return errors.New("--concurrency must be at least 1")
	case o.rate < 0:
		return errors.New("--rate must not be negative")
	case o.duration <= 0:
		return errors.New("--duration must be positive")
	case o.warmup < 0 || o.requests < 0:
		return errors.New("--warmup and --requests must not be negative")
	case o.timeout <= 0:
		return errors.New("--timeout must be positive")
	case len(o.sweep) > 0 && o.rate > 0:
		return errors.New("--sweep varies the closed loop's concurrency; it does not go with --rate")
	case len(o.sweep) > maxSweep:
		return fmt.Errorf("--sweep: at most %d steps, each a full run", maxSweep)
	case o.redis && !redisScenario(o.scenario):
		return fmt.Errorf("--redis: the Lua script models vouchers of one unit per user: use --scenario seckill, soldout or accept, not %q", o.scenario)
	}
	known := false
	for _, n := range scenario.Names() {
		known = known || n == o.scenario
	}
	if !known {
		return fmt.Errorf("--scenario %q: want one of %s", o.scenario, strings.Join(scenario.Names(), ", "))
	}
	return o.params.Validate()
}

// maxSweep bounds --sweep: every step is a full run of --duration (and of
// the baseline and Redis when asked).
const maxSweep = 8

// redisScenario reports whether the redis-lua comparison can play a
// scenario: vouchers of one unit per user, no limit groups, nothing but
// reserve and confirm.
func redisScenario(name string) bool {
	switch name {
	case "seckill", "soldout", "accept":
		return true
	}
	return false
}

func run(args []string, stdout, stderr io.Writer) int {
	opts, err := parseOptions(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitPass
	}
	if err != nil {
		fmt.Fprintln(stderr, "bench:", err)
		return exitError
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if opts.scaleMode {
		return runScale(ctx, opts, args, stdout, stderr)
	}
	b := newBench(opts, args, stdout, stderr)
	if opts.verifyOnly {
		err = b.verifyOnly(ctx)
	} else {
		err = b.execute(ctx)
	}
	if err != nil {
		b.rep.Error = err.Error()
	}
	b.rep.WriteText(stdout)
	if opts.jsonPath != "" {
		if jerr := b.rep.WriteJSON(opts.jsonPath); jerr != nil {
			fmt.Fprintln(stderr, "bench: writing the JSON report:", jerr)
			return exitError
		}
	}
	if opts.htmlPath != "" {
		if herr := b.rep.WriteHTML(opts.htmlPath); herr != nil {
			fmt.Fprintln(stderr, "bench: writing the HTML report:", herr)
			return exitError
		}
	}
	switch {
	case err != nil:
		fmt.Fprintln(stderr, "bench:", err)
		return exitError
	case b.rep.Failed():
		return exitFail
	}
	return exitPass
}

// runScale is --scale: exit 0 when the run was made and its checks passed
// (the goals are figures to read, not checks), 1 when a check failed, 2
// when the run could not be made.
func runScale(ctx context.Context, opts options, args []string, stdout, stderr io.Writer) int {
	cfg := opts.scale
	cfg.Command = strings.TrimSpace("go run ./bench " + strings.Join(args, " "))
	cfg.Log = stderr
	rep, err := scale.Run(ctx, cfg)
	rep.WriteText(stdout)
	if opts.jsonPath != "" {
		if jerr := rep.WriteJSON(opts.jsonPath); jerr != nil {
			fmt.Fprintln(stderr, "bench: writing the JSON report:", jerr)
			return exitError
		}
	}
	switch {
	case err != nil:
		fmt.Fprintln(stderr, "bench: scale:", err)
		return exitError
	case !rep.Pass():
		return exitFail
	}
	return exitPass
}
