package linearize

import "net/http"

// span is the stock a reserve asks for: nights [ci, co) of a room, or the
// one stock of a voucher or slot (0, 0).
func span(sp *rspec, in Input) (ci, co int32, ok bool) {
	if !sp.room() {
		return 0, 0, in.CheckIn == "" && in.CheckOut == ""
	}
	ci, err1 := parseDay(in.CheckIn)
	co, err2 := parseDay(in.CheckOut)
	return ci, co, err1 == nil && err2 == nil && ci < co
}

// nights are the stock dimensions of [ci, co).
func nights(sp *rspec, ci, co int32) []int32 {
	if !sp.room() {
		return []int32{0}
	}
	out := make([]int32, 0, co-ci)
	for n := ci; n < co; n++ {
		out = append(out, n)
	}
	return out
}

func covers(sp *rspec, r *resv, n int32) bool { return !sp.room() || (r.ci <= n && n < r.co) }

func stock(sp *rspec, n int32) int64 {
	if sp.room() {
		return sp.nights[n]
	}
	return sp.capacity
}

// taken is the units taken on night n, counting every hold as held.
func (s *state) taken(n int32) int64 {
	var t int64
	for i := range s.rs {
		if r := &s.rs[i]; r.st.taken() && covers(s.spec, r, n) {
			t += r.qty
		}
	}
	return t
}

// userTaken is the units user has taken, counting every hold as held.
func (s *state) userTaken(user string) int64 {
	var t int64
	for i := range s.rs {
		if r := &s.rs[i]; r.st.taken() && r.user == user {
			t += r.qty
		}
	}
	return t
}

func (m *model) reserve(d *draft, ev *Invocation, out *Output) []*draft {
	sp := d.s.spec
	q := ev.quantity()
	ci, co, ok := span(sp, ev.Input)
	if !ok {
		return nil // a correct server answers a malformed reserve 400
	}
	if ev.Key != "" {
		if j := d.s.record(ev.User, ev.Key); j >= 0 {
			return m.replayReserve(d, ev, out, d.s.recs[j], q, ci, co)
		}
	}
	switch {
	case out.Status == http.StatusCreated:
		if out.Replayed {
			return nil // nothing stored to replay
		}
		return m.created(d, ev, out, q, ci, co)
	case out.Status == http.StatusConflict && out.Code == "sold_out":
		// sold out with every hold that may have expired still held
		for _, n := range nights(sp, ci, co) {
			if stock(sp, n)-d.s.taken(n) < q {
				return []*draft{d}
			}
		}
	case out.Status == http.StatusConflict && out.Code == "limit_exceeded":
		if sp.extLimits || (sp.limit > 0 && d.s.userTaken(ev.User)+q > sp.limit) {
			return []*draft{d}
		}
	case out.Status == http.StatusForbidden:
		return []*draft{d} // roles are not modelled
	}
	return nil
}

func (m *model) wantStatus(sp *rspec) status {
	if sp.hold > 0 {
		return stHeld
	}
	return stConfirmed
}

// created steps a fresh 201.
func (m *model) created(d *draft, ev *Invocation, out *Output, q int64, ci, co int32) []*draft {
	sp := d.s.spec
	n := resv{user: ev.User, key: ev.Key, qty: q, ci: ci, co: co, st: m.wantStatus(sp),
		born0: ev.Call, born1: ev.Return}
	if res := out.Reservation; res != nil {
		if !matches(res, &n) || (res.ID != "" && d.s.find(res.ID) >= 0) {
			return nil
		}
		n.id = res.ID
		if n.st == stHeld && !res.ExpiresAt.IsZero() {
			e := onAxis(res.ExpiresAt, m.epoch)
			// stamped at decision time: after the call, before the commit
			if e-sp.hold+m.skew < ev.Call || !d.atLeast(e-sp.hold-m.skew) {
				return nil
			}
			n.e, n.eKnown = e, true
		}
	}
	return m.add(m.admit(d, ev.User, q, ci, co), n)
}

// reserveEffect is what an unknown reserve did if it happened: a new
// reservation the model knows no id of.
func (m *model) reserveEffect(d *draft, ev *Invocation) []*draft {
	sp := d.s.spec
	q := ev.quantity()
	ci, co, ok := span(sp, ev.Input)
	if !ok || (ev.Key != "" && d.s.record(ev.User, ev.Key) >= 0) {
		return nil // refused, or a retry answered from the record
	}
	// It was made by its (horizon-bounded) return; with no horizon, by the
	// next operation that returned (begin closes the bound). A bound that does
	// not depend on where the checker places the operation lets more of the
	// search merge.
	born1 := int64(open)
	if m.horizon {
		born1 = ev.Return
	}
	n := resv{user: ev.User, key: ev.Key, qty: q, ci: ci, co: co, st: m.wantStatus(sp),
		born0: ev.Call, born1: born1}
	return m.add(m.admit(d, ev.User, q, ci, co), n)
}

// add adds n (and its key's record) to every draft.
func (m *model) add(ds []*draft, n resv) []*draft {
	for _, d := range ds {
		d.s.rs = append(d.s.rs, n)
		if n.key != "" {
			d.s.recs = append(d.s.recs, record{user: n.user, key: n.key, op: OpReserve,
				qty: n.qty, ci: n.ci, co: n.co, st: n.st})
		}
	}
	return ds
}

// replayReserve steps a reserve whose key has a record: the answer is the
// stored one (a 201 naming the same reservation), or 422 for another body.
func (m *model) replayReserve(d *draft, ev *Invocation, out *Output, rec record, q int64, ci, co int32) []*draft {
	if rec.op != OpReserve || rec.qty != q || rec.ci != ci || rec.co != co {
		if out.Status == http.StatusUnprocessableEntity {
			return []*draft{d}
		}
		return nil
	}
	if out.Status != http.StatusCreated {
		return nil
	}
	i := d.s.byKey(ev.User, ev.Key)
	if i < 0 {
		return nil
	}
	r := &d.s.rs[i]
	res := out.Reservation
	if res == nil {
		return []*draft{d}
	}
	want := *r
	want.st = rec.st // the answer as first given
	if !matches(res, &want) {
		return nil
	}
	if r.id == "" && res.ID != "" {
		if d.s.find(res.ID) >= 0 {
			return nil
		}
		r.id = res.ID
	} else if res.ID != "" && res.ID != r.id {
		return nil // one key, two reservations
	}
	if rec.st == stHeld && !res.ExpiresAt.IsZero() && !m.learnExpiry(d.s.spec, r, res) {
		return nil
	}
	return []*draft{d}
}

// learnExpiry records the expires_at an output showed for r; false if it
// does not fit what the model knows.
func (m *model) learnExpiry(sp *rspec, r *resv, res *Reservation) bool {
	e := onAxis(res.ExpiresAt, m.epoch)
	if r.eKnown {
		return e == r.e
	}
	lo, hi := m.eBounds(sp, r)
	if e < lo || e > hi {
		return false
	}
	r.e, r.eKnown = e, true
	return true
}

// matches reports whether what the client saw of a reservation fits r
// (fields the client did not fill are not compared; the id is the caller's
// business).
func matches(res *Reservation, r *resv) bool {
	if res.User != "" && res.User != r.user {
		return false
	}
	if res.Quantity != 0 && res.Quantity != r.qty {
		return false
	}
	if res.Status != "" && res.Status != r.st.String() {
		return false
	}
	if res.CheckIn != "" {
		ci, err1 := parseDay(res.CheckIn)
		co, err2 := parseDay(res.CheckOut)
		if err1 != nil || err2 != nil || ci != r.ci || co != r.co {
			return false
		}
	}
	return true
}

// admit returns the drafts in which user may take q units of [ci, co) now:
// the draft itself if that fits with every hold still held, else one per
// smallest set of holds that may have expired and would make room (the
// others may still expire later).
func (m *model) admit(d *draft, user string, q int64, ci, co int32) []*draft {
	sp := d.s.spec
	ns := nights(sp, ci, co)
	need := make([]int64, len(ns))
	short := false
	for k, n := range ns {
		need[k] = q - (stock(sp, n) - d.s.taken(n))
		short = short || need[k] > 0
	}
	var needUser int64
	if sp.limit > 0 {
		needUser = d.s.userTaken(user) + q - sp.limit
	}
	if !short && needUser <= 0 {
		return []*draft{d}
	}
	fits := func(set []int) bool {
		u := needUser
		left := append([]int64(nil), need...)
		for _, i := range set {
			r := &d.s.rs[i]
			if r.user == user {
				u -= r.qty
			}
			for k, n := range ns {
				if covers(sp, r, n) {
					left[k] -= r.qty
				}
			}
		}
		if u > 0 {
			return false
		}
		for _, l := range left {
			if l > 0 {
				return false
			}
		}
		return true
	}
	amb := m.ambiguous(d)
	sets, exact := subsets(amb, true, fits)
	if !exact {
		if fits(amb) {
			return []*draft{d} // too many to enumerate: do not commit (lenient)
		}
		return nil
	}
	var out []*draft
	for _, set := range sets {
		f := d.fork()
		if m.expire(f, set) {
			out = append(out, f)
		}
	}
	return out
}
