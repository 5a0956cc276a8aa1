package linearize

import "slices"

// draft is a state being stepped, with the interval [lo, hi] left for the
// operation's linearization point.
type draft struct {
	s      *state
	lo, hi int64
}

func (d *draft) fork() *draft { return &draft{s: d.s.clone(), lo: d.lo, hi: d.hi} }

// atLeast says the point is at or after t.
func (d *draft) atLeast(t int64) bool {
	d.lo = max(d.lo, t)
	return d.lo <= d.hi
}

// atMost says the point is at or before t.
func (d *draft) atMost(t int64) bool {
	d.hi = min(d.hi, t)
	return d.lo <= d.hi
}

// step returns every state the operation can lead to from s with the output
// it had; none if it cannot have had that output.
func (m *model) step(s *state, ev *Invocation, out *Output) []*state {
	if s.spec == nil {
		sp := m.specs[ev.Resource]
		if sp == nil {
			return nil // Check refuses such histories first
		}
		s = (&state{spec: sp}).seal()
	}
	if out.IsUnknown() {
		// It did not happen (nothing to change), or it did, at some
		// point after its call.
		res := []*state{m.noEffect(s, ev)}
		if ev.Op.write() {
			for _, d := range m.effect(m.begin(s, ev, true), ev) {
				res = append(res, m.finish(d, ev))
			}
		}
		return res
	}
	var ds []*draft
	d := m.begin(s, ev, false)
	switch ev.Op {
	case OpReserve:
		ds = m.reserve(d, ev, out)
	case OpConfirm, OpCancel, OpCheckIn, OpComplete:
		ds = m.transition(d, ev, out)
	case OpReadReservation:
		ds = m.readReservation(d, ev, out)
	case OpReadResource:
		ds = m.readResource(d, out)
	case OpListReservations:
		ds = m.list(d, ev, out)
	}
	res := make([]*state, 0, len(ds))
	for _, d := range ds {
		res = append(res, m.finish(d, ev))
	}
	return res
}

// effect is what an unknown write did if it happened.
func (m *model) effect(d *draft, ev *Invocation) []*draft {
	switch ev.Op {
	case OpReserve:
		return m.reserveEffect(d, ev)
	case OpConfirm, OpCancel, OpCheckIn, OpComplete:
		return m.transitionEffect(d, ev)
	}
	return nil
}

// begin starts a draft from s for ev: its point is after its call and after
// every operation before it, and before its return. Holds whose window has
// passed expire; anonymous reservations learn a bound of when they were
// made (before this operation, which returned by ev.Return).
func (m *model) begin(s *state, ev *Invocation, unknown bool) *draft {
	d := &draft{s: s.clone(), lo: max(s.now, ev.Call), hi: ev.Return}
	if unknown {
		d.hi = open
	} else {
		for i := range d.s.rs {
			if r := &d.s.rs[i]; r.born1 == open {
				r.born1 = d.hi
			}
		}
	}
	m.forceExpiry(d)
	return d
}

// noEffect is s after an unknown operation that did not happen.
func (m *model) noEffect(s *state, ev *Invocation) *state {
	if ev.Key == "" {
		return s
	}
	c := s.clone()
	m.useKey(c, ev)
	return c.seal()
}

// finish seals a draft: the point chosen is the earliest left.
func (m *model) finish(d *draft, ev *Invocation) *state {
	s := d.s
	s.now = d.lo
	m.useKey(s, ev)
	m.forget(s)
	return s.seal()
}

// useKey counts one more operation of ev's Idempotency-Key; after its last
// one the key's record and mark are dropped: nothing can ask for them.
func (m *model) useKey(s *state, ev *Invocation) {
	if ev.Key == "" {
		return
	}
	total := m.keyTotal[scopedKey(ev.User, ev.Key)]
	i := slices.IndexFunc(s.live, func(k keyUse) bool { return k.user == ev.User && k.key == ev.Key })
	used := 1
	if i >= 0 {
		used = s.live[i].used + 1
	}
	if used < total {
		if i >= 0 {
			s.live[i].used = used
		} else {
			s.live = append(s.live, keyUse{user: ev.User, key: ev.Key, used: used})
			slices.SortFunc(s.live, func(a, b keyUse) int {
				return cmpRecord(record{user: a.user, key: a.key}, record{user: b.user, key: b.key})
			})
		}
		return
	}
	if i >= 0 {
		s.live = slices.Delete(s.live, i, i+1)
	}
	if j := s.record(ev.User, ev.Key); j >= 0 {
		s.recs = slices.Delete(s.recs, j, j+1)
	}
	for j := range s.rs {
		if r := &s.rs[j]; r.key == ev.Key && r.user == ev.User {
			r.key = ""
		}
	}
}

// forget drops what no later operation can observe, so that states that
// differ only in it merge: expiry bounds of reservations no longer held,
// and finished reservations that no later operation names (no list, no read
// of the id, no live key).
func (m *model) forget(s *state) {
	noBinder := s.now > m.binderLast[s.spec.id]
	s.rs = slices.DeleteFunc(s.rs, func(r resv) bool {
		if r.key != "" || r.st.taken() || !noBinder {
			return false
		}
		return r.id == "" || s.now > m.idLast[r.id]
	})
	for i := range s.rs {
		if r := &s.rs[i]; r.st != stHeld && r.key == "" {
			r.e, r.eKnown, r.born0, r.born1 = 0, false, 0, 0
		}
	}
}

// scopedKey is the scope of an Idempotency-Key: the user and the key.
func scopedKey(user, key string) string { return user + "\x00" + key }
