package httpapi

import (
	"bytes"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"testing"

	"github.com/gin-gonic/gin"

	"allot/docs"
	"allot/httpapi/openapicheck"
)

// The OpenAPI description (docs/openapi.yaml) is kept true by checking
// every answer the tests of this package read through testEnv.do (and the
// event stream helpers) against it (package openapicheck): an answer whose
// status, headers or body the description does not allow fails the test
// that got it.

// mustOpenAPI is the loaded description (loaded once per test binary); it
// fails the test when it does not load.
func mustOpenAPI(t testing.TB) *openapicheck.Spec {
	t.Helper()
	spec, err := openapicheck.Load()
	if err != nil {
		t.Fatal(err)
	}
	return spec
}

// checkOpenAPI fails the test unless the answer to req is one the
// description allows. srv is the server that answered, nil for one that
// routes every operation.
func checkOpenAPI(t testing.TB, srv *Server, req *http.Request, status int, header http.Header, body []byte) {
	t.Helper()
	a := openapicheck.Answer{Request: req, Status: status, Header: header, Body: body, Served: servedRoutes(srv)}
	if err := mustOpenAPI(t).Check(a); err != nil {
		t.Fatalf("%v\nbody: %.500s", err, body)
	}
}

// openAPICheck is checkOpenAPI for goroutines that may not fail the test
// themselves: it returns what is wrong.
func openAPICheck(req *http.Request, status int, header http.Header, body []byte) error {
	spec, err := openapicheck.Load()
	if err != nil {
		return err
	}
	return spec.Check(openapicheck.Answer{Request: req, Status: status, Header: header, Body: body})
}

// checkOpenAPIHeaders is checkOpenAPI for an answer whose body is a stream
// the test reads on: its status and headers only.
func checkOpenAPIHeaders(t testing.TB, req *http.Request, status int, header http.Header) {
	t.Helper()
	if err := mustOpenAPI(t).Check(openapicheck.Answer{Request: req, Status: status, Header: header, HeadersOnly: true}); err != nil {
		t.Fatal(err)
	}
}

// servedRoutes are the operations srv routes, as "METHOD /path/{param}";
// nil (every operation) for a nil srv. A server without webhooks
// configured (tests only) routes no webhook operation.
func servedRoutes(srv *Server) map[string]bool {
	if srv == nil {
		return nil
	}
	routes := make(map[string]bool)
	for _, r := range srv.router.Routes() {
		routes[r.Method+" "+openapicheck.GinPath(r.Path)] = true
	}
	return routes
}

// TestOpenAPIProblemCodes: the description's problem codes are exactly the
// codes the server can answer, and each problem response of the
// description allows the codes of its status and no others.
func TestOpenAPIProblemCodes(t *testing.T) {
	spec := mustOpenAPI(t)
	var inSpec []string
	for _, v := range spec.Doc().Components.Schemas["ProblemCode"].Value.Enum {
		inSpec = append(inSpec, v.(string))
	}
	slices.Sort(inSpec)
	codes := slices.Clone(problemCodes[:])
	slices.Sort(codes)
	if !slices.Equal(inSpec, codes) {
		t.Fatalf("ProblemCode enum %v, the server's codes %v", inSpec, codes)
	}
	// Every problem response narrows Problem to one status and its codes.
	byStatus := make(map[int][]string)
	for name, ref := range spec.Doc().Components.Responses {
		mt := ref.Value.Content.Get(contentTypeProblem[0])
		if mt == nil {
			continue
		}
		all := mt.Schema.Value.AllOf
		if len(all) != 2 || all[0].Ref != "#/components/schemas/Problem" {
			t.Fatalf("response %s: want allOf [Problem, {status, code}]", name)
		}
		st, cs := all[1].Value.Properties["status"].Value.Enum, all[1].Value.Properties["code"].Value.Enum
		if len(st) != 1 {
			t.Fatalf("response %s: status enum %v, want one", name, st)
		}
		status := int(st[0].(float64))
		if len(byStatus[status]) > 0 {
			t.Fatalf("two problem responses for status %d", status)
		}
		for _, c := range cs {
			byStatus[status] = append(byStatus[status], c.(string))
		}
	}
	want := make(map[int][]string)
	for _, code := range problemCodes {
		status, _ := problemStatus(code)
		want[status] = append(want[status], code)
	}
	for status, cs := range want {
		got := byStatus[status]
		slices.Sort(got)
		slices.Sort(cs)
		if !slices.Equal(got, cs) {
			t.Errorf("status %d: the description's problem response has codes %v, the server's are %v", status, got, cs)
		}
	}
	if len(byStatus) != len(want) {
		t.Errorf("problem responses for statuses %v, the server's problems have %v", slices.Sorted(maps.Keys(byStatus)), slices.Sorted(maps.Keys(want)))
	}
}

// openAPIExcluded are the routes the description leaves out, each with
// why (their answers are not checked: openapicheck.Excluded). HEAD routes are not listed: every GET route serves HEAD too, which
// the description says once instead of per operation.
var openAPIExcluded = map[string]string{
	// Go's runtime profiles: one wildcard route in Go's own formats, which
	// OpenAPI paths cannot express; docs/OPERATIONS.md describes them.
	"GET /debug/pprof/*profile":  "pprof",
	"POST /debug/pprof/*profile": "pprof",
	// The console: static files for a browser under one wildcard route,
	// and the redirect to it; docs/API.md ("Console") describes them.
	"GET /ui":       "console",
	"GET /ui/*file": "console",
}

// TestOpenAPIRoutes: every route the server registers is an operation of
// the description, and every operation is a route.
func TestOpenAPIRoutes(t *testing.T) {
	spec := mustOpenAPI(t)
	e, _ := newWebhookEnv(t) // webhook routes exist only with Webhooks set
	routes := make(map[string]bool)
	for _, r := range e.srv.router.Routes() {
		key := r.Method + " " + r.Path
		if _, ok := openAPIExcluded[key]; ok {
			continue
		}
		if r.Method == http.MethodHead {
			if !slices.ContainsFunc(e.srv.router.Routes(), func(g gin.RouteInfo) bool {
				return g.Method == http.MethodGet && g.Path == r.Path
			}) {
				t.Errorf("HEAD %s is no GET route's twin", r.Path)
			}
			continue
		}
		routes[r.Method+" "+openapicheck.GinPath(r.Path)] = true
	}
	ops := make(map[string]bool)
	for path, item := range spec.Doc().Paths.Map() {
		for method := range item.Operations() {
			ops[method+" "+path] = true
		}
	}
	for r := range routes {
		if !ops[r] {
			t.Errorf("route %s is not in docs/openapi.yaml", r)
		}
	}
	for op := range ops {
		if !routes[op] {
			t.Errorf("docs/openapi.yaml has %s, which the server does not route", op)
		}
	}
	if len(routes) == 0 {
		t.Fatal("no routes")
	}
}

// TestOpenAPIServed: GET /v1/openapi.yaml answers the description, without
// a token, as YAML; HEAD answers its headers.
func TestOpenAPIServed(t *testing.T) {
	e := newEnv(t, nil)
	r := e.do(http.MethodGet, "/v1/openapi.yaml", "", "")
	r.want(t, http.StatusOK, nil)
	if ct := r.header.Get("Content-Type"); ct != "application/yaml" {
		t.Fatalf("Content-Type %q", ct)
	}
	if !bytes.Equal(r.body, docs.OpenAPI) {
		t.Fatal("the served description differs from docs/openapi.yaml")
	}
	h := e.do(http.MethodHead, "/v1/openapi.yaml", "", "")
	if h.status != http.StatusOK || len(h.body) != 0 || h.header.Get("Content-Length") != fmt.Sprint(len(docs.OpenAPI)) {
		t.Fatalf("HEAD: %d, %d body bytes, Content-Length %q", h.status, len(h.body), h.header.Get("Content-Length"))
	}
}

// readAllAndCheck reads resp's body in full and checks the answer.
func readAllAndCheck(t testing.TB, srv *Server, req *http.Request, resp *http.Response) []byte {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading body: %v", err)
	}
	checkOpenAPI(t, srv, req, resp.StatusCode, resp.Header, b)
	return b
}
