//go:build chaos

package chaos

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"allot/bench/linearize"
	"allot/cmd/allot/server/servertest"
	"allot/httpapi"
)

var (
	seedFlag     = flag.Uint64("seed", 0, "run only this seed (replay a failure)")
	runsFlag     = flag.Int("runs", 1, "seeds per fault kind")
	durationFlag = flag.Duration("duration", 6*time.Second, "how long the crowd runs under faults, per seed")
	historyFlag  = flag.String("history", "", "TestRecheck: a history a failed run saved")
	checkFlag    = flag.Duration("check-timeout", 5*time.Minute, "TestRecheck: how long the search may take")
)

// TestRecheck checks a history saved by a failed run again, offline.
func TestRecheck(t *testing.T) {
	if *historyFlag == "" {
		t.Skip("no -history given")
	}
	f, err := os.Open(*historyFlag)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h, opts, err := linearize.Load(f)
	if err != nil {
		t.Fatal(err)
	}
	opts.Timeout = *checkFlag
	opts.VisualizationPath = strings.TrimSuffix(*historyFlag, ".json") + "-recheck.html"
	res, err := linearize.Check(h, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Log(res)
	if !res.Ok() {
		t.Fatal("not linearizable (or not proven)")
	}
}

// ciSeeds are the fixed seeds CI runs, one per kind.
var ciSeeds = []uint64{1}

func seeds() []uint64 {
	switch {
	case *seedFlag != 0:
		return []uint64{*seedFlag}
	case *runsFlag > len(ciSeeds):
		s := append([]uint64(nil), ciSeeds...)
		for i := len(ciSeeds); i < *runsFlag; i++ {
			s = append(s, uint64(1000+i))
		}
		return s
	}
	return ciSeeds
}

// TestChaos runs the crowd under each fault kind, seed by seed, and checks
// every history.
func TestChaos(t *testing.T) {
	var mu sync.Mutex
	var total Report
	runs := 0
	for _, f := range Faults {
		t.Run(f.Name, func(t *testing.T) {
			for _, seed := range seeds() {
				t.Run(fmt.Sprint(seed), func(t *testing.T) {
					rep := runChaos(t, f, seed, *durationFlag)
					mu.Lock()
					runs++
					total.Acknowledged += rep.Acknowledged
					total.Lost += rep.Lost
					total.Oversold += rep.Oversold
					total.Check.Operations += rep.Check.Operations
					total.Check.Unknown += rep.Check.Unknown
					mu.Unlock()
				})
			}
		})
	}
	t.Logf("chaos: %d runs, %d operations checked (%d unknown outcomes), %d reservations acknowledged, %d lost, %d oversold",
		runs, total.Check.Operations, total.Check.Unknown, total.Acknowledged, total.Lost, total.Oversold)
}

func runChaos(t *testing.T, f Fault, seed uint64, d time.Duration) Report {
	replay := fmt.Sprintf("go test -tags chaos -run 'TestChaos/%s/' -seed=%d ./cmd/allot/server/chaos/", f.Name, seed)
	t.Logf("seed %d; replay: %s", seed, replay)
	c := servertest.MakeCluster(t, 3, servertest.Options{Seed: seed, LogLevel: slog.LevelError})
	w := &Workload{
		Nodes: func() []string {
			var urls []string
			for _, nd := range c.Running() {
				urls = append(urls, nd.URL())
			}
			return urls
		},
		Token: func(user string, admin bool) string {
			role := httpapi.RoleUser
			if admin {
				role = httpapi.RoleAdmin
			}
			return c.Token(user, role)
		},
		Resources: DefaultResources(),
		Seed:      seed,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := w.Setup(ctx); err != nil {
		t.Fatal(err)
	}
	crowd, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); w.Run(crowd) }()

	rng := rand.New(rand.NewPCG(seed, 0xc4a05))
	end := time.Now().Add(d)
	faults := 0
	for time.Now().Before(end) {
		time.Sleep(between(rng, 300*time.Millisecond, time.Second))
		heal := f.Inject(c, rng)
		heal()
		faults++
	}
	time.Sleep(time.Second) // the crowd goes on a moment on the healed cluster
	stop()
	<-done
	c.Net().Heal()
	for _, nd := range c.Nodes() {
		if !nd.Running() && !nd.Removed() {
			c.Restart(nd.Index())
		}
	}
	c.WaitConverged()

	viz := filepath.Join(os.TempDir(), fmt.Sprintf("allot-chaos-%s-%d.html", f.Name, seed))
	rep, err := w.Verify(ctx, c.Leader().URL(), linearize.Options{
		Skew:              300 * time.Millisecond, // the 250 ms bound, and the 1% slew of leader time
		Lateness:          5 * time.Second,
		UnknownHorizon:    15 * time.Second, // past ApplyTimeout (10 s) and a failover
		Timeout:           90 * time.Second, // legal histories take under a second; a hard one took 78 s on a loaded machine (the search's memory grows with it)
		VisualizationPath: viz,
	})
	st := w.Stats()
	t.Logf("%d faults; %d requests (%d created, %d unknown, %d transport errors); %s",
		faults, st.Requests.Load(), st.Created.Load(), st.Unknown.Load(), st.Transport.Load(), rep)
	if err != nil {
		t.Fatalf("seed %d: %v (replay: %s)", seed, err, replay)
	}
	if !rep.Ok() {
		t.Fatalf("seed %d failed: %s\nreplay: %s", seed, rep, replay)
	}
	return rep
}
