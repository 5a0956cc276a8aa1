package linearize

import (
	"sync"
	"testing"
	"time"
)

func TestRecorderConcurrentClients(t *testing.T) {
	rec := NewRecorder()
	const clients, each = 16, 50
	var wg sync.WaitGroup
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				p := rec.Call(Input{Op: OpReadResource, Client: c, Resource: res})
				switch i % 5 {
				case 0:
					p.Unknown()
				case 1:
					// left pending: counts as unknown
				default:
					p.Return(counts(1, 0, 0))
					p.Return(counts(2, 0, 0)) // ignored: the first answer counts
				}
			}
		}()
	}
	wg.Wait()
	h := rec.History()
	if len(h.Operations) != clients*each {
		t.Fatalf("%d operations, want %d", len(h.Operations), clients*each)
	}
	var end int64
	for _, op := range h.Operations {
		end = max(end, op.Return)
	}
	var unknown int
	for _, op := range h.Operations {
		ev, out := op.Input.(*Invocation), op.Output.(Output)
		if op.Call > op.Return || ev.Call != op.Call || ev.Return != op.Return || op.ClientId != ev.Client {
			t.Fatalf("times of %+v", op)
		}
		if out.IsUnknown() {
			unknown++
			if op.Return != end || ev.GaveUp > op.Return {
				t.Fatalf("unknown outcome returns at %d, end %d, gave up %d", op.Return, end, ev.GaveUp)
			}
		} else if out.Counts.Available != 1 {
			t.Fatalf("a second Return overwrote the first")
		}
	}
	if unknown != clients*each*2/5 {
		t.Fatalf("%d unknown outcomes", unknown)
	}
}

func TestRecorderPlacesServerTimesOnItsAxis(t *testing.T) {
	rec := NewRecorder()
	p := rec.Call(reserve("a", ""))
	wall := time.Now().Add(10 * time.Second).UTC().Round(0) // as parsed from JSON: no monotonic reading
	p.Return(created("r1", "a", 0))
	h := rec.History()
	op := h.Operations[0]
	e := onAxis(wall, h.Epoch)
	if e < op.Call+int64(9*time.Second) || e > op.Return+int64(11*time.Second) {
		t.Fatalf("expires_at at %d, op [%d, %d]", e, op.Call, op.Return)
	}
}
