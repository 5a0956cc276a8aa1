package verify

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"testing"
	"time"
)

var (
	secret = []byte("a-webhook-secret-of-at-least-32-bytes!")
	now    = time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	body   = []byte(`{"events":[{"offset":42,"shard":0,"type":"reservation.held"}]}`)
)

func verifier() *Verifier {
	return &Verifier{Secret: secret, Now: func() time.Time { return now }}
}

// The signature is the one the Standard Webhooks scheme defines,
// computed here independently of Sign.
func TestSignMatchesTheScheme(t *testing.T) {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("hook-1-42." + "1764576000" + "."))
	m.Write(body)
	want := "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
	if got := Sign(secret, "hook-1-42", 1764576000, body); got != want {
		t.Fatalf("Sign = %s, want %s", got, want)
	}
}

func TestVerify(t *testing.T) {
	ts := now.Unix()
	good := Sign(secret, "hook-1-42", ts, body)
	tampered := append([]byte(nil), body...)
	tampered[len(tampered)-3] = 'X'
	for _, tc := range []struct {
		name          string
		id            string
		ts            int64
		sig           string
		body          []byte
		want          error
		tsRaw, sigRaw string
	}{
		{name: "valid", id: "hook-1-42", ts: ts, sig: good, body: body},
		{name: "valid 4m59s old", id: "hook-1-42", ts: ts - 299, sig: Sign(secret, "hook-1-42", ts-299, body), body: body},
		{name: "valid among several", id: "hook-1-42", ts: ts,
			sig: "v1,bm90IGl0 v1a,c29tZXRoaW5nIGVsc2U= " + Sign([]byte("old secret"), "hook-1-42", ts, body) + " " + good, body: body},
		{name: "tampered body", id: "hook-1-42", ts: ts, sig: good, body: tampered, want: ErrNoMatch},
		{name: "other id", id: "hook-1-43", ts: ts, sig: good, body: body, want: ErrNoMatch},
		{name: "wrong secret", id: "hook-1-42", ts: ts, sig: Sign([]byte("another secret of 32 bytes......"), "hook-1-42", ts, body), body: body, want: ErrNoMatch},
		{name: "stale", id: "hook-1-42", ts: ts - 301, sig: Sign(secret, "hook-1-42", ts-301, body), body: body, want: ErrStale},
		{name: "from the future", id: "hook-1-42", ts: ts + 301, sig: Sign(secret, "hook-1-42", ts+301, body), body: body, want: ErrStale},
		{name: "timestamp not signed", id: "hook-1-42", ts: ts + 1, sig: good, body: body, want: ErrNoMatch},
		{name: "v1a only", id: "hook-1-42", ts: ts, sig: "v1a" + good[2:], body: body, want: ErrNoMatch},
		{name: "bare base64", id: "hook-1-42", ts: ts, sig: good[3:], body: body, want: ErrNoMatch},
		{name: "no signature", id: "hook-1-42", ts: ts, sig: "", body: body, want: ErrMissingHeader},
		{name: "no id", id: "", ts: ts, sig: good, body: body, want: ErrMissingHeader},
		{name: "bad timestamp", id: "hook-1-42", tsRaw: "1.5e9", sig: good, body: body, want: ErrBadTimestamp},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			h.Set(HeaderID, tc.id)
			raw := tc.tsRaw
			if raw == "" {
				raw = strconv.FormatInt(tc.ts, 10)
			}
			h.Set(HeaderTimestamp, raw)
			h.Set(HeaderSignature, tc.sig)
			err := verifier().Verify(h, tc.body)
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("Verify = %v, want %v", err, tc.want)
			}
		})
	}
}
