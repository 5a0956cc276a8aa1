// Package openapicheck checks HTTP answers against docs/openapi.yaml, the
// OpenAPI description of allot's API. Tests that talk to the API pass the
// answers they read through Check, so that an answer the description does
// not allow fails the test that got it: that is what keeps the description
// true. Only tests import it; the server does not link it.
package openapicheck

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"allot/docs"
)

// Excluded reports whether path is one of the routes the description
// leaves out, whose answers are not checked: Go's profiles under
// /debug/pprof/ (a wildcard route in Go's own formats) and the console at
// /ui and under /ui/ (static files for a browser, a wildcard route;
// docs/API.md, "Console").
func Excluded(path string) bool {
	return strings.HasPrefix(path, "/debug/pprof/") || path == "/ui" || strings.HasPrefix(path, "/ui/")
}

// Spec is the loaded description with a router over its operations. It is
// read-only and safe for concurrent use.
type Spec struct {
	doc    *openapi3.T
	router routers.Router
}

// Load returns the description, loaded and validated once per process: it
// is docs.OpenAPI, the bytes the server embeds and serves.
var Load = sync.OnceValues(load)

func load() (*Spec, error) {
	doc, err := openapi3.NewLoader().LoadFromData(docs.OpenAPI)
	if err != nil {
		return nil, fmt.Errorf("loading docs/openapi.yaml: %w", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("validating docs/openapi.yaml: %w", err)
	}
	// Tests reach servers on random ports: match paths only.
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
	return &Spec{doc: doc, router: router}, nil
}

// Doc is the description; callers must not modify it.
func (s *Spec) Doc() *openapi3.T { return s.doc }

// Answer is one answer to check.
type Answer struct {
	Request *http.Request
	Status  int
	Header  http.Header
	Body    []byte
	// HeadersOnly checks the status and headers only: the body is a
	// stream the caller reads on.
	HeadersOnly bool
	// Served, when not nil, are the operations the answering server
	// routes, as "METHOD /path/{param}" (see GinPath): an operation it
	// does not route must have been answered as an unknown path.
	Served map[string]bool
}

// Check returns what is wrong with the answer, nil when the description
// allows it: its status must be documented for the operation, and its
// headers and body must match. A HEAD is checked as the GET it mirrors,
// without a body. A request no operation matches must have been answered
// 404 or 405 with a problem, as the NotFound and MethodNotAllowed
// responses of the description show them.
func (s *Spec) Check(a Answer) error {
	if err := s.check(a); err != nil {
		return fmt.Errorf("%s %s answered %d, which docs/openapi.yaml does not allow: %w", a.Request.Method, a.Request.URL.Path, a.Status, err)
	}
	return nil
}

func (s *Spec) check(a Answer) error {
	req, withBody := a.Request, !a.HeadersOnly
	if Excluded(req.URL.Path) {
		return nil
	}
	find := req
	if req.Method == http.MethodHead {
		find = req.Clone(context.Background())
		find.Method = http.MethodGet
		withBody = false
	}
	route, params, err := s.router.FindRoute(find)
	switch {
	case err != nil:
	case expandPath(route.Path, params) != req.URL.Path:
		// The router forgives a trailing slash; the server does not.
		err = fmt.Errorf("%s only resembles %s", req.URL.Path, route.Path)
	case a.Served != nil && !a.Served[route.Method+" "+route.Path]:
		err = fmt.Errorf("this server does not route %s %s", route.Method, route.Path)
	}
	if err != nil {
		return s.checkUnrouted(a, withBody, err)
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: find, PathParams: params, Route: route},
		Status:                 a.Status,
		Header:                 a.Header,
		Options:                &openapi3filter.Options{IncludeResponseStatus: true, ExcludeResponseBody: !withBody},
	}
	in.SetBodyBytes(a.Body)
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		return err
	}
	if withBody && len(a.Body) > 0 {
		if resp := route.Operation.Responses.Status(a.Status); resp != nil && len(resp.Value.Content) == 0 {
			return fmt.Errorf("a body of %d bytes where the description has none", len(a.Body))
		}
	}
	return nil
}

// checkUnrouted checks the answer to a path or method the description
// (or the server) does not have.
func (s *Spec) checkUnrouted(a Answer, withBody bool, routeErr error) error {
	var name string
	switch a.Status {
	case http.StatusNotFound:
		name = "NotFound"
	case http.StatusMethodNotAllowed:
		name = "MethodNotAllowed"
	default:
		return fmt.Errorf("no operation in the description (%v)", routeErr)
	}
	resp := s.doc.Components.Responses[name].Value
	for h, ref := range resp.Headers {
		if ref.Value.Required && a.Header.Get(h) == "" {
			return fmt.Errorf("no operation in the description (%v), and header %s missing", routeErr, h)
		}
	}
	ct := a.Header.Get("Content-Type")
	mt := resp.Content.Get(ct)
	if mt == nil {
		return fmt.Errorf("no operation in the description (%v), and Content-Type %q is not the %s response's", routeErr, ct, name)
	}
	if !withBody {
		return nil
	}
	v, err := openapi3filter.JSONBodyDecoder(bytes.NewReader(a.Body), nil, nil, nil)
	if err != nil {
		return fmt.Errorf("a %d body that is not JSON: %w", a.Status, err)
	}
	return mt.Schema.Value.VisitJSON(v)
}

// expandPath fills the parameters into a path template of the description.
func expandPath(template string, params map[string]string) string {
	for name, v := range params {
		template = strings.ReplaceAll(template, "{"+name+"}", v)
	}
	return template
}

// GinPath turns a gin route path ("/v1/resources/:id") into the
// description's form ("/v1/resources/{id}").
func GinPath(p string) string {
	parts := strings.Split(p, "/")
	for i, seg := range parts {
		if name, ok := strings.CutPrefix(seg, ":"); ok {
			parts[i] = "{" + name + "}"
		}
	}
	return strings.Join(parts, "/")
}
