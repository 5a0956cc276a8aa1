package httpapi

import (
	"testing"
)

// reserveBodySeeds are bodies on both sides of the plain subset.
var reserveBodySeeds = []string{
	`{"quantity":1}`, `{}`, ` { "quantity" : 2 } `, "\t{\"quantity\":3}\r\n",
	`{"quantity":-0}`, `{"quantity":-5}`, `{"quantity":0}`, `{"quantity":999999999999999999}`,
	`{"quantity":9999999999999999999}`, `{"quantity":01}`, `{"quantity":1.0}`, `{"quantity":1e2}`,
	`{"quantity":1E2}`, `{"quantity":-}`, `{"quantity":"1"}`, `{"quantity":null}`, `{"quantity":true}`,
	`{"quantity":1,"quantity":2}`, `{"Quantity":1}`, `{"QUANTITY":1}`, `{"quantity":1,}`, `{,"quantity":1}`,
	`{"quantity":1} x`, `{"quantity":1}{}`, `{"quantity" 1}`, `{"quantity":1`, `{"quantity":1x}`,
	`{"check_in":"2026-12-01","check_out":"2026-12-03"}`, `{"quantity":2,"check_in":"2026-12-01","check_out":"2026-12-03"}`,
	`{"check_in":"2026-12-01","check_in":"2026-12-02"}`, `{"check_in":"2026\u002d12-01"}`, `{"check_in":"caf` + "\xc3\xa9" + `"}`,
	`{"check_in":"bad` + "\xff" + `"}`, `{"check_in":1}`, `{"check_in":null}`, `{"other":1}`, `{"quantity":1,"other":1}`,
	`{"qu\u0061ntity":1}`, `[]`, `null`, `1`, `"x"`, "\ufeff{}", `{"quantity":1}` + "\v",
}

// TestPlainReserveBodyMatchesDecodeJSON checks that whatever the hand scan
// takes, decodeJSON takes too, with the same result, and that the scan
// takes the crowd's plain bodies.
func TestPlainReserveBodyMatchesDecodeJSON(t *testing.T) {
	for _, s := range reserveBodySeeds {
		checkReserveBody(t, []byte(s))
	}
	for _, s := range []string{`{"quantity":1}`, `{}`, ` { "quantity" : -0 } `, `{"check_in":"2026-12-01","check_out":"2026-12-03","quantity":3}`} {
		var body reserveBody
		if !plainReserveBody([]byte(s), &body) {
			t.Errorf("%s: not taken by the plain scan", s)
		}
	}
}

// FuzzReserveBody is TestPlainReserveBodyMatchesDecodeJSON on any input.
func FuzzReserveBody(f *testing.F) {
	for _, s := range reserveBodySeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) { checkReserveBody(t, data) })
}

func checkReserveBody(t *testing.T, data []byte) {
	t.Helper()
	plain := reserveBody{Quantity: 1}
	took := plainReserveBody(data, &plain)
	if !took && plain != (reserveBody{Quantity: 1}) {
		t.Fatalf("%q: refused but changed the body to %+v", data, plain)
	}
	ref := reserveBody{Quantity: 1}
	refErr := decodeJSON(data, &ref)
	if took && (refErr != nil || ref != plain) {
		t.Fatalf("%q: plain scan gave %+v, decodeJSON %+v (%v)", data, plain, ref, refErr)
	}
	got := reserveBody{Quantity: 1}
	gotErr := decodeReserveBody(data, &got)
	if (gotErr == nil) != (refErr == nil) || gotErr != nil && gotErr.Error() != refErr.Error() || gotErr == nil && got != ref {
		t.Fatalf("%q: decodeReserveBody gave %+v (%v), decodeJSON %+v (%v)", data, got, gotErr, ref, refErr)
	}
}
