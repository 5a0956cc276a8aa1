package httpapi

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"allot/actors/domain"
)

// fuzzRequestTimeout bounds one fuzzed request; a request that has not
// answered well after it is a hang.
const fuzzRequestTimeout = 2 * time.Second

// FuzzHTTP sends random requests (method, path and query, Authorization,
// Content-Type, Idempotency-Key, body) to the real router on the fake
// engine. No answer may be a 5xx (a handler panic is a 500), none may
// hang, every error is problem details, and a rejected (4xx) request
// changes no state. Every input starts from the same state: a voucher, a
// room and a reservation of each. /debug/ is left out: a CPU profile or
// trace runs for as long as it is asked to.
//
//	go test -run '^$' -fuzz '^FuzzHTTP$' -fuzztime 10s ./httpapi/
func FuzzHTTP(f *testing.F) {
	e := newEnv(f, nil)
	e.putVoucher("v", 5, `,"per_user_limit":0`)
	e.do("PUT", "/v1/resources/suite", e.admin,
		`{"kind":"room","inventory":[{"from":"2026-12-01","to":"2027-01-01","rooms":3}]}`).want(f, http.StatusCreated, nil)
	held := e.reserve("v", e.alice, "")
	stay := e.reserve("suite", e.bob, `{"check_in":"2026-12-01","check_out":"2026-12-03"}`)
	var seed *domain.State
	e.eng.Read(context.Background(), domain.ReadStale, func(st *domain.State) error { seed = st.Clone(); return nil })

	expired, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": "alice", "exp": time.Now().Add(-time.Hour).Unix(),
	}).SignedString(e.secret)
	if err != nil {
		f.Fatal(err)
	}
	consumer, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": "feed", "role": "consumer", "exp": time.Now().Add(time.Hour).Unix(),
	}).SignedString(e.secret)
	if err != nil {
		f.Fatal(err)
	}
	forged, err := MintToken([]byte(strings.Repeat("x", MinSecretLen)), "root", RoleAdmin, time.Hour)
	if err != nil {
		f.Fatal(err)
	}
	// who picks the Authorization header; values past the list send raw.
	auths := []string{"", "Bearer " + e.admin, "Bearer " + e.alice, "Bearer " + e.bob,
		"Bearer " + expired, "Bearer " + forged, "Bearer " + consumer, "bearer " + e.alice, "Basic YTpi"}

	type seedInput struct {
		method, target string
		who            byte
		ct, key, body  string
	}
	rid, sid := held.ID, stay.ID
	for _, in := range []seedInput{
		{"GET", "/healthz", 0, "", "", ""},
		{"HEAD", "/readyz", 0, "", "", ""},
		{"GET", "/metrics", 0, "", "", ""},
		{"PUT", "/v1/resources/v", 1, "application/json", "", `{"kind":"voucher","capacity":1}`},
		{"PUT", "/v1/resources/new", 1, "application/json", "", `{"kind":"slot","capacity":2,"opens_at":"2026-12-01T08:00:00+24:00"}`},
		{"PUT", "/v1/resources/v", 2, "application/json", "", `{"kind":"voucher","capacity":9}`},
		{"PUT", "/v1/resources/r2", 1, "", "", `{"kind":"room","inventory":[{"from":"2026-12-01","to":"2026-12-05","rooms":2,"rooms":3}]}`},
		{"GET", "/v1/resources/suite?from=2026-12-01&to=2026-12-03", 3, "", "", ""},
		{"GET", "/v1/resources?limit=2&prefix=s&kind=room", 2, "", "", ""},
		{"DELETE", "/v1/resources/v", 1, "", "", ""},
		{"DELETE", "/v1/resources/..", 1, "", "", ""},
		{"POST", "/v1/resources/v/reservations", 2, "", "k1", ""},
		{"POST", "/v1/resources/v/reservations", 3, "application/json", "k2", `{"quantity":2}`},
		{"POST", "/v1/resources/v/reservations", 3, "application/json", "", `{"Quantity":2}`},
		{"POST", "/v1/resources/suite/reservations", 2, "application/json", "", `{"check_in":"2026-12-02"}`},
		{"POST", "/v1/resources/suite/reservations", 4, "application/json", "", `{"check_in":"2026-12-02","check_out":"2026-12-03"}`},
		{"GET", "/v1/reservations/" + rid, 2, "", "", ""},
		{"GET", "/v1/reservations/" + rid, 3, "", "", ""},
		{"GET", "/v1/reservations?user=alice&status=held", 1, "", "", ""},
		{"POST", "/v1/reservations/" + rid + "/confirm", 2, "", "", ""},
		{"POST", "/v1/reservations/" + rid + "/cancel", 3, "", "", "{}"},
		{"POST", "/v1/reservations/" + sid + "/check-in", 1, "", "k3", ""},
		{"POST", "/v1/reservations/" + sid + "/complete", 3, "", "", ""},
		{"GET", "/v1/cluster?hash=true", 2, "", "", ""},
		{"GET", "/v1/cluster/audit", 1, "", "", ""},
		{"POST", "/v1/cluster/nodes", 1, "application/json", "", `{"id":"n2","raft_addr":"127.0.0.1:7001","http_addr":"127.0.0.1:8081"}`},
		{"DELETE", "/v1/cluster/nodes/n9", 5, "", "", ""},
		{"PATCH", "/v1/resources/v", 1, "", "", ""},
		{"GET", "/v1/nope", 6, "", "", ""},
	} {
		f.Add(in.method, in.target, in.who, "", in.ct, in.key, []byte(in.body))
	}
	f.Add("GET", "/v1/resources", byte(200), "Bearer x.y.z", "", "", []byte(nil))

	f.Fuzz(func(t *testing.T, method, target string, who byte, rawAuth, ct, key string, body []byte) {
		u, err := url.ParseRequestURI(target)
		if err != nil || !validMethod(method) || strings.HasPrefix(u.Path, "/debug/") ||
			!validHeaderValue(rawAuth) || !validHeaderValue(ct) || !validHeaderValue(key) {
			return // the server's HTTP parser refuses these before any handler
		}
		auth := rawAuth
		if int(who) < len(auths) {
			auth = auths[who]
		}
		e.eng.reset(seed)
		e.cl.mu.Lock()
		e.cl.added, e.cl.removed = nil, nil
		e.cl.mu.Unlock()
		before := e.eng.stateHash()

		ctx, cancel := context.WithTimeout(context.Background(), fuzzRequestTimeout)
		defer cancel()
		req := (&http.Request{
			Method: method, URL: u, RequestURI: target, Host: "allot.test", RemoteAddr: "192.0.2.1:4000",
			Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Header: http.Header{},
			Body: io.NopCloser(bytes.NewReader(body)), ContentLength: int64(len(body)),
		}).WithContext(ctx)
		for name, v := range map[string]string{"Authorization": auth, "Content-Type": ct, headerIdemKey: key} {
			if v != "" {
				req.Header.Set(name, v)
			}
		}
		rec := httptest.NewRecorder()
		done := make(chan struct{})
		go func() {
			defer close(done)
			e.srv.Handler().ServeHTTP(rec, req)
		}()
		select {
		case <-done:
		case <-time.After(3 * fuzzRequestTimeout):
			t.Fatalf("%s %s: no answer within %v", method, target, 3*fuzzRequestTimeout)
		}

		status := rec.Code
		checkOpenAPI(t, e.srv, req, status, rec.Result().Header, rec.Body.Bytes())
		if status >= 500 {
			t.Fatalf("%s %s: %d %s", method, target, status, rec.Body.Bytes())
		}
		if status >= 400 {
			if got := rec.Header().Get("Content-Type"); got != "application/problem+json" {
				t.Fatalf("%s %s: %d with Content-Type %q: %s", method, target, status, got, rec.Body.Bytes())
			}
			e.cl.mu.Lock()
			changed := len(e.cl.added)+len(e.cl.removed) > 0
			e.cl.mu.Unlock()
			if changed || e.eng.stateHash() != before {
				t.Fatalf("%s %s: refused with %d but changed state: %s", method, target, status, rec.Body.Bytes())
			}
		}
	})
}

// validMethod reports whether m is an HTTP token, as net/http requires.
func validMethod(m string) bool {
	if m == "" {
		return false
	}
	for i := 0; i < len(m); i++ {
		c := m[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

// validHeaderValue reports whether v can travel in a header field.
func validHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}
