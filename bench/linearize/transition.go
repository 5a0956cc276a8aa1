package linearize

import "net/http"

// target is the status a transition moves to.
func target(op Op) status {
	switch op {
	case OpConfirm:
		return stConfirmed
	case OpCancel:
		return stCancelled
	case OpCheckIn:
		return stCheckedIn
	case OpComplete:
		return stCompleted
	}
	return 0
}

// bound is a draft in which an id names reservation i (-1: none, yet).
type bound struct {
	d *draft
	i int
}

// resolve finds reservation id. An id the model has not bound yet names no
// reservation (yet), or, if no known fresh 201 made it, one of the
// anonymous reservations: unknown reserves that happened (see the package
// doc); one draft per choice.
func (m *model) resolve(d *draft, id string) []bound {
	if i := d.s.find(id); i >= 0 {
		return []bound{{d, i}}
	}
	out := []bound{{d, -1}}
	if !m.orphan[id] {
		return out
	}
	for j := range d.s.rs {
		if d.s.rs[j].id == "" {
			f := d.fork()
			f.s.rs[j].id = id
			out = append(out, bound{f, j})
		}
	}
	return out
}

// current is a status reservation i may have at the point: a hold whose
// window is open may be held still or expired already.
type current struct {
	d  *draft
	st status
}

func (m *model) current(d *draft, i int) []current {
	r := &d.s.rs[i]
	if r.st != stHeld {
		return []current{{d, r.st}}
	}
	lo, hi := m.window(d.s.spec, r)
	if lo > d.hi {
		return []current{{d, stHeld}}
	}
	var out []current
	if f := d.fork(); f.atMost(hi) {
		out = append(out, current{f, stHeld})
	}
	if f := d.fork(); m.expire(f, []int{i}) {
		out = append(out, current{f, stExpired})
	}
	return out
}

// outcome is one answer a transition may get from status cs.
type outcome struct {
	d       *draft
	code    int
	problem string
	to      status // new status; 0 = unchanged
	noop    bool   // 200 with nothing done
	shown   status // status in a 200 answer
}

func (o outcome) answers(out *Output, id string) bool {
	if out.Status != o.code {
		return false
	}
	if o.code != http.StatusOK {
		return out.Code == o.problem
	}
	res := out.Reservation
	return res == nil || ((res.ID == "" || res.ID == id) && (res.Status == "" || res.Status == o.shown.String()))
}

// outcomes lists the answers op may get on reservation i in status cs,
// each in its own draft with the time constraints it implies.
func (m *model) outcomes(d *draft, i int, cs status, op Op) []outcome {
	sp := d.s.spec
	to := target(op)
	ok := func(f *draft) outcome { return outcome{d: f, code: http.StatusOK, to: to, shown: to} }
	bad := func(f *draft, code string) outcome {
		return outcome{d: f, code: http.StatusConflict, problem: code}
	}
	if cs == to {
		return []outcome{{d: d, code: http.StatusOK, noop: true, shown: to}}
	}
	switch op {
	case OpConfirm:
		switch cs {
		case stHeld:
			// decided against leader time: before expires_at it
			// confirms, from then on it is a late confirm
			var out []outcome
			elo, ehi := m.eBounds(sp, &d.s.rs[i])
			if ehi > d.s.leaderMin {
				if f := d.fork(); ehi == open || f.atMost(ehi+m.skew) {
					out = append(out, ok(f))
				}
			}
			if f := d.fork(); f.atLeast(elo - m.skew) {
				f.s.leaderMin = max(f.s.leaderMin, elo)
				out = append(out, bad(f, "expired"))
			}
			return out
		case stExpired:
			return []outcome{bad(d, "invalid_state"), bad(d.fork(), "expired")}
		}
	case OpCancel:
		switch {
		case cs == stHeld || (cs == stConfirmed && sp.cancelBy == 0):
			return []outcome{ok(d)}
		case cs == stConfirmed:
			var out []outcome
			if f := d.fork(); sp.cancelBy > f.s.leaderMin && f.atMost(sp.cancelBy+m.skew) {
				out = append(out, ok(f))
			}
			if f := d.fork(); f.atLeast(sp.cancelBy - m.skew) {
				f.s.leaderMin = max(f.s.leaderMin, sp.cancelBy)
				out = append(out, bad(f, "invalid_state"))
			}
			return out
		}
	case OpCheckIn:
		if cs == stConfirmed && sp.kind != "voucher" {
			return []outcome{ok(d)}
		}
	case OpComplete:
		if cs == stConfirmed || cs == stCheckedIn {
			return []outcome{ok(d)}
		}
	}
	return []outcome{bad(d, "invalid_state")}
}

// apply makes outcome o happen on reservation i, with its key's record.
// A no-op stores no record on today's server; the API does not say, so
// with a key both are allowed.
func (m *model) apply(o outcome, i int, ev *Invocation) []*draft {
	d := o.d
	if o.to != 0 {
		d.s.rs[i].st = o.to
	}
	if ev.Key == "" || o.code != http.StatusOK {
		return []*draft{d}
	}
	rec := record{user: ev.User, key: ev.Key, op: ev.Op, rid: ev.ID, st: o.shown}
	if o.noop {
		f := d.fork()
		f.s.recs = append(f.s.recs, rec)
		return []*draft{d, f}
	}
	d.s.recs = append(d.s.recs, rec)
	return []*draft{d}
}

func (m *model) transition(d *draft, ev *Invocation, out *Output) []*draft {
	if (ev.Op == OpCheckIn || ev.Op == OpComplete) && !ev.Admin {
		if out.Status == http.StatusForbidden {
			return []*draft{d}
		}
		return nil
	}
	if ev.Key != "" {
		if j := d.s.record(ev.User, ev.Key); j >= 0 {
			rec := d.s.recs[j]
			if rec.op != ev.Op || rec.rid != ev.ID {
				if out.Status == http.StatusUnprocessableEntity {
					return []*draft{d}
				}
				return nil
			}
			replay := outcome{code: http.StatusOK, shown: rec.st}
			if replay.answers(out, ev.ID) {
				return []*draft{d}
			}
			return nil
		}
	}
	var res []*draft
	for _, b := range m.resolve(d, ev.ID) {
		if b.i < 0 {
			if out.Status == http.StatusNotFound {
				res = append(res, b.d)
			}
			continue
		}
		if !ev.Admin && b.d.s.rs[b.i].user != ev.User {
			if out.Status == http.StatusForbidden {
				res = append(res, b.d)
			}
			continue
		}
		for _, c := range m.current(b.d, b.i) {
			for _, o := range m.outcomes(c.d, b.i, c.st, ev.Op) {
				if o.answers(out, ev.ID) {
					res = append(res, m.apply(o, b.i, ev)...)
				}
			}
		}
	}
	return res
}

// transitionEffect is what an unknown transition did if it happened.
func (m *model) transitionEffect(d *draft, ev *Invocation) []*draft {
	if (ev.Op == OpCheckIn || ev.Op == OpComplete) && !ev.Admin {
		return nil
	}
	if ev.Key != "" && d.s.record(ev.User, ev.Key) >= 0 {
		return nil // a retry answered from the record
	}
	var res []*draft
	for _, b := range m.resolve(d, ev.ID) {
		if b.i < 0 || (!ev.Admin && b.d.s.rs[b.i].user != ev.User) {
			continue
		}
		for _, c := range m.current(b.d, b.i) {
			for _, o := range m.outcomes(c.d, b.i, c.st, ev.Op) {
				if o.code != http.StatusOK || (o.noop && ev.Key == "") {
					continue // nothing written: the no-effect branch has it
				}
				if o.noop {
					o.d.s.recs = append(o.d.s.recs, record{user: ev.User, key: ev.Key, op: ev.Op, rid: ev.ID, st: o.shown})
					res = append(res, o.d)
					continue
				}
				res = append(res, m.apply(o, b.i, ev)...)
			}
		}
	}
	return res
}
