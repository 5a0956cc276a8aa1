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

// stalledAnswer serves h as NewHTTPServer does but with a short
// ReadTimeout, sends the request line, headers and part of a body over a
// raw connection, stalls, and returns the answer.
func stalledAnswer(t *testing.T, h http.Handler, token, method, path, partial string) (*http.Response, []byte) {
	t.Helper()
	ts := httptest.NewUnstartedServer(nil)
	ts.Config = NewHTTPServer("", h)
	ts.Config.ReadTimeout = 300 * time.Millisecond
	ts.Start()
	t.Cleanup(ts.Close)
	conn, err := net.Dial("tcp", strings.TrimPrefix(ts.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	req := method + " " + path + " HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + token +
		"\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n" + partial
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
	sent, _ := http.NewRequest(method, ts.URL+path, nil)
	checkOpenAPI(t, nil, sent, resp.StatusCode, resp.Header, b)
	return resp, b
}

// TestStalledBodyIs408 checks that a client that sends part of a body and
// stalls gets a 408 problem that names no socket address, on the node that
// would handle the request and on a follower that would forward it.
func TestStalledBodyIs408(t *testing.T) {
	leader, follower := leaderAndFollower(t)
	leader.putVoucher("v", 5, "")
	for _, tc := range []struct{ name, method, path, body string }{
		{"reserve", "POST", "/v1/resources/v/reservations", `{"quantity":`},
		{"put resource", "PUT", "/v1/resources/w", `{"kind":"voucher",`},
		{"no body bytes yet", "POST", "/v1/resources/v/reservations", ``},
	} {
		for _, node := range []*testEnv{leader, follower} {
			t.Run(tc.name+" on "+node.srv.cfg.NodeID, func(t *testing.T) {
				resp, b := stalledAnswer(t, node.srv.Handler(), node.admin, tc.method, tc.path, tc.body)
				var p problemJSON
				if err := json.Unmarshal(b, &p); err != nil {
					t.Fatalf("status %d body %q: %v", resp.StatusCode, b, err)
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
	}
	// Nothing was made from the partial bodies.
	var got resourceOut
	leader.do("GET", "/v1/resources/v", leader.admin, "").want(t, http.StatusOK, &got)
	if *got.Held != 0 {
		t.Fatalf("a stalled reserve took a unit: %+v", got)
	}
	leader.do("GET", "/v1/resources/w", leader.admin, "").wantProblem(t, http.StatusNotFound, "not_found")
}
