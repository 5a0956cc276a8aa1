package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"allot/actors/domain"
)

// resourceOut decodes a resource strictly: an unexpected field fails.
type resourceOut struct {
	ID             string               `json:"id"`
	Kind           string               `json:"kind"`
	Capacity       int64                `json:"capacity"`
	Inventory      []inventoryRowJSON   `json:"inventory"`
	PerUserLimit   int64                `json:"per_user_limit"`
	OpensAt        *string              `json:"opens_at"`
	ClosesAt       *string              `json:"closes_at"`
	HoldSeconds    int64                `json:"hold_seconds"`
	CancelDeadline *string              `json:"cancel_deadline"`
	Attributes     map[string]string    `json:"attributes"`
	Limits         []string             `json:"limits"`
	CreatedAt      string               `json:"created_at"`
	UpdatedAt      string               `json:"updated_at"`
	Available      *int64               `json:"available"`
	Held           *int64               `json:"held"`
	Confirmed      *int64               `json:"confirmed"`
	Nights         map[string]nightJSON `json:"nights"`
}

func decodeStrict(t *testing.T, b []byte, out any) {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(out); err != nil {
		t.Fatalf("decoding %s: %v", b, err)
	}
}

func TestPutResourceCreateUpdateDefaults(t *testing.T) {
	e := newEnv(t, nil)
	now := testNow()
	opens, closes := rfc3339(now.Add(time.Hour)), rfc3339(now.Add(2*time.Hour))
	body := fmt.Sprintf(`{"kind":"voucher","capacity":100,"opens_at":%q,"closes_at":%q,"attributes":{"shop":"A"}}`, opens, closes)
	r := e.do("PUT", "/v1/resources/sale:1", e.admin, body)
	var got resourceOut
	r.want(t, http.StatusCreated, nil)
	decodeStrict(t, r.body, &got)
	if got.ID != "sale:1" || got.Kind != "voucher" || got.Capacity != 100 || got.PerUserLimit != 1 ||
		got.HoldSeconds != 900 || got.OpensAt == nil || *got.OpensAt != opens || *got.ClosesAt != closes ||
		got.CancelDeadline != nil || got.Attributes["shop"] != "A" || got.CreatedAt != rfc3339(now) ||
		got.Available == nil || *got.Available != 100 || *got.Held != 0 || *got.Confirmed != 0 ||
		got.Inventory == nil || len(got.Inventory) != 0 || got.Nights != nil {
		t.Fatalf("created resource %s", r.body)
	}

	// A PUT replaces the spec: what it leaves out goes back to defaults.
	r = e.do("PUT", "/v1/resources/sale:1", e.admin, `{"kind":"voucher","capacity":50,"hold_seconds":0,"per_user_limit":0}`)
	got = resourceOut{}
	r.want(t, http.StatusOK, &got)
	if got.Capacity != 50 || got.HoldSeconds != 0 || got.PerUserLimit != 0 || got.OpensAt != nil ||
		len(got.Attributes) != 0 || got.Attributes == nil {
		t.Fatalf("updated resource %s", r.body)
	}
	r = e.do("PUT", "/v1/resources/sale:1", e.admin, `{"kind":"voucher","capacity":50}`)
	got = resourceOut{}
	r.want(t, http.StatusOK, &got)
	if got.HoldSeconds != 900 || got.PerUserLimit != 1 {
		t.Fatalf("omitted fields did not reset to defaults: %s", r.body)
	}
}

func TestPutResourceValidation(t *testing.T) {
	e := newEnv(t, nil)
	e.putVoucher("v", 1, "")
	many := make([]string, 33)
	for i := range many {
		many[i] = fmt.Sprintf(`"k%d":"v"`, i)
	}
	cases := map[string]string{
		"empty body":          ``,
		"not JSON":            `kind=voucher`,
		"unknown field":       `{"kind":"voucher","capcity":1}`,
		"trailing data":       `{"kind":"voucher"} {}`,
		"wrong type":          `{"kind":"voucher","capacity":"ten"}`,
		"fractional capacity": `{"kind":"voucher","capacity":1.5}`,
		"missing kind":        `{"capacity":1}`,
		"unknown kind":        `{"kind":"seat"}`,
		"bad time":            `{"kind":"voucher","opens_at":"tomorrow"}`,
		"time without zone":   `{"kind":"voucher","opens_at":"2026-11-21T10:00:00"}`,
		"closes before opens": `{"kind":"voucher","opens_at":"2026-11-21T10:00:00Z","closes_at":"2026-11-21T09:00:00Z"}`,
		"bad date":            `{"kind":"room","inventory":[{"from":"2026-13-01","to":"2027-01-01","rooms":1}]}`,
		"capacity for room":   `{"kind":"room","capacity":3}`,
		"inventory voucher":   `{"kind":"voucher","inventory":[{"from":"2026-12-01","to":"2026-12-02","rooms":1}]}`,
		"negative hold":       `{"kind":"voucher","hold_seconds":-1}`,
		"too many attributes": `{"kind":"voucher","attributes":{` + strings.Join(many, ",") + `}}`,
		"kind change":         `{"kind":"slot","capacity":1}`,
	}
	for name, body := range cases {
		t.Run(name, func(t *testing.T) {
			e.do("PUT", "/v1/resources/v", e.admin, body).wantProblem(t, http.StatusBadRequest, "invalid_argument")
		})
	}
	e.do("PUT", "/v1/resources/"+strings.Repeat("a", 129), e.admin, `{"kind":"voucher"}`).wantProblem(t, 400, "invalid_argument")
}

func TestRoomNights(t *testing.T) {
	e := newEnv(t, nil)
	// December with 10 rooms, Christmas nights with 5 (later rows win).
	body := `{"kind":"room","inventory":[{"from":"2026-12-01","to":"2027-01-01","rooms":10},{"from":"2026-12-24","to":"2026-12-26","rooms":5}]}`
	var created resourceOut
	e.do("PUT", "/v1/resources/suite", e.admin, body).want(t, http.StatusCreated, &created)
	if created.PerUserLimit != 0 || created.Available != nil || len(created.Nights) != 31 || len(created.Inventory) != 2 {
		t.Fatalf("created room %+v", created)
	}
	var res reservationJSON
	e.do("POST", "/v1/resources/suite/reservations", e.alice, `{"quantity":2,"check_in":"2026-12-24","check_out":"2026-12-26"}`).
		want(t, http.StatusCreated, &res)
	if res.CheckIn != "2026-12-24" || res.CheckOut != "2026-12-26" || res.Kind != "room" || res.Quantity != 2 {
		t.Fatalf("room reservation %+v", res)
	}

	r := e.do("GET", "/v1/resources/suite?from=2026-12-23&to=2026-12-26", e.bob, "")
	var got resourceOut
	r.want(t, http.StatusOK, nil)
	decodeStrict(t, r.body, &got)
	want := map[string]nightJSON{
		"2026-12-23": {Rooms: 10, Available: 10},
		"2026-12-24": {Rooms: 5, Available: 3, Held: 2},
		"2026-12-25": {Rooms: 5, Available: 3, Held: 2},
	}
	if len(got.Nights) != len(want) {
		t.Fatalf("nights %v, want %v", got.Nights, want)
	}
	for d, n := range want {
		if got.Nights[d] != n {
			t.Errorf("night %s = %+v, want %+v", d, got.Nights[d], n)
		}
	}

	// Default: every night of the inventory.
	got = resourceOut{}
	e.do("GET", "/v1/resources/suite", e.bob, "").want(t, http.StatusOK, &got)
	if len(got.Nights) != 31 || got.Nights["2026-12-01"].Rooms != 10 || got.Nights["2026-12-31"].Rooms != 10 {
		t.Errorf("default nights: %d of them, %+v", len(got.Nights), got.Nights["2026-12-01"])
	}
	// Nights outside the inventory have no rooms; from alone runs to the inventory's end.
	got = resourceOut{}
	e.do("GET", "/v1/resources/suite?from=2026-12-30", e.bob, "").want(t, http.StatusOK, &got)
	if len(got.Nights) != 2 {
		t.Errorf("from=2026-12-30: nights %v", got.Nights)
	}
	got = resourceOut{}
	e.do("GET", "/v1/resources/suite?from=2027-01-01&to=2027-01-02", e.bob, "").want(t, http.StatusOK, &got)
	if n := got.Nights["2027-01-01"]; len(got.Nights) != 1 || n != (nightJSON{}) {
		t.Errorf("night past the inventory: %v", got.Nights)
	}

	for _, q := range []string{"from=2026-12-05&to=2026-12-05", "from=2026-01-01&to=2027-01-03", "from=12/01/2026", "to=2028-12-01"} {
		e.do("GET", "/v1/resources/suite?"+q, e.bob, "").wantProblem(t, http.StatusBadRequest, "invalid_argument")
	}
	// A check_out before check_in is the domain's invalid_argument.
	e.do("POST", "/v1/resources/suite/reservations", e.alice, `{"check_in":"2026-12-05","check_out":"2026-12-04"}`).
		wantProblem(t, http.StatusBadRequest, "invalid_argument")
	e.do("POST", "/v1/resources/suite/reservations", e.alice, `{"check_in":"Dec 5","check_out":"2026-12-06"}`).
		wantProblem(t, http.StatusBadRequest, "invalid_argument")
}

func TestListResourcesPaging(t *testing.T) {
	e := newEnv(t, nil)
	for _, id := range []string{"a:1", "a:2", "a:3", "b:1", "b:2"} {
		e.putVoucher(id, 1, "")
	}
	e.do("PUT", "/v1/resources/a:room", e.admin, `{"kind":"room"}`).want(t, http.StatusCreated, nil)

	type page struct {
		Items []resourceOut `json:"items"`
		Next  string        `json:"next"`
	}
	var ids []string
	after := ""
	for pages := 0; ; pages++ {
		if pages > 10 {
			t.Fatal("paging does not end")
		}
		var p page
		e.do("GET", "/v1/resources?limit=2&after="+after, e.alice, "").want(t, http.StatusOK, &p)
		for _, it := range p.Items {
			ids = append(ids, it.ID)
		}
		if p.Next == "" {
			break
		}
		if len(p.Items) != 2 || p.Next != p.Items[1].ID {
			t.Fatalf("page %+v", p)
		}
		after = p.Next
	}
	if got := strings.Join(ids, " "); got != "a:1 a:2 a:3 a:room b:1 b:2" {
		t.Errorf("all pages: %s", got)
	}

	var p page
	e.do("GET", "/v1/resources?prefix=a:&kind=voucher", e.alice, "").want(t, http.StatusOK, &p)
	if len(p.Items) != 3 || p.Next != "" || p.Items[2].ID != "a:3" {
		t.Errorf("prefix and kind: %+v", p)
	}
	// Exactly limit items left: no next.
	p = page{}
	e.do("GET", "/v1/resources?prefix=b&limit=2", e.alice, "").want(t, http.StatusOK, &p)
	if len(p.Items) != 2 || p.Next != "" {
		t.Errorf("last full page: %+v", p)
	}
	for _, q := range []string{"limit=0", "limit=1001", "limit=x", "kind=seat", "prefix=a%20b", "consistency=eventual"} {
		e.do("GET", "/v1/resources?"+q, e.alice, "").wantProblem(t, http.StatusBadRequest, "invalid_argument")
	}
	e.do("GET", "/v1/resources?limit=1000", e.alice, "").want(t, http.StatusOK, nil)
}

func TestReadConsistencyIsPassedOn(t *testing.T) {
	e := newEnv(t, nil)
	e.putVoucher("v", 1, "")
	for q, want := range map[string]domain.Consistency{
		"": domain.ReadLeader, "?consistency=leader": domain.ReadLeader,
		"?consistency=stale": domain.ReadStale, "?consistency=linearizable": domain.ReadLinearizable,
	} {
		e.do("GET", "/v1/resources/v"+q, e.alice, "").want(t, http.StatusOK, nil)
		if got := e.eng.lastConsistency(); got != want {
			t.Errorf("%q: reader got %d, want %d", q, got, want)
		}
	}
}

func TestDeleteResource(t *testing.T) {
	e := newEnv(t, nil)
	e.putVoucher("v", 2, `,"per_user_limit":0`)
	res := e.reserve("v", e.alice, "")
	e.do("DELETE", "/v1/resources/v", e.admin, "").wantProblem(t, http.StatusConflict, "invalid_state")
	e.do("POST", "/v1/reservations/"+res.ID+"/cancel", e.alice, "").want(t, http.StatusOK, nil)
	r := e.do("DELETE", "/v1/resources/v", e.admin, "")
	r.want(t, http.StatusNoContent, nil)
	if len(r.body) != 0 {
		t.Errorf("204 with body %q", r.body)
	}
	e.do("GET", "/v1/resources/v", e.alice, "").wantProblem(t, http.StatusNotFound, "not_found")
	e.do("DELETE", "/v1/resources/v", e.admin, "").wantProblem(t, http.StatusNotFound, "not_found")
}
