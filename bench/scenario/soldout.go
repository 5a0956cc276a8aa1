package scenario

import (
	"fmt"
	"sync/atomic"
)

// soldOut is the rejection path alone: Vouchers vouchers of Stock units
// each, all sold during setup (the presale, played by sellers), so that
// every reserve of the measured phase is a fresh user answered
// 409 sold_out. Nothing the measured phase does touches the log.
type soldOut struct {
	prefix   string
	next     atomic.Int64
	vouchers []target
	defs     []ResourceDef
	plan     []weightedPlan
	sellers  *sellers
}

func newSoldOut(p Params, env Env) *soldOut {
	s := &soldOut{prefix: env.Prefix}
	body := []byte(`{"quantity":1}`)
	spec := mustJSON(resourceSpec{Kind: "voucher", Capacity: p.Stock, PerUserLimit: 1, HoldSeconds: 900,
		Attributes: map[string]string{"sale": "sold-out"}})
	for i := range p.Vouchers {
		id := fmt.Sprintf("%s-so-v%03d", env.Prefix, i)
		s.vouchers = append(s.vouchers, target{resource: id, path: reservePath(id), body: body, qty: 1})
		s.defs = append(s.defs, ResourceDef{ID: id, Body: spec})
	}
	s.plan = []weightedPlan{{[]step{{op: OpReserve, key: "a"}}, 1}}
	s.sellers = &sellers{prefix: env.Prefix, vouchers: s.vouchers, units: int64(p.Vouchers) * p.Stock,
		plan: []weightedPlan{{[]step{{op: OpReserve, key: "a"}, {op: OpConfirm, key: "c"}}, 1}}}
	return s
}

func (s *soldOut) limits() []LimitDef { return nil }

func (s *soldOut) resources() []ResourceDef { return s.defs }

// start: users keep coming until the measured phase ends.
func (s *soldOut) start(w *worker) *flow {
	user := fmt.Sprintf("%s-so-u%d", s.prefix, s.next.Add(1))
	i := w.rng.IntN(len(s.vouchers))
	return &flow{user: user, auth: w.mintUser(user), tgt: s.vouchers[i], choice: i, plan: s.plan[0].plan}
}

func (s *soldOut) retarget(*worker, *flow) bool { return false }

func (s *soldOut) elsewhere(*worker, *flow) {}

// sellers is soldOut's presale: one buyer per unit, in turn over the
// vouchers, each reserving and paying, until every unit is sold.
type sellers struct {
	prefix   string
	vouchers []target
	units    int64
	next     atomic.Int64
	plan     []weightedPlan
}

func (s *sellers) limits() []LimitDef { return nil }

// resources: soldOut creates them.
func (s *sellers) resources() []ResourceDef { return nil }

func (s *sellers) start(w *worker) *flow {
	n := s.next.Add(1)
	if n > s.units {
		return nil
	}
	user := fmt.Sprintf("%s-so-s%d", s.prefix, n)
	i := int((n - 1) % int64(len(s.vouchers)))
	return &flow{user: user, auth: w.mintUser(user), tgt: s.vouchers[i], choice: i, plan: s.plan[0].plan}
}

func (s *sellers) retarget(*worker, *flow) bool { return false }

func (s *sellers) elsewhere(*worker, *flow) {}
