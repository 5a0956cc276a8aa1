package openapicheck

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

func mustLoad(t *testing.T) *Spec {
	t.Helper()
	s, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestLoad: docs/openapi.yaml loads and validates as OpenAPI 3.
func TestLoad(t *testing.T) {
	if v := mustLoad(t).Doc().OpenAPI; !strings.HasPrefix(v, "3.") {
		t.Fatalf("openapi %q, want 3.x", v)
	}
}

// TestCheckCatches shows that Check refuses answers the description does
// not allow, so that a test passing through it means something.
func TestCheckCatches(t *testing.T) {
	spec := mustLoad(t)
	hdr := func(kv ...string) http.Header {
		h := http.Header{"X-Request-Id": {"r1"}, "X-Allot-Node": {"n1"}}
		for i := 0; i+1 < len(kv); i += 2 {
			h.Set(kv[i], kv[i+1])
		}
		return h
	}
	res := `{"id":"r","resource_id":"v","kind":"voucher","user":"alice","quantity":1,"status":"held",` +
		`"created_at":"2026-11-21T11:00:00Z","expires_at":"2026-11-21T11:15:00Z","updated_at":"2026-11-21T11:00:00Z"}`
	problemOf := func(status int, code string) string {
		return fmt.Sprintf(`{"type":"https://allot.dev/problems/%s","title":"T","status":%d,"detail":"d","code":"%s"}`, code, status, code)
	}
	problem := problemOf(409, "sold_out")
	req := func(method, path string) *http.Request {
		r, _ := http.NewRequest(method, "http://127.0.0.1:1"+path, nil)
		return r
	}
	reserve := req(http.MethodPost, "/v1/resources/v/reservations")
	const js, pj = "application/json", "application/problem+json"
	cases := []struct {
		name   string
		req    *http.Request
		status int
		header http.Header
		body   string
		ok     bool
	}{
		{"a reservation", reserve, 201, hdr("Content-Type", js), res, true},
		{"a problem", reserve, 409, hdr("Content-Type", pj), problem, true},
		{"an undocumented status", reserve, 202, hdr("Content-Type", js), res, false},
		{"a field too many", reserve, 201, hdr("Content-Type", js), strings.Replace(res, `"id"`, `"extra":1,"id"`, 1), false},
		{"a field missing", reserve, 201, hdr("Content-Type", js), strings.Replace(res, `"user":"alice",`, "", 1), false},
		{"an unknown status value", reserve, 201, hdr("Content-Type", js), strings.Replace(res, `"held"`, `"on_hold"`, 1), false},
		{"a time not in UTC", reserve, 201, hdr("Content-Type", js), strings.Replace(res, "11:00:00Z", "12:00:00+01:00", 1), false},
		{"an unknown problem code", reserve, 409, hdr("Content-Type", pj), strings.ReplaceAll(problem, "sold_out", "gone"), false},
		{"a 409 with a 503 code", reserve, 409, hdr("Content-Type", pj), problemOf(409, "unavailable"), false},
		{"a problem whose status differs", reserve, 409, hdr("Content-Type", pj), problemOf(400, "sold_out"), false},
		{"the wrong content type", reserve, 409, hdr("Content-Type", js), problem, false},
		{"no X-Allot-Node", reserve, 201, http.Header{"X-Request-Id": {"r1"}, "Content-Type": {js}}, res, false},
		{"a 503", reserve, 503, hdr("Content-Type", pj, "Retry-After", "1"), problemOf(503, "outcome_unknown"), true},
		{"a 503 without Retry-After", reserve, 503, hdr("Content-Type", pj), problemOf(503, "outcome_unknown"), false},
		{"a body on 204", req(http.MethodDelete, "/v1/resources/v"), 204, hdr(), "{}", false},
		{"an unknown path's 404", req(http.MethodGet, "/v1/nope"), 404, hdr("Content-Type", pj), problemOf(404, "not_found"), true},
		{"an unknown path's 200", req(http.MethodGet, "/v1/nope"), 200, hdr("Content-Type", js), "{}", false},
		{"a trailing slash's 404", req(http.MethodGet, "/v1/resources/"), 404, hdr("Content-Type", pj), problemOf(404, "not_found"), true},
		{"an unknown method's 405", req(http.MethodPatch, "/v1/resources/v"), 405, hdr("Content-Type", pj, "Allow", "GET, PUT"), problemOf(405, "method_not_allowed"), true},
		{"a 405 without Allow", req(http.MethodPatch, "/v1/resources/v"), 405, hdr("Content-Type", pj), problemOf(405, "method_not_allowed"), false},
		{"HEAD of a documented status", req(http.MethodHead, "/v1/resources/v"), 404, hdr("Content-Type", pj), "", true},
		{"HEAD of an undocumented status", req(http.MethodHead, "/v1/resources/v"), 409, hdr("Content-Type", pj), "", false},
	}
	for _, tc := range cases {
		err := spec.Check(Answer{Request: tc.req, Status: tc.status, Header: tc.header, Body: []byte(tc.body)})
		if (err == nil) != tc.ok {
			t.Errorf("%s: error %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
	// An operation the answering server does not route is an unknown path.
	served := map[string]bool{"GET /v1/resources": true}
	get := req(http.MethodGet, "/v1/webhooks")
	if err := spec.Check(Answer{Request: get, Status: 404, Header: hdr("Content-Type", pj), Body: []byte(problemOf(404, "not_found")), Served: served}); err != nil {
		t.Errorf("unrouted webhooks: %v", err)
	}
	if err := spec.Check(Answer{Request: get, Status: 404, Header: hdr("Content-Type", pj), Body: []byte(problemOf(404, "not_found"))}); err == nil {
		t.Error("GET /v1/webhooks may not answer 404 on a server that routes it")
	}
}

func TestGinPath(t *testing.T) {
	for in, want := range map[string]string{
		"/v1/resources":                  "/v1/resources",
		"/v1/resources/:id/reservations": "/v1/resources/{id}/reservations",
		"/v1/reservations/:rid/check-in": "/v1/reservations/{rid}/check-in",
	} {
		if got := GinPath(in); got != want {
			t.Errorf("GinPath(%q) = %q, want %q", in, got, want)
		}
	}
}
