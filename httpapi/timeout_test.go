package httpapi

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestStalledBodyIs408 sends headers and part of a body over a raw
// connection to a server configured as NewHTTPServer does (with a short
// ReadTimeout), then stalls: the answer is a 408 problem that names no
// socket address.
func TestStalledBodyIs408(t *testing.T) {
	e := newEnv(t, nil)
	e.putVoucher("v", 5, "")
	ts := httptest.NewUnstartedServer(nil)
	ts.Config = NewHTTPServer("", e.srv.Handler())
	ts.Config.ReadTimeout = 300 * time.Millisecond
	ts.Start()
	t.Cleanup(ts.Close)
	addr := strings.TrimPrefix(ts.URL, "http://")

	for _, tc := range []struct{ name, method, path, body string }{
		{"reserve", "POST", "/v1/resources/v/reservations", `{"quantity":`},
		{"put resource", "PUT", "/v1/resources/w", `{"kind":"voucher",`},
		{"no body bytes yet", "POST", "/v1/resources/v/reservations", ``},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			req := tc.method + " " + tc.path + " HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + e.admin +
				"\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n" + tc.body
			if _, err := io.WriteString(conn, req); err != nil {
				t.Fatal(err)
			}
			conn.SetReadDeadline(time.Now().Add(10 * time.Second)) // the test's bound, far above ReadTimeout
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatalf("reading the answer: %v", err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			var p problemJSON
			if err := json.Unmarshal(b, &p); err != nil {
				t.Fatalf("body %q: %v", b, err)
			}
			if resp.StatusCode != http.StatusRequestTimeout || p.Code != "request_timeout" || p.Status != 408 ||
				resp.Header.Get("Content-Type") != "application/problem+json" {
				t.Fatalf("status %d, body %s", resp.StatusCode, b)
			}
			if regexp.MustCompile(`\d+\.\d+\.\d+\.\d+|tcp|\[::`).Match(b) {
				t.Fatalf("answer leaks socket details: %s", b)
			}
		})
	}
	// Nothing was made from the partial bodies.
	var got resourceOut
	e.do("GET", "/v1/resources/v", e.admin, "").want(t, http.StatusOK, &got)
	if *got.Held != 0 {
		t.Fatalf("a stalled reserve took a unit: %+v", got)
	}
	e.do("GET", "/v1/resources/w", e.admin, "").wantProblem(t, http.StatusNotFound, "not_found")
}
