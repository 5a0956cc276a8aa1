package client_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"allot/client"
)

// TestEventsCompactedIsTyped: an after below the oldest kept event is a
// *ProblemError matching ErrOffsetCompacted with the earliest offset, and
// SetNext(earliest-1) goes on from there.
func TestEventsCompactedIsTyped(t *testing.T) {
	const earliest, head = 101, 105
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		after, _ := strconv.ParseInt(r.URL.Query().Get("after"), 10, 64)
		if after < earliest-1 {
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(http.StatusGone)
			fmt.Fprintf(w, `{"status":410,"code":"offset_compacted","detail":"gone","earliest":%d}`, earliest)
			return
		}
		fmt.Fprint(w, `{"events":[`)
		for off := after + 1; off <= head; off++ {
			if off > after+1 {
				fmt.Fprint(w, ",")
			}
			fmt.Fprintf(w, `{"offset":%d,"shard":0,"type":"resource.updated","at":"2026-12-01T08:00:00Z","resource_id":"v1","kind":"voucher"}`, off)
		}
		fmt.Fprintf(w, `],"next":%d,"earliest":%d,"head":%d}`, max(after, head), earliest, head)
	}))
	defer srv.Close()
	c, err := client.New([]string{srv.URL}, client.Options{Token: "t"})
	if err != nil {
		t.Fatal(err)
	}
	r := c.EventReader(7, client.EventQuery{})
	var n int
	var last error
	for _, err := range r.All(context.Background()) {
		if err != nil {
			last = err
			break
		}
		n++
	}
	var pe *client.ProblemError
	if n != 0 || !errors.Is(last, client.ErrOffsetCompacted) || !errors.As(last, &pe) || pe.Earliest != earliest || pe.Status != 410 {
		t.Fatalf("%d events, err %v: want ErrOffsetCompacted with earliest %d", n, last, earliest)
	}
	if r.Next() != 7 {
		t.Errorf("Next moved to %d on a refusal", r.Next())
	}
	r.SetNext(pe.Earliest - 1)
	p, err := r.Page(context.Background(), 0)
	if err != nil || len(p.Events) != 5 || p.Events[0].Offset != earliest || r.Next() != head || r.Head() != head || r.Earliest() != earliest {
		t.Fatalf("page %+v, next %d, %v", p, r.Next(), err)
	}
}
