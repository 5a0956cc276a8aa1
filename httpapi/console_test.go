package httpapi

import (
	"net/http"
	"strings"
	"testing"

	"allot/httpapi/ui"
)

// TestConsoleServed: /ui redirects to /ui/ with a path (no scheme or host,
// so it holds behind TLS), the page and its files come with the
// Content-Security-Policy and without a token, and an unknown file is a
// 404 problem.
func TestConsoleServed(t *testing.T) {
	e := newEnv(t, nil)
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Get(e.url + "/ui")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/ui/" {
		t.Fatalf("GET /ui: %d Location %q, want 302 /ui/", resp.StatusCode, resp.Header.Get("Location"))
	}
	for path, ctype := range map[string]string{
		"/ui/":            "text/html",
		"/ui/index.html":  "text/html",
		"/ui/console.css": "text/css",
		"/ui/js/main.js":  "javascript",
	} {
		r := e.do("GET", path, "", "")
		if r.status != http.StatusOK {
			t.Fatalf("GET %s: %d %s", path, r.status, r.body)
		}
		if got := r.header.Get("Content-Security-Policy"); got != ui.ContentSecurityPolicy {
			t.Errorf("GET %s: CSP %q", path, got)
		}
		if got := r.header.Get("Content-Type"); !strings.Contains(got, ctype) {
			t.Errorf("GET %s: Content-Type %q, want %s", path, got, ctype)
		}
		if r.header.Get("X-Content-Type-Options") != "nosniff" || r.header.Get("ETag") == "" {
			t.Errorf("GET %s: headers %v", path, r.header)
		}
	}
	r := e.do("GET", "/ui/", "", "", "If-None-Match", e.do("GET", "/ui/", "", "").header.Get("ETag"))
	if r.status != http.StatusNotModified {
		t.Errorf("revalidation with the ETag: %d, want 304", r.status)
	}
	e.do("GET", "/ui/nope.js", "", "").wantProblem(t, http.StatusNotFound, "not_found")
	e.do("GET", "/ui/../v1/cluster", "", "").wantProblem(t, http.StatusNotFound, "not_found")
}
