package linearize

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

// epoch is the wall time at offset 0 of hand-built histories.
var epoch = time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)

// at is the wall time sec seconds into a hand-built history.
func at(sec float64) time.Time { return epoch.Add(time.Duration(sec * float64(time.Second))) }

// hist builds a history by hand: each operation with its call and return in
// seconds.
type hist struct {
	ops []porcupine.Operation
}

func (h *hist) op(client int, call, ret float64, in Input, out Output) *hist {
	in.Client = client
	c, r := int64(call*1e9), int64(ret*1e9)
	h.ops = append(h.ops, porcupine.Operation{ClientId: client, Input: &Invocation{Input: in, Call: c, Return: r},
		Call: c, Output: out, Return: r})
	return h
}

// unknown adds an operation whose outcome the client never learned.
func (h *hist) unknown(client int, call float64, in Input) *hist {
	return h.op(client, call, call, in, Output{Unknown: true})
}

// history gives unknown outcomes the end of the history as return, as the
// Recorder does.
func (h *hist) history() History {
	var end int64
	for _, op := range h.ops {
		end = max(end, op.Return)
	}
	out := History{Epoch: epoch}
	for _, op := range h.ops {
		if op.Output.(Output).IsUnknown() {
			op.Return = end + 1
			op.Input.(*Invocation).Return = end + 1
			op.Input.(*Invocation).GaveUp = op.Call
		}
		out.Operations = append(out.Operations, op)
	}
	return out
}

const res = "flash-1"

func voucher(capacity, limit int64, hold time.Duration) map[string]Spec {
	return map[string]Spec{res: {Kind: "voucher", Capacity: capacity, PerUserLimit: limit, Hold: hold}}
}

func opts(specs map[string]Spec) Options {
	return Options{Resources: specs, Skew: 100 * time.Millisecond, Lateness: time.Second, Timeout: 10 * time.Second}
}

func check(t *testing.T, h *hist, o Options) Result {
	t.Helper()
	if o.VisualizationPath == "" {
		o.VisualizationPath = filepath.Join(t.TempDir(), "viz.html")
	}
	r, err := Check(h.history(), o)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func wantOk(t *testing.T, h *hist, o Options) Result {
	t.Helper()
	r := check(t, h, o)
	if !r.Ok() {
		t.Fatalf("want Ok, got %s", r)
	}
	return r
}

func wantIllegal(t *testing.T, h *hist, o Options) {
	t.Helper()
	if r := check(t, h, o); r.Outcome != porcupine.Illegal {
		t.Fatalf("want Illegal, got %s", r)
	}
}

// Inputs and outputs.

func reserve(user, key string) Input {
	return Input{Op: OpReserve, Resource: res, User: user, Key: key}
}

func transition(op Op, user, id string) Input {
	return Input{Op: op, Resource: res, User: user, ID: id}
}

func getRes(user, id string) Input {
	return Input{Op: OpReadReservation, Resource: res, User: user, ID: id}
}

func readRes() Input { return Input{Op: OpReadResource, Resource: res, User: "reader"} }

func listAll() Input { return Input{Op: OpListReservations, Resource: res, User: "admin", Admin: true} }

func created(id, user string, expires float64) Output {
	r := &Reservation{ID: id, User: user, Quantity: 1, Status: "held"}
	if expires > 0 {
		r.ExpiresAt = at(expires)
	}
	return Output{Status: 201, Reservation: r}
}

func replayed(id, user string, expires float64) Output {
	o := created(id, user, expires)
	o.Replayed = true
	return o
}

func ok200(id, user, st string) Output {
	return Output{Status: 200, Reservation: &Reservation{ID: id, User: user, Quantity: 1, Status: st}}
}

func held(id, user string, expires float64) Output {
	o := ok200(id, user, "held")
	o.Reservation.ExpiresAt = at(expires)
	return o
}

func problem(status int, code string) Output { return Output{Status: status, Code: code} }

func counts(avail, held, conf int64) Output {
	return Output{Status: 200, Counts: &Counts{Available: avail, Held: held, Confirmed: conf}}
}

func listed(items ...Reservation) Output { return Output{Status: 200, List: items} }

func item(id, user, st string) Reservation {
	return Reservation{ID: id, User: user, Quantity: 1, Status: st}
}
