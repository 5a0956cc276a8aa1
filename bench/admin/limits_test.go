package admin

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"allot/bench/scenario"
	"allot/client"
)

// TestPutLimitsWithoutRoute: a target without limit groups (404 on PUT
// /v1/limits) is ErrNoLimits, so that the run goes on without them.
func TestPutLimitsWithoutRoute(t *testing.T) {
	c := newFake(t, &fake{}, "admin-1") // the fake has no /v1/limits
	err := c.PutLimits(context.Background(), []scenario.LimitDef{{ID: "day-1", Body: []byte(`{"per_user":1}`)}}, 1)
	if !errors.Is(err, ErrNoLimits) {
		t.Fatalf("err = %v, want ErrNoLimits", err)
	}
}

// TestLimitsPutAndReadBack: limits are created, and read back with their
// count and members at the reader's level.
func TestLimitsPutAndReadBack(t *testing.T) {
	var puts []string
	mux := http.NewServeMux()
	mux.HandleFunc("PUT /v1/limits/{id}", func(w http.ResponseWriter, r *http.Request) {
		puts = append(puts, r.PathValue("id"))
		w.WriteHeader(http.StatusCreated)
	})
	mux.HandleFunc("GET /v1/limits/{id}", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("consistency") != "linearizable" {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		w.Write([]byte(`{"id":"` + r.PathValue("id") + `","per_user":1,"capacity":5,"taken":3,"resources":["a","b"],"attributes":{}}`))
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	c := mustNew(t, []string{srv.URL}, srv.Client(), "admin-1")
	ctx := context.Background()
	if err := c.PutLimits(ctx, []scenario.LimitDef{{ID: "day-1", Body: []byte(`{}`)}}, 1); err != nil || len(puts) != 1 {
		t.Fatalf("put: %v, %v", err, puts)
	}
	r := &Reader{c: c.c, level: client.Linearizable}
	ls, err := r.ReadLimits(ctx, []string{"day-1", "day-2"}, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(ls) != 2 || ls[1].ID != "day-2" || ls[1].Taken != 3 || ls[1].Capacity != 5 || ls[1].PerUser != 1 || len(ls[1].Resources) != 2 {
		t.Errorf("read back %+v", ls)
	}
}
