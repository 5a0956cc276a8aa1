package scenario

import (
	"fmt"
	"sync/atomic"
	"time"
)

// Hospital calendar: a week of half-hour slots from 08:00, 16 a day.
const (
	hospitalDays    = 7
	slotsPerDay     = 16
	slotHoldSeconds = 5 // short, so that abandoned holds expire within a run
	slotTries       = 3 // slots a patient tries on one day before giving up
)

// hospital is appointment booking: patients pick a doctor (a few are much
// more popular), a day and a slot, and try other slots of that day when it
// is full. Most confirm, some cancel, some leave the hold to expire.
type hospital struct {
	prefix string
	next   atomic.Int64
	slots  []target // (doctor*hospitalDays + day)*slotsPerDay + slot
	defs   []ResourceDef
	plans  []weightedPlan
}

func newHospital(p Params, env Env) *hospital {
	h := &hospital{prefix: env.Prefix}
	body := []byte(`{"quantity":1}`)
	first := env.Today.UTC().Truncate(24*time.Hour).AddDate(0, 0, 1)
	for d := range p.Doctors {
		for day := range hospitalDays {
			date := first.AddDate(0, 0, day)
			for s := range slotsPerDay {
				at := date.Add(8*time.Hour + time.Duration(s)*30*time.Minute)
				id := fmt.Sprintf("%s-hos-d%03d-%s", h.prefix, d, at.Format("20060102-1504"))
				spec := resourceSpec{Kind: "slot", Capacity: p.SlotCapacity, PerUserLimit: 1, HoldSeconds: slotHoldSeconds,
					Attributes: map[string]string{"doctor": fmt.Sprintf("Dr. %03d", d), "starts_at": at.Format(time.RFC3339)}}
				h.slots = append(h.slots, target{resource: id, path: reservePath(id), body: body, qty: 1})
				h.defs = append(h.defs, ResourceDef{ID: id, Body: mustJSON(spec)})
			}
		}
	}
	reserve := step{op: OpReserve, key: "a"}
	confirm := step{op: OpConfirm, think: 300 * time.Millisecond, key: "c"}
	cancel := step{op: OpCancel, think: 300 * time.Millisecond, key: "x"}
	h.plans = []weightedPlan{
		{[]step{reserve, confirm}, 76},
		{[]step{reserve, confirm, cancel}, 4},
		{[]step{reserve, cancel}, 10},
		{[]step{reserve}, 10}, // the hold expires
	}
	return h
}

func (h *hospital) resources() []ResourceDef { return h.defs }

func (h *hospital) start(w *worker) *flow {
	n := h.next.Add(1)
	user := fmt.Sprintf("%s-hos-p%d", h.prefix, n)
	auth := w.mintUser(user)
	doctors := len(h.slots) / (hospitalDays * slotsPerDay)
	u := w.rng.Float64()
	doctor := int(u * u * float64(doctors)) // skewed: low numbers are the popular doctors
	i := (doctor*hospitalDays+w.rng.IntN(hospitalDays))*slotsPerDay + w.rng.IntN(slotsPerDay)
	return &flow{user: user, auth: auth, tgt: h.slots[i], choice: i, plan: pickPlan(w.rng, h.plans)}
}

// retarget tries another slot of the same doctor and day.
func (h *hospital) retarget(w *worker, f *flow) bool {
	if f.tries+1 >= slotTries {
		return false
	}
	day := f.choice - f.choice%slotsPerDay
	f.choice = day + (f.choice-day+1+w.rng.IntN(slotsPerDay-1))%slotsPerDay
	f.tgt = h.slots[f.choice]
	return true
}
