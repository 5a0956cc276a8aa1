package linearize

import (
	"cmp"
	"fmt"
	"hash/maphash"
	"math"
	"slices"
	"strings"
)

// open is an unbounded time.
const open = math.MaxInt64

// status is a reservation status.
type status uint8

const (
	stHeld status = iota + 1
	stConfirmed
	stCancelled
	stExpired
	stCheckedIn
	stCompleted
)

var statusNames = [...]string{"?", "held", "confirmed", "cancelled", "expired", "checked_in", "completed"}

func (s status) String() string {
	if int(s) < len(statusNames) {
		return statusNames[s]
	}
	return "?"
}

// taken: units in this status count against stock and the per-user limit.
func (s status) taken() bool { return s != stCancelled && s != stExpired }

func parseStatus(s string) (status, bool) {
	for i, n := range statusNames[1:] {
		if n == s {
			return status(i + 1), true
		}
	}
	return 0, false
}

// resv is a reservation in the model. One made by a reserve whose outcome
// was unknown has no id (it is anonymous) until an output names it.
type resv struct {
	id     string // "" while anonymous
	user   string
	key    string // Idempotency-Key that made it, while some operation may still use the key
	qty    int64
	ci, co int32 // rooms: nights [ci, co)
	st     status
	// e is expires_at on the history axis, 0 while not known. Until it is
	// known the bounds of the reservation's creation point stand in for it:
	// born0 is the call of the reserve, born1 a time by which it was
	// committed (open until a later operation bounds it).
	e            int64
	eKnown       bool
	born0, born1 int64
}

// record is a stored Idempotency-Key answer.
type record struct {
	user, key string
	op        Op
	rid       string // transition: the reservation; reserve: found by (user, key) among the reservations
	qty       int64  // reserve body
	ci, co    int32
	st        status // status in the stored answer
}

// keyUse counts the operations of a key linearized so far, while some are
// left; when none are left the key's record can no longer be asked for and
// is forgotten, so that states differing only in it merge.
type keyUse struct {
	user, key string
	used      int
}

// state is the model state of one resource. States are immutable once
// sealed: a step copies.
type state struct {
	spec *rspec // nil before the first operation of the partition
	// now is a lower bound of the current linearization point: the latest
	// call (or time an output forced) among the operations linearized.
	now int64
	// leaderMin is a lower bound of leader time: an `expired` answer said
	// leader time had reached that hold's expires_at.
	leaderMin int64
	rs        []resv   // bound by id, then anonymous
	recs      []record // by (user, key)
	live      []keyUse // by (user, key)
	hash      uint64
}

func (s *state) clone() *state {
	c := *s
	c.rs = slices.Clone(s.rs)
	c.recs = slices.Clone(s.recs)
	c.live = slices.Clone(s.live)
	return &c
}

func cmpResv(a, b resv) int {
	if a.id != b.id {
		// bound ones first, by id
		switch {
		case a.id == "":
			return 1
		case b.id == "":
			return -1
		}
		return strings.Compare(a.id, b.id)
	}
	return cmp.Or(strings.Compare(a.user, b.user), strings.Compare(a.key, b.key),
		cmp.Compare(a.qty, b.qty), cmp.Compare(a.ci, b.ci), cmp.Compare(a.co, b.co),
		cmp.Compare(a.st, b.st), cmp.Compare(a.e, b.e), cmpBool(a.eKnown, b.eKnown), cmp.Compare(a.born0, b.born0),
		cmp.Compare(a.born1, b.born1))
}

func cmpBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}

func cmpRecord(a, b record) int {
	return cmp.Or(strings.Compare(a.user, b.user), strings.Compare(a.key, b.key))
}

var hashSeed = maphash.MakeSeed()

// seal puts s in canonical order and computes its hash. Anonymous
// reservations that nothing can tell apart become equal, so states that
// differ only in which of them exists merge.
func (s *state) seal() *state {
	slices.SortFunc(s.rs, cmpResv)
	slices.SortFunc(s.recs, cmpRecord)
	h := uint64(len(s.rs))<<32 | uint64(len(s.recs))<<16 | uint64(len(s.live))
	w := func(v uint64) { h = (h ^ v) * 0x100000001b3 }
	str := func(v string) { w(maphash.String(hashSeed, v)) }
	if s.spec != nil {
		str(s.spec.id)
	}
	w(uint64(s.now))
	w(uint64(s.leaderMin))
	for i := range s.rs {
		r := &s.rs[i]
		str(r.id)
		str(r.user)
		str(r.key)
		w(uint64(r.st)<<8 | uint64(b2i(r.eKnown)))
		w(uint64(r.qty))
		w(uint64(r.ci)<<32 | uint64(uint32(r.co)))
		w(uint64(r.e))
		w(uint64(r.born0))
		w(uint64(r.born1))
	}
	for i := range s.recs {
		r := &s.recs[i]
		str(r.user)
		str(r.key)
		str(r.rid)
		w(uint64(r.op)<<8 | uint64(r.st))
		w(uint64(r.qty))
	}
	for _, k := range s.live {
		str(k.user)
		str(k.key)
		w(uint64(k.used))
	}
	s.hash = h
	return s
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func (s *state) equal(o *state) bool {
	return s.hash == o.hash && s.spec == o.spec && s.now == o.now && s.leaderMin == o.leaderMin &&
		slices.Equal(s.rs, o.rs) && slices.Equal(s.recs, o.recs) && slices.Equal(s.live, o.live)
}

// find returns the index of the bound reservation id, or -1.
func (s *state) find(id string) int {
	i, ok := slices.BinarySearchFunc(s.rs, id, func(r resv, id string) int {
		if r.id == "" {
			return 1
		}
		return strings.Compare(r.id, id)
	})
	if !ok {
		return -1
	}
	return i
}

// byKey returns the index of the reservation made with (user, key), or -1.
func (s *state) byKey(user, key string) int {
	for i := range s.rs {
		if s.rs[i].key == key && s.rs[i].user == user {
			return i
		}
	}
	return -1
}

func (s *state) record(user, key string) int {
	i, ok := slices.BinarySearchFunc(s.recs, record{user: user, key: key}, cmpRecord)
	if !ok {
		return -1
	}
	return i
}

func (s *state) describe() string {
	if s.spec == nil {
		return "empty"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "now=%.3fs", float64(s.now)/1e9)
	for _, r := range s.rs {
		id := shortID(r.id)
		if id == "" {
			id = "?"
		}
		fmt.Fprintf(&b, " %s:%s", id, r.user)
		if r.qty != 1 {
			fmt.Fprintf(&b, "x%d", r.qty)
		}
		fmt.Fprintf(&b, ":%s", r.st)
		if r.key != "" {
			fmt.Fprintf(&b, "[%s]", r.key)
		}
	}
	if len(s.recs) > 0 {
		fmt.Fprintf(&b, " keys=%d", len(s.recs))
	}
	return b.String()
}
