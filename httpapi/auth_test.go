package httpapi

import (
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"allot/actors/domain"
)

func TestAuthRejectsBadTokens(t *testing.T) {
	e := newEnv(t, nil)
	now := time.Now()
	sign := func(method jwt.SigningMethod, key any, cl jwt.MapClaims) string {
		t.Helper()
		s, err := jwt.NewWithClaims(method, cl).SignedString(key)
		if err != nil {
			t.Fatalf("signing: %v", err)
		}
		return s
	}
	valid := func() jwt.MapClaims { return jwt.MapClaims{"sub": "alice", "exp": now.Add(time.Hour).Unix()} }
	rsaKey, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	noExp := valid()
	delete(noExp, "exp")
	noSub := valid()
	delete(noSub, "sub")
	expired := valid()
	expired["exp"] = now.Add(-time.Minute).Unix()
	badRole := valid()
	badRole["role"] = "root"

	cases := map[string]string{
		"not bearer":     "Basic YWxpY2U6cHc=",
		"empty bearer":   "Bearer ",
		"garbage":        "Bearer not.a.jwt",
		"bad signature":  "Bearer " + sign(jwt.SigningMethodHS256, []byte(strings.Repeat("x", 32)), valid()),
		"alg none":       "Bearer " + sign(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, valid()),
		"RS256":          "Bearer " + sign(jwt.SigningMethodRS256, rsaKey, valid()),
		"HS512 same key": "Bearer " + sign(jwt.SigningMethodHS512, e.secret, valid()),
		"no exp":         "Bearer " + sign(jwt.SigningMethodHS256, e.secret, noExp),
		"no sub":         "Bearer " + sign(jwt.SigningMethodHS256, e.secret, noSub),
		"expired":        "Bearer " + sign(jwt.SigningMethodHS256, e.secret, expired),
		"unknown role":   "Bearer " + sign(jwt.SigningMethodHS256, e.secret, badRole),
	}
	for name, auth := range cases {
		t.Run(name, func(t *testing.T) {
			r := e.do(http.MethodGet, "/v1/cluster", "", "", "Authorization", auth)
			r.wantProblem(t, http.StatusUnauthorized, "unauthenticated")
			if !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("WWW-Authenticate = %q", r.header.Get("WWW-Authenticate"))
			}
		})
	}
	t.Run("missing", func(t *testing.T) {
		r := e.do(http.MethodGet, "/v1/cluster", "", "")
		r.wantProblem(t, http.StatusUnauthorized, "unauthenticated")
		if r.header.Get("WWW-Authenticate") != `Bearer realm="allot"` {
			t.Errorf("WWW-Authenticate = %q", r.header.Get("WWW-Authenticate"))
		}
	})
	t.Run("hand-made token with default role and lower-case scheme", func(t *testing.T) {
		e.do(http.MethodGet, "/v1/cluster", "", "", "Authorization",
			"bearer "+sign(jwt.SigningMethodHS256, e.secret, valid())).want(t, http.StatusOK, nil)
	})
}

func TestRoles(t *testing.T) {
	e := newEnv(t, nil)
	e.do("PUT", "/v1/resources/s1", e.admin, `{"kind":"slot","capacity":5}`).want(t, http.StatusCreated, nil)
	res := e.reserve("s1", e.alice, `{"quantity":1}`)
	e.do("POST", "/v1/reservations/"+res.ID+"/confirm", e.alice, "").want(t, http.StatusOK, nil)

	// Admin-only routes refuse a user before doing anything.
	for _, rt := range []struct{ method, path, body string }{
		{"PUT", "/v1/resources/s2", `{"kind":"slot","capacity":5}`},
		{"DELETE", "/v1/resources/s1", ""},
		{"POST", "/v1/reservations/" + res.ID + "/check-in", ""},
		{"POST", "/v1/reservations/" + res.ID + "/complete", ""},
		{"POST", "/v1/cluster/nodes", `{}`},
		{"DELETE", "/v1/cluster/nodes/n2", ""},
	} {
		e.do(rt.method, rt.path, e.alice, rt.body).wantProblem(t, http.StatusForbidden, "permission_denied")
	}
	// Any user reads resources and the cluster.
	e.do("GET", "/v1/resources/s1", e.bob, "").want(t, http.StatusOK, nil)
	e.do("GET", "/v1/resources", e.bob, "").want(t, http.StatusOK, nil)
	var info ClusterInfo
	e.do("GET", "/v1/cluster", e.bob, "").want(t, http.StatusOK, &info)
	if info.Leader == nil || info.Leader.ID != "n1" || info.Term != 3 || len(info.Nodes) != 1 || !info.Nodes[0].Voter {
		t.Errorf("cluster info %+v", info)
	}
	// Owner or admin on a reservation: bob is neither.
	e.do("GET", "/v1/reservations/"+res.ID, e.bob, "").wantProblem(t, http.StatusForbidden, "permission_denied")
	e.do("POST", "/v1/reservations/"+res.ID+"/cancel", e.bob, "").wantProblem(t, http.StatusForbidden, "permission_denied")
	e.do("GET", "/v1/reservations/"+res.ID, e.alice, "").want(t, http.StatusOK, nil)
	e.do("GET", "/v1/reservations/"+res.ID, e.admin, "").want(t, http.StatusOK, nil)
	// The admin moves it on.
	var out reservationJSON
	e.do("POST", "/v1/reservations/"+res.ID+"/check-in", e.admin, "").want(t, http.StatusOK, &out)
	if out.Status != "checked_in" {
		t.Errorf("after check-in: %+v", out)
	}
	e.do("POST", "/v1/reservations/"+res.ID+"/complete", e.admin, "").want(t, http.StatusOK, &out)
	if out.Status != "completed" {
		t.Errorf("after complete: %+v", out)
	}
	// The engine got the caller, as it decides ownership.
	if cmd := e.eng.lastReserve(); cmd.Caller != (domain.Principal{User: "alice"}) || cmd.Request.User != "alice" {
		t.Errorf("reserve command %+v", cmd)
	}
}

func TestMintToken(t *testing.T) {
	secret := []byte(strings.Repeat("k", MinSecretLen))
	s := &Server{cfg: Config{AuthSecret: secret}, parser: newTokenParser(false)}
	for _, tc := range []struct {
		role            string
		admin, readOnly bool
	}{{"", false, false}, {RoleUser, false, false}, {RoleAdmin, true, false}, {RoleConsumer, true, true}} {
		tok, err := MintToken(secret, "carol", tc.role, time.Minute)
		if err != nil {
			t.Fatalf("MintToken(%q): %v", tc.role, err)
		}
		who, err := s.authenticate("Bearer " + tok)
		if p := who.p; err != nil || p != (domain.Principal{User: "carol", Admin: tc.admin, ReadOnly: tc.readOnly}) {
			t.Errorf("role %q: principal %+v, err %v", tc.role, p, err)
		}
	}
	bad := []struct {
		secret    []byte
		sub, role string
		ttl       time.Duration
	}{
		{secret[:MinSecretLen-1], "carol", "", time.Minute},
		{secret, "", "", time.Minute},
		{secret, strings.Repeat("u", domain.MaxUserLen+1), "", time.Minute},
		{secret, "carol", "root", time.Minute},
		{secret, "carol", "", 0},
	}
	for _, b := range bad {
		if _, err := MintToken(b.secret, b.sub, b.role, b.ttl); !errors.Is(err, domain.ErrInvalidArgument) {
			t.Errorf("MintToken(len %d, %q, %q, %s) = %v, want invalid argument", len(b.secret), b.sub, b.role, b.ttl, err)
		}
	}
}
