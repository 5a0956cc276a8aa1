package httpapi

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// TestClusterAdminOnlyFields checks that raft_addr is shown to admins only
// (left out for everyone else) and that ?hash=true is refused to others.
func TestClusterAdminOnlyFields(t *testing.T) {
	e := newEnv(t, nil)
	for _, tc := range []struct {
		name, token string
		admin       bool
	}{
		{"admin", e.admin, true},
		{"user", e.alice, false},
		{"user without role", e.bob, false},
		{"consumer", e.token("feed", RoleConsumer), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do("GET", "/v1/cluster", tc.token, "")
			r.want(t, http.StatusOK, nil)
			var raw struct {
				Nodes []map[string]json.RawMessage `json:"nodes"`
			}
			if err := json.Unmarshal(r.body, &raw); err != nil || len(raw.Nodes) != 1 {
				t.Fatalf("body %s: %v", r.body, err)
			}
			_, shown := raw.Nodes[0]["raft_addr"]
			if shown != tc.admin || (!tc.admin && strings.Contains(string(r.body), "7000")) {
				t.Fatalf("raft_addr shown=%v for admin=%v: %s", shown, tc.admin, r.body)
			}
			if _, ok := raw.Nodes[0]["http_addr"]; !ok {
				t.Fatalf("http_addr missing: %s", r.body)
			}
			h := e.do("GET", "/v1/cluster?hash=true", tc.token, "")
			if tc.admin {
				var info ClusterInfo
				h.want(t, http.StatusOK, &info)
				if info.StateHash != "abc123" {
					t.Fatalf("hash %q", info.StateHash)
				}
				return
			}
			h.wantProblem(t, http.StatusForbidden, "permission_denied")
			// hash=false asks for nothing and stays open to everyone.
			e.do("GET", "/v1/cluster?hash=false", tc.token, "").want(t, http.StatusOK, nil)
		})
	}
}
