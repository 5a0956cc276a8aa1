//go:build e2e

package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// The end-to-end suite runs real allot processes (this test binary re-executed
// as the allot binary, see TestMain) formed into a cluster the way the README
// does it, and kills some of them with SIGKILL in the middle of a flash sale.
// Run it with: go test -tags e2e -run E2E -count=1 ./cmd/allot/

func TestE2EThreeNodesLeaderKilled(t *testing.T) { flashCrowdFailover(t, 3, 1) }

func TestE2EFiveNodesTwoKilled(t *testing.T) { flashCrowdFailover(t, 5, 2) }

const (
	e2eUsers    = 5000
	e2eCapacity = 500
	e2eShort    = 40 // holds of two seconds, due while the cluster fails over
)

// proc is one allot process; its data dir and addresses outlive it.
type proc struct {
	t                        *testing.T
	id, dir, logPath         string
	httpAddr, raftAddr, base string

	mu  sync.Mutex
	cmd *exec.Cmd // nil while down
}

func newProc(t *testing.T, id string) *proc {
	dir := t.TempDir()
	p := &proc{t: t, id: id, dir: filepath.Join(dir, "data"), logPath: filepath.Join(dir, id+".log"),
		httpAddr: freeAddr(t), raftAddr: freeAddr(t)}
	p.base = "http://" + p.httpAddr
	t.Cleanup(func() { p.kill() })
	return p
}

// start runs `allot serve` as an operator would: extra holds --bootstrap or
// --join for the first start; a restart passes nothing but the node's own
// identity.
func (p *proc) start(extra ...string) {
	p.t.Helper()
	args := append([]string{"serve", "--node-id", p.id, "--data-dir", p.dir,
		"--http-addr", p.httpAddr, "--raft-addr", p.raftAddr, "--log-level", "warn"}, extra...)
	cmd := exec.Command(os.Args[0], args...)
	// Every test client is 127.0.0.1: no per-address limit.
	cmd.Env = append(os.Environ(), runMainEnv+"=1", "ALLOT_AUTH_SECRET="+crashSecret, "ALLOT_IP_RATE_LIMIT=0")
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		p.t.Fatal(err)
	}
	cmd.Stderr, cmd.Stdout = logf, logf
	if err := cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	logf.Close()
	p.mu.Lock()
	p.cmd = cmd
	p.mu.Unlock()
}

func (p *proc) kill() {
	p.mu.Lock()
	cmd := p.cmd
	p.cmd = nil
	p.mu.Unlock()
	if cmd != nil {
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait()
	}
}

func (p *proc) up() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd != nil
}

// waitReady waits for /readyz to answer 200.
func (p *proc) waitReady(hc *http.Client, within time.Duration) {
	p.t.Helper()
	if !pollUntil(within, func() bool {
		resp, err := hc.Get(p.base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}) {
		p.t.Fatalf("%s not ready within %v", p.id, within)
	}
}

// tail returns the last lines of the node's log.
func (p *proc) tail(n int) string {
	f, err := os.Open(p.logPath)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

func pollUntil(within time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
	return true
}

// formCluster starts n allot processes and forms them into a cluster as the
// README does: the first bootstraps, the others join it. It returns once
// every node is ready and known, with its HTTP address, to the others. If
// the test fails, the tail of each node's log is printed.
func formCluster(t *testing.T, hc *http.Client, n int) []*proc {
	t.Helper()
	procs := make([]*proc, n)
	for i := range procs {
		procs[i] = newProc(t, fmt.Sprintf("n%d", i+1))
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, p := range procs {
				t.Logf("--- log of %s:\n%s", p.id, p.tail(40))
			}
		}
	})
	procs[0].start("--bootstrap")
	procs[0].waitReady(hc, 30*time.Second)
	for _, p := range procs[1:] {
		p.start("--join", procs[0].base)
	}
	for _, p := range procs {
		p.waitReady(hc, 60*time.Second)
	}
	if !pollUntil(30*time.Second, func() bool {
		info, err := clusterView(hc, procs[n-1], "")
		if err != nil || len(info.Nodes) != n {
			return false
		}
		for _, nd := range info.Nodes {
			if nd.HTTPAddr == "" || (nd.State != "leader" && nd.State != "follower") {
				return false
			}
		}
		return true
	}) {
		t.Fatalf("cluster of %d did not form", n)
	}
	return procs
}

// pause stops the process with SIGSTOP. It keeps its state and its sockets:
// peers' connections stay open, the kernel still accepts new ones, and
// nothing is answered, as with a process stalled by a long GC pause, a VM
// migration or an overloaded host, until resume. Its clocks run on, so
// that it wakes up to timers long overdue and a lease long gone.
func (p *proc) pause() {
	p.t.Helper()
	p.signal(syscall.SIGSTOP)
}

// resume continues a paused process with SIGCONT.
func (p *proc) resume() {
	p.t.Helper()
	p.signal(syscall.SIGCONT)
}

func (p *proc) signal(sig syscall.Signal) {
	p.t.Helper()
	p.mu.Lock()
	cmd := p.cmd
	p.mu.Unlock()
	if cmd == nil {
		p.t.Fatalf("%s: %v to a process that is down", p.id, sig)
	}
	if err := cmd.Process.Signal(sig); err != nil {
		p.t.Fatalf("%s: %v: %v", p.id, sig, err)
	}
}

// leaderOf returns the process that the first answering node names as its
// leader, nil if none answers with one.
func leaderOf(hc *http.Client, procs []*proc) *proc {
	for _, p := range procs {
		info, err := clusterView(hc, p, "")
		if err != nil || info.Leader == nil {
			continue
		}
		for _, q := range procs {
			if q.id == info.Leader.ID {
				return q
			}
		}
	}
	return nil
}

// waitSameState waits until every process answers, is ready, and reports
// the same applied index and state hash; it returns the hash.
func waitSameState(t *testing.T, hc *http.Client, procs []*proc, within time.Duration) string {
	t.Helper()
	var last string
	var hash string
	if !pollUntil(within, func() bool {
		hash = ""
		var index uint64
		for i, p := range procs {
			info, err := clusterView(hc, p, "?hash=true")
			switch {
			case err != nil:
				last = fmt.Sprintf("%s: %v", p.id, err)
				return false
			case !info.Ready || info.StateHash == "":
				last = fmt.Sprintf("%s not ready: %s", p.id, info.Reason)
				return false
			case i == 0:
				hash, index = info.StateHash, info.AppliedIndex
			case info.AppliedIndex != index || info.StateHash != hash:
				last = fmt.Sprintf("%s at %d with %.16s, %s at %d with %.16s",
					procs[0].id, index, hash, p.id, info.AppliedIndex, info.StateHash)
				return false
			}
		}
		return true
	}) {
		t.Fatalf("nodes did not converge within %v: %s", within, last)
	}
	return hash
}

type clusterJSON struct {
	ID           string `json:"id"`
	State        string `json:"state"`
	Ready        bool   `json:"ready"`
	Reason       string `json:"reason"`
	AppliedIndex uint64 `json:"applied_index"`
	StateHash    string `json:"state_hash"`
	Leader       *struct {
		ID string `json:"id"`
	} `json:"leader"`
	Nodes []struct {
		ID       string `json:"id"`
		HTTPAddr string `json:"http_addr"`
		State    string `json:"state"`
	} `json:"nodes"`
}

func clusterView(hc *http.Client, p *proc, query string) (clusterJSON, error) {
	var info clusterJSON
	code, body, err := call(hc, "GET", p.base+"/v1/cluster"+query, "ops", "admin", nil, "")
	if err == nil && code != http.StatusOK {
		err = fmt.Errorf("%d %s", code, body)
	}
	if err == nil {
		err = json.Unmarshal(body, &info)
	}
	return info, err
}

type reservationItem struct {
	ID        string    `json:"id"`
	User      string    `json:"user"`
	Status    string    `json:"status"`
	ExpiresAt time.Time `json:"expires_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// listStale lists every reservation of resource in p's own committed state.
func listStale(hc *http.Client, p *proc, resource string) ([]reservationItem, error) {
	var all []reservationItem
	after := ""
	for range 100 {
		var page struct {
			Items []reservationItem `json:"items"`
			Next  string            `json:"next"`
		}
		code, body, err := call(hc, "GET", p.base+"/v1/reservations?consistency=stale&limit=1000&resource="+resource+"&after="+after, "ops", "admin", nil, "")
		if err != nil || code != http.StatusOK {
			return nil, fmt.Errorf("list on %s: %d %s %v", p.id, code, body, err)
		}
		if err := json.Unmarshal(body, &page); err != nil {
			return nil, err
		}
		all = append(all, page.Items...)
		if page.Next == "" {
			return all, nil
		}
		after = page.Next
	}
	return nil, fmt.Errorf("list on %s: too many pages", p.id)
}

// flashCrowdFailover forms an n-node cluster, runs a flash crowd against
// all nodes, SIGKILLs the leader (and kill-1 more nodes) in the middle,
// restarts them a little later, and checks that no acknowledged
// reservation was lost, nobody booked twice, nothing was oversold, holds
// due during the failover expired, and every node ends in the same state.
func flashCrowdFailover(t *testing.T, n, kill int) {
	if testing.Short() {
		t.Skip("starts real processes")
	}
	hc := &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	procs := formCluster(t, hc, n)

	mustDo := func(method, url string, body string) {
		t.Helper()
		code, b, err := call(hc, method, url, "ops", "admin", []byte(body), "")
		if err != nil || code >= 300 {
			t.Fatalf("%s %s: %d %s %v", method, url, code, b, err)
		}
	}
	mustDo("PUT", procs[1].base+"/v1/resources/flash", fmt.Sprintf(`{"kind":"voucher","capacity":%d,"hold_seconds":600}`, e2eCapacity))
	mustDo("PUT", procs[n-1].base+"/v1/resources/short", fmt.Sprintf(`{"kind":"slot","capacity":%d,"hold_seconds":2}`, e2eShort))

	// reserve books for user with its own Idempotency-Key, starting at node
	// first and moving on to the next node on every 503 or broken
	// connection, until it has a definite answer (201 or sold out).
	type answer struct {
		id        string
		expiresAt time.Time
		code      int
		tries     int
	}
	reserve := func(resource, user string, first int, giveUp time.Time) answer {
		for try := 0; ; try++ {
			p := procs[(first+try)%n]
			code, body, err := call(hc, "POST", p.base+"/v1/resources/"+resource+"/reservations", user, "user", []byte(`{"quantity":1}`), "k-"+user)
			switch {
			case err == nil && code == http.StatusCreated:
				var r reservationItem
				if err := json.Unmarshal(body, &r); err != nil || r.User != user {
					t.Errorf("%s: bad 201 %s", user, body)
				}
				return answer{id: r.ID, expiresAt: r.ExpiresAt, code: code, tries: try + 1}
			case err == nil && code == http.StatusConflict && strings.Contains(string(body), `"sold_out"`):
				return answer{code: code, tries: try + 1}
			case err == nil && code != http.StatusServiceUnavailable && code != http.StatusConflict:
				t.Errorf("%s via %s: %d %s", user, p.id, code, body)
				return answer{code: code, tries: try + 1}
			}
			// 503 (unavailable, outcome_unknown), request_in_progress, or the node is down.
			if time.Now().After(giveUp) {
				return answer{tries: try + 1}
			}
			time.Sleep(time.Duration(20+10*(try%5)) * time.Millisecond)
		}
	}

	answers := make([]answer, e2eUsers)
	var acked atomic.Int64
	var next atomic.Int64
	giveUp := time.Now().Add(3 * time.Minute)
	var crowd sync.WaitGroup
	for range 48 {
		crowd.Go(func() {
			for {
				u := int(next.Add(1)) - 1
				if u >= e2eUsers {
					return
				}
				a := reserve("flash", fmt.Sprintf("u%04d", u), u%n, giveUp)
				answers[u] = a
				if a.code == http.StatusCreated {
					acked.Add(1)
				}
			}
		})
	}

	// Mid-crowd: holds that fall due during the failover, then the kill.
	if !pollUntil(60*time.Second, func() bool { return acked.Load() >= e2eCapacity/4 }) {
		t.Fatalf("only %d reservations before the kill", acked.Load())
	}
	shortDue := make(map[string]time.Time, e2eShort) // id -> expires_at
	var shortMu sync.Mutex
	var shorts sync.WaitGroup
	for i := range e2eShort {
		shorts.Go(func() {
			a := reserve("short", fmt.Sprintf("s%02d", i), i%n, giveUp)
			if a.code != http.StatusCreated {
				t.Errorf("short hold %d: %+v", i, a)
			}
			shortMu.Lock()
			shortDue[a.id] = a.expiresAt
			shortMu.Unlock()
		})
	}
	shorts.Wait()
	leaderID := ""
	for _, p := range procs {
		if info, err := clusterView(hc, p, ""); err == nil && info.Leader != nil {
			leaderID = info.Leader.ID
			break
		}
	}
	var victims []*proc
	for _, p := range procs {
		if p.id == leaderID {
			victims = append(victims, p)
		}
	}
	if len(victims) != 1 {
		t.Fatalf("leader %q not found", leaderID)
	}
	for _, p := range procs {
		if len(victims) < kill && p.id != leaderID {
			victims = append(victims, p)
		}
	}
	killedAt := time.Now()
	for _, p := range victims {
		p.kill()
	}
	t.Logf("killed %v (leader %s) with %d reservations acknowledged, %d of %d users started",
		ids(victims), leaderID, acked.Load(), min(next.Load(), e2eUsers), e2eUsers)

	// The survivors elect a leader and keep selling; the victims come back
	// a little later, with no flags but their identity.
	var failover time.Duration
	survivor := procs[0]
	for _, p := range procs {
		if p.up() {
			survivor = p
			break
		}
	}
	if !pollUntil(30*time.Second, func() bool {
		info, err := clusterView(hc, survivor, "")
		return err == nil && info.Leader != nil && info.Leader.ID != leaderID
	}) {
		t.Fatal("no new leader after the kill")
	}
	failover = time.Since(killedAt)
	time.Sleep(2 * time.Second) // the victims stay down while the crowd goes on
	for _, p := range victims {
		p.start()
	}
	crowd.Wait()
	t.Logf("new leader after %v; crowd done: %d acknowledged", failover, acked.Load())

	// Every user has a definite answer.
	winners := map[string]string{} // user -> reservation id
	tries := 0
	for u, a := range answers {
		tries += a.tries
		switch a.code {
		case http.StatusCreated:
			winners[fmt.Sprintf("u%04d", u)] = a.id
		case http.StatusConflict:
		default:
			t.Fatalf("user u%04d has no answer: %+v", u, a)
		}
	}
	t.Logf("%d users, %d requests, %d reservations", e2eUsers, tries, len(winners))
	if len(winners) != e2eCapacity {
		t.Errorf("%d reservations acknowledged, want every one of %d units sold", len(winners), e2eCapacity)
	}

	// Convergence: every node ready, the short holds expired everywhere,
	// and one state hash.
	for _, p := range procs {
		p.waitReady(hc, 60*time.Second)
	}
	var hashes map[string]string
	if !pollUntil(60*time.Second, func() bool {
		hashes = map[string]string{}
		for _, p := range procs {
			items, err := listStale(hc, p, "short")
			if err != nil || len(items) != e2eShort {
				return false
			}
			for _, it := range items {
				if it.Status != "expired" {
					return false
				}
			}
			info, err := clusterView(hc, p, "?hash=true")
			if err != nil {
				return false
			}
			hashes[p.id] = info.StateHash
		}
		for _, h := range hashes {
			if h != hashes[procs[0].id] || h == "" {
				return false
			}
		}
		return true
	}) {
		t.Fatalf("nodes did not converge: hashes %v", hashes)
	}

	for _, p := range procs {
		items, err := listStale(hc, p, "flash")
		if err != nil {
			t.Fatal(err)
		}
		byUser := map[string]string{}
		for _, it := range items {
			if _, twice := byUser[it.User]; twice {
				t.Fatalf("%s: user %s booked twice", p.id, it.User)
			}
			byUser[it.User] = it.ID
			if it.Status != "held" {
				t.Fatalf("%s: %s is %s", p.id, it.ID, it.Status)
			}
		}
		if len(items) > e2eCapacity {
			t.Fatalf("%s: %d reservations for %d units", p.id, len(items), e2eCapacity)
		}
		for user, id := range winners {
			if byUser[user] != id {
				t.Fatalf("%s: acknowledged reservation %s of %s is missing (has %q)", p.id, id, user, byUser[user])
			}
		}
		if len(items) != len(winners) {
			t.Fatalf("%s: %d reservations, %d acknowledged", p.id, len(items), len(winners))
		}
		var res struct{ Available, Held, Confirmed int }
		code, body, err := call(hc, "GET", p.base+"/v1/resources/flash?consistency=stale", "ops", "admin", nil, "")
		if err != nil || code != http.StatusOK || json.Unmarshal(body, &res) != nil {
			t.Fatalf("%s: resource: %d %s %v", p.id, code, body, err)
		}
		if res.Held != len(items) || res.Available+res.Held+res.Confirmed != e2eCapacity {
			t.Fatalf("%s: counts %+v for %d reservations", p.id, res, len(items))
		}
		shortItems, err := listStale(hc, p, "short")
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range shortItems {
			due, ok := shortDue[it.ID]
			if !ok || due.IsZero() || it.UpdatedAt.Before(due) {
				t.Fatalf("%s: short hold %+v (due %v) is unknown or expired early", p.id, it, due)
			}
			if !due.After(killedAt) {
				t.Fatalf("short hold %s was due at %v, before the kill at %v: the test did not cover the failover",
					it.ID, due, killedAt)
			}
		}
	}
	t.Logf("all %d nodes hold the same state %s", n, hashes[procs[0].id])
}

func ids(ps []*proc) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.id
	}
	return out
}
