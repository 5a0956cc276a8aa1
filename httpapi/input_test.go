package httpapi

import (
	"net/http"
	"strings"
	"testing"
)

// TestDotIDsRefused checks that ids made only of dots are refused wherever
// an id sits in a path (and for node ids, which later do).
func TestDotIDsRefused(t *testing.T) {
	e := newEnv(t, nil)
	for _, id := range []string{".", "..", "...", "...."} {
		cases := []struct{ method, path, body string }{
			{"PUT", "/v1/resources/" + id, `{"kind":"voucher","capacity":1}`},
			{"GET", "/v1/resources/" + id, ""},
			{"DELETE", "/v1/resources/" + id, ""},
			{"POST", "/v1/resources/" + id + "/reservations", ""},
			{"GET", "/v1/reservations/" + id, ""},
			{"POST", "/v1/reservations/" + id + "/cancel", ""},
			{"DELETE", "/v1/cluster/nodes/" + id, ""},
			{"POST", "/v1/cluster/nodes", `{"id":"` + id + `","raft_addr":"127.0.0.1:7001","http_addr":"127.0.0.1:8081"}`},
		}
		for _, tc := range cases {
			t.Run(tc.method+" "+tc.path, func(t *testing.T) {
				e.do(tc.method, tc.path, e.admin, tc.body).wantProblem(t, http.StatusBadRequest, "invalid_argument")
			})
		}
	}
	// Dots among other characters are still ids.
	e.putVoucher("a..b", 1, "")
	e.putVoucher(".a.", 1, "")
	e.do("GET", "/v1/resources/.a.", e.alice, "").want(t, http.StatusOK, nil)
}

// TestStayNeedsBothDates checks that a room stay without check_in or
// check_out is refused naming what is missing.
func TestStayNeedsBothDates(t *testing.T) {
	e := newEnv(t, nil)
	e.do("PUT", "/v1/resources/suite", e.admin,
		`{"kind":"room","inventory":[{"from":"2026-12-01","to":"2027-01-01","rooms":10}]}`).want(t, http.StatusCreated, nil)
	for body, want := range map[string]string{
		``:                           "check_in and check_out",
		`{}`:                         "check_in and check_out",
		`{"quantity":1}`:             "check_in and check_out",
		`{"check_in":"2026-12-01"}`:  "check_out is missing",
		`{"check_out":"2026-12-02"}`: "check_in is missing",
		`{"check_in":"2026-12-01","check_out":""}`:           "check_out is missing",
		`{"check_in":"1970-01-01"}`:                          "check_out is missing",
		`{"check_in":"2026-12-01","check_out":"2026-12-01"}`: "check_out must be after check_in",
		`{"check_in":"2026-12-01","check_out":"12/02/2026"}`: "check_out",
	} {
		t.Run(body, func(t *testing.T) {
			p := e.do("POST", "/v1/resources/suite/reservations", e.alice, body).wantProblem(t, http.StatusBadRequest, "invalid_argument")
			if !strings.Contains(p.Detail, want) {
				t.Fatalf("detail %q, want it to say %q", p.Detail, want)
			}
		})
	}
	e.do("POST", "/v1/resources/suite/reservations", e.alice, `{"check_in":"2026-12-01","check_out":"2026-12-02"}`).
		want(t, http.StatusCreated, nil)
}

// TestTimeAndDateRanges checks that time offsets of 24 hours or more and
// dates outside the years times may have are refused.
func TestTimeAndDateRanges(t *testing.T) {
	e := newEnv(t, nil)
	put := func(body string) response { return e.do("PUT", "/v1/resources/r", e.admin, body) }
	for _, ts := range []string{
		"2026-12-01T08:00:00+24:00", "2026-12-01T08:00:00-24:00", "2026-12-01T08:00:00+23:60",
		"2026-12-01T08:00:00+22:75", "2026-12-01T08:00:00+99:00", "1969-12-31T23:59:59Z", "2262-01-01T00:00:00Z",
	} {
		t.Run("time "+ts, func(t *testing.T) {
			p := put(`{"kind":"voucher","opens_at":"`+ts+`"}`).wantProblem(t, http.StatusBadRequest, "invalid_argument")
			if !strings.Contains(p.Detail, "opens_at") {
				t.Fatalf("detail %q does not name the field", p.Detail)
			}
		})
	}
	for _, day := range []string{"0001-01-01", "1969-12-31", "2262-01-01", "9999-12-31"} {
		t.Run("date "+day, func(t *testing.T) {
			put(`{"kind":"room","inventory":[{"from":"`+day+`","to":"2027-01-01","rooms":1}]}`).
				wantProblem(t, http.StatusBadRequest, "invalid_argument")
			e.do("GET", "/v1/resources/x?from="+day, e.alice, "").wantProblem(t, http.StatusBadRequest, "invalid_argument")
		})
	}
	put(`{"kind":"voucher","opens_at":"2026-12-01T08:00:00+23:59","closes_at":"2026-12-01T08:00:00-23:59"}`).
		want(t, http.StatusCreated, nil)
	put(`{"kind":"room","inventory":[{"from":"2261-12-01","to":"2261-12-31","rooms":1}]}`).wantProblem(t, http.StatusBadRequest, "invalid_argument") // kind change
	e.do("PUT", "/v1/resources/edge", e.admin, `{"kind":"room","inventory":[{"from":"2261-12-01","to":"2261-12-31","rooms":1}]}`).
		want(t, http.StatusCreated, nil)
	e.do("PUT", "/v1/resources/early", e.admin, `{"kind":"room","inventory":[{"from":"1970-01-01","to":"1970-01-31","rooms":1}]}`).
		want(t, http.StatusCreated, nil)
}
