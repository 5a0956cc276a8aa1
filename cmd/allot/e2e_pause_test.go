//go:build e2e

package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// clientOp is one request a test client sent and what came of it: the raw
// material of a history to check.
type clientOp struct {
	Node       string // the node it was sent to
	User, Key  string
	Start, End time.Time
	Code       int // 0: no answer (connection refused or reset, client timeout)
	Body       []byte
}

// opLog collects the operations of many client goroutines.
type opLog struct {
	mu  sync.Mutex
	ops []clientOp
}

func (l *opLog) add(op clientOp) {
	l.mu.Lock()
	l.ops = append(l.ops, op)
	l.mu.Unlock()
}

func (l *opLog) all() []clientOp {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]clientOp(nil), l.ops...)
}

// count counts the operations for which keep holds.
func (l *opLog) count(keep func(clientOp) bool) int {
	n := 0
	for _, op := range l.all() {
		if keep(op) {
			n++
		}
	}
	return n
}

// reserveLoop books resource for one new user after another (each with its
// own Idempotency-Key) until ctx ends. A user's request starts at node
// worker%n and moves on to the next node on every 503, broken connection or
// timeout, until it has a definite answer; every attempt is logged.
func reserveLoop(ctx context.Context, hc *http.Client, procs []*proc, resource string, worker int, log *opLog) {
	for i := 0; ctx.Err() == nil; i++ {
		user := fmt.Sprintf("w%d-%d", worker, i)
		for try := 0; ctx.Err() == nil; try++ {
			p := procs[(worker+try)%len(procs)]
			op := clientOp{Node: p.id, User: user, Key: "k-" + user, Start: time.Now()}
			code, body, err := call(hc, "POST", p.base+"/v1/resources/"+resource+"/reservations", user, "user", []byte(`{"quantity":1}`), op.Key)
			op.End = time.Now()
			if err == nil {
				op.Code, op.Body = code, body
			}
			log.add(op)
			if err == nil && code != http.StatusServiceUnavailable && !strings.Contains(string(body), `"request_in_progress"`) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// TestE2ELeaderPausedWhileTakingWrites stops the leader's process with
// SIGSTOP for 3-6 s while clients write, resumes it, and checks that the
// others elected a leader that acknowledged writes meanwhile, that the old
// leader rejoins as a follower, and that every node ends with the same
// state. What the paused leader answered is recorded (opLog) for checks of
// its own.
func TestE2ELeaderPausedWhileTakingWrites(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes")
	}
	seed := uint64(time.Now().UnixNano())
	pauseFor := 3*time.Second + time.Duration(rand.New(rand.NewPCG(seed, 0)).Int64N(int64(3*time.Second)))
	t.Logf("seed %d: the leader is paused for %v", seed, pauseFor)

	// A short client timeout: requests to the paused node give up and move on.
	hc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	procs := formCluster(t, hc, 3)
	code, body, err := call(hc, "PUT", procs[0].base+"/v1/resources/paused", "ops", "admin",
		[]byte(`{"kind":"voucher","capacity":1000000,"hold_seconds":600}`), "")
	if err != nil || code != http.StatusCreated {
		t.Fatalf("create: %d %s %v", code, body, err)
	}

	log := &opLog{}
	ctx, stop := context.WithCancel(context.Background())
	var writers sync.WaitGroup
	for w := range 6 {
		writers.Go(func() { reserveLoop(ctx, hc, procs, "paused", w, log) })
	}
	defer func() { stop(); writers.Wait() }()
	created := func(op clientOp) bool { return op.Code == http.StatusCreated }
	if !pollUntil(30*time.Second, func() bool { return log.count(created) >= 50 }) {
		t.Fatalf("only %d reservations before the pause", log.count(created))
	}

	old := leaderOf(hc, procs)
	if old == nil {
		t.Fatal("no leader before the pause")
	}
	var others []*proc
	for _, p := range procs {
		if p != old {
			others = append(others, p)
		}
	}
	pausedAt := time.Now()
	old.pause()
	// Resume after pauseFor, but not before a new leader acknowledged a
	// write: that is the situation the pause is meant to create.
	var newLeader *proc
	if !pollUntil(30*time.Second, func() bool {
		if newLeader == nil {
			if l := leaderOf(hc, others); l != nil && l != old {
				newLeader = l
			}
		}
		return newLeader != nil && log.count(func(op clientOp) bool {
			return created(op) && op.Node != old.id && op.Start.After(pausedAt)
		}) > 0
	}) {
		old.resume()
		t.Fatalf("no new leader acknowledging writes within 30s of pausing %s", old.id)
	}
	elected := time.Since(pausedAt)
	time.Sleep(time.Until(pausedAt.Add(pauseFor))) // the pause itself: nothing to wait for
	resumedAt := time.Now()
	old.resume()
	t.Logf("paused %s for %v; %s led after %v", old.id, resumedAt.Sub(pausedAt), newLeader.id, elected)

	// The old leader learns it was replaced; clients write on for a while.
	if !pollUntil(30*time.Second, func() bool {
		info, err := clusterView(hc, old, "")
		return err == nil && info.State == "follower" && info.Leader != nil && info.Leader.ID != old.id
	}) {
		t.Fatalf("%s did not become a follower after its pause", old.id)
	}
	if !pollUntil(30*time.Second, func() bool {
		return log.count(func(op clientOp) bool { return created(op) && op.Start.After(resumedAt) }) >= 20
	}) {
		t.Fatal("writes did not go on after the resume")
	}
	stop()
	writers.Wait()

	hash := waitSameState(t, hc, procs, 60*time.Second)
	during := func(op clientOp) bool { return op.Start.After(pausedAt) && op.Start.Before(resumedAt) }
	t.Logf("%d requests, %d reservations (%d while paused); %d answers from %s sent during its pause, %d unanswered; state %.16s",
		len(log.all()), log.count(created), log.count(func(op clientOp) bool { return created(op) && during(op) }),
		log.count(func(op clientOp) bool { return op.Node == old.id && during(op) && op.Code != 0 }), old.id,
		log.count(func(op clientOp) bool { return op.Code == 0 }), hash)
}
