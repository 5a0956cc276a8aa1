package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"allot/httpapi"
)

// TestClusterAuditOverHTTP: three real nodes audit each other's log
// digests, and GET /v1/cluster/audit on each shows it: every peer compared,
// no mismatch, and equal digests at the audit points the nodes share.
func TestClusterAuditOverHTTP(t *testing.T) {
	tc := newTestCluster(t, 3, func(cfg *Config) {
		cfg.Cluster.AuditInterval = 4
		cfg.Cluster.AuditPeriod = 100 * time.Millisecond
	})
	l := tc.leader()
	for i := range 12 {
		l.c.mustJSON("PUT", fmt.Sprintf("/v1/resources/v%d", i), "admin", map[string]any{"kind": "voucher", "capacity": 5, "hold_seconds": 60}, http.StatusCreated, nil)
	}
	mark := l.srv.Node().FSM().AppliedIndex()
	infos := map[string]httpapi.AuditInfo{}
	for _, nd := range tc.nodes {
		if code := nd.c.status("GET", "/v1/cluster/audit", "alice", nil); code != http.StatusForbidden {
			t.Fatalf("%s: a user's audit request: %d", nd.id, code)
		}
		var info httpapi.AuditInfo
		var last string
		ok := poll(15*time.Second, func() bool {
			r, err := nd.c.do("GET", "/v1/cluster/audit", "admin", nil)
			if err != nil || r.Code != http.StatusOK || json.Unmarshal(r.Body, &info) != nil {
				last = fmt.Sprintf("%d %s %v", r.Code, r.Body, err)
				return false
			}
			last = string(r.Body)
			if info.PeersChecked != 2 || len(info.Peers) != 2 {
				return false
			}
			for _, p := range info.Peers {
				if p.ComparedIndex < mark-4 || p.Error != "" {
					return false
				}
			}
			return true
		})
		if !ok {
			t.Fatalf("%s's audit: %s", nd.id, last)
		}
		for _, p := range info.Peers {
			if p.Mismatches != 0 || p.DiffersIndex != 0 || !p.Voter {
				t.Fatalf("%s's audit of %s: %+v", nd.id, p.ID, p)
			}
		}
		if info.ID != nd.id || info.Interval != 4 || info.ChainBase != 0 || info.Halted != "" || len(info.Points) == 0 || info.LastRound == "" {
			t.Fatalf("%s's audit: %+v", nd.id, info)
		}
		infos[nd.id] = info
	}
	digests := map[uint64]string{}
	shared := 0
	for id, info := range infos {
		for _, p := range info.Points {
			if d, ok := digests[p.Index]; ok {
				shared++
				if d != p.Digest {
					t.Fatalf("%s's digest at %d is %s, another node's %s", id, p.Index, p.Digest, d)
				}
			}
			digests[p.Index] = p.Digest
		}
	}
	if shared == 0 {
		t.Fatal("the nodes share no audit point")
	}
	fams := scrape(t, l.c)
	checkFamilyShapes(t, fams, map[string]family{"allot_audit_mismatches_total": clusterFamilies["allot_audit_mismatches_total"]})
	// l's peers, whoever leads now: followers() would ask for the leader
	// again, and a leadership change under load would make l its own peer.
	for _, nd := range tc.nodes {
		if nd != l {
			expect(t, fams, "allot_audit_mismatches_total", 0, "peer", nd.id)
		}
	}
	expect(t, fams, "allot_audit_peers_checked", 2)
}
