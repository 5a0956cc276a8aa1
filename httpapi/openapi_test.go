package httpapi

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
	"github.com/gin-gonic/gin"

	"allot/docs"
)

// The OpenAPI description (docs/openapi.yaml) is kept true by checking
// every answer the tests of this package read through testEnv.do (and the
// event stream helpers) against it: an answer whose status, headers or
// body the description does not allow fails the test that got it.

// openAPISpec is the loaded description with a router over its operations.
type openAPISpec struct {
	doc    *openapi3.T
	router routers.Router
}

// loadOpenAPI loads and validates the description once per test binary: it
// is the same bytes the server embeds and serves.
var loadOpenAPI = sync.OnceValues(func() (*openAPISpec, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(docs.OpenAPI)
	if err != nil {
		return nil, fmt.Errorf("loading docs/openapi.yaml: %w", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("validating docs/openapi.yaml: %w", err)
	}
	// Tests reach the server on a random port: match paths only.
	doc.Servers = nil
	router, err := legacy.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("routing docs/openapi.yaml: %w", err)
	}
	for _, name := range []string{"NotFound", "MethodNotAllowed"} { // checkUnrouted's
		if r := doc.Components.Responses[name]; r == nil || r.Value == nil {
			return nil, fmt.Errorf("docs/openapi.yaml has no %s response", name)
		}
	}
	return &openAPISpec{doc: doc, router: router}, nil
})

// mustOpenAPI is the loaded description; it fails the test when it does
// not load.
func mustOpenAPI(t testing.TB) *openAPISpec {
	t.Helper()
	spec, err := loadOpenAPI()
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
	if err := mustOpenAPI(t).check(servedRoutes(srv), req, status, header, body, true); err != nil {
		t.Fatalf("%s %s answered %d, which docs/openapi.yaml does not allow: %v\nbody: %.500s",
			req.Method, req.URL.Path, status, err, body)
	}
}

// openAPICheck is checkOpenAPI for goroutines that may not fail the test
// themselves: it returns what is wrong.
func openAPICheck(req *http.Request, status int, header http.Header, body []byte) error {
	spec, err := loadOpenAPI()
	if err == nil {
		err = spec.check(nil, req, status, header, body, true)
	}
	if err != nil {
		return fmt.Errorf("%s %s answered %d, which docs/openapi.yaml does not allow: %w", req.Method, req.URL.Path, status, err)
	}
	return nil
}

// checkOpenAPIHeaders is checkOpenAPI for an answer whose body is a stream
// the test reads on: its status and headers only.
func checkOpenAPIHeaders(t testing.TB, req *http.Request, status int, header http.Header) {
	t.Helper()
	if err := mustOpenAPI(t).check(nil, req, status, header, nil, false); err != nil {
		t.Fatalf("%s %s answered %d, which docs/openapi.yaml does not allow: %v", req.Method, req.URL.Path, status, err)
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
		routes[r.Method+" "+openAPIPath(r.Path)] = true
	}
	return routes
}

// check validates one answer: its status must be documented for the
// operation, its headers and (with withBody) its body must match. A HEAD
// is checked as the GET it mirrors, without a body. A request no operation
// matches, or whose operation the server does not route (served, when not
// nil), must have been answered 404 or 405 with a problem.
func (s *openAPISpec) check(served map[string]bool, req *http.Request, status int, header http.Header, body []byte, withBody bool) error {
	find := req
	if req.Method == http.MethodHead {
		find = req.Clone(context.Background())
		find.Method = http.MethodGet
		withBody = false
	}
	if strings.HasPrefix(req.URL.Path, openAPIExcludedPrefix) {
		return nil
	}
	route, params, err := s.router.FindRoute(find)
	switch {
	case err != nil:
	case expandPath(route.Path, params) != req.URL.Path:
		// The router forgives a trailing slash; the server does not.
		err = fmt.Errorf("%s only resembles %s", req.URL.Path, route.Path)
	case served != nil && !served[route.Method+" "+route.Path]:
		err = fmt.Errorf("this server does not route %s %s", route.Method, route.Path)
	}
	if err != nil {
		return s.checkUnrouted(req, status, header, body, err)
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: find, PathParams: params, Route: route},
		Status:                 status,
		Header:                 header,
		Options:                &openapi3filter.Options{IncludeResponseStatus: true, ExcludeResponseBody: !withBody},
	}
	in.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		return err
	}
	if withBody && len(body) > 0 {
		if resp := route.Operation.Responses.Status(status); resp != nil && len(resp.Value.Content) == 0 {
			return fmt.Errorf("a body of %d bytes where the description has none", len(body))
		}
	}
	return nil
}

// checkUnrouted checks the answer to a path or method the description does
// not have: the server's 404 or 405 problem, as the NotFound and
// MethodNotAllowed responses of the description show them.
func (s *openAPISpec) checkUnrouted(req *http.Request, status int, header http.Header, body []byte, routeErr error) error {
	var name string
	switch status {
	case http.StatusNotFound:
		name = "NotFound"
	case http.StatusMethodNotAllowed:
		name = "MethodNotAllowed"
	default:
		return fmt.Errorf("no operation in the description (%v)", routeErr)
	}
	resp := s.doc.Components.Responses[name].Value
	for h, ref := range resp.Headers {
		if ref.Value.Required && header.Get(h) == "" {
			return fmt.Errorf("no operation in the description (%v), and header %s missing", routeErr, h)
		}
	}
	mt := resp.Content.Get(header.Get("Content-Type"))
	if mt == nil {
		return fmt.Errorf("no operation in the description (%v), and Content-Type %q is not the %s response's", routeErr, header.Get("Content-Type"), name)
	}
	if req.Method == http.MethodHead {
		return nil
	}
	v, err := decodeJSONValue(body)
	if err != nil {
		return err
	}
	return mt.Schema.Value.VisitJSON(v)
}

// decodeJSONValue decodes a body as the validator decodes JSON bodies.
func decodeJSONValue(b []byte) (any, error) {
	v, err := openapi3filter.JSONBodyDecoder(bytes.NewReader(b), nil, nil, nil)
	if err != nil {
		return nil, fmt.Errorf("not JSON: %w", err)
	}
	return v, nil
}

// TestOpenAPIValid loads docs/openapi.yaml and validates it as OpenAPI 3.
func TestOpenAPIValid(t *testing.T) {
	spec := mustOpenAPI(t)
	if got := spec.doc.OpenAPI; !strings.HasPrefix(got, "3.") {
		t.Fatalf("openapi %q, want 3.x", got)
	}
}

// TestOpenAPIProblemCodes: the description's problem codes are exactly the
// codes the server can answer, and each problem response of the
// description allows the codes of its status and no others.
func TestOpenAPIProblemCodes(t *testing.T) {
	spec := mustOpenAPI(t)
	var inSpec []string
	for _, v := range spec.doc.Components.Schemas["ProblemCode"].Value.Enum {
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
	for name, ref := range spec.doc.Components.Responses {
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

// expandPath fills the parameters into a path template of the description.
func expandPath(template string, params map[string]string) string {
	for name, v := range params {
		template = strings.ReplaceAll(template, "{"+name+"}", v)
	}
	return template
}

// openAPIExcludedPrefix is where the routes of openAPIExcluded live; their
// answers are not checked.
const openAPIExcludedPrefix = "/debug/pprof/"

// openAPIExcluded are the routes the description leaves out, each with
// why. HEAD routes are not listed: every GET route serves HEAD too, which
// the description says once instead of per operation.
var openAPIExcluded = map[string]string{
	// Go's runtime profiles: one wildcard route in Go's own formats, which
	// OpenAPI paths cannot express; docs/OPERATIONS.md describes them.
	"GET /debug/pprof/*profile":  "pprof",
	"POST /debug/pprof/*profile": "pprof",
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
		routes[r.Method+" "+openAPIPath(r.Path)] = true
	}
	ops := make(map[string]bool)
	for path, item := range spec.doc.Paths.Map() {
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

// openAPIPath turns gin's "/v1/resources/:id" into "/v1/resources/{id}".
func openAPIPath(p string) string {
	parts := strings.Split(p, "/")
	for i, s := range parts {
		if name, ok := strings.CutPrefix(s, ":"); ok {
			parts[i] = "{" + name + "}"
		}
	}
	return strings.Join(parts, "/")
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

// TestOpenAPICheckCatches shows that the check refuses answers the
// description does not allow, so that a test passing through it means
// something.
func TestOpenAPICheckCatches(t *testing.T) {
	spec := mustOpenAPI(t)
	hdr := func(kv ...string) http.Header {
		h := http.Header{headerRequestID: {"r1"}, headerNode: {"n1"}}
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
	cases := []struct {
		name   string
		req    *http.Request
		status int
		header http.Header
		body   string
		ok     bool
	}{
		{"a reservation", reserve, 201, hdr("Content-Type", "application/json"), res, true},
		{"a problem", reserve, 409, hdr("Content-Type", "application/problem+json"), problem, true},
		{"an undocumented status", reserve, 202, hdr("Content-Type", "application/json"), res, false},
		{"a field too many", reserve, 201, hdr("Content-Type", "application/json"), strings.Replace(res, `"id"`, `"extra":1,"id"`, 1), false},
		{"a field missing", reserve, 201, hdr("Content-Type", "application/json"), strings.Replace(res, `"user":"alice",`, "", 1), false},
		{"an unknown status value", reserve, 201, hdr("Content-Type", "application/json"), strings.Replace(res, `"held"`, `"on_hold"`, 1), false},
		{"an unknown problem code", reserve, 409, hdr("Content-Type", "application/problem+json"), strings.ReplaceAll(problem, "sold_out", "gone"), false},
		{"the wrong content type", reserve, 409, hdr("Content-Type", "application/json"), problem, false},
		{"no X-Allot-Node", reserve, 201, http.Header{headerRequestID: {"r1"}, "Content-Type": {"application/json"}}, res, false},
		{"a 503", reserve, 503, hdr("Content-Type", "application/problem+json", "Retry-After", "1"), problemOf(503, "outcome_unknown"), true},
		{"a 503 without Retry-After", reserve, 503, hdr("Content-Type", "application/problem+json"), problemOf(503, "outcome_unknown"), false},
		{"a body on 204", req(http.MethodDelete, "/v1/resources/v"), 204, hdr(), "{}", false},
		{"a 409 with a 503 code", reserve, 409, hdr("Content-Type", "application/problem+json"), problemOf(409, "unavailable"), false},
		{"a problem whose status differs", reserve, 409, hdr("Content-Type", "application/problem+json"), problemOf(400, "sold_out"), false},
		{"a time not in UTC", reserve, 201, hdr("Content-Type", "application/json"), strings.Replace(res, "11:00:00Z", "12:00:00+01:00", 1), false},
		{"an unknown path's 404", req(http.MethodGet, "/v1/nope"), 404, hdr("Content-Type", "application/problem+json"), problemOf(404, "not_found"), true},
		{"an unknown method's 405", req(http.MethodPatch, "/v1/resources/v"), 405, hdr("Content-Type", "application/problem+json", "Allow", "GET, PUT"), problemOf(405, "method_not_allowed"), true},
		{"a 405 without Allow", req(http.MethodPatch, "/v1/resources/v"), 405, hdr("Content-Type", "application/problem+json"), problemOf(405, "method_not_allowed"), false},
		{"an unknown path's 200", req(http.MethodGet, "/v1/nope"), 200, hdr("Content-Type", "application/json"), "{}", false},
		{"HEAD of an undocumented status", req(http.MethodHead, "/v1/resources/v"), 409, hdr(), "", false},
	}
	for _, tc := range cases {
		err := spec.check(nil, tc.req, tc.status, tc.header, []byte(tc.body), true)
		if (err == nil) != tc.ok {
			t.Errorf("%s: error %v, want ok=%v", tc.name, err, tc.ok)
		}
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
