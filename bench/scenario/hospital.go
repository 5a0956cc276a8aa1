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
// is full. Most confirm, some cancel, some leave the hold to expire. The
// hospital allows one booking per patient a day, whichever doctor or slot:
// one limit group per day (per_user 1) that every slot of the day names.
// Some patients try to book a second doctor the same day, which the limit
// refuses; some cancel and book another doctor that day instead.
type hospital struct {
	prefix string
	next   atomic.Int64
	slots  []target // (doctor*hospitalDays + day)*slotsPerDay + slot
	days   []LimitDef
	defs   []ResourceDef
	plans  []weightedPlan
}

func newHospital(p Params, env Env) *hospital {
	h := &hospital{prefix: env.Prefix}
	body := []byte(`{"quantity":1}`)
	first := env.Today.UTC().Truncate(24*time.Hour).AddDate(0, 0, 1)
	for day := range hospitalDays {
		date := first.AddDate(0, 0, day).Format(time.DateOnly)
		h.days = append(h.days, LimitDef{ID: h.dayLimit(day, first),
			Body: mustJSON(limitSpec{PerUser: 1, Attributes: map[string]string{"hospital": "bench", "date": date}})})
	}
	for d := range p.Doctors {
		for day := range hospitalDays {
			date := first.AddDate(0, 0, day)
			for s := range slotsPerDay {
				at := date.Add(8*time.Hour + time.Duration(s)*30*time.Minute)
				id := fmt.Sprintf("%s-hos-d%03d-%s", h.prefix, d, at.Format("20060102-1504"))
				spec := resourceSpec{Kind: "slot", Capacity: p.SlotCapacity, PerUserLimit: 1, HoldSeconds: slotHoldSeconds,
					Attributes: map[string]string{"doctor": fmt.Sprintf("Dr. %03d", d), "starts_at": at.Format(time.RFC3339)},
					Limits:     []string{h.days[day].ID}}
				h.slots = append(h.slots, target{resource: id, path: reservePath(id), body: body, qty: 1})
				h.defs = append(h.defs, resourceDef(id, spec))
			}
		}
	}
	reserve := step{op: OpReserve, key: "a"}
	confirm := step{op: OpConfirm, think: 300 * time.Millisecond, key: "c"}
	cancel := step{op: OpCancel, think: 300 * time.Millisecond, key: "x"}
	// Another doctor the same day: refused by the day limit while the
	// first booking stands, accepted once it is cancelled.
	again := step{op: OpReserve, think: 300 * time.Millisecond, key: "b", elsewhere: true}
	confirmAgain := step{op: OpConfirm, think: 300 * time.Millisecond, key: "c2"}
	h.plans = []weightedPlan{
		{[]step{reserve, confirm}, 66},
		{[]step{reserve, confirm, again}, 8},
		{[]step{reserve, again, confirm}, 2}, // a second try while still holding
		{[]step{reserve, confirm, cancel}, 4},
		{[]step{reserve, cancel, again, confirmAgain}, 6}, // cancel and rebook
		{[]step{reserve, cancel}, 6},
		{[]step{reserve}, 8}, // the hold expires
	}
	return h
}

// dayLimit names the limit group of one hospital day.
func (h *hospital) dayLimit(day int, first time.Time) string {
	return fmt.Sprintf("%s-hos-day-%s", h.prefix, first.AddDate(0, 0, day).Format("20060102"))
}

func (h *hospital) limits() []LimitDef { return h.days }

func (h *hospital) resources() []ResourceDef { return h.defs }

func (h *hospital) start(w *worker) *flow {
	n := h.next.Add(1)
	user := fmt.Sprintf("%s-hos-p%d", h.prefix, n)
	auth := w.mintUser(user)
	doctors := len(h.slots) / (hospitalDays * slotsPerDay)
	u := w.rng.Float64()
	doctor := int(u * u * float64(doctors)) // skewed: low numbers are the popular doctors
	i := (doctor*hospitalDays+w.rng.IntN(hospitalDays))*slotsPerDay + w.rng.IntN(slotsPerDay)
	return &flow{user: user, auth: auth, tgt: h.slots[i], choice: i, plan: pickPlan(w.rng, h.plans), perUserOnly: true}
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

// elsewhere moves f to a random slot of another doctor the same day, so
// that only the day limit stands between the patient and a second booking.
func (h *hospital) elsewhere(w *worker, f *flow) {
	doctors := len(h.slots) / (hospitalDays * slotsPerDay)
	doctor, day := f.choice/(hospitalDays*slotsPerDay), f.choice/slotsPerDay%hospitalDays
	if doctors > 1 {
		doctor = (doctor + 1 + w.rng.IntN(doctors-1)) % doctors
	}
	f.choice = (doctor*hospitalDays+day)*slotsPerDay + w.rng.IntN(slotsPerDay)
	f.tgt = h.slots[f.choice]
}
