package linearize

import (
	"container/heap"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"
)

// A simulated allot: a correct sequential server (independent of the
// model's code), clients that reserve, confirm, cancel, read and retry with
// the same key after an unknown outcome, and a discrete-event loop on a
// virtual clock, so that a seed replays the same history. Faults: answers
// lost after the write applied, writes lost, writes applied after the
// client gave up, 503 unavailable.

const (
	simHold   = 2 * time.Second
	simSkew   = 50 * time.Millisecond
	simLate   = 400 * time.Millisecond
	simOffset = 20 * time.Millisecond // leader clock ahead of the clients'
)

// simFinalClient is the lane of the reads of the final state.
const simFinalClient = 100

type simResv struct {
	id, user string
	qty      int64
	st       status
	e        int64 // expires_at, leader time (virtual ns)
	expireAt int64 // when the leader actually expires it (true virtual ns)
}

type simRecord struct {
	op  Op
	rid string
	qty int64
	out Output
}

type simResource struct {
	id   string
	spec Spec
	rs   map[string]*simResv
	recs map[string]simRecord
}

type simServer struct {
	rng    *rand.Rand
	epoch  time.Time
	res    map[string]*simResource
	nextID int
}

func (s *simServer) wall(ns int64) time.Time { return s.epoch.Add(time.Duration(ns)) }

func (s *simServer) show(x *simResv) *Reservation {
	r := &Reservation{ID: x.id, User: x.user, Quantity: x.qty, Status: x.st.String()}
	if x.st == stHeld {
		r.ExpiresAt = s.wall(x.e)
	}
	return r
}

// apply decides in at true time now.
func (s *simServer) apply(in Input, now int64) Output {
	r := s.res[in.Resource]
	leader := now + int64(simOffset)
	for _, x := range r.rs {
		if x.st == stHeld && x.expireAt <= now {
			x.st = stExpired
		}
	}
	k := scopedKey(in.User, in.Key)
	if in.Key != "" && in.Op.write() {
		if rec, ok := r.recs[k]; ok {
			if rec.op != in.Op || rec.rid != in.ID || rec.qty != in.quantity() {
				return problem(422, "idempotency_key_reused")
			}
			out := rec.out
			out.Replayed = true
			return out
		}
	}
	store := func(out Output) Output {
		if in.Key != "" {
			r.recs[k] = simRecord{op: in.Op, rid: in.ID, qty: in.quantity(), out: out}
		}
		return out
	}
	x := r.rs[in.ID]
	if in.Op.transition() {
		switch {
		case x == nil:
			return problem(404, "not_found")
		case !in.Admin && x.user != in.User:
			return problem(403, "permission_denied")
		}
	}
	switch in.Op {
	case OpReserve:
		var taken, mine int64
		for _, y := range r.rs {
			if y.st.taken() {
				taken += y.qty
				if y.user == in.User {
					mine += y.qty
				}
			}
		}
		q := in.quantity()
		if r.spec.PerUserLimit > 0 && mine+q > r.spec.PerUserLimit {
			return problem(409, "limit_exceeded")
		}
		if r.spec.Capacity-taken < q {
			return problem(409, "sold_out")
		}
		s.nextID++
		x := &simResv{id: fmt.Sprintf("%s-r%d", r.id, s.nextID), user: in.User, qty: q, st: stConfirmed}
		if r.spec.Hold > 0 {
			x.st = stHeld
			x.e = leader + int64(r.spec.Hold)
			x.expireAt = x.e - int64(simOffset) + s.rng.Int64N(int64(simLate))
		}
		r.rs[x.id] = x
		return store(Output{Status: 201, Reservation: s.show(x)})
	case OpConfirm, OpCancel, OpCheckIn, OpComplete:
		to := target(in.Op)
		switch {
		case x.st == to:
			return Output{Status: 200, Reservation: s.show(x)}
		case in.Op == OpConfirm && x.st == stHeld && leader >= x.e:
			return problem(409, "expired")
		case in.Op == OpConfirm && x.st == stHeld,
			in.Op == OpCancel && (x.st == stHeld || x.st == stConfirmed),
			in.Op == OpCheckIn && x.st == stConfirmed && r.spec.Kind != "voucher",
			in.Op == OpComplete && (x.st == stConfirmed || x.st == stCheckedIn):
			x.st = to
			return store(Output{Status: 200, Reservation: s.show(x)})
		}
		return problem(409, "invalid_state")
	case OpReadReservation:
		switch {
		case x == nil:
			return problem(404, "not_found")
		case !in.Admin && x.user != in.User:
			return problem(403, "permission_denied")
		}
		return Output{Status: 200, Reservation: s.show(x)}
	case OpReadResource:
		c := &Counts{}
		for _, y := range r.rs {
			switch {
			case y.st == stHeld:
				c.Held += y.qty
			case y.st.taken():
				c.Confirmed += y.qty
			}
		}
		c.Available = r.spec.Capacity - c.Held - c.Confirmed
		return Output{Status: 200, Counts: c}
	case OpListReservations:
		out := Output{Status: 200, List: []Reservation{}}
		for _, y := range r.rs {
			if in.Admin || y.user == in.User {
				out.List = append(out.List, *s.show(y))
			}
		}
		return out
	}
	return problem(400, "invalid_argument")
}

// simClient is one client goroutine's behaviour.
type simClient struct {
	id    int
	user  string
	admin bool
	known map[string]string // reservation id -> resource, as learned
	retry *Input            // an unknown write to send again with its key
	keys  int
}

// event is a step of the discrete-event loop.
type event struct {
	at  int64
	seq int
	fn  func()
}

type events []event

func (e events) Len() int { return len(e) }
func (e events) Less(i, j int) bool {
	return e[i].at < e[j].at || (e[i].at == e[j].at && e[i].seq < e[j].seq)
}
func (e events) Swap(i, j int) { e[i], e[j] = e[j], e[i] }
func (e *events) Push(x any)   { *e = append(*e, x.(event)) }
func (e *events) Pop() any {
	old := *e
	x := old[len(old)-1]
	*e = old[:len(old)-1]
	return x
}

// simConfig shapes a run.
type simConfig struct {
	seed      uint64
	clients   int
	duration  time.Duration
	pUnknown  float64 // a write's outcome is unknown
	resources map[string]Spec
}

type simRun struct {
	cfg    simConfig
	rng    *rand.Rand
	now    int64
	seq    int
	q      events
	srv    *simServer
	rec    *Recorder
	resIDs []string
}

func (r *simRun) at(t int64, fn func()) {
	r.seq++
	heap.Push(&r.q, event{at: t, seq: r.seq, fn: fn})
}

func (r *simRun) ms(lo, hi int) int64 {
	return int64(lo)*1e6 + r.rng.Int64N(int64(hi-lo+1)*1e6)
}

// simulate runs cfg and returns what the recorder saw.
func simulate(cfg simConfig) History {
	rng := rand.New(rand.NewPCG(cfg.seed, 7))
	r := &simRun{cfg: cfg, rng: rng}
	r.rec = newRecorder(epoch, func() int64 { return r.now })
	r.srv = &simServer{rng: rng, epoch: epoch, res: make(map[string]*simResource)}
	for id, sp := range cfg.resources {
		r.srv.res[id] = &simResource{id: id, spec: sp, rs: make(map[string]*simResv), recs: make(map[string]simRecord)}
		r.resIDs = append(r.resIDs, id)
	}
	slices.Sort(r.resIDs)
	end := int64(cfg.duration)
	for i := 0; i < cfg.clients; i++ {
		c := &simClient{id: i, user: fmt.Sprintf("u%d", i%(cfg.clients*2/3+1)), known: make(map[string]string)}
		c.admin = i == 0
		r.at(r.ms(0, 20), func() { r.call(c, end) })
	}
	for r.q.Len() > 0 {
		e := heap.Pop(&r.q).(event)
		r.now = e.at
		e.fn()
	}
	// the final state, read once everything settled
	r.now += int64(time.Minute)
	for _, id := range r.resIDs {
		in := Input{Op: OpListReservations, Resource: id, User: "admin", Admin: true, Client: simFinalClient}
		p := r.rec.Call(in)
		r.now++
		p.Return(r.srv.apply(in, r.now))
		r.now++
	}
	return r.rec.History()
}

// call sends c's next operation and schedules what becomes of it.
func (r *simRun) call(c *simClient, end int64) {
	if r.now > end {
		return
	}
	in := r.next(c)
	p := r.rec.Call(in)
	d1, d2 := r.ms(1, 30), r.ms(1, 30)
	again := func() { r.at(r.now+r.ms(0, 40), func() { r.call(c, end) }) }
	fate := r.rng.Float64()
	switch {
	case fate < r.cfg.pUnknown/3: // applied, answer lost
		r.at(r.now+d1, func() {
			r.srv.apply(in, r.now)
			r.at(r.now+d2, func() { p.Unknown(); r.lost(c, in); again() })
		})
	case fate < 2*r.cfg.pUnknown/3: // never applied
		r.at(r.now+d1+d2, func() { p.Return(problem(503, "outcome_unknown")); r.lost(c, in); again() })
	case fate < r.cfg.pUnknown: // applied after the client gave up
		late := r.ms(1, 500)
		r.at(r.now+d1, func() { p.Unknown(); r.lost(c, in); again() })
		r.at(r.now+d1+late, func() { r.srv.apply(in, r.now) })
	case fate < r.cfg.pUnknown+0.02: // definitely not written
		r.at(r.now+d1, func() { p.Return(problem(503, "unavailable")); again() })
	default:
		r.at(r.now+d1, func() {
			out := r.srv.apply(in, r.now)
			r.at(r.now+d2, func() { p.Return(out); r.learn(c, in, out); again() })
		})
	}
}

// lost: a write with no answer is retried with its key, mostly.
func (r *simRun) lost(c *simClient, in Input) {
	if in.Op.write() && r.rng.Float64() < 0.8 {
		c.retry = &in
	}
}

func (r *simRun) learn(c *simClient, in Input, out Output) {
	if x := out.Reservation; x != nil && x.ID != "" {
		c.known[x.ID] = in.Resource
	}
	for _, x := range out.List {
		if x.Status == "confirmed" || x.Status == "checked_in" {
			c.known[x.ID] = in.Resource
		}
	}
}

// next picks c's next operation.
func (r *simRun) next(c *simClient) Input {
	if c.retry != nil {
		in := *c.retry
		c.retry = nil
		in.Client = c.id
		return in
	}
	resource := r.resIDs[r.rng.IntN(len(r.resIDs))]
	in := Input{Client: c.id, Resource: resource, User: c.user, Admin: c.admin}
	var ids []string
	for id, res := range c.known {
		if res == resource {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	p := r.rng.Float64()
	switch {
	case c.admin && p < 0.3:
		in.Op = OpListReservations
	case c.admin && len(ids) > 0 && p < 0.7:
		in.Op = []Op{OpCheckIn, OpComplete, OpCancel}[r.rng.IntN(3)]
		in.ID = ids[r.rng.IntN(len(ids))]
	case len(ids) > 0 && p < 0.55:
		in.ID = ids[r.rng.IntN(len(ids))]
		in.Op = []Op{OpConfirm, OpConfirm, OpConfirm, OpCancel, OpReadReservation}[r.rng.IntN(5)]
		if in.Op == OpConfirm && r.rng.IntN(2) == 0 {
			c.keys++
			in.Key = fmt.Sprintf("c%d-%d", c.id, c.keys)
		}
	case p < 0.85:
		in.Op = OpReserve
		c.keys++
		in.Key = fmt.Sprintf("c%d-%d", c.id, c.keys)
	default:
		in.Op = OpReadResource
	}
	return in
}
