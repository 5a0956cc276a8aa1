package scenario

import (
	"fmt"
	"sync/atomic"
)

// seckill is a flash sale: Users users race for Vouchers vouchers of Stock
// units each. Every user tries once at a random voucher (retrying 503s with
// the same Idempotency-Key); most winners pay (confirm) at once, some leave
// the hold, and a few click again with a new key, which the per-user limit
// of 1 must refuse.
type seckill struct {
	prefix   string
	users    int64
	next     atomic.Int64
	vouchers []target
	defs     []ResourceDef
	plans    []weightedPlan
}

func newSeckill(p Params, env Env) *seckill {
	s := &seckill{prefix: env.Prefix, users: p.Users}
	body := []byte(`{"quantity":1}`)
	spec := mustJSON(resourceSpec{Kind: "voucher", Capacity: p.Stock, PerUserLimit: 1, HoldSeconds: 900,
		Attributes: map[string]string{"sale": "flash"}})
	for i := range p.Vouchers {
		id := fmt.Sprintf("%s-sk-v%03d", env.Prefix, i)
		s.vouchers = append(s.vouchers, target{resource: id, path: reservePath(id), body: body, qty: 1})
		s.defs = append(s.defs, ResourceDef{ID: id, Body: spec})
	}
	reserve := step{op: OpReserve, key: "a"}
	pay := step{op: OpConfirm, key: "c"}
	s.plans = []weightedPlan{
		{[]step{reserve, pay}, 85},
		{[]step{reserve}, 10},
		{[]step{reserve, {op: OpReserve, key: "b"}, pay}, 5},
	}
	return s
}

func (s *seckill) limits() []LimitDef { return nil }

func (s *seckill) resources() []ResourceDef { return s.defs }

func (s *seckill) start(w *worker) *flow {
	n := s.next.Add(1)
	if n > s.users {
		return nil
	}
	user := fmt.Sprintf("%s-sk-u%d", s.prefix, n)
	auth := w.mintUser(user)
	i := w.rng.IntN(len(s.vouchers))
	return &flow{user: user, auth: auth, tgt: s.vouchers[i], choice: i, plan: pickPlan(w.rng, s.plans)}
}

// retarget: a seckill user does not try another voucher.
func (s *seckill) retarget(*worker, *flow) bool { return false }

// elsewhere: a seckill user clicks again on the same voucher.
func (s *seckill) elsewhere(*worker, *flow) {}
