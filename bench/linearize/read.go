package linearize

import (
	"net/http"
	"slices"
)

func (m *model) readReservation(d *draft, ev *Invocation, out *Output) []*draft {
	var res []*draft
	for _, b := range m.resolve(d, ev.ID) {
		switch {
		case b.i < 0:
			if out.Status == http.StatusNotFound {
				res = append(res, b.d)
			}
			continue
		case !ev.Admin && b.d.s.rs[b.i].user != ev.User:
			if out.Status == http.StatusForbidden {
				res = append(res, b.d)
			}
			continue
		case out.Status != http.StatusOK:
			continue
		case out.Reservation == nil:
			res = append(res, b.d)
			continue
		}
		item := *out.Reservation
		if item.ID != "" && item.ID != ev.ID {
			continue
		}
		if f := b.d.fork(); m.show(f, b.i, &item) {
			res = append(res, f)
		}
	}
	return res
}

// show says reservation i was seen as item at the point: a hold whose
// window is open is committed to what the item says.
func (m *model) show(d *draft, i int, item *Reservation) bool {
	r := &d.s.rs[i]
	st, ok := parseStatus(item.Status)
	if !ok {
		return false
	}
	if r.st == stHeld {
		lo, hi := m.window(d.s.spec, r)
		switch {
		case st == stHeld:
			if !d.atMost(hi) {
				return false
			}
		case st == stExpired && lo <= d.hi:
			if !m.expire(d, []int{i}) {
				return false
			}
		default:
			return false
		}
	} else if r.st != st {
		return false
	}
	want := *r
	want.st = st
	if !matches(item, &want) {
		return false
	}
	if st == stHeld && !item.ExpiresAt.IsZero() {
		return m.learnExpiry(d.s.spec, r, item)
	}
	return true
}

func (m *model) readResource(d *draft, out *Output) []*draft {
	c := out.Counts
	if out.Status != http.StatusOK || c == nil {
		return nil
	}
	sp := d.s.spec
	amb := m.ambiguous(d)
	// need[n] units on night n must have been given back by expiries
	var ns []int32
	var need []int64
	if sp.room() {
		for day, nc := range c.Nights {
			n, err := parseDay(day)
			if err != nil || nc.Rooms != stock(sp, n) {
				return nil
			}
			ns = append(ns, n)
			need = append(need, nc.Available-(stock(sp, n)-d.s.taken(n)))
		}
	} else {
		var held, conf int64
		for i := range d.s.rs {
			switch r := &d.s.rs[i]; {
			case r.st == stHeld:
				held += r.qty
			case r.st.taken():
				conf += r.qty
			}
		}
		if c.Confirmed != conf || c.Available != sp.capacity-c.Held-c.Confirmed {
			return nil
		}
		ns = []int32{0}
		need = []int64{held - c.Held}
	}
	for _, n := range need {
		if n < 0 {
			return nil
		}
	}
	freesExactly := func(set []int) bool {
		left := slices.Clone(need)
		for _, i := range set {
			r := &d.s.rs[i]
			for k, n := range ns {
				if covers(sp, r, n) {
					left[k] -= r.qty
				}
			}
		}
		for _, l := range left {
			if l != 0 {
				return false
			}
		}
		return true
	}
	sets, exact := subsets(amb, false, freesExactly)
	if !exact {
		return []*draft{d} // too many to enumerate: do not commit (lenient)
	}
	var res []*draft
	for _, set := range sets {
		f := d.fork()
		rest := slices.DeleteFunc(slices.Clone(amb), func(i int) bool { return slices.Contains(set, i) })
		if m.expire(f, set) && m.keepHeld(f, rest) {
			res = append(res, f)
		}
	}
	return res
}

// list steps a complete list of the resource's reservations (the caller's
// own unless admin): it must show every reservation the model has in scope,
// and nothing else; anonymous reservations get the ids of the listed ones
// the model does not know, one to one.
func (m *model) list(d *draft, ev *Invocation, out *Output) []*draft {
	if out.Status != http.StatusOK {
		return nil
	}
	inScope := func(r *resv) bool { return ev.Admin || r.user == ev.User }
	seen := make(map[string]bool, len(out.List))
	var unbound []*Reservation
	for k := range out.List {
		item := &out.List[k]
		if seen[item.ID] {
			return nil
		}
		seen[item.ID] = true
		i := d.s.find(item.ID)
		if i < 0 {
			if !m.orphan[item.ID] {
				return nil
			}
			unbound = append(unbound, item)
			continue
		}
		if !inScope(&d.s.rs[i]) || !m.show(d, i, item) {
			return nil
		}
	}
	var anon []int
	for i := range d.s.rs {
		r := &d.s.rs[i]
		switch {
		case !inScope(r):
		case r.id == "":
			anon = append(anon, i)
		case !seen[r.id]:
			return nil // a reservation the model has is missing
		}
	}
	if len(anon) != len(unbound) {
		return nil
	}
	var res []*draft
	var match func(d *draft, k int, used []bool)
	match = func(d *draft, k int, used []bool) {
		if k == len(unbound) {
			res = append(res, d)
			return
		}
		for u, i := range anon {
			if used[u] || len(res) >= maxMatchings {
				continue
			}
			f := d.fork()
			f.s.rs[i].id = unbound[k].ID
			if m.show(f, i, unbound[k]) {
				used[u] = true
				match(f, k+1, used)
				used[u] = false
			}
		}
	}
	match(d, 0, make([]bool, len(anon)))
	return res
}

// maxMatchings bounds the ways a list may name anonymous reservations.
const maxMatchings = 256
