package httpapi

import (
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// signRaw signs a hand-written claims JSON with HS256, so that tests can
// send claims MintToken would never produce.
func signRaw(t *testing.T, secret []byte, payload string) string {
	t.Helper()
	enc := base64.RawURLEncoding.EncodeToString
	head := enc([]byte(`{"alg":"HS256","typ":"JWT"}`))
	body := enc([]byte(payload))
	sig, err := jwt.SigningMethodHS256.Sign(head+"."+body, secret)
	if err != nil {
		t.Fatal(err)
	}
	return head + "." + body + "." + enc(sig)
}

func TestTokenClaimsAreStrict(t *testing.T) {
	e := newEnv(t, nil)
	exp := time.Now().Add(time.Hour).Unix()
	cases := map[string]string{
		"string exp":          `{"sub":"alice","exp":"` + itoa(exp) + `"}`,
		"string nbf":          `{"sub":"alice","exp":` + itoa(exp) + `,"nbf":"1"}`,
		"number sub":          `{"sub":7,"exp":` + itoa(exp) + `}`,
		"empty sub":           `{"sub":"","exp":` + itoa(exp) + `}`,
		"control char in sub": `{"sub":"al\u0007ice","exp":` + itoa(exp) + `}`,
		"newline in sub":      `{"sub":"al\nice","exp":` + itoa(exp) + `}`,
		"invalid utf-8 sub":   "{\"sub\":\"al\xffice\",\"exp\":" + itoa(exp) + "}",
		"long sub":            `{"sub":"` + strings.Repeat("u", 257) + `","exp":` + itoa(exp) + `}`,
		"exp beyond max ttl":  `{"sub":"alice","exp":` + itoa(time.Now().Add(721*time.Hour).Unix()) + `}`,
	}
	for name, payload := range cases {
		t.Run(name, func(t *testing.T) {
			e.do("GET", "/v1/cluster", signRaw(t, e.secret, payload), "").wantProblem(t, http.StatusUnauthorized, "unauthenticated")
		})
	}
	p := e.do("GET", "/v1/cluster", signRaw(t, e.secret, cases["exp beyond max ttl"]), "").
		wantProblem(t, http.StatusUnauthorized, "unauthenticated")
	if !strings.Contains(p.Detail, "max token ttl (720h0m0s)") {
		t.Errorf("detail %q does not name the max token ttl", p.Detail)
	}
	for name, payload := range map[string]string{
		"number exp":         `{"sub":"alice","exp":` + itoa(exp) + `}`,
		"fractional exp":     `{"sub":"alice","exp":` + itoa(exp) + `.5}`,
		"unicode sub":        `{"sub":"zoë 山田","exp":` + itoa(exp) + `}`,
		"exp within max ttl": `{"sub":"alice","exp":` + itoa(time.Now().Add(719*time.Hour).Unix()) + `}`,
	} {
		t.Run(name, func(t *testing.T) {
			e.do("GET", "/v1/cluster", signRaw(t, e.secret, payload), "").want(t, http.StatusOK, nil)
		})
	}
	t.Run("no max ttl", func(t *testing.T) {
		e := newEnv(t, func(c *Config) { c.MaxTokenTTL = 0 })
		e.do("GET", "/v1/cluster", signRaw(t, e.secret, cases["exp beyond max ttl"]), "").want(t, http.StatusOK, nil)
	})
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }

// TestConsumerRole walks every route the server has: a consumer token is
// refused every write with 403, is refused the admin-only reads, and gets
// every other read exactly as an admin does.
func TestConsumerRole(t *testing.T) {
	e := newEnv(t, nil)
	e.do("PUT", "/v1/resources/s1", e.admin, `{"kind":"slot","capacity":5}`).want(t, http.StatusCreated, nil)
	res := e.reserve("s1", e.alice, `{"quantity":1}`)
	consumer := e.token("feed", RoleConsumer)
	adminOnlyReads := map[string]bool{"/v1/cluster/audit": true, "/v1/cluster/hello": true, "/debug/pprof/*profile": true}
	path := func(p string) string {
		p = strings.ReplaceAll(p, ":rid", res.ID)
		p = strings.ReplaceAll(p, ":id", "s1")
		return strings.ReplaceAll(p, "*profile", "cmdline")
	}
	writes, reads := 0, 0
	for _, rt := range e.srv.router.Routes() {
		t.Run(rt.Method+" "+rt.Path, func(t *testing.T) {
			p := path(rt.Path)
			switch {
			case rt.Method != http.MethodGet && rt.Method != http.MethodHead:
				writes++
				e.do(rt.Method, p, consumer, `{"kind":"slot","capacity":9,"quantity":1}`).
					wantProblem(t, http.StatusForbidden, "permission_denied")
			case adminOnlyReads[rt.Path] && rt.Method == http.MethodHead: // no body to name the problem
				if got := e.do(rt.Method, p, consumer, ""); got.status != http.StatusForbidden {
					t.Errorf("consumer HEAD %s: %d, want 403", p, got.status)
				}
			case adminOnlyReads[rt.Path]:
				e.do(rt.Method, p, consumer, "").wantProblem(t, http.StatusForbidden, "permission_denied")
			default:
				reads++
				want := e.do(rt.Method, p, e.admin, "")
				got := e.do(rt.Method, p, consumer, "")
				// The cluster view leaves out the Raft addresses for a consumer
				// (TestClusterAdminOnlyFields); everything else is the admin's.
				sameBody := rt.Path == "/metrics" || rt.Path == "/healthz" || rt.Path == "/v1/cluster" || string(got.body) == string(want.body)
				if got.status != want.status || !sameBody {
					t.Errorf("consumer got %d %s, admin %d %s", got.status, got.body, want.status, want.body)
				}
			}
		})
	}
	if writes < 8 || reads < 5 {
		t.Fatalf("only %d write and %d read routes walked", writes, reads)
	}
	// Nothing a consumer sent changed anything.
	var r reservationJSON
	e.do("GET", "/v1/reservations/"+res.ID, consumer, "").want(t, http.StatusOK, &r)
	if r.Status != res.Status || r.User != "alice" {
		t.Errorf("reservation after the consumer's writes: %+v, was %+v", r, res)
	}
	var rs struct {
		Items []struct {
			Capacity int64 `json:"capacity"`
		} `json:"items"`
	}
	e.do("GET", "/v1/resources", consumer, "").want(t, http.StatusOK, &rs)
	if len(rs.Items) != 1 || rs.Items[0].Capacity != 5 {
		t.Errorf("resources after the consumer's writes: %+v", rs)
	}
	// It lists every user's reservations, as an admin does.
	e.reserve("s1", e.bob, `{"quantity":1}`)
	var list struct {
		Items []reservationJSON `json:"items"`
	}
	e.do("GET", "/v1/reservations", consumer, "").want(t, http.StatusOK, &list)
	if len(list.Items) != 2 {
		t.Errorf("consumer listed %d reservations, want alice's and bob's", len(list.Items))
	}
}

func TestRateLimitsByRole(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.RateLimit = RateLimit{PerSecond: 0.001, Burst: 2, MaxUsers: 100}
		c.AdminRateLimit = RateLimit{PerSecond: 0.001, Burst: 4, MaxUsers: 100}
		c.IPRateLimit = RateLimit{}
	})
	for i := 0; i < 2; i++ {
		e.do("GET", "/v1/resources", e.alice, "").want(t, http.StatusOK, nil)
	}
	p := e.do("GET", "/v1/resources", e.alice, "")
	p.wantProblem(t, http.StatusTooManyRequests, "rate_limited")
	if p.header.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
	// Admin and consumer tokens have their own, larger buckets.
	for _, tok := range []string{e.admin, e.token("feed", RoleConsumer)} {
		for i := 0; i < 4; i++ {
			e.do("GET", "/v1/resources", tok, "").want(t, http.StatusOK, nil)
		}
		e.do("GET", "/v1/resources", tok, "").wantProblem(t, http.StatusTooManyRequests, "rate_limited")
	}
	// Off by default for admins.
	e = newEnv(t, func(c *Config) { c.RateLimit = RateLimit{PerSecond: 0.001, Burst: 1, MaxUsers: 100} })
	for i := 0; i < 10; i++ {
		e.do("GET", "/v1/resources", e.admin, "").want(t, http.StatusOK, nil)
	}
}

// TestIPRateLimitBeforeAuth: garbage tokens from one address run into the
// per-address bucket, so past the burst they are not even verified.
func TestIPRateLimitBeforeAuth(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.IPRateLimit = RateLimit{PerSecond: 0.001, Burst: 3, MaxUsers: 100} })
	for i := 0; i < 3; i++ {
		e.do("GET", "/v1/resources", "garbage", "").wantProblem(t, http.StatusUnauthorized, "unauthenticated")
	}
	r := e.do("GET", "/v1/resources", "garbage", "")
	r.wantProblem(t, http.StatusTooManyRequests, "rate_limited")
	if r.header.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
	e.do("GET", "/v1/resources", e.admin, "").wantProblem(t, http.StatusTooManyRequests, "rate_limited")
	// Routes without a token are not limited.
	e.do("GET", "/healthz", "", "").want(t, http.StatusOK, nil)
}

// TestForwardedMarkSkipsIPLimitOnlyWhenProven: a follower forwards every
// client's request from its one address, so a forwarded request skips the
// per-address limit, but only with a mark made from the shared secret; the
// bare header, another node's id or a mark under another secret do not.
func TestForwardedMarkSkipsIPLimitOnlyWhenProven(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.IPRateLimit = RateLimit{PerSecond: 0.001, Burst: 1, MaxUsers: 100} })
	e.do("GET", "/v1/resources", "garbage", "").wantProblem(t, http.StatusUnauthorized, "unauthenticated")
	follower, err := newForwardMark(e.secret, "n2")
	if err != nil {
		t.Fatal(err)
	}
	stranger, err := newForwardMark([]byte(strings.Repeat("x", MinSecretLen)), "n2")
	if err != nil {
		t.Fatal(err)
	}
	for _, forged := range []string{"n2", "n2.", ".", stranger.mine, "n3" + follower.mine[2:], follower.mine + "x"} {
		e.do("GET", "/v1/resources", "garbage", "", headerForwarded, forged).wantProblem(t, http.StatusTooManyRequests, "rate_limited")
	}
	for range 3 {
		e.do("GET", "/v1/resources", "garbage", "", headerForwarded, follower.mine).wantProblem(t, http.StatusUnauthorized, "unauthenticated")
	}
}

func TestMintTokenConsumerAndSubject(t *testing.T) {
	secret := []byte(strings.Repeat("k", MinSecretLen))
	if _, err := MintToken(secret, "feed", RoleConsumer, time.Minute); err != nil {
		t.Errorf("consumer token: %v", err)
	}
	for _, sub := range []string{"a\x00b", "tab\there", "bad\xffutf8"} {
		if _, err := MintToken(secret, sub, "", time.Minute); err == nil {
			t.Errorf("MintToken(%q) minted a token", sub)
		}
	}
}
