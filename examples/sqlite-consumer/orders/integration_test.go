package orders

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"allot/cmd/allot/server/servertest"
	"allot/examples/sqlite-consumer/feed"
	"allot/httpapi"
)

// TestConsumeFromARealCluster runs the consumer against real nodes: it
// reads from a follower, that follower is killed halfway, and the
// database must end up with every reservation as the API shows it, each
// of its events applied once and in order.
func TestConsumeFromARealCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	c := servertest.MakeCluster(t, 1, servertest.Options{})
	probe, err := c.Client(0).As("orders", httpapi.RoleConsumer).Do(http.MethodGet, "/v1/events?after=0&limit=1", nil)
	if err != nil {
		t.Fatal(err)
	}
	if probe.Status == http.StatusNotFound {
		t.Skip("GET /v1/events answered 404: this build has no change stream, which this test needs")
	}
	if probe.Status != http.StatusOK {
		t.Fatalf("GET /v1/events as a consumer: %d %s", probe.Status, probe.Body)
	}
	f1, f2 := c.AddNode(), c.AddNode()
	c.WaitConverged()
	admin := c.Client(0)
	for id, hold := range map[string]int{"flash-1": 900, "instant-1": 0, "short-1": 1} {
		admin.Must(http.MethodPut, "/v1/resources/"+id, map[string]any{"kind": "voucher", "capacity": 10, "hold_seconds": hold}, http.StatusCreated)
	}

	st := openStore(t, filepath.Join(t.TempDir(), "orders.db"))
	cfg := feed.DefaultConfig()
	cfg.URLs, cfg.Token, cfg.Types = []string{f1.URL(), f2.URL()}, c.Token("orders", httpapi.RoleConsumer), "reservation.*"
	cfg.Wait, cfg.MaxBackoff = 2*time.Second, 200*time.Millisecond
	src, err := feed.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Consume(ctx, src, st, 0, nil) }()
	defer func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Consume: %v", err)
		}
	}()

	reserve := func(user, resource, key string) string {
		t.Helper()
		r := admin.As(user, httpapi.RoleUser).Must(http.MethodPost, "/v1/resources/"+resource+"/reservations",
			map[string]any{"quantity": 1}, http.StatusCreated, "Idempotency-Key", key)
		var res feed.Reservation
		if err := r.Decode(&res); err != nil {
			t.Fatal(err)
		}
		return res.ID
	}
	ids := map[string]string{
		"alice": reserve("alice", "flash-1", "order-1"),
		"bob":   reserve("bob", "flash-1", "order-2"),
		"carol": reserve("carol", "instant-1", "order-3"),
		"dave":  reserve("dave", "short-1", "order-4"),
	}
	admin.As("alice", httpapi.RoleUser).Must(http.MethodPost, "/v1/reservations/"+ids["alice"]+"/confirm", nil, http.StatusOK)
	admin.As("bob", httpapi.RoleUser).Must(http.MethodPost, "/v1/reservations/"+ids["bob"]+"/cancel", nil, http.StatusOK)
	waitForOrders(t, st, 3, 10*time.Second)

	c.Stop(f1.Index()) // the node the consumer reads from
	ids["erin"] = reserve("erin", "flash-1", "order-5")
	admin.Must(http.MethodPost, "/v1/reservations/"+ids["alice"]+"/complete", nil, http.StatusOK)

	want := map[string]struct {
		key     string
		history []string
	}{
		"alice": {"order-1", []string{"held", "confirmed", "completed"}},
		"bob":   {"order-2", []string{"held", "cancelled"}},
		"carol": {"order-3", []string{"confirmed"}},
		"dave":  {"order-4", []string{"held", "expired"}},
		"erin":  {"order-5", []string{"held"}},
	}
	c.WaitFor("the database matches the API", func() error {
		got := readOrders(t, st)
		for user, w := range want {
			var api feed.Reservation
			if err := admin.Must(http.MethodGet, "/v1/reservations/"+ids[user], nil, http.StatusOK).Decode(&api); err != nil {
				return err
			}
			o, ok := got[ids[user]]
			last := w.history[len(w.history)-1]
			switch {
			case !ok:
				return fmt.Errorf("%s's order %s is not in the database", user, ids[user])
			case api.Status != last:
				return fmt.Errorf("%s's reservation is %s in the API, waiting for %s", user, api.Status, last)
			case o.Status != api.Status || o.User != user || o.Key != w.key:
				return fmt.Errorf("%s's order is %+v, the API says %s (key %s)", user, o, api.Status, w.key)
			}
			if h := orderHistoryOf(t, st, ids[user]); !reflect.DeepEqual(h, w.history) {
				return fmt.Errorf("%s's order went through %v, want %v", user, h, w.history)
			}
		}
		if len(got) != len(want) {
			return fmt.Errorf("%d orders, want %d", len(got), len(want))
		}
		return nil
	})
	offs := readHistory(t, st)
	for i := 1; i < len(offs); i++ {
		if offs[i] <= offs[i-1] {
			t.Fatalf("applied offsets %v are not increasing", offs)
		}
	}
}

// waitForOrders waits until the database has n orders.
func waitForOrders(t *testing.T, st *Store, n int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for len(readOrders(t, st)) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d orders after %v, want %d", len(readOrders(t, st)), within, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// orderHistoryOf lists the statuses reservation id went through, as the
// applied events say.
func orderHistoryOf(t *testing.T, st *Store, id string) []string {
	t.Helper()
	rows, err := st.DB().Query(`SELECT type FROM order_events WHERE reservation_id = ? ORDER BY event_offset`, id)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var typ string
		if err := rows.Scan(&typ); err != nil {
			t.Fatal(err)
		}
		out = append(out, typ[len("reservation."):])
	}
	return out
}
