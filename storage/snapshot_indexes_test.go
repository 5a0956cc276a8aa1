package storage

import (
	"bytes"
	"encoding/binary"
	"slices"
	"strconv"
	"testing"

	"allot/actors/domain"
	"allot/actors/domain/domaintest"
)

// everyKindState is a state with every kind of thing a snapshot carries:
// vouchers, slots and rooms with nights (a generated history), limit
// groups, idempotency records, reservations in every status, retired units
// of pruned ones, webhooks, and enough resources and users for maps of
// many shards. It returns the generator, to go on with the same history.
func everyKindState(t *testing.T) (*domain.State, *domaintest.Gen) {
	t.Helper()
	st := domain.NewState()
	st.RaiseLogFormat(domain.BatchV4)
	g := domaintest.NewSeeded(21).WithLimits()
	apply := func(ev domain.Event) {
		t.Helper()
		if err := st.Apply(&ev); err != nil {
			t.Fatalf("%+v: %v", ev, err)
		}
	}
	for applied := 0; applied < 4000; {
		if ev, err := g.Next(st); err == nil {
			apply(ev)
			applied++
		}
	}
	at := st.LastTime()
	oldest, _ := st.OldestFinished()
	apply(domain.Event{Type: domain.EvPrune, At: at, PruneBefore: oldest + (at-oldest)/2, PruneMax: domain.MaxPrunePerEvent})
	for i := range 3000 {
		id := "bulk-" + strconv.Itoa(i)
		apply(domain.Event{Type: domain.EvPutResource, At: at, ResourceID: id,
			Spec: domain.Spec{Kind: domain.KindVoucher, Capacity: 100, HoldSeconds: 900}})
	}
	for i := range 30000 {
		res := domain.Reservation{ID: "b" + strconv.Itoa(i*7919%30000), ResourceID: "bulk-" + strconv.Itoa(i%3000),
			Kind: domain.KindVoucher, User: "u" + strconv.Itoa(i%4999), Quantity: 1, Status: domain.StatusHeld,
			CreatedAt: at, ExpiresAt: at + 900e9, UpdatedAt: at}
		ev := domain.Event{Type: domain.EvReserve, At: at, ResourceID: res.ResourceID, Reservation: res}
		if i%3 == 0 {
			ev.Idem = &domain.IdemRecord{User: res.User, Key: "k" + res.ID, Code: 201, Reservation: res, CreatedAt: at}
		}
		apply(ev)
	}
	apply(domain.Event{Type: domain.EvPutWebhook, At: at, Hook: &domain.WebhookOp{Webhook: domain.Webhook{
		ID: "orders", URL: "https://orders.example/in", Secret: "0123456789abcdef0123456789abcdef", Types: []string{"reservation.*"}}}})

	kinds := map[domain.Kind]bool{}
	statuses := map[domain.Status]bool{}
	_ = st.EachReservation(func(res domain.Reservation) error {
		kinds[res.Kind], statuses[res.Status] = true, true
		return nil
	})
	_, _, idem, held := st.Counts()
	if len(kinds) != 3 || len(statuses) < 4 || st.LimitCount() == 0 || idem == 0 || held == 0 ||
		st.RetiredResources() == 0 || st.Finished() == 0 || st.WebhookCount() == 0 {
		t.Fatalf("the state lacks a kind of thing: kinds %v, statuses %v, %d limits, %d idem, %d held, %d retired, %d finished, %d webhooks",
			kinds, statuses, st.LimitCount(), idem, held, st.RetiredResources(), st.Finished(), st.WebhookCount())
	}
	return st, g
}

// sameIndexes fails unless got answers every listing like want: all
// reservations, each user's and each resource's in id order, the held ones
// of each resource, the expiry index, the finished index and the limit
// groups' members. State.Hash covers the maps, not these indexes.
func sameIndexes(t *testing.T, want, got *domain.State) {
	t.Helper()
	list := func(st *domain.State, user, resource string) []string {
		var ids []string
		st.ListReservations(user, resource, "", func(res domain.Reservation) bool {
			ids = append(ids, res.ID+"/"+res.ResourceID+"/"+res.User)
			return true
		})
		return ids
	}
	users, resources := map[string]bool{}, map[string]bool{}
	_ = want.EachReservation(func(res domain.Reservation) error {
		users[res.User], resources[res.ResourceID] = true, true
		return nil
	})
	if !slices.Equal(list(want, "", ""), list(got, "", "")) {
		t.Fatal("the reservations list differently")
	}
	for u := range users {
		if w, g := list(want, u, ""), list(got, u, ""); !slices.Equal(w, g) {
			t.Fatalf("user %s: %v, want %v", u, g, w)
		}
	}
	for r := range resources {
		if w, g := list(want, "", r), list(got, "", r); !slices.Equal(w, g) {
			t.Fatalf("resource %s: %v, want %v", r, g, w)
		}
		var w, g []string
		want.EachHeldOf(r, func(res domain.Reservation) { w = append(w, res.ID) })
		got.EachHeldOf(r, func(res domain.Reservation) { g = append(g, res.ID) })
		if !slices.Equal(w, g) {
			t.Fatalf("resource %s holds %v, want %v", r, g, w)
		}
	}
	held := func(st *domain.State) []string {
		var ids []string
		st.EachHeld(func(res domain.Reservation) { ids = append(ids, res.ID) })
		slices.Sort(ids)
		return ids
	}
	if !slices.Equal(held(want), held(got)) {
		t.Fatal("the expiry indexes differ")
	}
	wo, _ := want.OldestFinished()
	if o, _ := got.OldestFinished(); o != wo || got.Finished() != want.Finished() {
		t.Fatalf("finished index: oldest %d of %d, want %d of %d", o, got.Finished(), wo, want.Finished())
	}
	_ = want.EachLimit(func(l *domain.Limit) error {
		if gl, ok := got.Limit(l.ID); !ok || !slices.Equal(gl.Members(), l.Members()) || gl.Taken != l.Taken {
			t.Fatalf("limit %s restored as %+v, want %+v", l.ID, gl, l)
		}
		return nil
	})
}

// restoresLike reads stream and checks that the state it restores is
// want's: the same hash, serialised as data (want's own snapshot), its
// invariants held, every index the same. It returns the restored state.
func restoresLike(t *testing.T, want *domain.State, data, stream []byte) *domain.State {
	t.Helper()
	got, err := ReadSnapshot(bytes.NewReader(stream))
	if err != nil {
		t.Fatal(err)
	}
	if got.Hash() != want.Hash() || !bytes.Equal(encode(t, got), data) {
		t.Fatal("the restored state hashes or serialises differently")
	}
	if err := got.CheckInvariants(); err != nil {
		t.Fatal(err)
	}
	sameIndexes(t, want, got)
	return got
}

// TestSnapshotRestoresEveryIndex: a state restored from a snapshot hashes
// and serialises exactly like its source, answers every listing like it,
// goes on like it, and a view frozen from it stays as it was while the
// restored state is applied to.
func TestSnapshotRestoresEveryIndex(t *testing.T) {
	st, g := everyKindState(t)
	data := encode(t, st)
	got := restoresLike(t, st, data, data)

	// Into the lists the restore built, before and after a freeze: only
	// the state that built them writes to them in place.
	at := st.LastTime()
	more := func(prefix string, n int, mayFail bool) { // mayFail: the history may have deleted the resource

		t.Helper()
		for i := range n {
			res := domain.Reservation{ID: prefix + strconv.Itoa(i), ResourceID: "bulk-" + strconv.Itoa(i%3000),
				Kind: domain.KindVoucher, User: "u" + strconv.Itoa(i%4999), Quantity: 1, Status: domain.StatusHeld,
				CreatedAt: at, ExpiresAt: at + 900e9, UpdatedAt: at}
			ev := domain.Event{Type: domain.EvReserve, At: at, ResourceID: res.ResourceID, Reservation: res}
			if e1, e2 := st.Apply(&ev), got.Apply(&ev); (e1 == nil) != (e2 == nil) || (e1 != nil && !mayFail) {
				t.Fatalf("reservation %s: the source says %v, the restored state %v", res.ID, e1, e2)
			}
		}
	}
	more("a", 2000, false)
	sameIndexes(t, st, got)
	before := encode(t, got)
	frozen := got.Freeze()
	for i := 0; i < 3000; i++ {
		ev, derr := g.Next(st)
		if derr != nil {
			continue
		}
		if e1, e2 := st.Apply(&ev), got.Apply(&ev); (e1 == nil) != (e2 == nil) {
			t.Fatalf("event %d: the source says %v, the restored state %v", i, e1, e2)
		}
	}
	more("c", 2000, true)
	if got.Hash() != st.Hash() {
		t.Fatal("the restored state went on differently")
	}
	sameIndexes(t, st, got)
	if err := got.CheckInvariants(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(encode(t, frozen), before) {
		t.Fatal("writes to the restored state changed a view frozen from it")
	}
}

// record is one record of a snapshot stream, whole (type, length, payload).
type record struct {
	typ   byte
	whole []byte
}

// records splits a snapshot stream into its header and its records before
// the end record.
func records(data []byte) (head []byte, recs []record) {
	p := data[len(snapshotMagic)+1:]
	for p[0] != recEnd {
		n, k := binary.Uvarint(p[1:])
		end := 1 + k + int(n)
		recs = append(recs, record{p[0], p[:end]})
		p = p[end:]
	}
	return data[:len(snapshotMagic)+1], recs
}

// assemble makes a stream of head and recs, with an end record that counts
// them and a checksum.
func assemble(head []byte, recs []record) []byte {
	out := bytes.Clone(head)
	var counts [4]uint64
	for _, r := range recs {
		if r.typ >= recResource && r.typ <= recMember {
			counts[r.typ-recResource]++
		}
		out = append(out, r.whole...)
	}
	return withEnd(out, counts[:]...)
}

// TestSnapshotRecordsInAnyOrder: a stream whose reservation records are
// split into runs by records of other types (not what WriteSnapshot
// writes, but valid) restores to the same state as the stream in order.
func TestSnapshotRecordsInAnyOrder(t *testing.T) {
	st, _ := everyKindState(t)
	data := encode(t, st)
	head, recs := records(data)
	var resv, first, rest []record
	for _, r := range recs {
		switch r.typ {
		case recReservation:
			resv = append(resv, r)
		case recResource, recLimit: // before the reservations, as they need them
			first = append(first, r)
		default:
			rest = append(rest, r)
		}
	}
	// The reservations in three runs, the first and the last in reverse,
	// with other records between them.
	third := len(resv) / 3
	runs := [][]record{resv[:third], resv[third : 2*third], resv[2*third:]}
	slices.Reverse(runs[0])
	slices.Reverse(runs[2])
	order := first
	for i, run := range runs {
		order = append(order, run...)
		if i == 0 {
			order = append(order, rest[0])
			rest = rest[1:]
		}
	}
	order = append(order, rest...)
	restoresLike(t, st, data, assemble(head, order))
}

// TestSnapshotDuplicateInRun: a reservation or idempotency record twice
// within one run of records, which load together, is corruption, as it
// was when they loaded one at a time.
func TestSnapshotDuplicateInRun(t *testing.T) {
	st, _ := everyKindState(t)
	head, recs := records(encode(t, st))
	for _, typ := range []byte{recReservation, recIdem} {
		i := slices.IndexFunc(recs, func(r record) bool { return r.typ == typ })
		i += 7 // inside the run
		dup := slices.Insert(slices.Clone(recs), i+1, recs[i])
		wantCorrupt(t, assemble(head, dup), "record of type "+strconv.Itoa(int(typ))+" twice")
	}
}
