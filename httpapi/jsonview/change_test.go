package jsonview

import (
	"encoding/json"
	"reflect"
	"testing"

	"allot/actors/domain"
)

// A resource change renders the stored spec, with attributes in key order
// (the same bytes on every node, whatever the map order) and escapes.
func TestAppendChangeResource(t *testing.T) {
	r := &domain.Resource{ID: "room-1", CreatedAt: 1e18, UpdatedAt: 1e18 + 5, Spec: domain.Spec{
		Kind: domain.KindRoom, PerUserLimit: 2, HoldSeconds: 600, OpensAt: 1e18,
		Inventory:  []domain.InventoryRow{{From: 20000, To: 20002, Rooms: 3}},
		Attributes: map[string]string{"z": "last", "a\"q": "first\n", "m": "ü"},
	}}
	ch := domain.Change{Offset: 7, Type: domain.ChangeResourceCreated, At: 1e18 + 5, ResourceID: "room-1", Kind: domain.KindRoom, Resource: r}
	first := string(AppendChange(nil, &ch))
	for range 20 {
		if again := string(AppendChange(nil, &ch)); again != first {
			t.Fatalf("two renderings differ:\n%s\n%s", first, again)
		}
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(first), &got); err != nil {
		t.Fatalf("%v: %s", err, first)
	}
	want := map[string]any{
		"offset": 7.0, "shard": 0.0, "type": "resource.created", "at": "2001-09-09T01:46:40.000000005Z",
		"resource_id": "room-1", "kind": "room",
		"resource": map[string]any{
			"id": "room-1", "kind": "room", "capacity": 0.0, "per_user_limit": 2.0, "hold_seconds": 600.0,
			"opens_at": "2001-09-09T01:46:40Z", "created_at": "2001-09-09T01:46:40Z", "updated_at": "2001-09-09T01:46:40.000000005Z",
			"inventory":  []any{map[string]any{"from": "2024-10-04", "to": "2024-10-06", "rooms": 3.0}},
			"attributes": map[string]any{"z": "last", "a\"q": "first\n", "m": "ü"},
			"limits":     []any{},
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got  %v\nwant %v", got, want)
	}
}

// A reservation change carries the reservation as GET shows it, the status
// it left ("" when new) and the Idempotency-Key.
func TestAppendChangeReservation(t *testing.T) {
	res := domain.Reservation{ID: "r1", ResourceID: "v", Kind: domain.KindVoucher, User: "alice", Quantity: 1,
		Status: domain.StatusConfirmed, CreatedAt: 1e18, UpdatedAt: 1e18 + 1}
	for _, c := range []struct {
		from domain.Status
		want string
	}{{0, ""}, {domain.StatusHeld, "held"}} {
		ch := domain.Change{Offset: 1, Type: domain.ReservationChange(res.Status), At: 1e18 + 1, ResourceID: "v",
			Kind: domain.KindVoucher, Reservation: res, From: c.from, IdemKey: "order-1"}
		var got map[string]any
		if err := json.Unmarshal(AppendChange(nil, &ch), &got); err != nil {
			t.Fatal(err)
		}
		if got["type"] != "reservation.confirmed" || got["from"] != c.want || got["idempotency_key"] != "order-1" {
			t.Fatalf("%v", got)
		}
		resv := got["reservation"].(map[string]any)
		if resv["id"] != "r1" || resv["status"] != "confirmed" || resv["user"] != "alice" {
			t.Fatalf("reservation %v", resv)
		}
	}
	// A deleted resource names it and its kind only.
	var del map[string]any
	if err := json.Unmarshal(AppendChange(nil, &domain.Change{Offset: 2, Type: domain.ChangeResourceDeleted, ResourceID: "v", Kind: domain.KindSlot}), &del); err != nil {
		t.Fatal(err)
	}
	if del["type"] != "resource.deleted" || del["kind"] != "slot" || del["resource"] != nil || del["reservation"] != nil {
		t.Fatalf("%v", del)
	}
}

// Every change type has its API name, and the reservation ones follow the
// statuses.
func TestChangeTypeNames(t *testing.T) {
	for _, st := range []domain.Status{domain.StatusHeld, domain.StatusConfirmed, domain.StatusCancelled, domain.StatusExpired, domain.StatusCheckedIn, domain.StatusCompleted} {
		if got := domain.ReservationChange(st).String(); got != "reservation."+st.String() {
			t.Errorf("%v: %s", st, got)
		}
	}
	if n := len(domain.ChangeTypes()); n != 11 {
		t.Errorf("%d change types", n)
	}
}

// Limit changes name the limit and carry it as stored; a deleted one only
// its id. They have no resource.
func TestAppendChangeLimit(t *testing.T) {
	l := &domain.Limit{ID: "day", Spec: domain.LimitSpec{PerUser: 1, Capacity: 9, Attributes: map[string]string{"h": "n"}}, CreatedAt: 1e18, UpdatedAt: 1e18}
	var got map[string]any
	if err := json.Unmarshal(AppendChange(nil, &domain.Change{Offset: 3, Type: domain.ChangeLimitUpdated, At: 1e18, Limit: l}), &got); err != nil {
		t.Fatal(err)
	}
	lim, _ := got["limit"].(map[string]any)
	if got["type"] != "limit.updated" || got["limit_id"] != "day" || got["resource_id"] != nil || lim["per_user"] != 1.0 || lim["capacity"] != 9.0 || lim["attributes"].(map[string]any)["h"] != "n" {
		t.Fatalf("%v", got)
	}
	got = nil
	if err := json.Unmarshal(AppendChange(nil, &domain.Change{Offset: 4, Type: domain.ChangeLimitDeleted, At: 1e18, Limit: &domain.Limit{ID: "day"}}), &got); err != nil {
		t.Fatal(err)
	}
	if got["type"] != "limit.deleted" || got["limit_id"] != "day" || got["limit"] != nil {
		t.Fatalf("%v", got)
	}
}
