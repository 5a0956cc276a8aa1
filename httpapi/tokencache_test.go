package httpapi

import (
	"net/http"
	"strconv"
	"testing"

	"allot/actors/domain"
)

func TestTokenCache(t *testing.T) {
	c := newTokenCache(tokenCacheShards * 2)
	alice := caller{p: domain.Principal{User: "alice"}, role: RoleUser}
	c.put("tok-a", alice, 100)
	if p, ok := c.get("tok-a", 99); !ok || p != alice {
		t.Fatalf("get before exp = %+v, %v", p, ok)
	}
	if _, ok := c.get("tok-a", 100); ok {
		t.Fatal("token served from the cache at its exp")
	}
	if c.size() != 0 {
		t.Errorf("expired entry kept after lookup")
	}
	if _, ok := c.get("tok-b", 0); ok {
		t.Fatal("unknown token found")
	}
	for i := 0; i < 1000; i++ {
		c.put("t"+strconv.Itoa(i), alice, 1e18)
	}
	if n := c.size(); n > tokenCacheShards*2 {
		t.Errorf("%d tokens cached, bound %d", n, tokenCacheShards*2)
	}
}

func TestTokenCacheOverHTTP(t *testing.T) {
	for _, size := range []int{0, 64} {
		t.Run("size "+strconv.Itoa(size), func(t *testing.T) {
			e := newEnv(t, func(c *Config) { c.TokenCacheSize = size })
			tok := e.token("dave", RoleAdmin)
			for i := 0; i < 3; i++ {
				e.do("PUT", "/v1/resources/v", tok, `{"kind":"voucher"}`).want(t, []int{201, 200, 200}[i], nil)
			}
			if size > 0 && e.srv.tokens.size() != 1 {
				t.Errorf("%d tokens cached after three requests with one", e.srv.tokens.size())
			}
			// A cached token does not vouch for a token differing in its signature.
			// (A middle character of the signature: the last one carries
			// padding bits that decoders may ignore.)
			i, repl := len(tok)-10, "A"
			if tok[i] == 'A' {
				repl = "B"
			}
			forged := tok[:i] + repl + tok[i+1:]
			e.do("GET", "/v1/cluster", forged, "").wantProblem(t, http.StatusUnauthorized, "unauthenticated")
			// Nor one for the same user minted later with another role.
			e.do("PUT", "/v1/resources/v", e.token("dave", RoleUser), `{"kind":"voucher"}`).
				wantProblem(t, http.StatusForbidden, "permission_denied")
		})
	}
}
