package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"allot/actors/domain"
	"allot/bench/scenario"
	"allot/client"
)

// fake is a tiny stand-in for allot's admin and read endpoints.
type fake struct {
	mu           sync.Mutex
	puts         map[string]int // PUT attempts per id
	throttleOnce bool           // answer each id's first PUT with 429
	linearizable bool           // accept ?consistency=linearizable
	reservations int            // listed for every resource
	reads        int            // GETs of resources
	drift        int            // resource reads whose held count differs
	callers      map[string]int // PUTs per Authorization header
	voucher      bool           // resources are vouchers without holds
}

func (f *fake) handler() http.Handler {
	mux := http.NewServeMux()
	problem := func(w http.ResponseWriter, status int, code string) {
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(status)
		fmt.Fprintf(w, `{"status":%d,"code":%q,"detail":"from the fake"}`, status, code)
	}
	badLevel := func(r *http.Request) bool {
		c := r.URL.Query().Get("consistency")
		return c != "" && !(c == "linearizable" && f.linearizable)
	}
	mux.HandleFunc("PUT /v1/resources/{id}", func(w http.ResponseWriter, r *http.Request) {
		auth := r.Header.Get("Authorization")
		if auth != "Bearer admin-1" && auth != "Bearer admin-2" {
			problem(w, http.StatusUnauthorized, "unauthenticated")
			return
		}
		f.mu.Lock()
		f.callers[auth]++
		f.puts[r.PathValue("id")]++
		n := f.puts[r.PathValue("id")]
		f.mu.Unlock()
		if f.throttleOnce && n == 1 {
			problem(w, http.StatusTooManyRequests, "rate_limited")
			return
		}
		w.WriteHeader(http.StatusCreated)
	})
	mux.HandleFunc("GET /v1/resources/{id}", func(w http.ResponseWriter, r *http.Request) {
		if badLevel(r) {
			problem(w, http.StatusBadRequest, "invalid_argument")
			return
		}
		f.mu.Lock()
		f.reads++
		held := 0
		if f.reads <= f.drift {
			held = f.reads % 2 // changes between the two reads of one round
		}
		f.mu.Unlock()
		if f.voucher {
			fmt.Fprintf(w, `{"id":%q,"kind":"voucher","capacity":5,"available":4,"held":0,"confirmed":1}`, r.PathValue("id"))
			return
		}
		// A room's nights always say what is held: held units keep it unsettled.
		fmt.Fprintf(w, `{"id":%q,"kind":"room","per_user_limit":0,"held":%d,"nights":{"2026-12-01":{"rooms":5,"available":4,"held":1}}}`,
			r.PathValue("id"), held)
	})
	mux.HandleFunc("GET /v1/reservations", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if badLevel(r) || q.Get("resource") == "" || q.Get("limit") != "1000" {
			problem(w, http.StatusBadRequest, "invalid_argument")
			return
		}
		start := 0
		if a := q.Get("after"); a != "" {
			start, _ = strconv.Atoi(a)
		}
		end := min(start+1000, f.reservations)
		var page struct {
			Items []map[string]any `json:"items"`
			Next  string           `json:"next"`
		}
		page.Items = []map[string]any{}
		for i := start; i < end; i++ {
			page.Items = append(page.Items, map[string]any{"id": fmt.Sprintf("r%d", i), "resource_id": q.Get("resource"),
				"user": "u", "status": "confirmed", "quantity": 1, "check_in": "2026-12-01", "check_out": "2026-12-02",
				"created_at": "2026-11-21T10:00:00.123456Z", "updated_at": "2026-11-21T10:00:01Z"})
		}
		if end < f.reservations {
			page.Next = strconv.Itoa(end)
		}
		json.NewEncoder(w).Encode(page)
	})
	return mux
}

func newFake(t *testing.T, f *fake, tokens ...string) *Admin {
	f.puts = map[string]int{}
	f.callers = map[string]int{}
	srv := httptest.NewServer(f.handler())
	t.Cleanup(srv.Close)
	return mustNew(t, []string{srv.URL}, srv.Client(), tokens...)
}

func mustNew(t *testing.T, targets []string, hc *http.Client, tokens ...string) *Admin {
	t.Helper()
	a, err := New(targets, hc, tokens)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestPutResourcesRetriesThrottling(t *testing.T) {
	f := &fake{throttleOnce: true}
	c := newFake(t, f, "admin-1", "admin-2")
	var defs []scenario.ResourceDef
	for i := range 20 {
		defs = append(defs, scenario.ResourceDef{ID: fmt.Sprintf("res-%d", i), Body: []byte(`{"kind":"voucher"}`)})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.PutResources(ctx, defs, 4); err != nil {
		t.Fatal(err)
	}
	for _, d := range defs {
		if n := f.puts[d.ID]; n != 2 {
			t.Errorf("%s: %d PUTs, want 2 (429, then the retry)", d.ID, n)
		}
	}
	if f.callers["Bearer admin-1"] != 20 || f.callers["Bearer admin-2"] != 20 {
		t.Errorf("PUTs per admin %v, want the two identities taking turns", f.callers)
	}
}

func TestPutResourcesReportsRefusal(t *testing.T) {
	c := newFake(t, &fake{}, "wrong-token")
	err := c.PutResources(context.Background(), []scenario.ResourceDef{{ID: "x", Body: []byte(`{}`)}}, 1)
	if !errors.Is(err, domain.ErrUnauthenticated) {
		t.Fatalf("err = %v, want one matching domain.ErrUnauthenticated", err)
	}
	var se *client.ProblemError
	if !errors.As(err, &se) || se.Status != http.StatusUnauthorized || se.Detail != "from the fake" {
		t.Fatalf("err = %#v, want the 401 with its detail", err)
	}
}

func TestReaderPagesAndFallsBack(t *testing.T) {
	for _, lin := range []bool{true, false} {
		f := &fake{linearizable: lin, reservations: 2500}
		c := newFake(t, f, "admin-1")
		ctx := context.Background()
		r, err := c.NewReader(ctx, "h1")
		if err != nil {
			t.Fatal(err)
		}
		if r.Linearizable() != lin {
			t.Errorf("linearizable = %v, want %v", r.Linearizable(), lin)
		}
		got, err := r.ReadAll(ctx, []string{"h1", "h2"}, 2)
		if err != nil {
			t.Fatal(err)
		}
		for _, res := range got {
			if len(res.Reservations) != 2500 || res.Kind != "room" || res.Nights["2026-12-01"].Available != 4 {
				t.Fatalf("%s: %d reservations, kind %q, nights %v", res.ID, len(res.Reservations), res.Kind, res.Nights)
			}
			seen := map[string]bool{}
			for _, x := range res.Reservations {
				if seen[x.ID] {
					t.Fatalf("%s listed twice", x.ID)
				}
				seen[x.ID] = true
			}
			x := res.Reservations[0]
			if x.CreatedAt.Nanosecond() != 123456000 || !x.ExpiresAt.IsZero() || x.CheckOut != "2026-12-02" {
				t.Fatalf("decoded %+v", x)
			}
		}
		if got[0].ReadAt.IsZero() {
			t.Error("no read time taken from the Date header")
		}
	}
}

func TestReaderRereadsWhileCountsChange(t *testing.T) {
	f := &fake{linearizable: true, reservations: 1, drift: 5}
	c := newFake(t, f, "admin-1")
	r, err := c.NewReader(context.Background(), "h1") // read 1
	if err != nil {
		t.Fatal(err)
	}
	// Reads 2 and 3 differ (held 0, then 1), so do 4 and 5; 6 and 7 agree.
	res, err := r.ReadResource(context.Background(), "h1")
	if err != nil {
		t.Fatal(err)
	}
	if f.reads != 7 || res.Held != 0 || len(res.Reservations) != 1 {
		t.Fatalf("reads %d held %d reservations %d, want a stable third round", f.reads, res.Held, len(res.Reservations))
	}
}

func TestReaderReadsSettledResourceOnce(t *testing.T) {
	f := &fake{linearizable: true, reservations: 1, voucher: true}
	c := newFake(t, f, "admin-1")
	r, err := c.NewReader(context.Background(), "v1") // read 1
	if err != nil {
		t.Fatal(err)
	}
	res, err := r.ReadResource(context.Background(), "v1")
	if err != nil {
		t.Fatal(err)
	}
	if f.reads != 2 || res.Confirmed != 1 || res.Available != 4 || len(res.Reservations) != 1 {
		t.Fatalf("reads %d, resource %+v: want one read of a resource without holds", f.reads, res)
	}
}
