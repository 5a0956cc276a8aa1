//go:build e2e

package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"allot/bench/linearize"
	"allot/cmd/allot/server/chaos"
	"allot/httpapi"
)

// The process faults of the chaos suite: the recorded crowd of package chaos
// runs against three real allot processes while one is killed (SIGKILL)
// and restarted, or the leader is paused (SIGSTOP) long enough to be
// replaced and then resumed; the history is checked for linearizability and
// for lost, oversold and twice-booked reservations. A paused leader that
// wakes up must not answer from its stale state (defect 12 of the faults
// review): its rejections and reads are only given under a lease.
//
//	go test -tags e2e -run TestE2EChaos -count=1 ./cmd/allot/
//	go test -tags e2e -run TestE2EChaos/pause -seed 3 ./cmd/allot/

func TestE2EChaos(t *testing.T) {
	for _, kind := range []string{"kill", "pause"} {
		t.Run(kind, func(t *testing.T) {
			for _, seed := range e2eChaosSeeds() {
				t.Run(fmt.Sprint(seed), func(t *testing.T) { e2eChaos(t, kind, seed) })
			}
		})
	}
}

// e2eChaosFaults is how many kills or pauses one run has.
const e2eChaosFaults = 2

func e2eChaosSeeds() []uint64 {
	if s := os.Getenv("ALLOT_CHAOS_SEED"); s != "" {
		var seed uint64
		fmt.Sscan(s, &seed)
		return []uint64{seed}
	}
	return []uint64{1}
}

func e2eChaos(t *testing.T, kind string, seed uint64) {
	replay := fmt.Sprintf("ALLOT_CHAOS_SEED=%d go test -tags e2e -run 'TestE2EChaos/%s/' ./cmd/allot/", seed, kind)
	t.Logf("seed %d; replay: %s", seed, replay)
	hc := &http.Client{Timeout: 5 * time.Second}
	procs := formCluster(t, hc, 3)
	w := &chaos.Workload{
		Nodes: func() []string {
			var urls []string
			for _, p := range procs {
				if p.up() {
					urls = append(urls, p.base)
				}
			}
			return urls
		},
		Token: func(user string, admin bool) string {
			role := httpapi.RoleUser
			if admin {
				role = httpapi.RoleAdmin
			}
			tok, err := httpapi.MintToken([]byte(crashSecret), user, role, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			return tok
		},
		Resources: chaos.DefaultResources(),
		Seed:      seed,
		// Fewer clients than in-process: a pause leaves every patient
		// client's request open for seconds, and each open unknown outcome
		// multiplies the orders the checker has to try.
		Clients: 8,
		// Half the clients wait longer than a pause: their requests that
		// reach the paused leader are answered when it wakes up (from stale
		// state, were it not for the lease), while the others give up after
		// 3 s and go on writing through the new leader.
		PatientTimeout: 10 * time.Second,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	if err := w.Setup(ctx); err != nil {
		t.Fatal(err)
	}
	crowd, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); w.Run(crowd) }()

	rng := rand.New(rand.NewPCG(seed, 0xe2e))
	for range e2eChaosFaults {
		time.Sleep(time.Duration(500+rng.IntN(1000)) * time.Millisecond)
		l := leaderOf(hc, procs)
		if l == nil {
			t.Fatal("no leader")
		}
		switch kind {
		case "kill":
			v := l
			if rng.IntN(2) == 0 {
				v = procs[rng.IntN(len(procs))]
			}
			v.kill()
			time.Sleep(time.Duration(500+rng.IntN(1500)) * time.Millisecond)
			v.start()
		case "pause":
			// Long enough for the others to elect a new leader and commit,
			// short enough that the old one wakes up still believing it
			// leads (hashicorp/raft's own lease check has not run).
			l.pause()
			time.Sleep(time.Duration(3000+rng.IntN(3000)) * time.Millisecond)
			l.resume()
		}
		for _, p := range procs {
			p.waitReady(hc, 60*time.Second)
		}
	}
	time.Sleep(time.Second)
	stop()
	<-done
	repairHalted(t, hc, procs)
	waitSameState(t, hc, procs, 60*time.Second)
	l := leaderOf(hc, procs)
	if l == nil {
		t.Fatal("no leader at the end")
	}
	viz := filepath.Join(os.TempDir(), fmt.Sprintf("allot-e2e-chaos-%s-%d.html", kind, seed))
	rep, err := w.Verify(ctx, l.base, linearize.Options{Skew: 300 * time.Millisecond, Lateness: 5 * time.Second,
		UnknownHorizon: 15 * time.Second, Timeout: 3 * time.Minute, VisualizationPath: viz})
	st := w.Stats()
	t.Logf("%d requests (%d created, %d unknown, %d transport errors); %s",
		st.Requests.Load(), st.Created.Load(), st.Unknown.Load(), st.Transport.Load(), rep)
	if err != nil {
		t.Fatalf("seed %d: %v (replay: %s)", seed, err, replay)
	}
	if !rep.Ok() {
		t.Fatalf("seed %d failed: %s\nreplay: %s", seed, rep, replay)
	}
}
