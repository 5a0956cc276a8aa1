package httpapi

import (
	"crypto/sha256"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestReserveAnswer(t *testing.T) {
	e := newEnv(t, nil)
	now := testNow()
	e.putVoucher("v", 10, `,"per_user_limit":0,"hold_seconds":60`)
	e.putVoucher("instant", 10, `,"hold_seconds":0`)

	// An empty body is one unit; the answer is exactly API.md's fields.
	r := e.do("POST", "/v1/resources/v/reservations", e.alice, "")
	r.want(t, http.StatusCreated, nil)
	var res reservationJSON
	decodeStrict(t, r.body, &res)
	if res.ID == "" || res.ResourceID != "v" || res.Kind != "voucher" || res.User != "alice" || res.Quantity != 1 ||
		res.Status != "held" || res.CheckIn != "" || res.CheckOut != "" || res.CreatedAt != rfc3339(now) ||
		res.ExpiresAt != rfc3339(now.Add(time.Minute)) || res.UpdatedAt != rfc3339(now) {
		t.Fatalf("reservation %s", r.body)
	}
	if r.header.Get("Content-Type") != "application/json" || r.header.Get(headerReplayed) != "" {
		t.Errorf("headers %v", r.header)
	}
	res = e.reserve("v", e.alice, `{"quantity":3}`)
	if res.Quantity != 3 {
		t.Errorf("quantity %d", res.Quantity)
	}
	// hold_seconds 0: confirmed at once, no expires_at.
	r = e.do("POST", "/v1/resources/instant/reservations", e.bob, "  \n")
	res = reservationJSON{}
	r.want(t, http.StatusCreated, nil)
	decodeStrict(t, r.body, &res)
	if res.Status != "confirmed" || res.ExpiresAt != "" || strings.Contains(string(r.body), "expires_at") {
		t.Errorf("instant reservation %s", r.body)
	}
	// Confirming a held one drops expires_at.
	held := e.reserve("v", e.bob, "")
	r = e.do("POST", "/v1/reservations/"+held.ID+"/confirm", e.bob, "{}")
	r.want(t, http.StatusOK, &res)
	if res.Status != "confirmed" || strings.Contains(string(r.body), "expires_at") {
		t.Errorf("confirmed reservation %s", r.body)
	}
	// Repeating it is 200 with the reservation unchanged.
	var again reservationJSON
	e.do("POST", "/v1/reservations/"+held.ID+"/confirm", e.bob, "").want(t, http.StatusOK, &again)
	if again != res {
		t.Errorf("repeated confirm changed %+v into %+v", res, again)
	}

	for name, body := range map[string]string{
		"zero quantity":     `{"quantity":0}`,
		"negative quantity": `{"quantity":-1}`,
		"huge quantity":     `{"quantity":1000000000000}`,
		"string quantity":   `{"quantity":"1"}`,
		"unknown field":     `{"quantity":1,"user":"bob"}`,
		"trailing data":     `{"quantity":1}x`,
		"not an object":     `[1]`,
		"dates for voucher": `{"check_in":"2026-12-01","check_out":"2026-12-02"}`,
	} {
		t.Run(name, func(t *testing.T) {
			e.do("POST", "/v1/resources/v/reservations", e.alice, body).wantProblem(t, http.StatusBadRequest, "invalid_argument")
		})
	}
	e.do("POST", "/v1/reservations/"+held.ID+"/cancel", e.bob, `{"reason":"x"}`).wantProblem(t, 400, "invalid_argument")
	e.do("POST", "/v1/reservations/"+strings.Repeat("r", 65)+"/cancel", e.bob, "").wantProblem(t, 400, "invalid_argument")
	e.do("POST", "/v1/reservations/nope/cancel", e.bob, "").wantProblem(t, 404, "not_found")
}

func TestIdempotencyKey(t *testing.T) {
	e := newEnv(t, nil)
	e.putVoucher("v", 10, `,"per_user_limit":0`)
	const path = "/v1/resources/v/reservations"

	first := e.do("POST", path, e.alice, `{"quantity":2}`, "Idempotency-Key", "order-42")
	var a, b reservationJSON
	first.want(t, http.StatusCreated, &a)
	if first.header.Get(headerReplayed) != "" {
		t.Error("first answer marked as replayed")
	}
	cmd := e.eng.lastReserve()
	want := sha256.Sum256([]byte("POST\n" + path + "\n" + `{"quantity":2}`))
	if cmd.Idem == nil || cmd.Idem.Key != "order-42" || cmd.Idem.Fingerprint != [16]byte(want[:16]) {
		t.Fatalf("idempotency key passed to the engine: %+v", cmd.Idem)
	}

	second := e.do("POST", path, e.alice, `{"quantity":2}`, "Idempotency-Key", "order-42")
	second.want(t, http.StatusCreated, &b)
	if second.header.Get(headerReplayed) != "true" || a != b {
		t.Errorf("replay: header %q, first %+v, second %+v", second.header.Get(headerReplayed), a, b)
	}
	// Same key on another endpoint: the fingerprint differs.
	e.putVoucher("w", 10, "")
	e.do("POST", "/v1/resources/w/reservations", e.alice, `{"quantity":2}`, "Idempotency-Key", "order-42").
		wantProblem(t, http.StatusUnprocessableEntity, "idempotency_key_reused")
	// The scope is the user: bob's order-42 is a new request.
	e.do("POST", path, e.bob, `{"quantity":2}`, "Idempotency-Key", "order-42").want(t, http.StatusCreated, nil)
	// Transitions take keys too.
	e.do("POST", "/v1/reservations/"+a.ID+"/cancel", e.alice, "", "Idempotency-Key", "c1").want(t, http.StatusOK, nil)
	r := e.do("POST", "/v1/reservations/"+a.ID+"/cancel", e.alice, "", "Idempotency-Key", "c1")
	r.want(t, http.StatusOK, nil)
	if r.header.Get(headerReplayed) != "true" {
		t.Error("replayed transition without Idempotent-Replayed")
	}

	for name, hdr := range map[string][]string{
		"empty":       {"Idempotency-Key", ""},
		"too long":    {"Idempotency-Key", strings.Repeat("k", 256)},
		"not ASCII":   {"Idempotency-Key", "clé"},
		"sent twice":  {"Idempotency-Key", "a", "Idempotency-Key", "b"},
		"on a cancel": {"Idempotency-Key", strings.Repeat("k", 300)},
	} {
		t.Run(name, func(t *testing.T) {
			p := path
			if name == "on a cancel" {
				p = "/v1/reservations/" + a.ID + "/cancel"
			}
			e.do("POST", p, e.alice, "", hdr...).wantProblem(t, http.StatusBadRequest, "invalid_argument")
		})
	}
	e.do("POST", path, e.alice, "", "Idempotency-Key", strings.Repeat("k", 255)).want(t, http.StatusCreated, nil)
}

func TestGetAndListReservations(t *testing.T) {
	e := newEnv(t, nil)
	e.putVoucher("v", 100, `,"per_user_limit":0`)
	e.putVoucher("w", 100, `,"per_user_limit":0`)
	var aliceIDs []string
	for i := 0; i < 5; i++ {
		aliceIDs = append(aliceIDs, e.reserve("v", e.alice, "").ID)
	}
	bobV := e.reserve("v", e.bob, "")
	bobW := e.reserve("w", e.bob, "")
	e.do("POST", "/v1/reservations/"+aliceIDs[0]+"/cancel", e.alice, "").want(t, http.StatusOK, nil)

	var one reservationJSON
	e.do("GET", "/v1/reservations/"+bobW.ID+"?consistency=stale", e.bob, "").want(t, http.StatusOK, &one)
	if one != bobW {
		t.Errorf("GET %+v, want %+v", one, bobW)
	}
	e.do("GET", "/v1/reservations/none", e.bob, "").wantProblem(t, http.StatusNotFound, "not_found")
	e.do("GET", "/v1/reservations/a%20b", e.bob, "").wantProblem(t, http.StatusBadRequest, "invalid_argument")

	type page struct {
		Items []reservationJSON `json:"items"`
		Next  string            `json:"next"`
	}
	list := func(token, query string) page {
		t.Helper()
		var p page
		r := e.do("GET", "/v1/reservations"+query, token, "")
		r.want(t, http.StatusOK, nil)
		decodeStrict(t, r.body, &p)
		return p
	}
	ids := func(p page) string {
		var s []string
		for _, it := range p.Items {
			s = append(s, it.ID)
		}
		return strings.Join(s, ",")
	}

	// A user sees their own, paged in id order.
	p := list(e.alice, "?limit=2")
	if ids(p) != strings.Join(aliceIDs[:2], ",") || p.Next != aliceIDs[1] {
		t.Fatalf("first page %+v", p)
	}
	p = list(e.alice, "?limit=2&after="+p.Next)
	p2 := list(e.alice, "?limit=2&after="+p.Next)
	if ids(p) != strings.Join(aliceIDs[2:4], ",") || ids(p2) != aliceIDs[4] || p2.Next != "" {
		t.Fatalf("later pages %+v %+v", p, p2)
	}
	if p := list(e.alice, "?user=alice&status=cancelled"); ids(p) != aliceIDs[0] {
		t.Errorf("alice's cancelled: %+v", p)
	}
	e.do("GET", "/v1/reservations?user=bob", e.alice, "").wantProblem(t, http.StatusForbidden, "permission_denied")

	// An admin filters by anything, or sees all.
	if p := list(e.admin, "?user=bob"); ids(p) != bobV.ID+","+bobW.ID {
		t.Errorf("admin, user=bob: %+v", p)
	}
	if p := list(e.admin, "?resource=w"); ids(p) != bobW.ID {
		t.Errorf("admin, resource=w: %+v", p)
	}
	if p := list(e.admin, "?user=bob&resource=v"); ids(p) != bobV.ID {
		t.Errorf("admin, user=bob resource=v: %+v", p)
	}
	if p := list(e.admin, "?resource=v&status=held&limit=3"); len(p.Items) != 3 || p.Next != p.Items[2].ID {
		t.Errorf("admin, held on v: %+v", p)
	}
	if p := list(e.admin, ""); len(p.Items) != 7 || p.Next != "" {
		t.Errorf("admin, all: %d items", len(p.Items))
	}
	if p := list(e.admin, "?user=nobody"); p.Items == nil || len(p.Items) != 0 {
		t.Errorf("empty list %+v", p)
	}
	for _, q := range []string{"?status=gone", "?limit=0", "?resource=a%20b", "?after=" + strings.Repeat("x", 300), "?consistency=x"} {
		e.do("GET", "/v1/reservations"+q, e.admin, "").wantProblem(t, http.StatusBadRequest, "invalid_argument")
	}
}

// BenchmarkReserveRejected measures the flash-crowd path end to end through
// the handler (no network): auth, body, engine call, a sold_out problem.
func BenchmarkReserveRejected(b *testing.B) {
	// No rate limits: a benchmark sends far more than a client may.
	e := newEnv(b, func(c *Config) { c.RateLimit, c.IPRateLimit = RateLimit{}, RateLimit{} })
	e.putVoucher("v", 0, "")
	tok, h := e.alice, e.srv.Handler()
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest("POST", "/v1/resources/v/reservations", strings.NewReader(`{"quantity":1}`))
		req.Header.Set("Authorization", "Bearer "+tok)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusConflict {
			b.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
	}
}
