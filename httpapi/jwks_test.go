package httpapi

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

var b64 = base64.RawURLEncoding.EncodeToString

func rsaJWK(kid, alg string, k *rsa.PublicKey) string {
	a := ""
	if alg != "" {
		a = `,"alg":"` + alg + `"`
	}
	return fmt.Sprintf(`{"kty":"RSA","kid":%q,"use":"sig","n":%q,"e":%q%s}`, kid, b64(k.N.Bytes()), b64(big.NewInt(int64(k.E)).Bytes()), a)
}

func edJWK(kid string, k ed25519.PublicKey) string {
	return fmt.Sprintf(`{"kty":"OKP","crv":"Ed25519","kid":%q,"x":%q}`, kid, b64(k))
}

func TestJWKSTokens(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	otherRSA, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	edPub, edPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "jwks.json")
	doc := `{"keys":[` + rsaJWK("rsa1", "RS256", &rsaKey.PublicKey) + "," + edJWK("ed1", edPub) +
		`,{"kty":"EC","kid":"ec1","crv":"P-256","x":"AA","y":"AA"},` +
		`{"kty":"RSA","kid":"enc1","use":"enc","n":"AQAB","e":"AQAB"}]}`
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	ks, err := LoadJWKS(path)
	if err != nil {
		t.Fatal(err)
	}
	if ks.Len() != 2 {
		t.Fatalf("%d keys loaded, want the RSA and the Ed25519 one", ks.Len())
	}
	e := newEnv(t, func(c *Config) { c.PublicKeys, c.Issuer = ks, testIssuer })
	claims := func(role string) jwt.MapClaims {
		return jwt.MapClaims{"sub": "idp-user", "iss": testIssuer, "role": role, "exp": time.Now().Add(time.Hour).Unix()}
	}
	sign := func(m jwt.SigningMethod, kid string, key any, cl jwt.MapClaims) string {
		t.Helper()
		tok := jwt.NewWithClaims(m, cl)
		if kid != "" {
			tok.Header["kid"] = kid
		}
		s, err := tok.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	rsaDER, err := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	accept := map[string]string{
		"RS256":                     sign(jwt.SigningMethodRS256, "rsa1", rsaKey, claims("")),
		"EdDSA":                     sign(jwt.SigningMethodEdDSA, "ed1", edPriv, claims("")),
		"HS256 with the secret":     sign(jwt.SigningMethodHS256, "", e.secret, claims("")),
		"HS256 with secret and kid": sign(jwt.SigningMethodHS256, "rsa1", e.secret, claims("")),
	}
	for name, tok := range accept {
		t.Run("accepts "+name, func(t *testing.T) {
			e.do("GET", "/v1/cluster", tok, "").want(t, http.StatusOK, nil)
		})
	}
	refuse := map[string]string{
		"RS256 naming the Ed25519 key":    sign(jwt.SigningMethodRS256, "ed1", rsaKey, claims("")),
		"EdDSA naming the RSA key":        sign(jwt.SigningMethodEdDSA, "rsa1", edPriv, claims("")),
		"RS384 with the RSA key":          sign(jwt.SigningMethodRS384, "rsa1", rsaKey, claims("")),
		"PS256 with the RSA key":          sign(jwt.SigningMethodPS256, "rsa1", rsaKey, claims("")),
		"unknown kid":                     sign(jwt.SigningMethodRS256, "rsa2", rsaKey, claims("")),
		"skipped EC kid":                  sign(jwt.SigningMethodRS256, "ec1", rsaKey, claims("")),
		"no kid":                          sign(jwt.SigningMethodRS256, "", rsaKey, claims("")),
		"another RSA key":                 sign(jwt.SigningMethodRS256, "rsa1", otherRSA, claims("")),
		"HS256 keyed with RSA public DER": sign(jwt.SigningMethodHS256, "rsa1", rsaDER, claims("")),
		"HS256 keyed with Ed25519 public": sign(jwt.SigningMethodHS256, "ed1", []byte(edPub), claims("")),
		"none":                            sign(jwt.SigningMethodNone, "rsa1", jwt.UnsafeAllowNoneSignatureType, claims("")),
		"RS256 with a bad role":           sign(jwt.SigningMethodRS256, "rsa1", rsaKey, claims("root")),
		"RS256 beyond the max token ttl":  sign(jwt.SigningMethodRS256, "rsa1", rsaKey, jwt.MapClaims{"sub": "u", "iss": testIssuer, "exp": time.Now().Add(1000 * time.Hour).Unix()}),
		"RS256 with a string exp":         sign(jwt.SigningMethodRS256, "rsa1", rsaKey, jwt.MapClaims{"sub": "u", "iss": testIssuer, "exp": fmt.Sprint(time.Now().Add(time.Hour).Unix())}),
	}
	for name, tok := range refuse {
		t.Run("refuses "+name, func(t *testing.T) {
			e.do("GET", "/v1/cluster", tok, "").wantProblem(t, http.StatusUnauthorized, "unauthenticated")
		})
	}
	// Roles travel in IdP tokens too: a consumer still writes nothing.
	feed := sign(jwt.SigningMethodEdDSA, "ed1", edPriv, claims(RoleConsumer))
	e.do("PUT", "/v1/resources/x", feed, `{"kind":"voucher"}`).wantProblem(t, http.StatusForbidden, "permission_denied")
	e.do("GET", "/v1/resources", feed, "").want(t, http.StatusOK, nil)

	// Without a key set, public-key tokens are refused outright.
	plain := newEnv(t, nil)
	plain.do("GET", "/v1/cluster", accept["RS256"], "").wantProblem(t, http.StatusUnauthorized, "unauthenticated")
}

// testIssuer is the iss of the identity provider in these tests.
const testIssuer = "https://idp.example"

// TestJWKSIssuerAudience checks that an identity provider's token is
// accepted only with the configured issuer and audience, and that its
// subject lives in a namespace of its own, apart from HS256 users.
func TestJWKSIssuerAudience(t *testing.T) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ks, err := ParseJWKS([]byte(`{"keys":[` + edJWK("ed1", pub) + `]}`))
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, func(c *Config) { c.PublicKeys, c.Issuer, c.Audience = ks, testIssuer, "allot" })
	sign := func(cl jwt.MapClaims) string {
		t.Helper()
		if _, ok := cl["exp"]; !ok {
			cl["exp"] = time.Now().Add(time.Hour).Unix()
		}
		tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, cl)
		tok.Header["kid"] = "ed1"
		s, err := tok.SignedString(priv)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	for name, cl := range map[string]jwt.MapClaims{
		"audience as a string": {"sub": "alice", "iss": testIssuer, "aud": "allot"},
		"audience in a list":   {"sub": "alice", "iss": testIssuer, "aud": []string{"billing", "allot"}},
	} {
		t.Run("accepts "+name, func(t *testing.T) {
			e.do("GET", "/v1/cluster", sign(cl), "").want(t, http.StatusOK, nil)
		})
	}
	for name, cl := range map[string]jwt.MapClaims{
		"another issuer":                   {"sub": "alice", "iss": "https://evil.example", "aud": "allot"},
		"no issuer":                        {"sub": "alice", "aud": "allot"},
		"an issuer differing in case":      {"sub": "alice", "iss": "HTTPS://IDP.EXAMPLE", "aud": "allot"},
		"a numeric issuer":                 {"sub": "alice", "iss": 7, "aud": "allot"},
		"another audience":                 {"sub": "alice", "iss": testIssuer, "aud": "billing"},
		"no audience":                      {"sub": "alice", "iss": testIssuer},
		"a list without allot":             {"sub": "alice", "iss": testIssuer, "aud": []string{"billing", "allot2"}},
		"a subject too long once prefixed": {"sub": strings.Repeat("a", 255), "iss": testIssuer, "aud": "allot"},
	} {
		t.Run("refuses "+name, func(t *testing.T) {
			e.do("GET", "/v1/cluster", sign(cl), "").wantProblem(t, http.StatusUnauthorized, "unauthenticated")
		})
	}

	// HS256 tokens are unaffected: no iss or aud needed, the sub is the
	// user name; but a local token cannot name an identity provider user.
	e.do("GET", "/v1/cluster", e.alice, "").want(t, http.StatusOK, nil)
	e.do("GET", "/v1/cluster", e.token(DefaultSubjectPrefix+"alice", ""), "").wantProblem(t, http.StatusUnauthorized, "unauthenticated")

	// The identity provider's alice is "idp:alice", not the local alice.
	e.putVoucher("v", 5, "")
	local := e.reserve("v", e.alice, "")
	idpAlice := sign(jwt.MapClaims{"sub": "alice", "iss": testIssuer, "aud": "allot"})
	remote := e.reserve("v", idpAlice, "")
	if local.User != "alice" || remote.User != DefaultSubjectPrefix+"alice" {
		t.Fatalf("users %q and %q, want alice and %salice", local.User, remote.User, DefaultSubjectPrefix)
	}
	e.do("GET", "/v1/reservations/"+local.ID, idpAlice, "").wantProblem(t, http.StatusForbidden, "permission_denied")

	// A key set without an issuer is a configuration error.
	cfg := DefaultConfig()
	cfg.Engine, cfg.Reader, cfg.Cluster, cfg.Registry = e.eng, e.eng, e.cl, e.reg
	cfg.NodeID, cfg.AuthSecret, cfg.PublicKeys = "n1", e.secret, ks
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "Issuer") {
		t.Fatalf("PublicKeys without Issuer: %v", err)
	}
	cfg.Issuer, cfg.SubjectPrefix = testIssuer, ""
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "SubjectPrefix") {
		t.Fatalf("PublicKeys without SubjectPrefix: %v", err)
	}
}

func TestParseJWKSRefusesBrokenSets(t *testing.T) {
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	edPub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ed := edJWK("ed1", edPub)
	for name, doc := range map[string]string{
		"not json":         `{"keys":`,
		"no keys":          `{"keys":[]}`,
		"only EC":          `{"keys":[{"kty":"EC","kid":"e","crv":"P-256"}]}`,
		"no kid":           `{"keys":[` + edJWK("", edPub) + `]}`,
		"duplicate kid":    `{"keys":[` + ed + "," + ed + `]}`,
		"short RSA":        `{"keys":[` + rsaJWK("r", "", &small.PublicKey) + `]}`,
		"RSA with RS512":   `{"keys":[` + rsaJWK("r", "RS512", &small.PublicKey) + `]}`,
		"Ed25519 as RS256": `{"keys":[` + strings.Replace(ed, `"kty"`, `"alg":"RS256","kty"`, 1) + `]}`,
		"X25519":           `{"keys":[{"kty":"OKP","crv":"X25519","kid":"x","x":"` + b64(edPub) + `"}]}`,
		"short x":          `{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"x","x":"AAAA"}]}`,
		"bad n":            `{"keys":[{"kty":"RSA","kid":"r","n":"!!","e":"AQAB"}]}`,
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := ParseJWKS([]byte(doc)); err == nil {
				t.Errorf("ParseJWKS accepted %s", doc)
			}
		})
	}
	if _, err := LoadJWKS(filepath.Join(t.TempDir(), "missing.json")); err == nil {
		t.Error("a missing file loaded")
	}
}

// TestKeySetPinsAlgorithm checks the pin itself, not the library's key
// type check behind it: a key answers only tokens of its own algorithm.
func TestKeySetPinsAlgorithm(t *testing.T) {
	edPub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ks, err := ParseJWKS([]byte(`{"keys":[` + edJWK("ed1", edPub) + `]}`))
	if err != nil {
		t.Fatal(err)
	}
	tok := &jwt.Token{Header: map[string]any{"kid": "ed1"}}
	for _, m := range []jwt.SigningMethod{jwt.SigningMethodRS256, jwt.SigningMethodHS256, jwt.SigningMethodES256} {
		tok.Method = m
		if _, err := ks.verifyKey(tok); err == nil {
			t.Errorf("%s token given the EdDSA key", m.Alg())
		}
	}
	tok.Method = jwt.SigningMethodEdDSA
	if k, err := ks.verifyKey(tok); err != nil || !edPub.Equal(k) {
		t.Errorf("EdDSA token: key %v, err %v", k, err)
	}
}
