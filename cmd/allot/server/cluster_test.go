package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"allot/httpapi"
)

// TestClusterReplicatesEveryCommand drives every kind of command through
// a 3-node cluster, half of them sent to followers, and checks that all
// nodes end with the same committed state.
func TestClusterReplicatesEveryCommand(t *testing.T) {
	tc := newTestCluster(t, 3, nil)
	l, fs := tc.leader(), tc.followers()
	f1, f2 := fs[0].c, fs[1].c

	// Resources of every kind, created and changed on followers and the leader.
	f1.mustJSON("PUT", "/v1/resources/v1", "admin", map[string]any{"kind": "voucher", "capacity": 10}, http.StatusCreated, nil)
	l.c.mustJSON("PUT", "/v1/resources/s1", "admin", map[string]any{"kind": "slot", "capacity": 5, "hold_seconds": 1}, http.StatusCreated, nil)
	f2.mustJSON("PUT", "/v1/resources/h1", "admin", map[string]any{"kind": "room",
		"inventory": []map[string]any{{"from": "2026-12-01", "to": "2027-01-01", "rooms": 3}}}, http.StatusCreated, nil)
	f2.mustJSON("PUT", "/v1/resources/v1", "admin", map[string]any{"kind": "voucher", "capacity": 12}, http.StatusOK, nil)
	f1.mustJSON("PUT", "/v1/resources/tmp", "admin", map[string]any{"kind": "voucher", "capacity": 1}, http.StatusCreated, nil)
	if r, err := f2.do("DELETE", "/v1/resources/tmp", "admin", nil); err != nil || r.Code != http.StatusNoContent {
		t.Fatalf("delete: %d %s %v", r.Code, r.Body, err)
	}

	// Reservations and every transition.
	var a, b, c, d, e reservationJSON
	f1.mustJSON("POST", "/v1/resources/v1/reservations", "alice", nil, http.StatusCreated, &a)
	f2.mustJSON("POST", "/v1/resources/v1/reservations", "bob", nil, http.StatusCreated, &b)
	l.c.mustJSON("POST", "/v1/resources/s1/reservations", "carol", nil, http.StatusCreated, &c)
	f1.mustJSON("POST", "/v1/resources/s1/reservations", "dave", nil, http.StatusCreated, &d) // left to expire
	f2.mustJSON("POST", "/v1/resources/h1/reservations", "erin", map[string]any{"check_in": "2026-12-24", "check_out": "2026-12-26"}, http.StatusCreated, &e)
	f1.mustJSON("POST", "/v1/reservations/"+a.ID+"/confirm", "alice", nil, http.StatusOK, nil)
	f2.mustJSON("POST", "/v1/reservations/"+b.ID+"/cancel", "bob", nil, http.StatusOK, nil)
	f1.mustJSON("POST", "/v1/reservations/"+c.ID+"/confirm", "carol", nil, http.StatusOK, nil)
	f2.mustJSON("POST", "/v1/reservations/"+c.ID+"/check-in", "admin", nil, http.StatusOK, nil)
	f1.mustJSON("POST", "/v1/reservations/"+c.ID+"/complete", "admin", nil, http.StatusOK, nil)
	f2.mustJSON("POST", "/v1/reservations/"+e.ID+"/confirm", "erin", nil, http.StatusOK, nil)

	// dave's hold expires on the leader; every node sees it as a stale read.
	for _, nd := range tc.nodes {
		waitFor(t, 10*time.Second, func() bool {
			var r reservationJSON
			nd.c.mustJSON("GET", "/v1/reservations/"+d.ID+"?consistency=stale", "dave", nil, http.StatusOK, &r)
			return r.Status == "expired"
		})
	}
	tc.waitConverged()
	for _, nd := range tc.nodes {
		var res resourceJSON
		nd.c.mustJSON("GET", "/v1/resources/v1?consistency=stale", "admin", nil, http.StatusOK, &res)
		if res.Available != 11 || res.Held != 0 || res.Confirmed != 1 {
			t.Fatalf("%s: v1 %+v", nd.id, res)
		}
		nd.c.mustJSON("GET", "/v1/resources/s1?consistency=stale", "admin", nil, http.StatusOK, &res)
		if res.Available != 4 || res.Confirmed != 1 {
			t.Fatalf("%s: s1 %+v", nd.id, res)
		}
	}

	// Every node lists every node, with addresses and the state each reports.
	for _, nd := range tc.nodes {
		var info httpapi.ClusterInfo
		nd.c.mustJSON("GET", "/v1/cluster?hash=true", "admin", nil, http.StatusOK, &info)
		var states []string
		for _, n := range info.Nodes {
			if n.HTTPAddr == "" || n.RaftAddr == "" || !n.Voter {
				t.Fatalf("%s lists %+v", nd.id, n)
			}
			states = append(states, n.State)
		}
		slices.Sort(states)
		if !slices.Equal(states, []string{"follower", "follower", "leader"}) || info.ID != nd.id ||
			info.Leader == nil || info.Leader.ID != l.id || info.Leader.HTTPAddr != "http://"+l.httpAddr || len(info.StateHash) != 64 {
			t.Fatalf("%s: cluster %+v", nd.id, info)
		}
	}
}

// TestClusterForwarding: a follower passes writes and leader reads to the
// leader with the client's headers, serves stale reads itself, and never
// forwards a forwarded request again.
func TestClusterForwarding(t *testing.T) {
	tc := newTestCluster(t, 3, nil)
	l, fs := tc.leader(), tc.followers()
	fs[0].c.mustJSON("PUT", "/v1/resources/v1", "admin", map[string]any{"kind": "voucher", "capacity": 5, "hold_seconds": 0}, http.StatusCreated, nil)

	body := map[string]int{"quantity": 1}
	r, err := fs[0].c.do("POST", "/v1/resources/v1/reservations", "alice", body, "Idempotency-Key", "order-1", "X-Request-ID", "req-1")
	mustStatus(t, r, err, http.StatusCreated, "")
	if r.Header.Get("X-Allot-Node") != l.id || r.Header.Get("X-Request-ID") != "req-1" || r.Replayed {
		t.Fatalf("answered by %q with request id %q", r.Header.Get("X-Allot-Node"), r.Header.Get("X-Request-ID"))
	}
	var res reservationJSON
	if err := json.Unmarshal(r.Body, &res); err != nil || res.User != "alice" || res.Status != "confirmed" {
		t.Fatalf("reservation %s: %v", r.Body, err)
	}
	// The retry through the other follower is answered from the stored record.
	again, err := fs[1].c.do("POST", "/v1/resources/v1/reservations", "alice", body, "Idempotency-Key", "order-1")
	mustStatus(t, again, err, http.StatusCreated, "")
	if !again.Replayed || string(again.Body) != string(r.Body) {
		t.Fatalf("retry: replayed=%v %s", again.Replayed, again.Body)
	}

	// Reads: leader and linearizable are forwarded, stale is local (and
	// may lag a little behind).
	for q, want := range map[string]string{"": l.id, "?consistency=linearizable": l.id, "?consistency=stale": fs[0].id} {
		var r response
		waitFor(t, 10*time.Second, func() bool {
			r, err = fs[0].c.do("GET", "/v1/reservations/"+res.ID+q, "alice", nil)
			return err == nil && r.Code == http.StatusOK
		})
		if got := r.Header.Get("X-Allot-Node"); got != want {
			t.Fatalf("GET%s answered by %s, want %s", q, got, want)
		}
	}
	// A request already forwarded once is not forwarded again.
	r, err = fs[1].c.do("POST", "/v1/resources/v1/reservations", "bob", body, "X-Allot-Forwarded", fs[0].id)
	mustStatus(t, r, err, http.StatusServiceUnavailable, "unavailable")
	if r.Header.Get("Retry-After") == "" || r.Header.Get("X-Allot-Node") != fs[1].id {
		t.Fatalf("headers %v", r.Header)
	}
	if n := countReservations(l, "v1", "bob"); n != 0 {
		t.Fatalf("bob has %d reservations", n)
	}

	// Graceful shutdown of the leader hands leadership over at once.
	start := time.Now()
	tc.stop(l)
	nl := tc.leader()
	t.Logf("leadership moved from %s to %s in %v", l.id, nl.id, time.Since(start))
	if r := fs[0].c.retry("POST", "/v1/resources/v1/reservations", "carol", nil); r.Code != http.StatusCreated {
		t.Fatalf("after the handover: %d %s", r.Code, r.Body)
	}
}

// TestClusterNoQuorum: with two of three nodes down, requests to the last
// one end by their deadline with 503, and it stops calling itself ready.
func TestClusterNoQuorum(t *testing.T) {
	tc := newTestCluster(t, 3, nil)
	tc.leader().c.mustJSON("PUT", "/v1/resources/v1", "admin", map[string]any{"kind": "voucher", "capacity": 5}, http.StatusCreated, nil)
	tc.waitConverged()
	fs := tc.followers()
	last := fs[0]
	tc.stop(tc.leader())
	tc.stop(fs[1])

	for i := 0; i < 3; i++ {
		start := time.Now()
		r, err := last.c.do("POST", "/v1/resources/v1/reservations", fmt.Sprintf("u%d", i), nil, "Idempotency-Key", "k")
		if err != nil || r.Code != http.StatusServiceUnavailable || r.Header.Get("Retry-After") == "" {
			t.Fatalf("write without quorum: %d %s %v", r.Code, r.Body, err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("write without quorum took %v", d)
		}
		r, err = last.c.do("GET", "/v1/resources/v1", "alice", nil)
		mustStatus(t, r, err, http.StatusServiceUnavailable, "unavailable")
	}
	waitFor(t, 10*time.Second, func() bool { return last.c.status("GET", "/readyz", "", nil) == http.StatusServiceUnavailable })
	// Stale reads still work.
	r, err := last.c.do("GET", "/v1/resources/v1?consistency=stale", "alice", nil)
	mustStatus(t, r, err, http.StatusOK, "")
}

// TestClusterLeaderLossMidBatch: a write the leader could not commit is
// reported outcome_unknown; a retry with the same Idempotency-Key on the
// next leader books exactly one reservation, whether the first attempt
// committed after all (phase 1) or was dropped (phase 2).
func TestClusterLeaderLossMidBatch(t *testing.T) {
	// A lease as long as the heartbeat timeout keeps the leader leading
	// for a second after its followers stop: long enough to take the write.
	tc := newTestCluster(t, 3, func(c *Config) {
		c.Cluster.HeartbeatTimeout = time.Second
		c.Cluster.ElectionTimeout = time.Second
		c.Cluster.LeaderLeaseTimeout = time.Second
	})
	old := tc.leader()
	old.c.mustJSON("PUT", "/v1/resources/v1", "admin", map[string]any{"kind": "voucher", "capacity": 10, "hold_seconds": 0}, http.StatusCreated, nil)
	body := map[string]int{"quantity": 1}

	// Phase 1: a batch of entries reaches the old leader's log only. With
	// one follower back, whoever wins has them (the old leader votes only
	// for a log as long as its own; it may even hand the entries over on
	// its way out), so the new leader commits them and every retry is a
	// replay.
	fs := tc.followers()
	tc.stop(fs[0])
	tc.stop(fs[1])
	users := []string{"alice", "amir", "anna", "arjun"}
	var wg sync.WaitGroup
	for _, u := range users {
		wg.Go(func() {
			r, err := old.c.do("POST", "/v1/resources/v1/reservations", u, body, "Idempotency-Key", u+"-1")
			if err != nil || r.Code != http.StatusServiceUnavailable || !bytes.Contains(r.Body, []byte(`"outcome_unknown"`)) {
				t.Errorf("%s without quorum: %d %s %v", u, r.Code, r.Body, err)
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	tc.restart(fs[0])
	tc.leader()
	for _, u := range users {
		r := fs[0].c.retry("POST", "/v1/resources/v1/reservations", u, body, "Idempotency-Key", u+"-1")
		if r.Code != http.StatusCreated || !r.Replayed {
			t.Fatalf("%s: the first attempt committed; the retry should replay it: %d %s", u, r.Code, r.Body)
		}
	}
	tc.restart(fs[1])
	tc.waitConverged()

	// Phase 2: the entry is again only on the leader, which is shut down
	// before the followers return: they elect one of them without it.
	old = tc.leader()
	fs = tc.followers()
	tc.stop(fs[0])
	tc.stop(fs[1])
	r, err := old.c.do("POST", "/v1/resources/v1/reservations", "bob", body, "Idempotency-Key", "bob-1")
	mustStatus(t, r, err, http.StatusServiceUnavailable, "outcome_unknown")
	tc.stop(old)
	tc.restart(fs[0])
	tc.restart(fs[1])
	nl := tc.leader()
	r = nl.c.retry("POST", "/v1/resources/v1/reservations", "bob", body, "Idempotency-Key", "bob-1")
	if r.Code != http.StatusCreated || r.Replayed {
		t.Fatalf("the first attempt was lost; the retry cannot be a replay: %s", r.Body)
	}
	tc.restart(old) // its uncommitted entry is overwritten by the new leader's log
	tc.waitConverged()
	for _, nd := range tc.nodes {
		for _, u := range append(users, "bob") {
			if n := countReservations(nd, "v1", u); n != 1 {
				t.Fatalf("%s: %s has %d reservations; want 1", nd.id, u, n)
			}
		}
	}
}

// TestClusterSnapshotCatchUp: a follower that was down while the log was
// compacted catches up by installing the leader's snapshot.
func TestClusterSnapshotCatchUp(t *testing.T) {
	tc := newTestCluster(t, 3, func(c *Config) {
		c.Cluster.SnapshotThreshold = 32
		c.Cluster.TrailingLogs = 8
		c.Cluster.SnapshotInterval = 50 * time.Millisecond
	})
	l := tc.leader()
	l.c.mustJSON("PUT", "/v1/resources/v1", "admin", map[string]any{"kind": "voucher", "capacity": 1000}, http.StatusCreated, nil)
	lagging := tc.followers()[0]
	tc.stop(lagging)
	for i := range 120 {
		l.c.mustJSON("POST", "/v1/resources/v1/reservations", fmt.Sprintf("u%03d", i), nil, http.StatusCreated, nil)
	}
	// Wait until the leader has compacted the log past what the follower has.
	waitFor(t, 10*time.Second, func() bool {
		idx := l.srv.Node().Raft().Stats()["last_snapshot_index"]
		return idx != "0" && idx != ""
	})
	tc.restart(lagging)
	tc.waitConverged()
	if lagging.srv.Node().FSM().Restores() == 0 {
		t.Fatalf("%s caught up without installing a snapshot", lagging.id)
	}
	var res resourceJSON
	lagging.c.mustJSON("GET", "/v1/resources/v1?consistency=stale", "admin", nil, http.StatusOK, &res)
	if res.Held != 120 {
		t.Fatalf("lagging follower: %+v", res)
	}

	// A follower that loses its data dir comes back under the same id and
	// addresses (still a voter in the configuration) and catches up too.
	wiped := tc.followers()[1]
	tc.stop(wiped)
	tc.wipe(wiped)
	tc.start(wiped, false, []string{"http://" + lagging.httpAddr})
	tc.waitConverged()
	if wiped.srv.Node().FSM().Restores() == 0 {
		t.Fatalf("%s caught up without installing a snapshot", wiped.id)
	}
	var info httpapi.ClusterInfo
	wiped.c.mustJSON("GET", "/v1/cluster", "admin", nil, http.StatusOK, &info)
	if len(info.Nodes) != 3 {
		t.Fatalf("after the wiped node came back: %+v", info.Nodes)
	}
}

// TestClusterMembership removes a follower, brings it back with a wiped
// data dir under the same id, and removes the leader (which hands over
// first, so the client's retry removes it on the new leader).
func TestClusterMembership(t *testing.T) {
	tc := newTestCluster(t, 3, nil)
	l := tc.leader()
	l.c.mustJSON("PUT", "/v1/resources/v1", "admin", map[string]any{"kind": "voucher", "capacity": 100}, http.StatusCreated, nil)
	gone := tc.followers()[0]
	other := tc.followers()[1]

	r, err := other.c.do("DELETE", "/v1/cluster/nodes/"+gone.id, "admin", nil)
	mustStatus(t, r, err, http.StatusNoContent, "")
	r, err = other.c.do("DELETE", "/v1/cluster/nodes/"+gone.id, "admin", nil)
	mustStatus(t, r, err, http.StatusNotFound, "not_found")
	r, err = other.c.do("DELETE", "/v1/cluster/nodes/"+gone.id, "alice", nil)
	mustStatus(t, r, err, http.StatusForbidden, "permission_denied")
	var info httpapi.ClusterInfo
	l.c.mustJSON("GET", "/v1/cluster", "admin", nil, http.StatusOK, &info)
	if len(info.Nodes) != 2 {
		t.Fatalf("after removal: %+v", info.Nodes)
	}
	// Two voters still make a quorum of two.
	other.c.mustJSON("POST", "/v1/resources/v1/reservations", "alice", nil, http.StatusCreated, nil)

	// The removed node comes back empty under the same id and addresses.
	tc.stop(gone)
	tc.wipe(gone)
	tc.start(gone, false, []string{"http://" + other.httpAddr})
	tc.waitConverged()
	if n := countReservations(gone, "v1", "alice"); n != 1 {
		t.Fatalf("rejoined node sees %d of alice's reservations", n)
	}

	// Removing the leader: first 503 while it hands over, then done.
	l = tc.leader()
	var removed bool
	waitFor(t, 15*time.Second, func() bool {
		r, err := gone.c.do("DELETE", "/v1/cluster/nodes/"+l.id, "admin", nil)
		if err == nil && r.Code == http.StatusNoContent {
			removed = true
		}
		return removed || (err == nil && r.Code != http.StatusServiceUnavailable)
	})
	if !removed {
		t.Fatal("the old leader was not removed")
	}
	nl := tc.leader()
	if nl == l {
		t.Fatal("the removed node still leads")
	}
	nl.c.mustJSON("GET", "/v1/cluster", "admin", nil, http.StatusOK, &info)
	for _, n := range info.Nodes {
		if n.ID == l.id || len(info.Nodes) != 2 {
			t.Fatalf("after removing the leader: %+v", info.Nodes)
		}
	}
	gone.c.mustJSON("POST", "/v1/resources/v1/reservations", "bob", nil, http.StatusCreated, nil)
}
