//go:build e2e

package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestE2EBootstrapExpect starts three processes with identical founding
// flags, as an orchestrator does (--bootstrap-expect 3 and every node in
// --join, its own address included), at different times and the lowest id
// last, and gets one cluster: one cluster id, one leader, three voters, a
// write visible on every node. The nodes bind every interface and
// advertise a name (--advertise-host), as in a container. Stopping all three and starting them again
// with the same flags keeps that cluster, and so does a node that comes
// back with an empty data dir.
// Run it with: go test -tags e2e -run TestE2EBootstrapExpect -count=1 ./cmd/allot/
func TestE2EBootstrapExpect(t *testing.T) {
	hc := &http.Client{Timeout: 5 * time.Second}
	procs := []*proc{newProc(t, "n1"), newProc(t, "n2"), newProc(t, "n3")}
	t.Cleanup(func() {
		if t.Failed() {
			for _, p := range procs {
				t.Logf("--- log of %s:\n%s", p.id, p.tail(40))
			}
		}
	})
	bases := make([]string, len(procs))
	for i, p := range procs {
		bases[i] = p.base
	}
	// As in a container: bind every interface, advertise a name.
	flags := func(p *proc) []string {
		_, httpPort, _ := net.SplitHostPort(p.httpAddr)
		_, raftPort, _ := net.SplitHostPort(p.raftAddr)
		return []string{"--http-addr", "0.0.0.0:" + httpPort, "--raft-addr", "0.0.0.0:" + raftPort, "--advertise-host", "localhost",
			"--bootstrap-expect", "3", "--join", strings.Join(bases, ",")}
	}

	// n2 first, n3 a second later, n1 (the founder) four seconds after that.
	procs[1].start(flags(procs[1])...)
	time.Sleep(time.Second)
	procs[2].start(flags(procs[2])...)
	time.Sleep(4 * time.Second)
	procs[0].start(flags(procs[0])...)
	id := waitOneCluster(t, hc, procs)
	mustStatus(t, hc, "PUT", procs[2].base+"/v1/resources/before", `{"kind":"voucher","capacity":5}`, http.StatusCreated)
	waitVisible(t, hc, procs, "before")

	for _, p := range procs {
		p.signal(syscall.SIGTERM)
	}
	for _, p := range procs {
		p.mu.Lock()
		cmd := p.cmd
		p.cmd = nil
		p.mu.Unlock()
		_ = cmd.Wait()
	}
	for _, p := range procs {
		p.start(flags(p)...)
	}
	if got := waitOneCluster(t, hc, procs); got != id {
		t.Fatalf("cluster id %s after the restart, %s before", got, id)
	}
	mustStatus(t, hc, "PUT", procs[0].base+"/v1/resources/after", `{"kind":"voucher","capacity":5}`, http.StatusCreated)
	waitVisible(t, hc, procs, "before")
	waitVisible(t, hc, procs, "after")

	// A node that lost its data comes back with the same flags: it sees
	// that the others belong to a cluster and joins it, founding nothing.
	procs[2].kill()
	if err := os.RemoveAll(procs[2].dir); err != nil {
		t.Fatal(err)
	}
	procs[2].start(flags(procs[2])...)
	if got := waitOneCluster(t, hc, procs); got != id {
		t.Fatalf("cluster id %s after the wiped node came back, %s before", got, id)
	}
	waitVisible(t, hc, procs, "after")
}

// waitOneCluster waits until every process is ready, all name the same
// leader and list the three as voters with their HTTP addresses, and all
// hold the same cluster id; it returns that id.
func waitOneCluster(t *testing.T, hc *http.Client, procs []*proc) string {
	t.Helper()
	for _, p := range procs {
		p.waitReady(hc, 90*time.Second)
	}
	var last string
	if !pollUntil(30*time.Second, func() bool {
		leader := ""
		for _, p := range procs {
			var info struct {
				Leader *struct {
					ID string `json:"id"`
				} `json:"leader"`
				Nodes []struct {
					ID       string `json:"id"`
					HTTPAddr string `json:"http_addr"`
					Voter    bool   `json:"voter"`
				} `json:"nodes"`
			}
			code, body, err := call(hc, "GET", p.base+"/v1/cluster", "ops", "admin", nil, "")
			if err == nil && code == http.StatusOK {
				err = json.Unmarshal(body, &info)
			}
			switch {
			case err != nil || code != http.StatusOK:
				last = fmt.Sprintf("%s: %d %v", p.id, code, err)
				return false
			case info.Leader == nil || (leader != "" && info.Leader.ID != leader):
				last = fmt.Sprintf("%s names leader %+v, another %q", p.id, info.Leader, leader)
				return false
			}
			leader = info.Leader.ID
			voters := 0
			for _, nd := range info.Nodes {
				if nd.Voter && strings.HasPrefix(nd.HTTPAddr, "http://localhost:") {
					voters++
				}
			}
			if voters != len(procs) || len(info.Nodes) != len(procs) {
				last = fmt.Sprintf("%s: %s", p.id, body)
				return false
			}
		}
		return true
	}) {
		t.Fatalf("no single cluster of %d: %s", len(procs), last)
	}
	id := ""
	for _, p := range procs {
		raw, err := os.ReadFile(filepath.Join(p.dir, "cluster.id"))
		if err != nil {
			t.Fatal(err)
		}
		got := strings.TrimSpace(string(raw))
		if id != "" && got != id {
			t.Fatalf("%s has cluster id %s, another node %s", p.id, got, id)
		}
		id = got
	}
	return id
}

// waitVisible waits until every process holds resource in its own
// committed state.
func waitVisible(t *testing.T, hc *http.Client, procs []*proc, resource string) {
	t.Helper()
	for _, p := range procs {
		if !pollUntil(10*time.Second, func() bool {
			code, _, err := call(hc, "GET", p.base+"/v1/resources/"+resource+"?consistency=stale", "ops", "admin", nil, "")
			return err == nil && code == http.StatusOK
		}) {
			t.Fatalf("%s does not show %s", p.id, resource)
		}
	}
}

func mustStatus(t *testing.T, hc *http.Client, method, url, body string, want int) {
	t.Helper()
	code, resp, err := call(hc, method, url, "ops", "admin", []byte(body), "")
	if err != nil || code != want {
		t.Fatalf("%s %s: %d %s %v, want %d", method, url, code, resp, err, want)
	}
}

// TestE2EBootstrapExpectStopsCleanly: a node still waiting for its peers
// stops on SIGTERM with exit status 0, as an orchestrator scaling down or
// rolling back expects.
func TestE2EBootstrapExpectStopsCleanly(t *testing.T) {
	hc := &http.Client{Timeout: 5 * time.Second}
	p := newProc(t, "n1")
	p.start("--bootstrap-expect", "3", "--join", "http://"+freeAddr(t)+",http://"+freeAddr(t))
	if !pollUntil(30*time.Second, func() bool {
		resp, err := hc.Get(p.base + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}) {
		t.Fatalf("no /healthz:\n%s", p.tail(20))
	}
	p.signal(syscall.SIGTERM)
	p.mu.Lock()
	cmd := p.cmd
	p.cmd = nil
	p.mu.Unlock()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGTERM while waiting for peers: %v\n%s", err, p.tail(20))
	}
}
