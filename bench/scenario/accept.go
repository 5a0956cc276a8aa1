package scenario

import (
	"fmt"
	"sync/atomic"
)

// acceptStock is the capacity of an accept voucher: the most a resource
// may have, far more than any run can sell.
const acceptStock = 1 << 40

// accept is the accept path alone: Vouchers vouchers that never sell out,
// no holds (hold_seconds 0, so a reservation is confirmed as it is made),
// and a stream of fresh users each reserving once. Every reserve is
// answered 201 and is one committed entry; nothing else is sent.
type accept struct {
	prefix   string
	next     atomic.Int64
	vouchers []target
	defs     []ResourceDef
	plan     []step
}

func newAccept(p Params, env Env) *accept {
	a := &accept{prefix: env.Prefix, plan: []step{{op: OpReserve, key: "a"}}}
	body := []byte(`{"quantity":1}`)
	spec := mustJSON(resourceSpec{Kind: "voucher", Capacity: acceptStock, PerUserLimit: 1, HoldSeconds: 0,
		Attributes: map[string]string{"sale": "open"}})
	for i := range p.Vouchers {
		id := fmt.Sprintf("%s-ac-v%03d", env.Prefix, i)
		a.vouchers = append(a.vouchers, target{resource: id, path: reservePath(id), body: body, qty: 1})
		a.defs = append(a.defs, ResourceDef{ID: id, Body: spec})
	}
	return a
}

func (a *accept) limits() []LimitDef { return nil }

func (a *accept) resources() []ResourceDef { return a.defs }

// start: users keep coming until the measured phase ends.
func (a *accept) start(w *worker) *flow {
	user := fmt.Sprintf("%s-ac-u%d", a.prefix, a.next.Add(1))
	i := w.rng.IntN(len(a.vouchers))
	return &flow{user: user, auth: w.mintUser(user), tgt: a.vouchers[i], choice: i, plan: a.plan}
}

// retarget: nothing sells out; a user answered sold_out stops.
func (a *accept) retarget(*worker, *flow) bool { return false }

func (a *accept) elsewhere(*worker, *flow) {}
