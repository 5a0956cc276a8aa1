package httpapi

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

type limitOut struct {
	ID         string            `json:"id"`
	PerUser    int64             `json:"per_user"`
	Capacity   int64             `json:"capacity"`
	Attributes map[string]string `json:"attributes"`
	Taken      int64             `json:"taken"`
	Resources  []string          `json:"resources"`
	User       string            `json:"user"`
	UserTaken  *int64            `json:"user_taken"`
	CreatedAt  string            `json:"created_at"`
	UpdatedAt  string            `json:"updated_at"`
}

// Every rule of the limit routes over HTTP: create and update, bad input,
// roles, the resource's limits field, limit_exceeded naming the limit,
// reads with ?user, lists, and delete while named.
func TestLimitRoutes(t *testing.T) {
	e := newEnv(t, nil)
	consumer := e.token("svc", RoleConsumer)

	var got limitOut
	e.do("PUT", "/v1/limits/day", e.admin, `{"per_user":1,"attributes":{"hospital":"north"}}`).want(t, http.StatusCreated, &got)
	if got.ID != "day" || got.PerUser != 1 || got.Capacity != 0 || got.Attributes["hospital"] != "north" || got.Resources == nil || got.UserTaken != nil {
		t.Fatalf("created %+v", got)
	}
	e.do("PUT", "/v1/limits/day", e.admin, `{"per_user":1}`).want(t, http.StatusOK, &got)
	for name, c := range map[string]struct {
		method, path, token, body string
		status                    int
		code                      string
	}{
		"user may not put":         {"PUT", "/v1/limits/x", e.alice, `{"per_user":1}`, 403, "permission_denied"},
		"consumer may not put":     {"PUT", "/v1/limits/x", consumer, `{"per_user":1}`, 403, "permission_denied"},
		"no token":                 {"GET", "/v1/limits/day", "", "", 401, "unauthenticated"},
		"negative per_user":        {"PUT", "/v1/limits/x", e.admin, `{"per_user":-1}`, 400, "invalid_argument"},
		"negative capacity":        {"PUT", "/v1/limits/x", e.admin, `{"capacity":-5}`, 400, "invalid_argument"},
		"unknown field":            {"PUT", "/v1/limits/x", e.admin, `{"per_user":1,"perUser":2}`, 400, "invalid_argument"},
		"no body":                  {"PUT", "/v1/limits/x", e.admin, ``, 400, "invalid_argument"},
		"bad id":                   {"PUT", "/v1/limits/a%20b", e.admin, `{}`, 400, "invalid_argument"},
		"dots only":                {"GET", "/v1/limits/..", e.admin, ``, 400, "invalid_argument"},
		"unknown limit":            {"GET", "/v1/limits/nope", e.admin, ``, 404, "not_found"},
		"user without ?user":       {"GET", "/v1/limits/day", e.alice, ``, 403, "permission_denied"},
		"user asking for another":  {"GET", "/v1/limits/day?user=bob", e.alice, ``, 403, "permission_denied"},
		"user listing":             {"GET", "/v1/limits", e.alice, ``, 403, "permission_denied"},
		"resource names unknown":   {"PUT", "/v1/resources/s9", e.admin, `{"kind":"slot","capacity":1,"limits":["nope"]}`, 400, "invalid_argument"},
		"resource names one twice": {"PUT", "/v1/resources/s9", e.admin, `{"kind":"slot","capacity":1,"limits":["day","day"]}`, 400, "invalid_argument"},
		"delete unknown":           {"DELETE", "/v1/limits/nope", e.admin, ``, 404, "not_found"},
	} {
		t.Run(name, func(t *testing.T) {
			before := e.eng.stateHash()
			e.do(c.method, c.path, c.token, c.body).wantProblem(t, c.status, c.code)
			if e.eng.stateHash() != before {
				t.Fatal("a refused request changed the state")
			}
		})
	}

	// Two slots of the day; the resource shows its limits.
	var res resourceOut
	e.do("PUT", "/v1/resources/s1", e.admin, `{"kind":"slot","capacity":5,"limits":["day"]}`).want(t, http.StatusCreated, &res)
	if len(res.Limits) != 1 || res.Limits[0] != "day" {
		t.Fatalf("resource limits %v", res.Limits)
	}
	e.do("PUT", "/v1/resources/s2", e.admin, `{"kind":"slot","capacity":5,"limits":["day"]}`).want(t, http.StatusCreated, nil)
	e.do("POST", "/v1/resources/s1/reservations", e.alice, `{"quantity":1}`).want(t, http.StatusCreated, nil)
	r := e.do("POST", "/v1/resources/s2/reservations", e.alice, `{"quantity":1}`)
	r.wantProblem(t, http.StatusConflict, "limit_exceeded")
	var p struct {
		Limit *string `json:"limit"`
		Rule  string  `json:"rule"`
		Title string  `json:"title"`
	}
	if err := json.Unmarshal(r.body, &p); err != nil || p.Limit == nil || *p.Limit != "day" || p.Rule != "per_user" || p.Title != "Limit exceeded" {
		t.Fatalf("problem %s", r.body)
	}
	// The resource's own per-user limit names no limit group.
	e.do("PUT", "/v1/resources/own", e.admin, `{"kind":"voucher","capacity":5,"per_user_limit":1}`).want(t, http.StatusCreated, nil)
	e.do("POST", "/v1/resources/own/reservations", e.bob, `{}`).want(t, http.StatusCreated, nil)
	r = e.do("POST", "/v1/resources/own/reservations", e.bob, `{}`)
	r.wantProblem(t, http.StatusConflict, "limit_exceeded")
	if !strings.Contains(string(r.body), `"limit":"","rule":"per_user"`) {
		t.Fatalf("own limit problem %s", r.body)
	}

	// Reads: a user its own count, without the members; admin and consumer everything.
	e.do("GET", "/v1/limits/day?user=alice", e.alice, ``).want(t, http.StatusOK, &got)
	if got.Taken != 1 || got.User != "alice" || got.UserTaken == nil || *got.UserTaken != 1 || len(got.Resources) != 0 {
		t.Fatalf("alice's view %+v", got)
	}
	e.do("GET", "/v1/limits/day?user=bob", consumer, ``).want(t, http.StatusOK, &got)
	if *got.UserTaken != 0 || len(got.Resources) != 2 || got.Resources[0] != "s1" {
		t.Fatalf("consumer's view %+v", got)
	}
	e.do("PUT", "/v1/limits/campaign", e.admin, `{"capacity":10}`).want(t, http.StatusCreated, nil)
	var page struct {
		Items []limitOut `json:"items"`
		Next  string     `json:"next"`
	}
	e.do("GET", "/v1/limits?limit=1", e.admin, ``).want(t, http.StatusOK, &page)
	if len(page.Items) != 1 || page.Items[0].ID != "campaign" || page.Next != "campaign" {
		t.Fatalf("page 1 %+v", page)
	}
	e.do("GET", "/v1/limits?after=campaign", consumer, ``).want(t, http.StatusOK, &page)
	if len(page.Items) != 1 || page.Items[0].ID != "day" || page.Next != "" {
		t.Fatalf("page 2 %+v", page)
	}

	// Bounds below what is taken, limits of a resource with taken units, delete while named.
	e.do("PUT", "/v1/limits/day", e.admin, `{"per_user":1,"capacity":0}`).want(t, http.StatusOK, nil)
	e.do("PUT", "/v1/resources/s1", e.admin, `{"kind":"slot","capacity":5}`).wantProblem(t, http.StatusConflict, "invalid_state")
	e.do("DELETE", "/v1/limits/day", e.admin, ``).wantProblem(t, http.StatusConflict, "invalid_state")
	e.do("DELETE", "/v1/limits/campaign", e.admin, ``).want(t, http.StatusNoContent, nil)
}

// TestLimitCapacityRule: a group's capacity refuses with rule "capacity",
// its per-user bound with "per_user"; capacity is checked first.
func TestLimitCapacityRule(t *testing.T) {
	e := newEnv(t, nil)
	e.do("PUT", "/v1/limits/quota", e.admin, `{"capacity":1,"per_user":1}`).want(t, http.StatusCreated, nil)
	e.do("PUT", "/v1/resources/q1", e.admin, `{"kind":"voucher","capacity":5,"per_user_limit":5,"limits":["quota"]}`).want(t, http.StatusCreated, nil)
	e.do("POST", "/v1/resources/q1/reservations", e.alice, `{}`).want(t, http.StatusCreated, nil)
	for _, who := range []string{e.bob, e.alice} {
		r := e.do("POST", "/v1/resources/q1/reservations", who, `{}`)
		if p := r.wantProblem(t, http.StatusConflict, "limit_exceeded"); *p.Limit != "quota" || p.Rule != "capacity" {
			t.Fatalf("capacity problem %s", r.body)
		}
	}
}
