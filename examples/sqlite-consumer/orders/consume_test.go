package orders

import (
	"context"
	"errors"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"allot/examples/sqlite-consumer/feed"
)

func openStore(t *testing.T, path string) *Store {
	t.Helper()
	st, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func newClient(t *testing.T, types string, limit int, urls ...string) *feed.Client {
	t.Helper()
	cfg := feed.DefaultConfig()
	cfg.URLs, cfg.Token, cfg.Types, cfg.Limit = urls, testToken, types, limit
	cfg.Wait, cfg.MaxBackoff = time.Second, 200*time.Millisecond
	c, err := feed.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// order is a row of the orders table, as the tests compare it.
type order struct {
	Status, User, Key string
	LastOffset        int64
}

func readOrders(t *testing.T, st *Store) map[string]order {
	t.Helper()
	rows, err := st.DB().Query(`SELECT reservation_id, status, user_id, idempotency_key, last_offset FROM orders`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := make(map[string]order)
	for rows.Next() {
		var id string
		var o order
		if err := rows.Scan(&id, &o.Status, &o.User, &o.Key, &o.LastOffset); err != nil {
			t.Fatal(err)
		}
		out[id] = o
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// readHistory lists the applied events' offsets, in order.
func readHistory(t *testing.T, st *Store) []int64 {
	t.Helper()
	rows, err := st.DB().Query(`SELECT event_offset FROM order_events ORDER BY event_offset`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var off int64
		if err := rows.Scan(&off); err != nil {
			t.Fatal(err)
		}
		out = append(out, off)
	}
	return out
}

// expected is what orderHistory must leave in the database.
func expected(h *history) (map[string]order, []int64) {
	want := map[string]order{
		"r1": {Status: "completed", User: "alice", Key: "order-1"},
		"r2": {Status: "expired", User: "bob", Key: "order-2"},
		"r3": {Status: "confirmed", User: "carol", Key: "order-3"},
		"r4": {Status: "cancelled", User: "dave"},
		"r5": {Status: "cancelled", User: "erin", Key: "order-5"},
	}
	var offs []int64
	for _, e := range h.events {
		if e.IsReservation() {
			offs = append(offs, e.Offset)
			o := want[e.Reservation.ID]
			o.LastOffset = e.Offset
			want[e.Reservation.ID] = o
		}
	}
	return want, offs
}

func checkDB(t *testing.T, st *Store, h *history) {
	t.Helper()
	want, offs := expected(h)
	if got := readOrders(t, st); !reflect.DeepEqual(got, want) {
		t.Errorf("orders:\n got %v\nwant %v", got, want)
	}
	if got := readHistory(t, st); !reflect.DeepEqual(got, offs) {
		t.Errorf("applied events %v, want each reservation event once: %v", got, offs)
	}
	if off, err := st.Offset(context.Background(), 0); err != nil || off != int64(len(h.events)) {
		t.Errorf("stored offset %d (%v), want %d", off, err, len(h.events))
	}
}

// consumeUntil runs Consume until the stored offset reaches head, then
// stops it; it fails the test if Consume ended otherwise.
func consumeUntil(t *testing.T, src Source, st *Store, head int64) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Consume(ctx, src, st, 0, nil) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		off, err := st.Offset(context.Background(), 0)
		if err == nil && off >= head {
			break
		}
		select {
		case err := <-done:
			cancel()
			t.Fatalf("Consume ended at offset %d before reaching %d: %v", off, head, err)
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("offset %d after 10s, want %d", off, head)
		}
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Consume: %v, want context.Canceled", err)
	}
}

func TestConsumeWritesOrders(t *testing.T) {
	h := orderHistory()
	api := newFakeAPI(t, h.events)
	srv := api.serve()
	st := openStore(t, filepath.Join(t.TempDir(), "orders.db"))
	consumeUntil(t, newClient(t, "reservation.*", 3, srv.URL), st, int64(len(h.events)))
	checkDB(t, st, h)
}

// After a failover the consumer reads from another node, which re-sends
// events it already has (and is a moment behind at first): nothing is
// applied twice and the offset never goes back.
func TestConsumeFailoverReplaysAreSkipped(t *testing.T) {
	h := orderHistory()
	a := newFakeAPI(t, h.events)
	a.set(func(f *fakeAPI) { f.head = 6 }) // the old leader served up to 6, then dies
	srvA := a.serve()
	b := newFakeAPI(t, h.events)
	b.set(func(f *fakeAPI) { f.head = 4 }) // behind at first, and re-sends
	srvB := b.serve()
	st := openStore(t, filepath.Join(t.TempDir(), "orders.db"))
	src := newClient(t, "", 2, srvA.URL, srvB.URL)

	consumeUntil(t, src, st, 6)
	srvA.Close()
	// b is a moment behind: head 4 < 6, nothing to give yet.
	page, err := src.Poll(context.Background(), 6)
	if err != nil {
		t.Fatal(err)
	}
	if page.Head != 4 || len(page.Events) != 0 {
		t.Fatalf("the fake should have answered as a lagging node, got %+v", page)
	}
	if off, n, err := st.Apply(context.Background(), 0, page.Events, page.Next); err != nil || off != 6 || n != 0 {
		t.Fatalf("Apply of a lagging page = %d, %d, %v; want offset 6 kept, nothing applied", off, n, err)
	}
	// An older next, or old events, never move the offset back.
	if off, n, err := st.Apply(context.Background(), 0, h.events[2:4], 4); err != nil || off != 6 || n != 0 {
		t.Fatalf("Apply of old events = %d, %d, %v; want offset 6 kept, nothing applied", off, n, err)
	}
	// Then b catches up and re-sends from an older cursor: old and new
	// events in one page.
	b.set(func(f *fakeAPI) { f.head, f.replay = 0, 1 })
	page, err = src.Poll(context.Background(), 6)
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Events) != 2 || page.Events[0].Offset != 6 || page.Events[1].Offset != 7 {
		t.Fatalf("the fake should have re-sent 6 with 7, got %+v", page.Events)
	}
	if off, n, err := st.Apply(context.Background(), 0, page.Events, page.Next); err != nil || off != 7 || n != 1 {
		t.Fatalf("Apply of a page re-sent from 5 = %d, %d, %v; want offset 7, one event applied", off, n, err)
	}
	consumeUntil(t, src, st, int64(len(h.events)))
	checkDB(t, st, h)
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.afters) < 3 || b.afters[0] != 6 || b.afters[2] != 7 {
		t.Errorf("b was asked after %v, want 6, 6, 7, ... (the committed offset)", b.afters)
	}
}

// A crash in the middle of a page (after some of its rows were written,
// before the commit) loses the whole page and its offset; the restarted
// consumer reads that page again and applies it once.
func TestConsumeCrashBetweenPages(t *testing.T) {
	h := orderHistory()
	api := newFakeAPI(t, h.events)
	srv := api.serve()
	path := filepath.Join(t.TempDir(), "orders.db")
	st, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	pages := 0
	crash := errors.New("crash")
	st.beforeCommit = func([]feed.Event) error {
		if pages++; pages == 3 {
			return crash
		}
		return nil
	}
	err = Consume(context.Background(), newClient(t, "", 2, srv.URL), st, 0, nil)
	if !errors.Is(err, crash) {
		t.Fatalf("Consume: %v, want the crash", err)
	}
	if off, _ := st.Offset(context.Background(), 0); off != 4 {
		t.Fatalf("offset %d after two committed pages of 2, want 4", off)
	}
	if got := readHistory(t, st); !reflect.DeepEqual(got, []int64{3, 4}) {
		t.Fatalf("applied %v after the crash, want [3 4] (the third page rolled back)", got)
	}
	st.Close()

	st = openStore(t, path) // the restart
	consumeUntil(t, newClient(t, "", 2, srv.URL), st, int64(len(h.events)))
	checkDB(t, st, h)
	api.mu.Lock()
	defer api.mu.Unlock()
	if api.afters[3] != 4 {
		t.Errorf("the restarted consumer asked after %d first, want 4 (polls: %v)", api.afters[3], api.afters)
	}
}

// The same page applied twice — a crash after the commit but before the
// consumer noticed, or a webhook batch delivered again — changes nothing
// the second time.
func TestApplySamePageTwice(t *testing.T) {
	h := orderHistory()
	st := openStore(t, filepath.Join(t.TempDir(), "orders.db"))
	ctx := context.Background()
	for i := range 2 {
		off, n, err := st.Apply(ctx, 0, h.events, int64(len(h.events)))
		if err != nil || off != int64(len(h.events)) {
			t.Fatalf("apply %d: %d, %v", i, off, err)
		}
		if want := map[int]int{0: len(h.events), 1: 0}[i]; n != want {
			t.Fatalf("apply %d applied %d events, want %d", i, n, want)
		}
	}
	// A batch that overlaps the stored offset applies only what is new.
	more := newHistory()
	more.events = append(more.events, h.events...)
	more.rsv, more.at = h.rsv, h.at
	more.reserve("r6", "flash-1", "frank", "held", "order-6")
	off, n, err := st.Apply(ctx, 0, more.events[10:], 0)
	if err != nil || n != 1 || off != 14 {
		t.Fatalf("overlapping batch: offset %d, applied %d, %v; want 14, 1", off, n, err)
	}
	if got := readOrders(t, st)["r6"]; got.Status != "held" || got.LastOffset != 14 {
		t.Errorf("r6 = %+v", got)
	}
}

func TestApplyRefusesDisorder(t *testing.T) {
	h := orderHistory()
	st := openStore(t, filepath.Join(t.TempDir(), "orders.db"))
	evs := []feed.Event{h.events[3], h.events[2]}
	if _, _, err := st.Apply(context.Background(), 0, evs, 4); err == nil {
		t.Fatal("events out of order were applied")
	}
	if off, _ := st.Offset(context.Background(), 0); off != 0 {
		t.Errorf("offset %d after a refused page", off)
	}
}

// 410 offset_compacted stops the consumer with the offsets in the error,
// and the database is left as it was.
func TestConsumeStopsOnCompacted(t *testing.T) {
	h := orderHistory()
	api := newFakeAPI(t, h.events)
	api.set(func(f *fakeAPI) { f.earliest = 5 })
	srv := api.serve()
	st := openStore(t, filepath.Join(t.TempDir(), "orders.db"))
	err := Consume(context.Background(), newClient(t, "", 100, srv.URL), st, 0, nil)
	var ce *feed.CompactedError
	if !errors.As(err, &ce) || ce.After != 0 || ce.Earliest != 5 {
		t.Fatalf("Consume: %v, want offset_compacted after 0, earliest 5", err)
	}
	if got := readOrders(t, st); len(got) != 0 {
		t.Errorf("orders written despite the gap: %v", got)
	}
	// A consumer that is past the compacted part reads on.
	if _, _, err := st.Apply(context.Background(), 0, nil, 4); err != nil {
		t.Fatal(err)
	}
	consumeUntil(t, newClient(t, "", 100, srv.URL), st, int64(len(h.events)))
}

func TestPollHonoursRetryAfter(t *testing.T) {
	h := orderHistory()
	api := newFakeAPI(t, h.events)
	api.set(func(f *fakeAPI) { f.refuse, f.retryAfter = []int{429, 503}, "1" })
	srv := api.serve()
	cfg := feed.DefaultConfig()
	cfg.URLs, cfg.Token, cfg.Wait = []string{srv.URL}, testToken, time.Second
	src, err := feed.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	page, err := src.Poll(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el < 1900*time.Millisecond {
		t.Errorf("two answers with Retry-After: 1 were retried after %v, want >= 2s", el)
	}
	if len(page.Events) != len(h.events) {
		t.Errorf("page has %d events, want %d", len(page.Events), len(h.events))
	}
	api.mu.Lock()
	defer api.mu.Unlock()
	if api.polls != 3 {
		t.Errorf("%d polls, want 3", api.polls)
	}
}

func TestPollErrors(t *testing.T) {
	api := newFakeAPI(t, nil)
	srv := api.serve()
	cfg := feed.DefaultConfig()
	cfg.URLs, cfg.Token = []string{srv.URL}, "wrong"
	src, _ := feed.New(cfg)
	var se *feed.StatusError
	if _, err := src.Poll(context.Background(), 0); !errors.As(err, &se) || se.Status != 401 {
		t.Errorf("wrong token: %v, want a 401 StatusError", err)
	}
	cfg.URLs, cfg.Token = []string{srv.URL + "/nothing-here"}, testToken
	src, _ = feed.New(cfg)
	if _, err := src.Poll(context.Background(), 0); !errors.Is(err, feed.ErrNoStream) {
		t.Errorf("404: %v, want ErrNoStream", err)
	}
}

// After a 410 the consumer reads the state, then streams from the head it
// read first. The state is newer than that head, so the events after it
// are applied on top of changes the state already shows — and the
// database converges all the same.
func TestResyncAfterCompacted(t *testing.T) {
	h := orderHistory()
	api := newFakeAPI(t, h.events)
	api.set(func(f *fakeAPI) { f.earliest, f.head, f.state = 6, 10, h.rsv })
	srv := api.serve()
	st := openStore(t, filepath.Join(t.TempDir(), "orders.db"))
	src := newClient(t, "", 100, srv.URL)
	ctx := context.Background()
	if _, _, err := st.Apply(ctx, 0, h.events[:2], 2); err != nil {
		t.Fatal(err)
	}
	var ce *feed.CompactedError
	if err := Consume(ctx, src, st, 0, nil); !errors.As(err, &ce) {
		t.Fatalf("Consume: %v, want offset_compacted", err)
	}
	head, err := Resync(ctx, src, st, 0, nil)
	if err != nil || head != 10 {
		t.Fatalf("Resync = %d, %v; want head 10", head, err)
	}
	if off, _ := st.Offset(ctx, 0); off != 10 {
		t.Fatalf("offset %d after the resync, want 10", off)
	}
	want := map[string]string{"r1": "completed", "r2": "expired", "r3": "confirmed", "r4": "cancelled", "r5": "cancelled"}
	statuses := func() map[string]string {
		out := map[string]string{}
		for id, o := range readOrders(t, st) {
			out[id] = o.Status
		}
		return out
	}
	if got := statuses(); !reflect.DeepEqual(got, want) {
		t.Fatalf("after the resync: %v, want the state %v", got, want)
	}
	api.set(func(f *fakeAPI) { f.head = 0 }) // events 11..13, which the state already showed
	consumeUntil(t, src, st, int64(len(h.events)))
	if got := statuses(); !reflect.DeepEqual(got, want) {
		t.Fatalf("after reading on: %v, want %v", got, want)
	}
	if got := readHistory(t, st); !reflect.DeepEqual(got, []int64{11, 12, 13}) {
		t.Errorf("history %v, want the events after the head: [11 12 13]", got)
	}
}
