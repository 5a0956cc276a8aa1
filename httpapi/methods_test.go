package httpapi

import (
	"net/http"
	"strings"
	"testing"
)

// TestHeadWhereGetWorks checks that every GET route answers HEAD with the
// GET's status and headers and no body.
func TestHeadWhereGetWorks(t *testing.T) {
	e := newEnv(t, nil)
	e.putVoucher("v", 1, "")
	res := e.reserve("v", e.alice, "")
	for _, tc := range []struct {
		path, token string
		status      int
	}{
		{"/healthz", "", 200},
		{"/readyz", "", 200},
		{"/metrics", "", 200},
		{"/v1/resources", e.alice, 200},
		{"/v1/resources/v", e.alice, 200},
		{"/v1/resources/nope", e.alice, 404},
		{"/v1/reservations", e.alice, 200},
		{"/v1/reservations/" + res.ID, e.alice, 200},
		{"/v1/reservations/" + res.ID, e.bob, 403},
		{"/v1/cluster", e.alice, 200},
		{"/v1/cluster/audit", e.admin, 200},
		{"/v1/resources/v", "", 401},
	} {
		t.Run(tc.path, func(t *testing.T) {
			get := e.do("GET", tc.path, tc.token, "")
			head := e.do("HEAD", tc.path, tc.token, "")
			if get.status != tc.status || head.status != tc.status {
				t.Fatalf("GET %d, HEAD %d, want %d", get.status, head.status, tc.status)
			}
			if len(head.body) != 0 {
				t.Fatalf("HEAD answered a body %q", head.body)
			}
			if g, h := get.header.Get("Content-Type"), head.header.Get("Content-Type"); g != h {
				t.Fatalf("Content-Type GET %q, HEAD %q", g, h)
			}
			if head.header.Get("X-Request-ID") == "" || head.header.Get("X-Allot-Node") != "n1" {
				t.Fatalf("HEAD headers %v", head.header)
			}
		})
	}
}

// TestWrongMethodIs405 checks that a known path with a method it does not
// serve answers 405 problem details with Allow, and an unknown path 404.
func TestWrongMethodIs405(t *testing.T) {
	e := newEnv(t, nil)
	e.putVoucher("v", 1, "")
	for _, tc := range []struct{ method, path, allow string }{
		{"PATCH", "/v1/resources/v", "GET, HEAD, PUT, DELETE"},
		{"POST", "/v1/resources/v", "GET, HEAD, PUT, DELETE"},
		{"GET", "/v1/resources/v/reservations", "POST"},
		{"DELETE", "/v1/reservations/r1/confirm", "POST"},
		{"PUT", "/healthz", "GET, HEAD"},
		{"BREW", "/v1/cluster", "GET, HEAD"},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			r := e.do(tc.method, tc.path, e.admin, "")
			p := r.wantProblem(t, http.StatusMethodNotAllowed, "method_not_allowed")
			if !sameMethods(r.header.Get("Allow"), tc.allow) {
				t.Fatalf("Allow %q, want %q", r.header.Get("Allow"), tc.allow)
			}
			if !strings.Contains(p.Detail, tc.method) {
				t.Fatalf("detail %q", p.Detail)
			}
			if r.header.Get("X-Request-ID") == "" {
				t.Fatal("no X-Request-ID")
			}
		})
	}
	for _, m := range []string{"GET", "HEAD", "POST", "BREW"} {
		r := e.do(m, "/v1/nothing/here", e.admin, "")
		if m == "HEAD" {
			if r.status != http.StatusNotFound || r.header.Get("Content-Type") != "application/problem+json" {
				t.Fatalf("HEAD unknown path: %d %v", r.status, r.header)
			}
			continue
		}
		r.wantProblem(t, http.StatusNotFound, "not_found")
	}
}

// sameMethods compares two Allow values as sets.
func sameMethods(a, b string) bool {
	set := func(s string) map[string]bool {
		m := map[string]bool{}
		for _, x := range strings.Split(s, ",") {
			m[strings.TrimSpace(x)] = true
		}
		return m
	}
	sa, sb := set(a), set(b)
	if len(sa) != len(sb) {
		return false
	}
	for k := range sa {
		if !sb[k] {
			return false
		}
	}
	return true
}

// TestHeadIsForwarded checks that a HEAD a follower forwards answers like
// the leader's GET, without a body.
func TestHeadIsForwarded(t *testing.T) {
	leader, follower := leaderAndFollower(t)
	leader.putVoucher("v", 1, "")
	r := follower.do("HEAD", "/v1/resources/v", follower.alice, "")
	if r.status != http.StatusOK || len(r.body) != 0 || r.header.Get(headerNode) != "n1" {
		t.Fatalf("HEAD via follower: %d %q %v", r.status, r.body, r.header)
	}
	r = follower.do("HEAD", "/v1/resources/nope", follower.alice, "")
	if r.status != http.StatusNotFound || len(r.body) != 0 {
		t.Fatalf("HEAD of unknown via follower: %d %q", r.status, r.body)
	}
}
