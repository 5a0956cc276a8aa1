package httpapi

import (
	"net/http"
	"strings"
	"testing"
)

// TestClusterAudit: GET /v1/cluster/audit is for admins, answered by the
// node asked (never forwarded), with empty lists rather than nulls.
func TestClusterAudit(t *testing.T) {
	e := newEnv(t, nil)
	e.cl.setLeader("http://127.0.0.1:1") // another node leads: nothing is forwarded there
	e.do("GET", "/v1/cluster/audit", "", "").wantProblem(t, http.StatusUnauthorized, "unauthenticated")
	e.do("GET", "/v1/cluster/audit", e.alice, "").wantProblem(t, http.StatusForbidden, "permission_denied")

	var empty map[string]any
	r := e.do("GET", "/v1/cluster/audit", e.admin, "")
	r.want(t, http.StatusOK, &empty)
	if !strings.Contains(string(r.body), `"points":[]`) || !strings.Contains(string(r.body), `"peers":[]`) || empty["id"] != "n1" {
		t.Fatalf("body %s", r.body)
	}

	e.cl.mu.Lock()
	e.cl.audit = AuditInfo{Interval: 1024, AppliedIndex: 2100, Halted: "diverged",
		Points:       []AuditPointInfo{{Index: 1024, Term: 2, Digest: "06f033404bec7627"}, {Index: 2048, Term: 3, Digest: "04ce9d701668e759"}},
		PeersChecked: 1, LastRound: "2030-01-02T03:04:05Z",
		Peers: []AuditPeerInfo{{ID: "n2", Voter: true, ComparedIndex: 2048, DiffersIndex: 2048, Mismatches: 1}}}
	e.cl.mu.Unlock()
	var info AuditInfo
	e.do("GET", "/v1/cluster/audit", e.admin, "").want(t, http.StatusOK, &info)
	if info.ID != "n1" || info.Halted != "diverged" || len(info.Points) != 2 || info.Points[1].Digest != "04ce9d701668e759" ||
		len(info.Peers) != 1 || info.Peers[0].Mismatches != 1 || info.Peers[0].DiffersIndex != 2048 {
		t.Fatalf("audit %+v", info)
	}
}
