package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"allot/bench/verify"
)

// eventsFake serves GET /v1/events over offsets earliest..head: odd
// offsets are reservation events, even ones resource events.
func eventsFake(t *testing.T, earliest, head int64) (*Admin, *int) {
	t.Helper()
	polls := 0
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/events", func(w http.ResponseWriter, r *http.Request) {
		polls++
		after, _ := strconv.ParseInt(r.URL.Query().Get("after"), 10, 64)
		limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
		if after < earliest-1 {
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(http.StatusGone)
			fmt.Fprintf(w, `{"status":410,"code":"offset_compacted","earliest":%d}`, earliest)
			return
		}
		type ev struct {
			Offset      int64             `json:"offset"`
			Shard       int               `json:"shard"`
			Type        string            `json:"type"`
			ResourceID  string            `json:"resource_id"`
			From        string            `json:"from"`
			Reservation map[string]string `json:"reservation,omitempty"`
		}
		page := struct {
			Events   []ev  `json:"events"`
			Next     int64 `json:"next"`
			Earliest int64 `json:"earliest"`
			Head     int64 `json:"head"`
		}{Events: []ev{}, Next: after, Earliest: earliest, Head: head}
		for off := after + 1; off <= head && len(page.Events) < limit; off++ {
			e := ev{Offset: off, Type: "resource.updated", ResourceID: "v1"}
			if off%2 == 1 {
				e.Type, e.Reservation = "reservation.held", map[string]string{"id": fmt.Sprintf("r%d", off), "status": "held"}
			}
			page.Events = append(page.Events, e)
			page.Next = off
		}
		json.NewEncoder(w).Encode(page)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return mustNew(t, []string{srv.URL}, &http.Client{Timeout: 5 * time.Second}, "admin-1"), &polls
}

func TestReadStreamPages(t *testing.T) {
	c, polls := eventsFake(t, 1, 2500)
	s, err := c.ReadStream(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if s.After != 0 || s.Head != 2500 || len(s.Events) != 2500 || *polls != 3 {
		t.Fatalf("after %d head %d, %d events in %d polls; want 0, 2500, 2500 in 3", s.After, s.Head, len(s.Events), *polls)
	}
	want := verify.Event{Offset: 7, Type: "reservation.held", ResourceID: "v1", ReservationID: "r7", Status: "held"}
	if s.Events[6] != want || s.Events[7].ReservationID != "" {
		t.Errorf("events[6] = %+v, events[7] = %+v", s.Events[6], s.Events[7])
	}
}

func TestReadStreamStartsAtEarliest(t *testing.T) {
	c, _ := eventsFake(t, 101, 150)
	s, err := c.ReadStream(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if s.After != 100 || len(s.Events) != 50 || s.Events[0].Offset != 101 {
		t.Fatalf("after %d, %d events from %d; want 100, 50 from 101", s.After, len(s.Events), s.Events[0].Offset)
	}
}

func TestReadStreamEmpty(t *testing.T) {
	c, _ := eventsFake(t, 1, 0)
	s, err := c.ReadStream(context.Background())
	if err != nil || s.Head != 0 || len(s.Events) != 0 {
		t.Fatalf("%+v, %v", s, err)
	}
}

func TestReadStreamWithoutEndpoint(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(srv.Close)
	c := mustNew(t, []string{srv.URL}, &http.Client{Timeout: 5 * time.Second}, "admin-1")
	if _, err := c.ReadStream(context.Background()); !errors.Is(err, ErrNoStream) {
		t.Fatalf("ReadStream: %v, want ErrNoStream", err)
	}
}
