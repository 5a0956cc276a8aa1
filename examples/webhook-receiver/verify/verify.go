// Package verify checks the Standard Webhooks signature of an allot
// webhook delivery. allot signs each batch with
//
//	webhook-signature: v1,<base64(HMAC-SHA256(secret, "<webhook-id>.<webhook-timestamp>.<body>"))>
//
// where secret is the webhook's secret exactly as it was given in
// PUT /v1/webhooks/{id} (its bytes, not base64-decoded). The header may
// carry several signatures separated by spaces (while a secret is being
// rotated, say); one match is enough. A delivery whose timestamp is more
// than Tolerance away from now is refused, so that a recorded request
// cannot be replayed later.
package verify

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The headers of a delivery.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// DefaultTolerance is how far a delivery's timestamp may be from now.
const DefaultTolerance = 5 * time.Minute

// maxSignatures bounds the signatures looked at in one header.
const maxSignatures = 16

// Errors of Verify; every one means "do not trust this body".
var (
	ErrMissingHeader = errors.New("webhook: missing webhook-id, webhook-timestamp or webhook-signature")
	ErrBadTimestamp  = errors.New("webhook: webhook-timestamp is not Unix seconds")
	ErrStale         = errors.New("webhook: timestamp too far from now")
	ErrNoMatch       = errors.New("webhook: no v1 signature matches")
)

// Verifier checks deliveries signed with one secret. Its fields are read
// only; it is safe for concurrent use.
type Verifier struct {
	// Secret is the webhook's secret, as given to allot.
	Secret []byte
	// Tolerance is how far the timestamp may be from Now, either way;
	// zero means DefaultTolerance.
	Tolerance time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// New returns a Verifier for secret with the default tolerance.
func New(secret []byte) *Verifier { return &Verifier{Secret: secret} }

// Verify checks a delivery's headers against its body (the raw bytes,
// before any decoding).
func (v *Verifier) Verify(h http.Header, body []byte) error {
	return v.VerifyParts(h.Get(HeaderID), h.Get(HeaderTimestamp), h.Get(HeaderSignature), body)
}

// VerifyParts is Verify with the three header values given one by one.
func (v *Verifier) VerifyParts(id, timestamp, signatures string, body []byte) error {
	if id == "" || timestamp == "" || signatures == "" {
		return ErrMissingHeader
	}
	ts, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return ErrBadTimestamp
	}
	now := time.Now
	if v.Now != nil {
		now = v.Now
	}
	tol := v.Tolerance
	if tol <= 0 {
		tol = DefaultTolerance
	}
	if d := now().Sub(time.Unix(ts, 0)); d > tol || d < -tol {
		return fmt.Errorf("%w: %s is %v off", ErrStale, timestamp, d.Round(time.Second))
	}
	want := mac(v.Secret, id, timestamp, body)
	for i, sig := range strings.Fields(signatures) {
		if i == maxSignatures {
			break
		}
		version, b64, ok := strings.Cut(sig, ",")
		if !ok || version != "v1" {
			continue // another scheme (v1a: asymmetric) or noise
		}
		got, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			continue
		}
		if hmac.Equal(got, want) { // constant time
			return nil
		}
	}
	return ErrNoMatch
}

// Sign returns the webhook-signature value of a delivery: what allot
// sends, and what a test that plays allot needs.
func Sign(secret []byte, id string, timestamp int64, body []byte) string {
	return "v1," + base64.StdEncoding.EncodeToString(mac(secret, id, strconv.FormatInt(timestamp, 10), body))
}

func mac(secret []byte, id, timestamp string, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(id))
	m.Write([]byte{'.'})
	m.Write([]byte(timestamp))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}
