package httpapi

import (
	"bytes"
	"net/http"
	"testing"
)

func TestPprofIsForAdmins(t *testing.T) {
	e := newEnv(t, nil)
	e.do("GET", "/debug/pprof/", "", "").wantProblem(t, http.StatusUnauthorized, "unauthenticated")
	e.do("GET", "/debug/pprof/heap", e.alice, "").wantProblem(t, http.StatusForbidden, "permission_denied")

	index := e.do("GET", "/debug/pprof/", e.admin, "")
	index.want(t, http.StatusOK, nil)
	if !bytes.Contains(index.body, []byte("goroutine")) {
		t.Fatalf("index without the goroutine profile: %s", index.body)
	}
	goroutines := e.do("GET", "/debug/pprof/goroutine?debug=1", e.admin, "")
	goroutines.want(t, http.StatusOK, nil)
	if !bytes.Contains(goroutines.body, []byte("goroutine profile:")) {
		t.Fatalf("goroutine profile: %.200s", goroutines.body)
	}
	e.do("GET", "/debug/pprof/cmdline", e.admin, "").want(t, http.StatusOK, nil)
	e.do("POST", "/debug/pprof/symbol", e.admin, "0x1").want(t, http.StatusOK, nil)
	if r := e.do("GET", "/debug/pprof/no-such-profile", e.admin, ""); r.status != http.StatusNotFound {
		t.Fatalf("unknown profile: %d %s", r.status, r.body)
	}
	// One route template, whatever the profile.
	if got := counterValue(t, e.reg, "/debug/pprof/*profile", "GET", "200"); got != 3 {
		t.Fatalf("pprof requests counted under the route template: %v, want 3", got)
	}
}
