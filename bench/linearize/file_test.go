package linearize

import (
	"bytes"
	"reflect"
	"testing"
	"time"
)

func TestSaveLoadRoundTrip(t *testing.T) {
	start := time.Now()
	var now int64
	r := newRecorder(start, func() int64 { now += 1000; return now })
	a := r.Call(Input{Op: OpReserve, Client: 1, Resource: "v", User: "alice", Key: "k"})
	b := r.Call(Input{Op: OpReadResource, Client: 2, Resource: "v", User: "bob"})
	a.Return(Output{Status: 201, Reservation: &Reservation{ID: "r1", User: "alice", Quantity: 1, Status: "held"}})
	b.Unknown()
	h := r.History()
	opts := Options{Resources: map[string]Spec{"v": {Kind: "voucher", Capacity: 1, Hold: time.Second}}, Skew: time.Millisecond}
	var buf bytes.Buffer
	if err := Save(&buf, h, opts); err != nil {
		t.Fatal(err)
	}
	h2, opts2, err := Load(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if !h.Epoch.Equal(h2.Epoch) || len(h2.Operations) != len(h.Operations) {
		t.Fatalf("loaded %d operations at %v, saved %d at %v", len(h2.Operations), h2.Epoch, len(h.Operations), h.Epoch)
	}
	for i := range h.Operations {
		if !reflect.DeepEqual(h.Operations[i], h2.Operations[i]) {
			t.Fatalf("operation %d:\n saved %+v\nloaded %+v", i, h.Operations[i], h2.Operations[i])
		}
	}
	if !reflect.DeepEqual(opts2.Resources, opts.Resources) || opts2.Skew != opts.Skew {
		t.Fatalf("options %+v, saved %+v", opts2, opts)
	}
	r1, err1 := Check(h, opts)
	r2, err2 := Check(h2, opts2)
	if err1 != nil || err2 != nil || r1.Outcome != r2.Outcome {
		t.Fatalf("checks differ: %v %v / %v %v", r1, err1, r2, err2)
	}
}
