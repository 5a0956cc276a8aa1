package scenario

import (
	"fmt"
	"sync/atomic"
	"time"
)

// Campaign sizes that are not flags.
const (
	couponHoldSeconds = 10 // abandoned holds give their coupon back within a run
	couponTries       = 2  // vouchers a user tries when one is sold out
)

// campaign is a coupon campaign: several vouchers (10 % off, free
// delivery, ...) share one limit group that allows one coupon per user
// whichever voucher (per_user 1) and a quota for the whole campaign
// (capacity) smaller than the vouchers' summed stock, so that it is the
// quota that sells out and refuses with limit_exceeded, not a voucher
// with sold_out. Users pick a voucher; most confirm, some cancel (the
// coupon goes back to the quota), some let the hold expire, and some try
// a second voucher, which the per-user bound refuses.
type campaign struct {
	prefix   string
	next     atomic.Int64
	limit    []LimitDef
	vouchers []target
	defs     []ResourceDef
	plans    []weightedPlan
}

func newCampaign(p Params, env Env) *campaign {
	c := &campaign{prefix: env.Prefix}
	limitID := env.Prefix + "-cmp-quota"
	c.limit = []LimitDef{{ID: limitID, Body: mustJSON(limitSpec{PerUser: 1, Capacity: p.CampaignQuota,
		Attributes: map[string]string{"campaign": "bench"}})}}
	body := []byte(`{"quantity":1}`)
	for i := range p.CampaignVouchers {
		id := fmt.Sprintf("%s-cmp-v%02d", env.Prefix, i)
		spec := resourceSpec{Kind: "voucher", Capacity: p.CampaignStock, PerUserLimit: 1, HoldSeconds: couponHoldSeconds,
			Attributes: map[string]string{"campaign": "bench"}, Limits: []string{limitID}}
		c.vouchers = append(c.vouchers, target{resource: id, path: reservePath(id), body: body, qty: 1})
		c.defs = append(c.defs, resourceDef(id, spec))
	}
	think := 200 * time.Millisecond
	reserve := step{op: OpReserve, key: "a"}
	confirm := step{op: OpConfirm, think: think, key: "c"}
	cancel := step{op: OpCancel, think: think, key: "x"}
	again := step{op: OpReserve, think: think, key: "b", elsewhere: true}
	c.plans = []weightedPlan{
		{[]step{reserve, confirm}, 70},
		{[]step{reserve, confirm, again}, 10}, // a second coupon: refused
		{[]step{reserve, cancel}, 8},
		{[]step{reserve, confirm, cancel}, 4},
		{[]step{reserve}, 8}, // the hold expires
	}
	return c
}

func (c *campaign) limits() []LimitDef { return c.limit }

func (c *campaign) resources() []ResourceDef { return c.defs }

func (c *campaign) start(w *worker) *flow {
	n := c.next.Add(1)
	user := fmt.Sprintf("%s-cmp-u%d", c.prefix, n)
	auth := w.mintUser(user)
	i := w.rng.IntN(len(c.vouchers))
	return &flow{user: user, auth: auth, tgt: c.vouchers[i], choice: i, plan: pickPlan(w.rng, c.plans)}
}

// retarget tries another voucher when one is sold out.
func (c *campaign) retarget(w *worker, f *flow) bool {
	if f.tries+1 >= couponTries || len(c.vouchers) < 2 {
		return false
	}
	c.elsewhere(w, f)
	return true
}

// elsewhere moves f to another voucher of the campaign.
func (c *campaign) elsewhere(w *worker, f *flow) {
	if len(c.vouchers) < 2 {
		return
	}
	f.choice = (f.choice + 1 + w.rng.IntN(len(c.vouchers)-1)) % len(c.vouchers)
	f.tgt = c.vouchers[f.choice]
}
