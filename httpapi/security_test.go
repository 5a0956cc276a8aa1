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
