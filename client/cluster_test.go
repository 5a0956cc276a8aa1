package client_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"allot/actors/domain"
	"allot/client"
	"allot/cmd/allot/server/servertest"
	"allot/httpapi"
)

// cluster is a 3-node in-process cluster and clients of it.
type cluster struct {
	*servertest.Cluster
	t     *testing.T
	admin *client.Client
}

func newCluster(t *testing.T) *cluster {
	t.Helper()
	c := servertest.MakeCluster(t, 3, servertest.Options{})
	cl := &cluster{Cluster: c, t: t}
	cl.admin = cl.as("admin", httpapi.RoleAdmin)
	return cl
}

// as is a client of every running node acting as user with role.
func (c *cluster) as(user, role string, opts ...func(*client.Options)) *client.Client {
	c.t.Helper()
	var urls []string
	for _, nd := range c.Running() {
		urls = append(urls, nd.URL())
	}
	o := client.Options{Token: c.Token(user, role), MinBackoff: 20 * time.Millisecond}
	for _, f := range opts {
		f(&o)
	}
	cl, err := client.New(urls, o)
	if err != nil {
		c.t.Fatal(err)
	}
	return cl
}

func (c *cluster) voucher(id string, capacity, perUser int64, limits ...string) {
	c.t.Helper()
	spec := client.ResourceSpec{Kind: client.KindVoucher, Capacity: capacity, PerUserLimit: client.Int64(perUser), Limits: limits}
	if _, created, err := c.admin.PutResource(context.Background(), id, spec); err != nil || !created {
		c.t.Fatalf("put %s: created %v, %v", id, created, err)
	}
}

func collect[T any](t *testing.T, seq func(func(T, error) bool)) []T {
	t.Helper()
	var out []T
	for v, err := range seq {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
	}
	return out
}

// TestWriteDuringLeaderKillCommitsOnce: a reserve is in flight when the
// leader is killed (its log write held up by a slow disk); the client
// retries it with the same Idempotency-Key through the other nodes until
// the new leader answers, and the committed state holds exactly one
// reservation for it.
func TestWriteDuringLeaderKillCommitsOnce(t *testing.T) {
	c := newCluster(t)
	c.voucher("seats", 100, 0)
	leader := c.Leader()
	ann := c.as("ann", httpapi.RoleUser)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// ann's client learns where the leader is.
	if _, err := ann.Reserve(ctx, "seats", client.ReserveRequest{}); err != nil {
		t.Fatal(err)
	}

	store := leader.LogStore()
	delayed := store.Stats().Delayed
	store.SetDelay(2 * time.Second)
	type result struct {
		r    *client.Reservation
		resp client.Response
		err  error
	}
	done := make(chan result, 1)
	go func() {
		var res result
		res.r, res.err = ann.Reserve(ctx, "seats", client.ReserveRequest{Quantity: 2}, client.IdempotencyKey("order-7"), client.Capture(&res.resp))
		done <- res
	}()
	c.WaitFor("the write reaches the leader's log", func() error {
		if store.Stats().Delayed == delayed {
			return errors.New("no write held up yet")
		}
		return nil
	})
	c.Stop(leader.Index())
	res := <-done
	if res.err != nil {
		t.Fatalf("reserve across the leader kill: %v", res.err)
	}
	if res.resp.Attempts < 2 || res.resp.Node == leader.ID() {
		t.Errorf("answered by %s after %d attempts: want a retry answered by a new leader (old %s)", res.resp.Node, res.resp.Attempts, leader.ID())
	}
	var mine []client.Reservation
	for x, err := range c.admin.Reservations(ctx, client.ReservationQuery{User: "ann", Resource: "seats"}, client.WithConsistency(client.Linearizable)) {
		if err != nil {
			t.Fatal(err)
		}
		if x.Quantity == 2 {
			mine = append(mine, x)
		}
	}
	if len(mine) != 1 || mine[0].ID != res.r.ID {
		t.Fatalf("reservations of 2 units: %+v; want exactly the one answered, %s", mine, res.r.ID)
	}
	// The key stays bound to it: a retry later is a replay.
	var again client.Response
	r2, err := ann.Reserve(ctx, "seats", client.ReserveRequest{Quantity: 2}, client.IdempotencyKey("order-7"), client.Capture(&again))
	if err != nil || r2.ID != res.r.ID || !again.Replayed {
		t.Fatalf("retry of order-7: %+v replayed %v, %v; want %s replayed", r2, again.Replayed, err, res.r.ID)
	}
}

// TestTypedErrors: each refusal matches its domain sentinel with errors.Is
// and is a *ProblemError with the status, code and body.
func TestTypedErrors(t *testing.T) {
	c := newCluster(t)
	ctx := context.Background()
	if _, _, err := c.admin.PutLimit(ctx, "day-1", client.LimitSpec{PerUser: 1}); err != nil {
		t.Fatal(err)
	}
	c.voucher("last-one", 1, 0)
	c.voucher("one-each", 5, 1)
	c.voucher("clinic-a", 5, 0, "day-1")
	c.voucher("clinic-b", 5, 0, "day-1")
	ann, bob := c.as("ann", httpapi.RoleUser), c.as("bob", httpapi.RoleUser)
	one := client.ReserveRequest{Quantity: 1}

	mustOK := func(cl *client.Client, id string, opts ...client.CallOption) *client.Reservation {
		t.Helper()
		r, err := cl.Reserve(ctx, id, one, opts...)
		if err != nil {
			t.Fatalf("reserve %s: %v", id, err)
		}
		return r
	}
	mustOK(ann, "last-one")
	mustOK(ann, "one-each")
	mustOK(ann, "clinic-a")
	held := mustOK(bob, "one-each", client.IdempotencyKey("bob-1"))
	if _, err := bob.Cancel(ctx, held.ID); err != nil {
		t.Fatal(err)
	}
	bad := c.as("mallory", httpapi.RoleUser, func(o *client.Options) { o.Token = "not-a-jwt" })

	_, errSoldOut := bob.Reserve(ctx, "last-one", one)
	_, errNotFound := ann.GetResource(ctx, "no-such-thing")
	_, errOwnLimit := ann.Reserve(ctx, "one-each", one)
	_, errGroupLimit := ann.Reserve(ctx, "clinic-b", one)
	_, errKeyReused := bob.Reserve(ctx, "clinic-a", one, client.IdempotencyKey("bob-1"))
	_, errState := bob.Confirm(ctx, held.ID)
	_, errOwner := ann.Confirm(ctx, held.ID)
	_, errAuth := bad.GetResource(ctx, "last-one")
	_, errArg := ann.Reserve(ctx, "one-each", client.ReserveRequest{Quantity: -1})

	for _, tc := range []struct {
		name     string
		err      error
		sentinel error
		status   int
		code     string
		limit    string
	}{
		{"sold out", errSoldOut, domain.ErrSoldOut, 409, "sold_out", ""},
		{"not found", errNotFound, domain.ErrNotFound, 404, "not_found", ""},
		{"per-user limit", errOwnLimit, domain.ErrLimitExceeded, 409, "limit_exceeded", ""},
		{"limit group", errGroupLimit, domain.ErrLimitExceeded, 409, "limit_exceeded", "day-1"},
		{"key reused", errKeyReused, domain.ErrIdempotencyKeyReused, 422, "idempotency_key_reused", ""},
		{"invalid state", errState, domain.ErrInvalidState, 409, "invalid_state", ""},
		{"not the owner", errOwner, domain.ErrPermissionDenied, 403, "permission_denied", ""},
		{"bad token", errAuth, domain.ErrUnauthenticated, 401, "unauthenticated", ""},
		{"bad quantity", errArg, domain.ErrInvalidArgument, 400, "invalid_argument", ""},
	} {
		if !errors.Is(tc.err, tc.sentinel) {
			t.Errorf("%s: %v does not match %v", tc.name, tc.err, tc.sentinel)
			continue
		}
		if errors.Is(tc.err, domain.ErrOutcomeUnknown) || (tc.sentinel != domain.ErrSoldOut && errors.Is(tc.err, domain.ErrSoldOut)) {
			t.Errorf("%s: %v matches another sentinel too", tc.name, tc.err)
		}
		var pe *client.ProblemError
		if !errors.As(tc.err, &pe) || pe.Status != tc.status || pe.Code != tc.code || pe.Limit != tc.limit || pe.Detail == "" || len(pe.Body) == 0 {
			t.Errorf("%s: %#v, want status %d code %s limit %q with detail and body", tc.name, tc.err, tc.status, tc.code, tc.limit)
		}
	}
}

// TestIteratorsPage: the list iterators walk every page in id order, and
// stop when the loop does.
func TestIteratorsPage(t *testing.T) {
	c := newCluster(t)
	ctx := context.Background()
	var want []string
	for i := range 23 {
		id := fmt.Sprintf("p-%02d", i)
		c.voucher(id, 5, 0)
		want = append(want, id)
	}
	c.voucher("q-other", 5, 0)
	var got []string
	for _, r := range collect(t, c.admin.Resources(ctx, client.ResourceQuery{Prefix: "p-", PageSize: 5})) {
		got = append(got, r.ID)
		if r.Kind != client.KindVoucher || r.Available != 5 || r.Capacity != 5 {
			t.Errorf("%+v", r)
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("resources %v, want %v", got, want)
	}
	n := 0
	for range c.admin.Resources(ctx, client.ResourceQuery{PageSize: 2}) {
		if n++; n == 3 {
			break
		}
	}

	ann := c.as("ann", httpapi.RoleUser)
	var ids []string
	for _, id := range want[:12] {
		r, err := ann.Reserve(ctx, id, client.ReserveRequest{})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.ID)
	}
	slices.Sort(ids)
	var listed []string
	for _, r := range collect(t, ann.Reservations(ctx, client.ReservationQuery{PageSize: 5})) {
		listed = append(listed, r.ID)
	}
	if !slices.Equal(listed, ids) {
		t.Fatalf("reservations %v, want %v", listed, ids)
	}
	held := collect(t, c.admin.Reservations(ctx, client.ReservationQuery{Resource: "p-03", Status: client.StatusHeld}))
	if len(held) != 1 || held[0].User != "ann" || held[0].ExpiresAt.IsZero() {
		t.Fatalf("held on p-03: %+v", held)
	}

	for i := range 7 {
		if _, _, err := c.admin.PutLimit(ctx, fmt.Sprintf("l-%d", i), client.LimitSpec{Capacity: 10}); err != nil {
			t.Fatal(err)
		}
	}
	if ls := collect(t, c.admin.Limits(ctx, client.LimitQuery{Prefix: "l-", PageSize: 3})); len(ls) != 7 || ls[6].ID != "l-6" || ls[0].Capacity != 10 {
		t.Fatalf("limits %+v", ls)
	}
}

// TestEventsResumeWithoutLoss: a reader stopped half-way and a new one
// started from its Next offset (on another node) together see the whole
// stream, each offset once; a following reader gets a new event by
// long-poll.
func TestEventsResumeWithoutLoss(t *testing.T) {
	c := newCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c.voucher("stream-1", 100, 0)
	ann := c.as("ann", httpapi.RoleUser)
	for range 20 {
		if _, err := ann.Reserve(ctx, "stream-1", client.ReserveRequest{}); err != nil {
			t.Fatal(err)
		}
	}
	// Each node serves the stream from its own copy; a follower may be a
	// moment behind, and a reader there is caught up at its head.
	c.WaitConverged()
	feed := c.as("feed", httpapi.RoleConsumer)
	all := collect(t, feed.EventReader(0, client.EventQuery{PageSize: 1000}).All(ctx))
	if len(all) < 21 {
		t.Fatalf("%d events, want at least 21", len(all))
	}

	first := feed.EventReader(0, client.EventQuery{PageSize: 4})
	var seen []int64
	for e, err := range first.All(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		seen = append(seen, e.Offset)
		if len(seen) == 10 { // mid-page: 10 is the second of the third page
			break
		}
	}
	if first.Next() != seen[len(seen)-1] {
		t.Fatalf("Next %d after yielding %d", first.Next(), seen[len(seen)-1])
	}
	// Resume elsewhere: a client that asks the last node first.
	nodes := feed.Nodes()
	slices.Reverse(nodes)
	other, err := client.New(nodes, client.Options{Token: c.Token("feed", httpapi.RoleConsumer)})
	if err != nil {
		t.Fatal(err)
	}
	second := other.EventReader(first.Next(), client.EventQuery{PageSize: 4})
	for e, err := range second.All(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		seen = append(seen, e.Offset)
	}
	var want []int64
	for _, e := range all {
		want = append(want, e.Offset)
	}
	if !slices.Equal(seen, want) {
		t.Fatalf("offsets read in two parts %v, want %v", seen, want)
	}
	for i, off := range want {
		if off != int64(i+1) {
			t.Fatalf("stream offsets %v: not 1..n", want)
		}
	}
	if e := all[len(all)-1]; e.Type != "reservation.held" || e.Reservation == nil || e.Reservation.User != "ann" || e.ResourceID != "stream-1" || e.IdempotencyKey == "" {
		t.Errorf("last event %+v", e)
	}

	// Follow: the reader waits at the head until the next event commits.
	follow := feed.EventReader(second.Next(), client.EventQuery{Follow: true, Wait: 10 * time.Second, Types: []string{"reservation.*"}})
	got := make(chan client.Event, 1)
	go func() {
		for e, err := range follow.All(ctx) {
			if err == nil {
				got <- e
			}
			return
		}
	}()
	r, err := ann.Reserve(ctx, "stream-1", client.ReserveRequest{})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case e := <-got:
		if e.Reservation == nil || e.Reservation.ID != r.ID || e.Offset != want[len(want)-1]+1 {
			t.Fatalf("followed event %+v, want reservation %s at %d", e, r.ID, want[len(want)-1]+1)
		}
	case <-ctx.Done():
		t.Fatal("the following reader saw no event")
	}
}

// TestUnknownOutcomeIsRetriedOnce: the leader commits a reserve but its
// engine is told the outcome is unknown (an answer lost mid-commit); the
// client's retry with the same key gets the committed reservation instead
// of making a second one.
func TestUnknownOutcomeIsRetriedOnce(t *testing.T) {
	c := newCluster(t)
	c.voucher("seats", 100, 0)
	ctx := context.Background()
	for _, nd := range c.Running() {
		nd.Outcomes().FailNext(1)
	}
	ann := c.as("ann", httpapi.RoleUser)
	var resp client.Response
	r, err := ann.Reserve(ctx, "seats", client.ReserveRequest{Quantity: 3}, client.Capture(&resp))
	if err != nil {
		t.Fatal(err)
	}
	if resp.Attempts < 2 || !resp.Replayed {
		t.Errorf("%d attempts, replayed %v: want the retry to replay the committed answer", resp.Attempts, resp.Replayed)
	}
	list := collect(t, c.admin.Reservations(ctx, client.ReservationQuery{Resource: "seats"}, client.WithConsistency(client.Linearizable)))
	if len(list) != 1 || list[0].ID != r.ID {
		t.Fatalf("reservations %+v, want exactly %s", list, r.ID)
	}
}

// TestClusterInfo: the client reads the cluster's view and learns the
// leader from it.
func TestClusterInfo(t *testing.T) {
	c := newCluster(t)
	leader := c.Leader()
	info, err := c.admin.Cluster(context.Background(), client.WithStateHash())
	if err != nil {
		t.Fatal(err)
	}
	if info.Leader == nil || info.Leader.ID != leader.ID() || len(info.Nodes) != 3 || info.StateHash == "" || info.ID == "" {
		t.Fatalf("cluster %+v", info)
	}
	if c.admin.LeaderURL() != leader.URL() {
		t.Errorf("leader URL %q, want %s", c.admin.LeaderURL(), leader.URL())
	}
}
