package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
)

// TestStrictJSON checks that duplicate keys (at any depth) and field names
// in the wrong case are refused with the key named, on every JSON body.
func TestStrictJSON(t *testing.T) {
	e := newEnv(t, nil)
	e.putVoucher("v", 5, `,"per_user_limit":0`)
	e.do("PUT", "/v1/resources/suite", e.admin,
		`{"kind":"room","inventory":[{"from":"2026-12-01","to":"2027-01-01","rooms":10}]}`).want(t, http.StatusCreated, nil)
	res := e.reserve("v", e.alice, "")
	cases := []struct {
		name, method, path, body, want string
	}{
		{"duplicate top-level", "PUT", "/v1/resources/v", `{"kind":"voucher","capacity":1,"capacity":5}`, `"capacity"`},
		{"duplicate in map", "PUT", "/v1/resources/v", `{"kind":"voucher","attributes":{"a":"1","a":"2"}}`, `"attributes.a"`},
		{"duplicate in array element", "PUT", "/v1/resources/suite",
			`{"kind":"room","inventory":[{"from":"2026-12-01","to":"2027-01-01","rooms":1,"rooms":10}]}`, `"inventory[0].rooms"`},
		{"duplicate spelled with an escape", "PUT", "/v1/resources/v", `{"kind":"voucher","capacity":1,"c\u0061pacity":5}`, `"capacity"`},
		{"duplicate in nested array", "PUT", "/v1/resources/suite",
			`{"kind":"room","inventory":[{"from":"2026-12-01","to":"2027-01-01","rooms":1},{"to":"2027-01-01","from":"2026-12-01","to":"2027-01-02","rooms":1}]}`, `"inventory[1].to"`},
		{"wrong case", "PUT", "/v1/resources/v", `{"kind":"voucher","Capacity":3}`, `"Capacity"`},
		{"wrong case nested", "PUT", "/v1/resources/suite",
			`{"kind":"room","inventory":[{"FROM":"2026-12-01","to":"2027-01-01","rooms":1}]}`, `"inventory[0].FROM"`},
		{"wrong case and right case", "PUT", "/v1/resources/v", `{"kind":"voucher","capacity":3,"CAPACITY":4}`, `"CAPACITY"`},
		{"reserve duplicate", "POST", "/v1/resources/v/reservations", `{"quantity":1,"quantity":2}`, `"quantity"`},
		{"reserve wrong case", "POST", "/v1/resources/v/reservations", `{"Quantity":2}`, `"Quantity"`},
		{"stay wrong case", "POST", "/v1/resources/suite/reservations",
			`{"check_in":"2026-12-01","Check_Out":"2026-12-02"}`, `"Check_Out"`},
		{"node wrong case", "POST", "/v1/cluster/nodes",
			`{"ID":"n2","raft_addr":"127.0.0.1:7001","http_addr":"127.0.0.1:8081"}`, `"ID"`},
		{"node duplicate", "POST", "/v1/cluster/nodes",
			`{"id":"n2","id":"n3","raft_addr":"127.0.0.1:7001","http_addr":"127.0.0.1:8081"}`, `"id"`},
		{"transition unknown", "POST", "/v1/reservations/" + res.ID + "/cancel", `{"x":1}`, `"x"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := e.do(tc.method, tc.path, e.admin, tc.body).wantProblem(t, http.StatusBadRequest, "invalid_argument")
			if !strings.Contains(p.Detail, tc.want) {
				t.Fatalf("detail %q does not name %s", p.Detail, tc.want)
			}
		})
	}
	// Nothing of the above changed anything.
	var got resourceOut
	e.do("GET", "/v1/resources/v", e.admin, "").want(t, http.StatusOK, &got)
	if got.Capacity != 5 || len(got.Attributes) != 0 || *got.Held != 1 {
		t.Fatalf("state changed by refused bodies: %+v", got)
	}
	// Exact names, nested maps with distinct keys and white space still pass.
	e.do("PUT", "/v1/resources/v", e.admin, " {\"kind\":\"voucher\", \"capacity\":6,\"per_user_limit\":0,\n\"attributes\":{\"a\":\"1\",\"A\":\"2\"}} ").
		want(t, http.StatusOK, nil)
	e.do("POST", "/v1/resources/v/reservations", e.alice, `{"quantity":2}`).want(t, http.StatusCreated, nil)
}

// FuzzStrictJSON checks the scanner against encoding/json: on any valid
// JSON it never reports a syntax error (it never loses its place), and it
// refuses exactly the bodies whose objects repeat a key.
func FuzzStrictJSON(f *testing.F) {
	for _, s := range []string{`{}`, `[]`, `{"a":[1,{"b":"\"}"}],"c":null}`, `{"a":1,"a":2}`, `{"a":{"x":1},"b":{"x":1}}`,
		`"x"`, `-1.5e3`, `{"\u0061":1,"a":2}`, `[{"k":true},{"k":false}]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if !json.Valid(data) {
			return
		}
		var v any
		err := checkStrict(data, &v)
		if errors.Is(err, errStrictSyntax) {
			t.Fatalf("scanner lost its place in %q", data)
		}
		if (err != nil) != hasDuplicateKey(t, data) {
			t.Fatalf("%q: checkStrict %v", data, err)
		}
	})
}

// hasDuplicateKey is the reference: a json.Decoder token walk.
func hasDuplicateKey(t *testing.T, data []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(data))
	var walk func() bool
	walk = func() bool {
		tok, err := dec.Token()
		if err != nil {
			t.Fatalf("reference walk: %v", err)
		}
		switch tok {
		case json.Delim('['):
			for dec.More() {
				if walk() {
					return true
				}
			}
		case json.Delim('{'):
			seen := map[string]bool{}
			for dec.More() {
				k, _ := dec.Token()
				if seen[k.(string)] {
					return true
				}
				seen[k.(string)] = true
				if walk() {
					return true
				}
			}
		default:
			return false
		}
		dec.Token()
		return false
	}
	return walk()
}
