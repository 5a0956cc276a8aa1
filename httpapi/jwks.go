package httpapi

import (
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"os"

	"github.com/golang-jwt/jwt/v5"
)

// minRSABits is the smallest RSA modulus a JWKS key may have.
const minRSABits = 2048

// KeySet is the public keys of an external identity provider, read from a
// JWKS document (RFC 7517). Each key is pinned to one algorithm, so that a
// token cannot pick how its signature is checked: RS256 for RSA keys and
// EdDSA for Ed25519 (OKP) keys, or the key's "alg" when it names one of
// those. A token's "kid" header selects the key.
type KeySet struct {
	keys map[string]publicKey
}

type publicKey struct {
	alg string // the only signing method this key verifies
	key any    // *rsa.PublicKey or ed25519.PublicKey
}

// jwk is the part of a JSON Web Key this package reads.
type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
	N   string `json:"n"`
	E   string `json:"e"`
	Crv string `json:"crv"`
	X   string `json:"x"`
}

// LoadJWKS reads a JWKS file (see ParseJWKS).
func LoadJWKS(path string) (*KeySet, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("jwks: %w", err)
	}
	ks, err := ParseJWKS(b)
	if err != nil {
		return nil, fmt.Errorf("jwks %s: %w", path, err)
	}
	return ks, nil
}

// ParseJWKS reads a JWKS document. Keys marked for encryption ("use":
// "enc") and of other types than RSA and OKP are skipped; every other key
// must have a unique kid and be well formed, and at least one must be
// usable, so that a broken file fails at startup rather than at the first
// token.
func ParseJWKS(b []byte) (*KeySet, error) {
	var doc struct {
		Keys []jwk `json:"keys"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("not a JWKS document: %w", err)
	}
	ks := &KeySet{keys: map[string]publicKey{}}
	for i, k := range doc.Keys {
		if k.Use == "enc" || (k.Kty != "RSA" && k.Kty != "OKP") {
			continue
		}
		if k.Kid == "" {
			return nil, fmt.Errorf("key %d has no kid: tokens select keys by kid", i)
		}
		if _, dup := ks.keys[k.Kid]; dup {
			return nil, fmt.Errorf("kid %q appears twice", k.Kid)
		}
		pk, err := k.publicKey()
		if err != nil {
			return nil, fmt.Errorf("key %q: %w", k.Kid, err)
		}
		ks.keys[k.Kid] = pk
	}
	if len(ks.keys) == 0 {
		return nil, errors.New("no RSA or Ed25519 signing key")
	}
	return ks, nil
}

func (k jwk) publicKey() (publicKey, error) {
	switch k.Kty {
	case "RSA":
		if k.Alg != "" && k.Alg != jwt.SigningMethodRS256.Alg() {
			return publicKey{}, fmt.Errorf("alg %q is not supported for RSA keys (RS256 is)", k.Alg)
		}
		n, err := b64Int(k.N)
		if err != nil {
			return publicKey{}, fmt.Errorf("n: %w", err)
		}
		e, err := b64Int(k.E)
		if err != nil {
			return publicKey{}, fmt.Errorf("e: %w", err)
		}
		if n.BitLen() < minRSABits {
			return publicKey{}, fmt.Errorf("RSA modulus of %d bits, at least %d needed", n.BitLen(), minRSABits)
		}
		if !e.IsInt64() || e.Int64() < 3 || e.Int64() > 1<<31-1 || e.Bit(0) == 0 {
			return publicKey{}, errors.New("RSA exponent out of range")
		}
		return publicKey{alg: jwt.SigningMethodRS256.Alg(), key: &rsa.PublicKey{N: n, E: int(e.Int64())}}, nil
	case "OKP":
		if k.Crv != "Ed25519" {
			return publicKey{}, fmt.Errorf("OKP curve %q is not supported (Ed25519 is)", k.Crv)
		}
		if k.Alg != "" && k.Alg != jwt.SigningMethodEdDSA.Alg() && k.Alg != "Ed25519" {
			return publicKey{}, fmt.Errorf("alg %q is not supported for Ed25519 keys (EdDSA is)", k.Alg)
		}
		x, err := base64.RawURLEncoding.DecodeString(k.X)
		if err != nil || len(x) != ed25519.PublicKeySize {
			return publicKey{}, fmt.Errorf("x must be %d base64url bytes", ed25519.PublicKeySize)
		}
		return publicKey{alg: jwt.SigningMethodEdDSA.Alg(), key: ed25519.PublicKey(x)}, nil
	}
	return publicKey{}, fmt.Errorf("kty %q is not supported", k.Kty)
}

// b64Int decodes a base64url big-endian unsigned integer.
func b64Int(s string) (*big.Int, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) == 0 {
		return nil, errors.New("not a base64url integer")
	}
	return new(big.Int).SetBytes(b), nil
}

// Len is the number of usable keys.
func (ks *KeySet) Len() int { return len(ks.keys) }

// verifyKey returns the key a public-key-signed token is checked with: the
// one its kid names, provided the token's alg is the one that key is pinned
// to.
func (ks *KeySet) verifyKey(t *jwt.Token) (any, error) {
	kid, _ := t.Header["kid"].(string)
	if kid == "" {
		return nil, errors.New("token signed with a public-key algorithm has no kid")
	}
	k, ok := ks.keys[kid]
	if !ok {
		return nil, fmt.Errorf("no key with kid %q", kid)
	}
	if alg := t.Method.Alg(); alg != k.alg {
		return nil, fmt.Errorf("token alg %s differs from the %s of key %q", alg, k.alg, kid)
	}
	return k.key, nil
}
