package httpapi

import (
	"net/http"
	"testing"
)

// TestClusterHello: GET /v1/cluster/hello is for admins and answered by the
// node asked, even when another node leads.
func TestClusterHello(t *testing.T) {
	e := newEnv(t, nil)
	e.cl.setLeader("http://127.0.0.1:1") // nothing is forwarded there
	e.do("GET", "/v1/cluster/hello", "", "").wantProblem(t, http.StatusUnauthorized, "unauthenticated")
	e.do("GET", "/v1/cluster/hello", e.alice, "").wantProblem(t, http.StatusForbidden, "permission_denied")
	var h NodeHello
	e.do("GET", "/v1/cluster/hello", e.admin, "").want(t, http.StatusOK, &h)
	if h.ID != "n1" || h.RaftAddr != "127.0.0.1:7000" || h.HasState || h.Founding != nil {
		t.Fatalf("hello %+v", h)
	}
}
