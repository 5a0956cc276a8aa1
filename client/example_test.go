package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"allot/actors/domain"
	"allot/client"
)

// nodeURLs is the node list of a client: every node of the cluster, or
// any subset; here the examples' single node.
func nodeURLs() []string { return []string{exampleNode.url} }

func newClient(token string) *client.Client {
	c, err := client.New(nodeURLs(), client.Options{Token: token})
	if err != nil {
		log.Fatal(err)
	}
	return c
}

// A flash sale: an admin puts a voucher on sale, a user holds one and
// confirms it once paid.
func Example() {
	ctx := context.Background()
	admin := newClient(token("ops", "admin"))
	if _, _, err := admin.PutResource(ctx, "flash-1", client.ResourceSpec{Kind: client.KindVoucher, Capacity: 100}); err != nil {
		log.Fatal(err)
	}

	ann := newClient(token("ann", "user"))
	held, err := ann.Reserve(ctx, "flash-1", client.ReserveRequest{Quantity: 1})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(held.Status, held.User, held.Quantity)
	done, err := ann.Confirm(ctx, held.ID)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(done.Status)
	v, err := ann.GetResource(ctx, "flash-1")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("available", v.Available, "confirmed", v.Confirmed)
	// Output:
	// held ann 1
	// confirmed
	// available 99 confirmed 1
}

// Refusals are errors that errors.Is matches against the domain's
// sentinels; errors.As gives the problem's details.
func ExampleProblemError() {
	ctx := context.Background()
	admin := newClient(token("ops", "admin"))
	if _, _, err := admin.PutResource(ctx, "last-seat", client.ResourceSpec{Kind: client.KindVoucher, Capacity: 1}); err != nil {
		log.Fatal(err)
	}
	if _, err := newClient(token("ann", "user")).Reserve(ctx, "last-seat", client.ReserveRequest{}); err != nil {
		log.Fatal(err)
	}
	_, err := newClient(token("bob", "user")).Reserve(ctx, "last-seat", client.ReserveRequest{})
	switch {
	case errors.Is(err, domain.ErrSoldOut):
		var pe *client.ProblemError
		errors.As(err, &pe)
		fmt.Println("sold out:", pe.Status, pe.Code)
	case err != nil:
		log.Fatal(err)
	}
	// Output:
	// sold out: 409 sold_out
}

// A caller that keeps its own Idempotency-Key (an order id) can retry the
// call at any later time and gets the first answer back, never a second
// reservation.
func ExampleIdempotencyKey() {
	ctx := context.Background()
	admin := newClient(token("ops", "admin"))
	if _, _, err := admin.PutResource(ctx, "dr-li-0800", client.ResourceSpec{Kind: client.KindSlot, Capacity: 3}); err != nil {
		log.Fatal(err)
	}
	ann := newClient(token("ann", "user"))
	first, err := ann.Reserve(ctx, "dr-li-0800", client.ReserveRequest{}, client.IdempotencyKey("order-1001"))
	if err != nil {
		log.Fatal(err)
	}
	var resp client.Response
	again, err := ann.Reserve(ctx, "dr-li-0800", client.ReserveRequest{}, client.IdempotencyKey("order-1001"), client.Capture(&resp))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("same reservation:", again.ID == first.ID, "replayed:", resp.Replayed)
	// Output:
	// same reservation: true replayed: true
}

// Lists are iterators over every page.
func ExampleClient_Resources() {
	ctx := context.Background()
	admin := newClient(token("ops", "admin"))
	for _, id := range []string{"room-b", "room-a", "room-c"} {
		spec := client.ResourceSpec{Kind: client.KindRoom, Inventory: []client.InventoryRow{{From: "2026-12-01", To: "2026-12-03", Rooms: 4}}}
		if _, _, err := admin.PutResource(ctx, id, spec); err != nil {
			log.Fatal(err)
		}
	}
	for r, err := range admin.Resources(ctx, client.ResourceQuery{Prefix: "room-", PageSize: 2}) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(r.ID, r.Kind, r.Inventory[0].Rooms)
	}
	// Output:
	// room-a room 4
	// room-b room 4
	// room-c room 4
}

// A downstream consumer reads the change stream from where it stopped:
// it stores Next after handling events and resumes from it.
func ExampleEventReader() {
	ctx := context.Background()
	admin := newClient(token("ops", "admin"))
	if _, _, err := admin.PutResource(ctx, "coupon-5", client.ResourceSpec{Kind: client.KindVoucher, Capacity: 10}); err != nil {
		log.Fatal(err)
	}
	ann := newClient(token("ann", "user"))
	r, err := ann.Reserve(ctx, "coupon-5", client.ReserveRequest{})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := ann.Cancel(ctx, r.ID); err != nil {
		log.Fatal(err)
	}

	feed := newClient(token("orders-db", "consumer"))
	events := feed.EventReader(0, client.EventQuery{Resource: "coupon-5"})
	for e, err := range events.All(ctx) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%s from %q\n", e.Type, e.From)
	}
	saved := events.Next() // store it with what the events changed

	// Later, or in another process: nothing new since.
	more := 0
	for _, err := range feed.EventReader(saved, client.EventQuery{Resource: "coupon-5"}).All(ctx) {
		if err != nil {
			log.Fatal(err)
		}
		more++
	}
	fmt.Println("new events:", more)
	// Output:
	// resource.created from ""
	// reservation.held from ""
	// reservation.cancelled from "held"
	// new events: 0
}
