package httpapi

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"hash"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// A flash crowd is mostly users that try once, so most of its tokens miss
// the token cache, and the JWT library's parse (two JSON decodes by
// reflection, a header map, a new HMAC) was more than half of such a
// request. plainHS256 verifies the tokens that MintToken makes, and only
// those, without it; anything else, and every token it cannot accept, goes
// to the library, which then decides and words every refusal.

// plainHS256Header is the first segment of every token MintToken makes:
// {"alg":"HS256","typ":"JWT"}. A token with exactly this segment names
// HS256, which the parser always accepts, with the shared secret as key.
const plainHS256Header = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"

// maxPlainToken is the longest token plainHS256 takes.
const maxPlainToken = 1024

// hs256Verifier is an HMAC-SHA256 keyed with the shared secret, with
// scratch space, reused through Server.macs.
type hs256Verifier struct {
	mac     hash.Hash
	in      []byte // the token
	claims  []byte // the decoded claims segment
	sig     []byte // the decoded signature
	wantSig []byte
}

func newHS256Pool(secret []byte) *sync.Pool {
	return &sync.Pool{New: func() any {
		return &hs256Verifier{
			mac: hmac.New(sha256.New, secret), in: make([]byte, 0, maxPlainToken),
			claims: make([]byte, 0, maxPlainToken), sig: make([]byte, 0, 64), wantSig: make([]byte, 0, sha256.Size),
		}
	}}
}

// plainHS256 reports whether tok is a token of MintToken's shape that the
// JWT library would accept at now (signature, exp required and not passed,
// nbf if present passed) and then sets cl to the claims the library would
// have decoded. Its claims must be a JSON object of the keys sub, role
// (strings of printable ASCII without escapes), exp, iat and nbf (integers
// of at most 15 digits, so that float64 holds them exactly, as the library
// reads them), each at most once. It leaves cl alone when it reports false.
func (s *Server) plainHS256(tok string, now time.Time, cl *claims) bool {
	if s.macs == nil || len(tok) > maxPlainToken || len(tok) <= len(plainHS256Header)+1 ||
		tok[:len(plainHS256Header)] != plainHS256Header || tok[len(plainHS256Header)] != '.' {
		return false
	}
	rest := tok[len(plainHS256Header)+1:]
	dot := -1
	for i := 0; i < len(rest); i++ {
		if rest[i] == '.' {
			if dot >= 0 {
				return false // a fourth segment: the library refuses it
			}
			dot = i
		}
	}
	if dot < 0 {
		return false
	}
	v := s.macs.Get().(*hs256Verifier)
	defer s.macs.Put(v)
	v.in = append(v.in[:0], tok...)
	input := v.in[:len(plainHS256Header)+1+dot]
	// The same decoding as the library's (RawURLEncoding, not strict).
	var err error
	if v.claims, err = base64.RawURLEncoding.AppendDecode(v.claims[:0], input[len(plainHS256Header)+1:]); err != nil {
		return false
	}
	if v.sig, err = base64.RawURLEncoding.AppendDecode(v.sig[:0], v.in[len(input)+1:]); err != nil {
		return false
	}
	v.mac.Reset()
	v.mac.Write(input)
	v.wantSig = v.mac.Sum(v.wantSig[:0])
	if !hmac.Equal(v.sig, v.wantSig) {
		return false
	}
	out, ok := plainClaims(v.claims)
	if !ok || out.ExpiresAt == nil || !now.Before(out.ExpiresAt.Time) ||
		out.NotBefore != nil && now.Before(out.NotBefore.Time) {
		return false
	}
	*cl = out
	return true
}

// plainClaims decodes the plain claims object of plainHS256.
func plainClaims(data []byte) (claims, bool) {
	var cl claims
	sc := plainScanner{data: data}
	sc.ws()
	if !sc.byte('{') {
		return claims{}, false
	}
	sc.ws()
	var seen [5]bool
	for n := 0; !sc.byte('}'); n++ {
		if n > 0 {
			if !sc.byte(',') {
				return claims{}, false
			}
			sc.ws()
		}
		key, ok := sc.plainString()
		if !ok {
			return claims{}, false
		}
		sc.ws()
		if !sc.byte(':') {
			return claims{}, false
		}
		sc.ws()
		var field int
		switch string(key) {
		case "sub", "role":
			v, ok := sc.plainString()
			if !ok {
				return claims{}, false
			}
			switch {
			case key[0] == 's':
				field, cl.Subject = 0, string(v)
			case string(v) == RoleUser: // the roles without a copy each
				field, cl.Role = 1, RoleUser
			case string(v) == RoleAdmin:
				field, cl.Role = 1, RoleAdmin
			case string(v) == RoleConsumer:
				field, cl.Role = 1, RoleConsumer
			default:
				field, cl.Role = 1, string(v)
			}
		case "exp", "iat", "nbf":
			secs, ok := sc.integer()
			if !ok || secs < 0 || secs >= 1e15 {
				return claims{}, false
			}
			// What the library makes of the number: whole seconds,
			// truncated to its precision.
			d := &strictDate{jwt.NumericDate{Time: time.Unix(secs, 0).Truncate(jwt.TimePrecision)}}
			switch key[0] {
			case 'e':
				field, cl.ExpiresAt = 2, d
			case 'i':
				field, cl.IssuedAt = 3, d
			default:
				field, cl.NotBefore = 4, d
			}
		default:
			return claims{}, false
		}
		if seen[field] {
			return claims{}, false
		}
		seen[field] = true
		sc.ws()
	}
	sc.ws()
	if sc.i != len(sc.data) {
		return claims{}, false
	}
	return cl, true
}
