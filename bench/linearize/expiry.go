package linearize

// Expiry is not a client operation: a held reservation moves to expired by
// itself, never before its expires_at and at most Lateness after it (leader
// time), and leader time is within Skew of the clients' clock. The model
// keeps such a hold lazily "held, or expired already" while its window
// overlaps the operation being linearized, and commits to one of the two only
// when an output depends on it. A hold whose window has passed is expired.

// bounds of expires_at on the history axis: exact once an output showed it,
// else derived from when the reserve was decided. The leader stamps it at
// decision time plus hold: after the call and before the commit, each read
// on a clock within Skew of the client's.
func (m *model) eBounds(sp *rspec, r *resv) (lo, hi int64) {
	if r.eKnown {
		return r.e, r.e
	}
	lo = r.born0 + sp.hold - m.skew
	hi = open
	if r.born1 != open {
		hi = r.born1 + sp.hold + m.skew
	}
	return lo, hi
}

// window is when the hold r may expire, on the history axis.
func (m *model) window(sp *rspec, r *resv) (lo, hi int64) {
	elo, ehi := m.eBounds(sp, r)
	lo = elo - m.skew
	hi = open
	if ehi != open {
		hi = ehi + m.skew + m.late
	}
	return lo, hi
}

// forceExpiry expires every hold whose window ended before the draft's
// earliest point.
func (m *model) forceExpiry(d *draft) {
	for i := range d.s.rs {
		r := &d.s.rs[i]
		if r.st != stHeld {
			continue
		}
		if _, hi := m.window(d.s.spec, r); hi < d.lo {
			r.st = stExpired
		}
	}
}

// ambiguous lists the holds that may or may not have expired by the
// draft's point.
func (m *model) ambiguous(d *draft) []int {
	var out []int
	for i := range d.s.rs {
		r := &d.s.rs[i]
		if r.st != stHeld {
			continue
		}
		if lo, _ := m.window(d.s.spec, r); lo <= d.hi {
			out = append(out, i)
		}
	}
	return out
}

// expire commits the holds idx to expired, moving the point to after their
// windows opened; false if that cannot be.
func (m *model) expire(d *draft, idx []int) bool {
	for _, i := range idx {
		r := &d.s.rs[i]
		lo, _ := m.window(d.s.spec, r)
		if !d.atLeast(lo) {
			return false
		}
		r.st = stExpired
	}
	return true
}

// keepHeld says the holds idx were still held at the point.
func (m *model) keepHeld(d *draft, idx []int) bool {
	for _, i := range idx {
		if _, hi := m.window(d.s.spec, &d.s.rs[i]); !d.atMost(hi) {
			return false
		}
	}
	return true
}

// subsets enumerates the subsets of amb (by size, smallest first) for which
// ok holds. With minimal set it skips supersets of subsets already found
// (an upward-closed condition: the other holds may still expire later). It
// gives up (returns nil, false) when amb is larger than maxAmbiguous or more
// than maxSubsets are found: the caller then falls back to not committing.
func subsets(amb []int, minimal bool, ok func(set []int) bool) ([][]int, bool) {
	const maxAmbiguous, maxSubsets = 12, 256
	n := len(amb)
	if n > maxAmbiguous {
		return nil, false
	}
	var found [][]int
	var foundMasks []uint32
	for size := 0; size <= n; size++ {
		// Gosper's hack: every mask of n bits with size bits set, in order.
		mask := uint32(1)<<size - 1
		for mask < 1<<n {
			if !minimal || !superOf(mask, foundMasks) {
				set := make([]int, 0, size)
				for b := 0; b < n; b++ {
					if mask&(1<<b) != 0 {
						set = append(set, amb[b])
					}
				}
				if ok(set) {
					if len(found) == maxSubsets {
						return nil, false
					}
					found = append(found, set)
					foundMasks = append(foundMasks, mask)
				}
			}
			if mask == 0 {
				break
			}
			c := mask & -mask
			r := mask + c
			mask = (((r ^ mask) >> 2) / c) | r
		}
	}
	return found, true
}

func superOf(mask uint32, of []uint32) bool {
	for _, f := range of {
		if mask&f == f {
			return true
		}
	}
	return false
}
