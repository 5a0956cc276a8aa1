package scenario

import (
	"fmt"
	"strconv"
	"sync/atomic"
	"time"
)

// Hotel calendar: 60 nights of inventory from 30 days ahead, with one week
// of fewer rooms; stays of 1-7 nights of 1 or 2 rooms.
const (
	hotelLead         = 30
	hotelNights       = 60
	hotelLeanFrom     = 14
	hotelLeanTo       = 21
	maxStay           = 7
	roomHoldSeconds   = 8
	roomTries         = 2 // room types a guest tries for the same stay
	doubleRoomPercent = 10
)

// stay is one (check-in, nights, rooms) choice with its request body.
type stay struct {
	checkIn, checkOut string
	qty               int64
	body              []byte
}

// hotel is room booking: guests pick a room type and a stay, try another
// room type when it is full, then mostly confirm, check in and complete;
// some cancel (held or confirmed), some let the hold expire.
type hotel struct {
	prefix string
	next   atomic.Int64
	types  []target // resource and path only; the stay gives the body
	stays  []stay   // (checkIn*maxStay + nights-1)*2 + rooms-1
	defs   []ResourceDef
	plans  []weightedPlan
}

func newHotel(p Params, env Env) *hotel {
	h := &hotel{prefix: env.Prefix}
	first := env.Today.UTC().Truncate(24*time.Hour).AddDate(0, 0, hotelLead)
	date := func(n int) string { return first.AddDate(0, 0, n).Format(time.DateOnly) }
	spec := mustJSON(resourceSpec{Kind: "room", PerUserLimit: 0, HoldSeconds: roomHoldSeconds,
		Inventory: []inventoryRow{
			{From: date(0), To: date(hotelNights), Rooms: p.Rooms},
			{From: date(hotelLeanFrom), To: date(hotelLeanTo), Rooms: max(1, p.Rooms*2/5)},
		}})
	for i := range p.RoomTypes {
		id := fmt.Sprintf("%s-htl-t%03d", h.prefix, i)
		h.types = append(h.types, target{resource: id, path: reservePath(id)})
		h.defs = append(h.defs, ResourceDef{ID: id, Body: spec})
	}
	for in := range hotelNights {
		for n := 1; n <= maxStay; n++ {
			for q := int64(1); q <= 2; q++ {
				st := stay{checkIn: date(in), checkOut: date(in + n), qty: q}
				st.body = []byte(`{"quantity":` + strconv.FormatInt(q, 10) +
					`,"check_in":"` + st.checkIn + `","check_out":"` + st.checkOut + `"}`)
				h.stays = append(h.stays, st)
			}
		}
	}
	think := 200 * time.Millisecond
	reserve := step{op: OpReserve, key: "a"}
	confirm := step{op: OpConfirm, think: think, key: "c"}
	checkIn := step{op: OpCheckIn, think: think, key: "i"}
	complete := step{op: OpComplete, think: think, key: "d"}
	cancel := step{op: OpCancel, think: think, key: "x"}
	h.plans = []weightedPlan{
		{[]step{reserve, confirm, checkIn, complete}, 35},
		{[]step{reserve, confirm}, 25},
		{[]step{reserve, confirm, checkIn}, 10},
		{[]step{reserve, confirm, cancel}, 10},
		{[]step{reserve, cancel}, 10},
		{[]step{reserve}, 10}, // the hold expires
	}
	return h
}

func (h *hotel) limits() []LimitDef { return nil }

func (h *hotel) resources() []ResourceDef { return h.defs }

func (h *hotel) start(w *worker) *flow {
	n := h.next.Add(1)
	user := fmt.Sprintf("%s-htl-g%d", h.prefix, n)
	auth := w.mintUser(user)
	nights := 1 + w.rng.IntN(maxStay)
	in := w.rng.IntN(hotelNights - nights + 1)
	rooms := 1
	if w.rng.IntN(100) < doubleRoomPercent {
		rooms = 2
	}
	f := &flow{user: user, auth: auth, choice: w.rng.IntN(len(h.types)),
		stay: (in*maxStay+nights-1)*2 + rooms - 1, plan: pickPlan(w.rng, h.plans)}
	h.aim(f)
	return f
}

// retarget tries another room type for the same stay.
func (h *hotel) retarget(w *worker, f *flow) bool {
	if f.tries+1 >= roomTries || len(h.types) < 2 {
		return false
	}
	f.choice = (f.choice + 1 + w.rng.IntN(len(h.types)-1)) % len(h.types)
	h.aim(f)
	return true
}

func (h *hotel) aim(f *flow) {
	st := &h.stays[f.stay]
	f.tgt = h.types[f.choice]
	f.tgt.body, f.tgt.checkIn, f.tgt.checkOut, f.tgt.qty = st.body, st.checkIn, st.checkOut, st.qty
}

// elsewhere: no hotel plan books twice.
func (h *hotel) elsewhere(*worker, *flow) {}
