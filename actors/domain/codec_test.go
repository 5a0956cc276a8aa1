package domain_test

import (
	"encoding/binary"
	"errors"
	"reflect"
	"runtime"
	"testing"

	"allot/actors/domain"
	"allot/actors/domain/domaintest"
)

// generated returns n events of a seeded stream, accepted and refused alike
// (unknown event types left out: they have no encoding), and the state the
// accepted ones led to.
func generated(t testing.TB, seed uint64, n int) ([]domain.Event, *domain.State) {
	g := domaintest.NewSeeded(seed)
	st := domain.NewState()
	events := make([]domain.Event, 0, n)
	for len(events) < n {
		ev, err := g.Next(st)
		if err == nil {
			if err := st.Apply(&ev); err != nil {
				t.Fatal(err)
			}
		}
		if ev.Type >= domain.EvPutResource && ev.Type <= domain.EvTransition {
			events = append(events, ev)
		}
	}
	return events, st
}

func roundTrip(t *testing.T, events []domain.Event) {
	t.Helper()
	data := domain.EncodeBatch(nil, &domain.Batch{Events: events})
	b, err := domain.DecodeBatch(data)
	if err != nil {
		t.Fatalf("decode %d events: %v", len(events), err)
	}
	if len(b.Events) != len(events) {
		t.Fatalf("%d events back, want %d", len(b.Events), len(events))
	}
	for i := range events {
		if !reflect.DeepEqual(b.Events[i], events[i]) {
			t.Fatalf("event %d:\n got %+v\nwant %+v", i, b.Events[i], events[i])
		}
	}
}

func TestBatchRoundTrip(t *testing.T) {
	events, _ := generated(t, 5, 3000)
	for _, size := range []int{0, 1, 2, 7, 100, 1024, 1500} {
		for i := 0; i+size <= len(events); i += max(size, 1) * 3 {
			roundTrip(t, events[i:i+size])
		}
	}
	// The smallest events: a delete at time 0 (or before 1970) of a one-letter id.
	small := make([]domain.Event, 100)
	for i := range small {
		small[i] = domain.Event{Type: domain.EvDeleteResource, At: int64(-i), ResourceID: "a"}
	}
	roundTrip(t, small)
	if n := len(domain.EncodeBatch(nil, &domain.Batch{Events: small[:1]})); n != 7 {
		t.Fatalf("a batch of one minimal event takes %d bytes, want 7", n)
	}
}

func TestDecodeBatchCorrupt(t *testing.T) {
	events, _ := generated(t, 6, 40)
	data := domain.EncodeBatch(nil, &domain.Batch{Events: events})
	corrupt := func(name string, data []byte) {
		t.Helper()
		if _, err := domain.DecodeBatch(data); !errors.Is(err, domain.ErrCorrupt) {
			t.Errorf("%s: %v, want ErrCorrupt", name, err)
		}
	}
	for i := range data {
		corrupt("prefix", data[:i])
	}
	corrupt("trailing byte", append(data[:len(data):len(data)], 0))
	corrupt("version", append([]byte{domain.BatchVersion + 1}, data[1:]...))

	one := func(ev domain.Event) []byte {
		return domain.EncodeBatch(nil, &domain.Batch{Events: []domain.Event{ev}})
	}
	del := one(domain.Event{Type: domain.EvDeleteResource, At: 1, ResourceID: "a"})
	bad := append([]byte(nil), del...)
	bad[len(bad)-1] = 2 // the idempotency flag is 0 or 1
	corrupt("idempotency flag", bad)
	bad = append([]byte(nil), del...)
	bad[2] = 200 // event type
	corrupt("event type", bad)
	corrupt("huge count", binary.AppendUvarint([]byte{domain.BatchV1}, 1<<62))
	corrupt("count over input", binary.AppendUvarint([]byte{domain.BatchV1}, 2))
	corrupt("varint overflow", append([]byte{domain.BatchV1, 1, byte(domain.EvDeleteResource)}, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01))
	corrupt("string over input", append([]byte{domain.BatchV1, 1, byte(domain.EvDeleteResource), 2}, 0x7f, 'a', 0))
	corrupt("version 2 with term 0", []byte{domain.BatchV2, 0, 0})
	corrupt("version 2 without a term", []byte{domain.BatchV2})
	corrupt("version 2 term overflow", []byte{domain.BatchV2, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0})
}

// TestBatchTermAndLogFormat: a batch with a term is version 2 and keeps its
// term; one without is version 1, which is also how every entry written
// before version 2 existed decodes (Term 0). The log-format event round-trips.
func TestBatchTermAndLogFormat(t *testing.T) {
	events, _ := generated(t, 7, 50)
	events = append(events, domain.Event{Type: domain.EvLogFormat, At: 5, LogFormat: domain.BatchV2})
	for _, term := range []uint64{0, 1, 300, 1 << 40} {
		data := domain.EncodeBatch(nil, &domain.Batch{Term: term, Events: events})
		want := byte(domain.BatchV1)
		if term != 0 {
			want = domain.BatchV2
		}
		if data[0] != want {
			t.Fatalf("term %d: version %d, want %d", term, data[0], want)
		}
		b, err := domain.DecodeBatch(data)
		if err != nil || b.Term != term || !reflect.DeepEqual(b.Events, events) {
			t.Fatalf("term %d: decoded term %d, %v", term, b.Term, err)
		}
	}
	// A version-1 entry as the binaries before version 2 wrote it.
	old := []byte{domain.BatchV1, 1, byte(domain.EvDeleteResource), 0, 1, 'a', 0}
	if b, err := domain.DecodeBatch(old); err != nil || b.Term != 0 || len(b.Events) != 1 || b.Events[0].ResourceID != "a" {
		t.Fatalf("version 1 entry: %+v, %v", b, err)
	}
	for v := uint8(0); v < 10; v++ {
		if got, want := domain.LogFormatKnown(v), v >= domain.BatchV1 && v <= domain.BatchV4; got != want {
			t.Errorf("LogFormatKnown(%d) = %v", v, got)
		}
	}
}

// TestDecodeBatchAllocation: a count that the rest of the input cannot back
// costs no more than a normal batch's worth of memory.
func TestDecodeBatchAllocation(t *testing.T) {
	data := binary.AppendUvarint([]byte{domain.BatchV1}, 1<<16)
	data = append(data, make([]byte, 1<<18)...) // room for 1<<16 events, but event type 0 is corrupt
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := domain.DecodeBatch(data)
	runtime.ReadMemStats(&after)
	if !errors.Is(err, domain.ErrCorrupt) {
		t.Fatal(err)
	}
	if n := after.TotalAlloc - before.TotalAlloc; n > 1<<20 {
		t.Fatalf("decoding %d corrupt bytes allocated %d bytes", len(data), n)
	}
}

// normalized returns r with empty maps and slices as nil (the encoding does
// not tell them apart).
func normalized(r *domain.Resource) *domain.Resource {
	c := r.Clone()
	if len(c.UserUnits) == 0 {
		c.UserUnits = nil
	}
	if len(c.Nights) == 0 {
		c.Nights = nil
	}
	if len(c.Spec.Inventory) == 0 {
		c.Spec.Inventory = nil
	}
	if len(c.Spec.Attributes) == 0 {
		c.Spec.Attributes = nil
	}
	return c
}

// TestStateRecordsRoundTrip encodes every record of a state the way a
// snapshot does, restores a new State from them and checks it is the same:
// equal hash, the same invariants, and the same future.
func TestStateRecordsRoundTrip(t *testing.T) {
	_, st := generated(t, 7, 1500)
	restored := domain.NewState()
	var buf []byte
	err := st.EachResource(func(r *domain.Resource) error {
		buf = domain.AppendResource(buf[:0], r)
		got, err := domain.DecodeResource(buf)
		if err != nil {
			return err
		}
		if !reflect.DeepEqual(normalized(got), normalized(r)) {
			t.Fatalf("resource\n got %+v\nwant %+v", got, r)
		}
		if _, err := domain.DecodeResource(buf[:len(buf)-1]); !errors.Is(err, domain.ErrCorrupt) {
			t.Fatalf("truncated resource: %v", err)
		}
		restored.LoadResource(got)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	err = st.EachReservation(func(res domain.Reservation) error {
		buf = domain.AppendReservation(buf[:0], &res)
		got, err := domain.DecodeReservation(buf)
		if err != nil || got != res {
			t.Fatalf("reservation\n got %+v (%v)\nwant %+v", got, err, res)
		}
		if _, err := domain.DecodeReservation(append(buf, 0)); !errors.Is(err, domain.ErrCorrupt) {
			t.Fatalf("reservation with a trailing byte: %v", err)
		}
		restored.LoadReservation(got)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	idem := 0
	err = st.EachIdem(func(rec domain.IdemRecord) error {
		idem++
		buf = domain.AppendIdem(buf[:0], &rec)
		got, err := domain.DecodeIdem(buf)
		if err != nil || got != rec {
			t.Fatalf("idempotency record\n got %+v (%v)\nwant %+v", got, err, rec)
		}
		restored.LoadIdem(got)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if idem == 0 {
		t.Fatal("the stream left no idempotency record to encode")
	}
	restored.LoadLastTime(st.LastTime())
	if restored.Hash() != st.Hash() {
		t.Fatal("the restored state differs")
	}
	if err := restored.CheckInvariants(); err != nil {
		t.Fatal(err)
	}
	// Both go on the same way.
	g := domaintest.NewSeeded(8)
	for range 500 {
		ev, err := g.Next(st)
		if err != nil {
			continue
		}
		if err := st.Apply(&ev); err != nil {
			t.Fatal(err)
		}
		if err := restored.Apply(&ev); err != nil {
			t.Fatalf("restored: %+v: %v", ev, err)
		}
	}
	if restored.Hash() != st.Hash() {
		t.Fatal("the restored state went elsewhere")
	}
}

// FuzzDecodeBatch: arbitrary bytes never panic the decoder, never make it
// allocate more events than the input could hold, and whatever decodes
// re-encodes to the same batch and can be put to Apply without panicking or
// breaking an invariant.
func FuzzDecodeBatch(f *testing.F) {
	events, base := generated(f, 9, 400)
	for i := 0; i+8 <= len(events); i += 40 {
		f.Add(domain.EncodeBatch(nil, &domain.Batch{Events: events[i : i+8]}))
	}
	f.Add([]byte{})
	f.Add([]byte{domain.BatchV1, 0})
	f.Add([]byte{domain.BatchV1, 1, byte(domain.EvDeleteResource), 0, 1, 'a', 0})
	f.Add(domain.EncodeBatch(nil, &domain.Batch{Term: 7, Events: events[:3]}))
	f.Add(domain.EncodeBatch(nil, &domain.Batch{Events: []domain.Event{{Type: domain.EvLogFormat, LogFormat: 2}}}))
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := domain.DecodeBatch(data)
		if err != nil {
			if !errors.Is(err, domain.ErrCorrupt) {
				t.Fatalf("error %v is not ErrCorrupt", err)
			}
			return
		}
		if len(b.Events) > len(data)/4 {
			t.Fatalf("%d events from %d bytes", len(b.Events), len(data))
		}
		again, err := domain.DecodeBatch(domain.EncodeBatch(nil, &b))
		if err != nil || !reflect.DeepEqual(again, b) {
			t.Fatalf("re-encoded batch: %v\n got %+v\nwant %+v", err, again, b)
		}
		st := base.Clone()
		for i := range b.Events {
			before := st.Hash()
			if err := st.Apply(&b.Events[i]); err != nil && st.Hash() != before {
				t.Fatalf("refused %+v (%v) but the state changed", b.Events[i], err)
			}
			if err := st.CheckInvariants(); err != nil {
				t.Fatalf("after %+v: %v", b.Events[i], err)
			}
		}
	})
}

// TestBatchWithPrune: a stamped batch that carries EvPrune is version 3 (a
// version-2 binary stops on its first byte), one without stays version 2;
// the prune event round-trips, and an out-of-range count does not decode.
func TestBatchWithPrune(t *testing.T) {
	pr := domain.Event{Type: domain.EvPrune, At: 7e18, PruneBefore: -5, PruneMax: domain.MaxPrunePerEvent}
	put := domain.Event{Type: domain.EvDeleteResource, At: 1, ResourceID: "a"}
	for _, c := range []struct {
		term   uint64
		events []domain.Event
		want   byte
	}{
		{9, []domain.Event{put, pr}, domain.BatchV3},
		{9, []domain.Event{put}, domain.BatchV2},
		{0, []domain.Event{pr}, domain.BatchV1},
	} {
		data := domain.EncodeBatch(nil, &domain.Batch{Term: c.term, Events: c.events})
		if data[0] != c.want {
			t.Fatalf("term %d, %d events: version %d, want %d", c.term, len(c.events), data[0], c.want)
		}
		b, err := domain.DecodeBatch(data)
		if err != nil || b.Term != c.term || !reflect.DeepEqual(b.Events, c.events) {
			t.Fatalf("round trip: %+v, %v", b, err)
		}
	}
	bad := domain.EncodeBatch(nil, &domain.Batch{Term: 1, Events: []domain.Event{{Type: domain.EvPrune, PruneMax: domain.MaxPrunePerEvent + 1}}})
	if _, err := domain.DecodeBatch(bad); !errors.Is(err, domain.ErrCorrupt) {
		t.Fatalf("prune of too many: %v", err)
	}
}
