package orders

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"allot/examples/sqlite-consumer/feed"
)

const testToken = "consumer-token"

// fakeAPI plays GET /v1/events as API.md specifies it, over a fixed
// history, with knobs for what a real cluster may do to a consumer.
type fakeAPI struct {
	t *testing.T

	mu       sync.Mutex
	events   []feed.Event // offsets 1..len, in order
	earliest int64        // oldest kept; 1 unless compacted
	// head, when > 0, is the newest offset this node has applied: a
	// follower a moment behind serves no event past it.
	head int64
	// replay, when > 0, makes the next page start that many events before
	// the after asked for: the duplicates a consumer sees when it is
	// switched to a node that re-sends from an older cursor.
	replay int64
	// refuse are the statuses (429, 503) to answer the next polls with,
	// with Retry-After: retryAfter.
	refuse     []int
	retryAfter string
	polls      int
	afters     []int64 // the after of every poll answered 200
	// state is what GET /v1/resources and /v1/reservations show.
	state map[string]feed.Reservation
}

func newFakeAPI(t *testing.T, events []feed.Event) *fakeAPI {
	return &fakeAPI{t: t, events: events, earliest: 1}
}

func (f *fakeAPI) serve() *httptest.Server {
	srv := httptest.NewServer(f)
	f.t.Cleanup(srv.Close)
	return srv
}

func (f *fakeAPI) set(fn func(f *fakeAPI)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

func writeProblem(w http.ResponseWriter, status int, code string, extra map[string]any) {
	body := map[string]any{"type": "https://allot.dev/problems/" + code, "title": code, "status": status, "code": code}
	for k, v := range extra {
		body[k] = v
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(body)
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer "+testToken {
		writeProblem(w, 401, "unauthenticated", nil)
		return
	}
	switch {
	case r.Method != http.MethodGet:
		writeProblem(w, 405, "method_not_allowed", nil)
	case r.URL.Path == "/v1/events":
		f.serveEvents(w, r)
	case r.URL.Path == "/v1/resources" || r.URL.Path == "/v1/reservations":
		f.serveState(w, r)
	default:
		writeProblem(w, 404, "not_found", nil)
	}
}

// serveState lists the resources and reservations of f.state, in one page.
func (f *fakeAPI) serveState(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.URL.Query().Get("consistency") != "linearizable" {
		f.t.Errorf("%s read at consistency %q, want linearizable", r.URL.Path, r.URL.Query().Get("consistency"))
	}
	items := []any{}
	ids := make([]string, 0, len(f.state))
	for id := range f.state {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	seen := map[string]bool{}
	for _, id := range ids {
		x := f.state[id]
		switch {
		case r.URL.Path == "/v1/resources" && !seen[x.ResourceID]:
			seen[x.ResourceID] = true
			items = append(items, map[string]string{"id": x.ResourceID, "kind": x.Kind})
		case r.URL.Path == "/v1/reservations" && x.ResourceID == r.URL.Query().Get("resource"):
			items = append(items, x)
		}
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"items": items, "next": ""})
}

func (f *fakeAPI) serveEvents(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	after, err := strconv.ParseInt(q.Get("after"), 10, 64)
	if q.Get("after") == "" {
		after, err = 0, nil
	}
	limit, lerr := strconv.Atoi(q.Get("limit"))
	if err != nil || lerr != nil || limit < 1 || limit > 1000 {
		writeProblem(w, 400, "invalid_argument", nil)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.polls++
	if len(f.refuse) > 0 {
		status := f.refuse[0]
		f.refuse = f.refuse[1:]
		w.Header().Set("Retry-After", f.retryAfter)
		code := "rate_limited"
		if status == 503 {
			code = "unavailable"
		}
		writeProblem(w, status, code, nil)
		return
	}
	if after < f.earliest-1 {
		writeProblem(w, 410, "offset_compacted", map[string]any{"earliest": f.earliest})
		return
	}
	f.afters = append(f.afters, after)
	head := int64(len(f.events))
	if f.head > 0 {
		head = min(head, f.head)
	}
	from := max(after-f.replay, f.earliest-1)
	f.replay = 0 // the new node re-sends once, then reads on from there
	page := feed.Page{Events: []feed.Event{}, Next: max(after, from), Earliest: f.earliest, Head: head}
	types := q.Get("type")
	for off := from + 1; off <= head && len(page.Events) < limit; off++ {
		e := f.events[off-1]
		page.Next = max(page.Next, off)
		if types != "" && !matchType(types, e.Type) {
			continue
		}
		page.Events = append(page.Events, e)
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(page)
}

// matchType applies a ?type= filter: names separated by commas, a
// trailing ".*" matching a prefix.
func matchType(filter, typ string) bool {
	for _, f := range strings.Split(filter, ",") {
		if p, ok := strings.CutSuffix(f, "*"); ok && strings.HasPrefix(typ, p) || f == typ {
			return true
		}
	}
	return false
}

// history builds a list of events with offsets 1, 2, ...
type history struct {
	events []feed.Event
	at     time.Time
	rsv    map[string]feed.Reservation
}

func newHistory() *history {
	return &history{at: time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC), rsv: make(map[string]feed.Reservation)}
}

func (h *history) add(e feed.Event) {
	h.at = h.at.Add(time.Second)
	e.Offset, e.At = int64(len(h.events)+1), h.at
	h.events = append(h.events, e)
}

// resource adds a resource.created event.
func (h *history) resource(id string, holdSeconds int) {
	h.add(feed.Event{Type: "resource.created", ResourceID: id, Kind: "voucher",
		Resource: json.RawMessage(fmt.Sprintf(`{"id":%q,"kind":"voucher","capacity":10,"hold_seconds":%d}`, id, holdSeconds))})
}

// reserve adds the event that makes reservation id on resource with status
// (held, or confirmed for hold_seconds 0).
func (h *history) reserve(id, resource, user, status, key string) {
	r := feed.Reservation{ID: id, ResourceID: resource, Kind: "voucher", User: user, Quantity: 1, Status: status,
		CreatedAt: h.at.Add(time.Second).Format(time.RFC3339), UpdatedAt: h.at.Add(time.Second).Format(time.RFC3339)}
	h.rsv[id] = r
	h.add(feed.Event{Type: "reservation." + status, ResourceID: resource, Kind: "voucher", Reservation: &r, IdempotencyKey: key})
}

// move adds the event that moves reservation id to status.
func (h *history) move(id, status string) {
	r := h.rsv[id]
	from := r.Status
	r.Status, r.UpdatedAt = status, h.at.Add(time.Second).Format(time.RFC3339)
	h.rsv[id] = r
	h.add(feed.Event{Type: "reservation." + status, ResourceID: r.ResourceID, Kind: r.Kind, From: from, Reservation: &r})
}

// orderHistory is a small sale: two vouchers, five orders, every kind of
// transition, resource events in between.
func orderHistory() *history {
	h := newHistory()
	h.resource("flash-1", 900)
	h.resource("instant-1", 0)
	h.reserve("r1", "flash-1", "alice", "held", "order-1")
	h.reserve("r2", "flash-1", "bob", "held", "order-2")
	h.move("r1", "confirmed")
	h.reserve("r3", "instant-1", "carol", "confirmed", "order-3")
	h.move("r2", "expired")
	h.reserve("r4", "flash-1", "dave", "held", "")
	h.add(feed.Event{Type: "resource.updated", ResourceID: "flash-1", Kind: "voucher", Resource: json.RawMessage(`{"id":"flash-1"}`)})
	h.move("r4", "cancelled")
	h.move("r1", "completed")
	h.reserve("r5", "instant-1", "erin", "confirmed", "order-5")
	h.move("r5", "cancelled")
	return h
}
