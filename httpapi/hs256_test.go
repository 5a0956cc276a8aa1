package httpapi

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// hs256Now is the clock of the HS256 comparisons: both sides read it.
func hs256Now() time.Time { return time.Unix(1_800_000_000, 500_000_000) }

func hs256TestServer() *Server {
	secret := []byte(strings.Repeat("k", MinSecretLen))
	return &Server{cfg: Config{AuthSecret: secret}, macs: newHS256Pool(secret)}
}

// signPlain makes a token of the plain header over any claims bytes.
func signPlain(secret, claims []byte) string {
	in := plainHS256Header + "." + base64.RawURLEncoding.EncodeToString(claims)
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(in))
	return in + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// checkPlainHS256 fails unless whatever plainHS256 accepts, the JWT
// library accepts at the same instant with the same claims.
func checkPlainHS256(t *testing.T, s *Server, tok string) bool {
	t.Helper()
	var fast claims
	if !s.plainHS256(tok, hs256Now(), &fast) {
		if !reflect.DeepEqual(fast, claims{}) {
			t.Fatalf("%s: refused but set claims %+v", tok, fast)
		}
		return false
	}
	p := jwt.NewParser(jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}), jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(func() time.Time { return hs256Now() }))
	var lib claims
	if _, err := p.ParseWithClaims(tok, &lib, s.keyFunc); err != nil {
		t.Fatalf("%s: taken by plainHS256 (%+v), refused by the library: %v", tok, fast, err)
	}
	if !reflect.DeepEqual(fast, lib) {
		t.Fatalf("%s: plainHS256 claims %+v, library %+v", tok, fast, lib)
	}
	return true
}

var plainClaimSeeds = []string{
	`{"sub":"carol","exp":1800000600,"iat":1800000000,"role":"user"}`,
	`{"sub":"carol","exp":1800000600}`, `{"sub":"carol","exp":1800000000}`, `{"sub":"carol","exp":1800000001}`,
	`{"sub":"carol","exp":1800000600,"nbf":1800000000}`, `{"sub":"carol","exp":1800000600,"nbf":1800000001}`,
	`{"sub":"carol","exp":1800000600.5}`, `{"sub":"carol","exp":"1800000600"}`, `{"sub":"carol","exp":18e8}`,
	`{"sub":"carol"}`, `{"sub":"carol","exp":1800000600,"exp":1}`, `{"SUB":"carol","exp":1800000600}`,
	`{"sub":"c\u0061rol","exp":1800000600}`, `{"sub":"carol","exp":1800000600,"iss":"x"}`,
	`{"sub":"carol","exp":1800000600,"aud":["a"]}`, `{"sub":"carol","exp":1800000600,"role":"admin"}`,
	` { "sub" : "carol" , "exp" : 1800000600 } `, `{"sub":"carol","exp":1800000600}x`, `{"sub":"carol","exp":01}`,
	`{"sub":"carol","exp":999999999999999}`, `{"sub":"carol","exp":-1}`, `{"sub":null,"exp":1800000600}`,
	`{"sub":"carol","exp":1800000600,"iat":"x"}`, `[]`, `{}`,
}

// TestPlainHS256MatchesLibrary checks MintToken's tokens take the fast
// path and every claims shape agrees with the library.
func TestPlainHS256MatchesLibrary(t *testing.T) {
	s := hs256TestServer()
	for _, c := range plainClaimSeeds {
		checkPlainHS256(t, s, signPlain(s.cfg.AuthSecret, []byte(c)))
	}
	for _, role := range []string{"", RoleUser, RoleAdmin, RoleConsumer} {
		tok, err := MintToken(s.cfg.AuthSecret, "carol", role, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		var cl claims
		if !s.plainHS256(tok, time.Now(), &cl) || cl.Subject != "carol" {
			t.Errorf("role %q: MintToken's token not taken by plainHS256 (%+v)", role, cl)
		}
	}
	good := signPlain(s.cfg.AuthSecret, []byte(plainClaimSeeds[0]))
	if !checkPlainHS256(t, s, good) {
		t.Fatal("plain token refused")
	}
	forged := signPlain([]byte(strings.Repeat("x", MinSecretLen)), []byte(plainClaimSeeds[0]))
	i := strings.LastIndexByte(good, '.')
	for _, tok := range []string{forged, good + ".x", good[:i], good[:i+1], good[:len(good)-1],
		good[:i] + "." + good[i+1:len(good)-2] + "AA", strings.Replace(good, "eyJhbGciOiJIUzI1NiIs", "eyJhbGciOiJub25lIiwi", 1)} {
		if checkPlainHS256(t, s, tok) {
			t.Errorf("%s: taken", tok)
		}
	}
}

// FuzzPlainHS256 signs any claims bytes (and checks any token string)
// against the library.
func FuzzPlainHS256(f *testing.F) {
	for _, c := range plainClaimSeeds {
		f.Add([]byte(c), "")
	}
	f.Add([]byte(nil), plainHS256Header+".e30.")
	s := hs256TestServer()
	f.Fuzz(func(t *testing.T, claimBytes []byte, raw string) {
		checkPlainHS256(t, s, signPlain(s.cfg.AuthSecret, claimBytes))
		checkPlainHS256(t, s, raw)
	})
}
